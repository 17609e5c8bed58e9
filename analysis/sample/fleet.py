"""`simulate_fleet`: run every device and return the heartbeat rows with their ground truth."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from analysis.sample.assemble import assemble_heartbeats
from analysis.sample.config import FleetConfig, replace_config
from analysis.sample.device import DeviceRun, DeviceSimulation
from analysis.sample.malformed import damage_rows
from analysis.sample.schedule import draw_profile, draw_schedule, draw_server_schedule
from analysis.sample.truth import (
    event_first_heartbeats,
    truth_boots,
    truth_devices,
    truth_events,
)

logger = logging.getLogger(__name__)


@dataclass
class SimulatedFleet:
    """A simulated fleet: the heartbeat rows as the server stores them, and the truth.

    Attributes
    ----------
    config : FleetConfig
        The settings the fleet was simulated with.
    heartbeats : DataFrame
        One row per stored heartbeat, columns ``id, device_id, received_at, uptime,
        firmware_version, reset_reason, heap_free, heap_min_free, last_disconnect_code,
        recent_events``. ``received_at`` is UTC; the diagnostic columns are missing on
        firmware without diagnostics. ``heap_free`` and ``recent_events`` have object dtype
        because malformed rows hold text and cut-off JSON there.
    truth_boots : DataFrame
        One row per boot, also boots the server never heard of (see `analysis.sample.truth`).
    truth_events : DataFrame
        One row per event any firmware logged.
    truth_devices : DataFrame
        The scenario labels of each device (leaking, boot loops, weak signal, ...).
    truth_malformed : DataFrame
        The damaged heartbeats: ``heartbeat_id, device_id, kind``.
    """

    config: FleetConfig
    heartbeats: pd.DataFrame
    truth_boots: pd.DataFrame
    truth_events: pd.DataFrame
    truth_devices: pd.DataFrame
    truth_malformed: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"SimulatedFleet(devices={self.config.devices}, days={self.config.days}, "
            f"seed={self.config.seed}, heartbeats={len(self.heartbeats)}, "
            f"boots={len(self.truth_boots)}, events={len(self.truth_events)})"
        )


def simulate_fleet(
    config: FleetConfig | None = None, *, progress: bool = False, **overrides: object
) -> SimulatedFleet:
    """Simulate a DoorCounter fleet from a fixed seed.

    Parameters
    ----------
    config : FleetConfig, optional
        The settings; the defaults of `FleetConfig` when omitted.
    progress : bool
        Show a progress bar over the devices.
    **overrides
        `FleetConfig` fields that replace those of `config`, such as ``devices=5``.

    Returns
    -------
    SimulatedFleet
        The same config always gives the same rows and truth.

    Raises
    ------
    InvalidInputError
        When an override names no `FleetConfig` field or a setting is out of range.

    Examples
    --------
    >>> fleet = simulate_fleet(devices=3, days=2, seed=7)
    >>> fleet.heartbeats["device_id"].nunique()
    3
    """
    config = replace_config(config or FleetConfig(), overrides)
    seeds = np.random.SeedSequence(config.seed).spawn(config.devices + 2)
    server = draw_server_schedule(config, np.random.default_rng(seeds[0]))

    runs: list[DeviceRun] = []
    for number in tqdm(range(config.devices), disable=not progress, unit="device",
                       desc="simulating"):
        rng = np.random.default_rng(seeds[number + 2])
        profile = draw_profile(config, number, rng)
        schedule = draw_schedule(config, profile, rng)
        runs.append(DeviceSimulation(config, profile, schedule, server, rng).run())

    heartbeats, index = assemble_heartbeats(config, runs)
    malformed = damage_rows(heartbeats, index, config.malformed_rows,
                            np.random.default_rng(seeds[1]))
    ids = heartbeats["id"].to_numpy()
    first_ids = event_first_heartbeats(runs, ids, index, malformed)
    counts = [
        np.bincount(index.boot[rows], minlength=len(run.boots))
        for run, rows in zip(runs, index.rows_by_device(len(runs)), strict=True)
    ]
    fleet = SimulatedFleet(
        config=config,
        heartbeats=heartbeats,
        truth_boots=truth_boots(runs, first_ids, counts),
        truth_events=truth_events(runs, first_ids),
        truth_devices=truth_devices(runs),
        truth_malformed=malformed,
    )
    logger.debug("simulated %r", fleet)
    return fleet
