"""Merge the device runs into the heartbeat table the server would have stored.

The server numbers heartbeats in the order they arrive, so ids follow ``received_at``
across the fleet (ties by device). Alongside the public table this keeps, per heartbeat,
which device, boot and ring-buffer slice it came from, for the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.sample.config import FleetConfig
from analysis.sample.device import DeviceRun
from analysis.sample.ringbuffer import render_snapshots, snapshot_bounds

HEARTBEAT_COLUMNS = (
    "id", "device_id", "received_at", "uptime", "firmware_version", "reset_reason",
    "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
)
DIAGNOSTIC_COLUMNS = (
    "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
)


@dataclass
class HeartbeatIndex:
    """Per stored heartbeat, in id order: its device, boot and ring-buffer slice.

    ``lo`` and ``hi`` bound the slice of the device's event log that ``recent_events``
    contains; both are -1 for heartbeats of firmware without diagnostics.
    """

    device: np.ndarray
    boot: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    has_diagnostics: np.ndarray

    def rows_by_device(self, devices: int) -> list[np.ndarray]:
        """Return, for device numbers 0..devices-1, its row positions in id order."""
        order = np.argsort(self.device, kind="stable")
        bounds = np.searchsorted(self.device[order], np.arange(devices + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(devices)]


def assemble_heartbeats(
    config: FleetConfig, runs: list[DeviceRun]
) -> tuple[pd.DataFrame, HeartbeatIndex]:
    """Return the raw heartbeat rows of the fleet and their `HeartbeatIndex`."""
    parts = [_device_columns(config, run) for run in runs]
    merged = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    order = np.lexsort((merged["device"], merged["time"]))
    merged = {name: values[order] for name, values in merged.items()}

    diag = merged["has_diagnostics"]
    frame = pd.DataFrame({
        "id": np.arange(1, len(order) + 1, dtype=np.int64),
        "device_id": pd.Series(
            np.asarray([run.profile.device_id for run in runs], dtype=object)[merged["device"]],
            dtype="str",
        ),
        "received_at": pd.to_datetime(merged["time"], unit="s", utc=True),
        "uptime": merged["uptime"],
        "firmware_version": pd.Series(merged["version"], dtype="str"),
        "reset_reason": _nullable(merged["reset_reason"], diag),
        "heap_free": _object_ints(merged["heap_free"], diag),
        "heap_min_free": _nullable(merged["heap_min_free"], diag),
        "last_disconnect_code": _nullable(
            merged["last_disconnect_code"], diag & (merged["last_disconnect_code"] >= 0)
        ),
        "recent_events": pd.Series(merged["recent_events"], dtype=object),
    })
    index = HeartbeatIndex(merged["device"], merged["boot"], merged["lo"], merged["hi"], diag)
    return frame, index


def _device_columns(config: FleetConfig, run: DeviceRun) -> dict[str, np.ndarray]:
    columns = {name: _concat(arrays) for name, arrays in run.heartbeats.items()}
    boot = columns["boot"]
    versions = np.asarray([b.version for b in run.boots], dtype=object)
    diag_by_boot = np.asarray([b.has_diagnostics for b in run.boots], dtype=bool)
    resets = np.asarray([b.reset_reason for b in run.boots], dtype=np.int64)

    diag = diag_by_boot[boot] if len(boot) else np.zeros(0, dtype=bool)
    lo = np.full(len(boot), -1, dtype=np.int64)
    hi = np.full(len(boot), -1, dtype=np.int64)
    texts = np.full(len(boot), None, dtype=object)
    if diag.any():
        lo[diag], hi[diag] = snapshot_bounds(run.log, columns["time"][diag],
                                             config.ring_buffer_size)
        texts[diag] = render_snapshots(run.log.to_arrays(), lo[diag], hi[diag])

    columns.update(
        device=np.full(len(boot), run.profile.index, dtype=np.int64),
        version=versions[boot] if len(boot) else np.zeros(0, dtype=object),
        reset_reason=resets[boot] if len(boot) else np.zeros(0, dtype=np.int64),
        has_diagnostics=diag, lo=lo, hi=hi, recent_events=texts,
    )
    return columns


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _nullable(values: np.ndarray, present: np.ndarray) -> pd.Series:
    return pd.Series(pd.arrays.IntegerArray(values.astype(np.int64), ~present))


def _object_ints(values: np.ndarray, present: np.ndarray) -> pd.Series:
    # Object dtype, because a malformed row may later hold text, as SQLite allows.
    column = np.asarray(values.tolist(), dtype=object)
    column[~present] = None
    return pd.Series(column, dtype=object)
