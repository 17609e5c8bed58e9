"""Fleet-reliability analytics for DoorCounter devices.

Load a heartbeat database with `load_fleet` and work with its `heartbeats`, `events` and
`boots` tables, or run the scheduled reports with the ``fleet-report`` command.
"""

from analysis.boots import derive_boots
from analysis.errors import (
    AnalysisError,
    DataQualityWarning,
    HistoryOverwrittenWarning,
)
from analysis.events import expand_events
from analysis.fleet import Fleet, load_fleet
from analysis.heartbeats import load_heartbeats
from analysis.quality import DataQualityReport

__version__ = "0.1.0"

__all__ = [
    "AnalysisError",
    "DataQualityReport",
    "DataQualityWarning",
    "Fleet",
    "HistoryOverwrittenWarning",
    "derive_boots",
    "expand_events",
    "load_fleet",
    "load_heartbeats",
]
