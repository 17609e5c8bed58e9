"""Ground-truth tables: every boot and event the firmware produced, and what reached the server.

Observability refers to the ``per_heartbeat`` table shape. An event is observable when a
stored heartbeat with a readable ``recent_events`` contains it, and a boot when it sent a
stored heartbeat or its EVT_BOOT is observable. A boot's cause is observable when the evidence
the cause rule needs (the EVT_REBOOT, the reset reason, or the two firmware versions)
reached the server.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.codes import CAUSE_CLASSES
from analysis.sample.assemble import HeartbeatIndex
from analysis.sample.device import DeviceRun
from analysis.sample.malformed import UNREADABLE_KINDS
from analysis.sample.ringbuffer import first_covering

EVENT_TRUTH_COLUMNS = (
    "device_id", "tag", "d0", "d1", "ts", "up", "true_time", "boot_number", "observable",
    "first_heartbeat_id",
)
BOOT_TRUTH_COLUMNS = (
    "device_id", "boot_number", "boot_time", "end_time", "firmware_version", "reset_reason",
    "reboot_reason", "cause", "cause_class", "is_reboot", "observable", "cause_observable",
    "heartbeats", "kind",
)


def event_first_heartbeats(
    runs: list[DeviceRun], ids: np.ndarray, index: HeartbeatIndex, malformed: pd.DataFrame
) -> list[np.ndarray]:
    """Return, per device, the id of the first readable heartbeat holding each event (0: none)."""
    kinds = dict(zip(malformed["heartbeat_id"], malformed["kind"], strict=True))
    unreadable = np.isin(ids, [i for i, kind in kinds.items() if kind in UNREADABLE_KINDS])
    missing_key = np.isin(ids, [i for i, kind in kinds.items() if kind == "event_missing_keys"])
    readable = index.has_diagnostics & ~unreadable & ~missing_key

    result = []
    for run, rows in zip(runs, index.rows_by_device(len(runs)), strict=True):
        clean = rows[readable[rows]]
        first = first_covering(index.lo[clean], index.hi[clean], len(run.log))
        first_ids = np.zeros(len(run.log), dtype=np.int64)
        found = first >= 0
        first_ids[found] = ids[clean][first[found]]
        # A heartbeat whose newest element lost keys still shows the older elements.
        for row in rows[missing_key[rows]]:
            for position in range(index.lo[row], index.hi[row] - 1):
                if first_ids[position] == 0 or ids[row] < first_ids[position]:
                    first_ids[position] = ids[row]
        result.append(first_ids)
    return result


def truth_events(runs: list[DeviceRun], first_ids: list[np.ndarray]) -> pd.DataFrame:
    """Return one row per event any firmware logged, with whether the server could see it."""
    logs = [run.log.to_arrays() for run in runs]
    columns = {
        name: np.concatenate([log[name] for log in logs]).astype(np.int64)
        for name in ("tag", "d0", "d1", "ts", "up", "time", "boot")
    }
    device_ids = np.repeat(
        np.asarray([run.profile.device_id for run in runs], dtype=object),
        [len(run.log) for run in runs],
    )
    first = np.concatenate(first_ids).astype(np.int64) if first_ids else np.zeros(0, np.int64)
    frame = pd.DataFrame({
        "device_id": pd.Series(device_ids, dtype="str"),
        "tag": columns["tag"], "d0": columns["d0"], "d1": columns["d1"],
        "ts": columns["ts"], "up": columns["up"],
        "true_time": pd.to_datetime(columns["time"], unit="s", utc=True),
        "boot_number": columns["boot"],
        "observable": first > 0,
        "first_heartbeat_id": pd.arrays.IntegerArray(first, first == 0),
    })
    return frame.loc[:, list(EVENT_TRUTH_COLUMNS)]


def truth_boots(
    runs: list[DeviceRun], first_ids: list[np.ndarray], heartbeat_counts: list[np.ndarray]
) -> pd.DataFrame:
    """Return one row per boot with its true cause and whether the analysis can see it."""
    rows = []
    for run, ids, counts in zip(runs, first_ids, heartbeat_counts, strict=True):
        rows.extend(_device_boot_rows(run, ids > 0, counts))
    frame = pd.DataFrame(rows, columns=list(BOOT_TRUTH_COLUMNS))
    for column in ("boot_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="s", utc=True)
    for column in ("reset_reason", "reboot_reason"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    frame["cause_class"] = frame["cause"].map(CAUSE_CLASSES)
    for column in ("device_id", "firmware_version", "cause", "cause_class", "kind"):
        frame[column] = frame[column].astype("str")
    return frame


def _device_boot_rows(run: DeviceRun, observable_events: np.ndarray, counts: np.ndarray) -> list:
    rows = []
    last_reporting_version = None
    for boot in run.boots:
        seen_event = boot.boot_event >= 0 and bool(observable_events[boot.boot_event])
        has_heartbeat = counts[boot.index] > 0
        observable = bool(has_heartbeat or seen_event)
        previous = run.boots[boot.index - 1] if boot.index else None
        cause = _cause(boot, previous)

        shows_version_change = bool(has_heartbeat) and last_reporting_version not in (
            None, boot.version
        )
        shows_reboot_event = (
            boot.reboot_reason is not None and observable
            and bool(observable_events[previous.reboot_event])
        )
        if previous is None:
            cause_observable = observable
        elif cause == "ota_update":
            # Either the EVT_REBOOT 3 or the version change is enough for the cause rule.
            cause_observable = shows_version_change or shows_reboot_event
        elif boot.reboot_reason is not None:
            cause_observable = shows_reboot_event
        else:
            cause_observable = observable
        if has_heartbeat:
            last_reporting_version = boot.version

        rows.append((
            run.profile.device_id, boot.index, boot.boot_time, boot.end_time, boot.version,
            boot.reset_reason if boot.has_diagnostics else None, boot.reboot_reason, cause,
            None, previous is not None, observable, cause_observable, int(counts[boot.index]),
            boot.kind,
        ))
    return rows


def _cause(boot, previous) -> str:
    if boot.has_diagnostics:
        return boot.cause
    # Without diagnostics only a version change shows why the device restarted.
    if previous is not None and previous.version != boot.version:
        return "ota_update"
    return "no_diagnostics"


def truth_devices(runs: list[DeviceRun]) -> pd.DataFrame:
    """Return the scenario labels of each device, one row per device."""
    rows = []
    for run in runs:
        profile = run.profile
        rows.append({
            "device_id": profile.device_id,
            "is_leaking": profile.is_leaking,
            "leak_bytes_per_hour": profile.leak_bytes_per_hour,
            "leak_start_uptime_s": profile.leak_start_uptime_s,
            "has_camera_loop": profile.has_camera_loop,
            "has_brownout_loop": profile.has_brownout_loop,
            "has_radio_cycling": profile.has_radio_cycling,
            "is_weak_signal": profile.is_weak_signal,
            "rssi_dbm": profile.rssi_dbm,
            "heap_base": profile.heap_base,
            "first_version": run.boots[0].version,
            "last_version": run.boots[-1].version,
            "boots": len(run.boots),
        })
    frame = pd.DataFrame(rows)
    frame["device_id"] = frame["device_id"].astype("str")
    return frame
