"""A reproducible simulated DoorCounter fleet, with the ground truth of every boot and event.

`simulate_fleet` runs a fleet's firmware from a seed. It returns the heartbeat rows the
server would store, together with the true boots, events and device labels.
`write_database` writes those rows to SQLite in the shapes and time formats met in the
field, and `ensure_sample_database` provides the bundled 200-device, 30-day sample.
"""

from analysis.sample.config import DEFAULT_SEED, FirmwareRelease, FleetConfig
from analysis.sample.files import (
    default_sample_path,
    ensure_sample_database,
    generate_sample_database,
)
from analysis.sample.fleet import SimulatedFleet, simulate_fleet
from analysis.sample.writer import SHAPES, TIME_FORMATS, write_database, write_truth_tables

__all__ = [
    "DEFAULT_SEED",
    "FirmwareRelease",
    "FleetConfig",
    "SHAPES",
    "SimulatedFleet",
    "TIME_FORMATS",
    "default_sample_path",
    "ensure_sample_database",
    "generate_sample_database",
    "simulate_fleet",
    "write_database",
    "write_truth_tables",
]
