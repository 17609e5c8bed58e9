"""Fleet-reliability analytics for DoorCounter devices.

Load a heartbeat database with `load_fleet` and work with its `heartbeats`, `events` and
`boots` tables, or run the scheduled reports with the ``fleet-report`` command.
"""

from analysis.boot_episodes import detect_boot_loops, detect_power_problems, silent_devices
from analysis.boots import derive_boots
from analysis.errors import (
    AnalysisError,
    DataQualityWarning,
    HistoryOverwrittenWarning,
)
from analysis.events import expand_events
from analysis.export import export_fleet
from analysis.exposure import device_hours
from analysis.fleet import Fleet, load_fleet
from analysis.heartbeats import load_heartbeats
from analysis.pseudonymize import pseudonymize_fleet
from analysis.quality import DataQualityReport
from analysis.stability import fleet_stability

__version__ = "0.1.0"

__all__ = [
    "AnalysisError",
    "DataQualityReport",
    "DataQualityWarning",
    "Fleet",
    "HistoryOverwrittenWarning",
    "derive_boots",
    "detect_boot_loops",
    "detect_power_problems",
    "device_hours",
    "expand_events",
    "export_fleet",
    "fleet_stability",
    "load_fleet",
    "load_heartbeats",
    "pseudonymize_fleet",
    "silent_devices",
]
