"""Derive one row per boot from heartbeat uptimes and EVT_BOOT events, with its cause.

A boot is seen in two ways. Heartbeats show it when uptime restarts: a heartbeat starts a
new boot when its uptime is lower than the previous one's, or lower than the time elapsed
since the previous heartbeat. EVT_BOOT events show every boot of a v1.1.0 device, also the
boots of a loop that never reached Wi-Fi. The two are joined through the heartbeat that
first carried the event, so no boot is counted twice.

Every transform here works on each device's rows alone, so the work can be partitioned by
device.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import codes
from analysis.quality import DataQualityReport
from analysis.row_runs import (
    first_valid_rows,
    last_valid_rows,
    run_max,
    value_changes,
    values_at,
)

# Seconds of jitter allowed between the server's receive time and the device's uptime.
CLOCK_SLACK_S = 2
BOOT_LOOP_WINDOW = pd.Timedelta(minutes=10)
BOOT_LOOP_MIN_BOOTS = 3

BOOT_COLUMNS = (
    "device_id", "boot_time", "firmware_version", "reset_reason", "reset_reason_name",
    "reboot_reason", "reboot_reason_name", "cause", "cause_class", "is_reboot",
    "is_unexpected", "is_boot_loop", "last_seen", "duration_s", "heartbeats",
    "first_heartbeat_id", "last_heap_min_free", "source",
)


def derive_boots(
    heartbeats: pd.DataFrame,
    events: pd.DataFrame,
    *,
    quality: DataQualityReport | None = None,
) -> pd.DataFrame:
    """Return one row per boot with its reset reason, firmware reboot reason and cause.

    Parameters
    ----------
    heartbeats : DataFrame
        From `load_heartbeats`, sorted by device and time.
    events : DataFrame
        From `expand_events` on the same heartbeats.
    quality : DataQualityReport, optional
        Receives boot events that contradict the heartbeats.

    Returns
    -------
    DataFrame
        Columns `BOOT_COLUMNS`, sorted by device and boot time. ``is_reboot`` is False for
        each device's first observed boot; ``cause`` and ``cause_class`` follow the reboot
        cause rule (firmware reboot reason first, then a firmware change, then the reset
        reason); ``source`` is "heartbeat", "event" or "heartbeat+event": what showed the boot.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> boots = load_fleet(ensure_sample_database(), devices=["dc-0001"]).boots
    >>> int(boots["is_reboot"].sum()) == len(boots) - boots["device_id"].nunique()
    True
    """
    report = quality if quality is not None else DataQualityReport()
    heartbeats = heartbeats.reset_index(drop=True)
    boot_starts = heartbeat_boot_starts(heartbeats)
    boot_of_heartbeat = np.cumsum(boot_starts) - 1
    from_heartbeats = _boots_from_heartbeats(heartbeats, np.flatnonzero(boot_starts))

    boot_events = _boot_events_with_reboot_reason(events)
    boots = _join_boot_events(from_heartbeats, boot_events, heartbeats, boot_of_heartbeat,
                              events, report)
    boots = boots.sort_values(["device_id", "boot_time"], kind="stable").reset_index(drop=True)

    boots["is_reboot"] = boots["device_id"].eq(boots["device_id"].shift())
    boots["cause"] = assign_causes(boots)
    boots["cause_class"] = codes.cause_class(boots["cause"])
    boots["is_unexpected"] = boots["is_reboot"] & boots["cause_class"].isin(
        codes.UNEXPECTED_CLASSES
    )
    boots["is_boot_loop"] = mark_boot_loops(boots)
    boots["reset_reason_name"] = codes.decode(boots["reset_reason"], codes.RESET_REASONS)
    boots["reboot_reason_name"] = codes.decode(boots["reboot_reason"], codes.REBOOT_REASONS)
    return boots[list(BOOT_COLUMNS)]


def heartbeat_boot_numbers(heartbeats: pd.DataFrame) -> np.ndarray:
    """Number the boots that heartbeats show, one integer per heartbeat (0, 1, 2, ...).

    A heartbeat starts a new boot when it is its device's first, when its uptime is lower
    than the previous heartbeat's, or when its uptime plus `CLOCK_SLACK_S` is lower than
    the time since the previous heartbeat. A missing uptime never starts a boot.
    """
    return np.cumsum(heartbeat_boot_starts(heartbeats)) - 1


def heartbeat_boot_starts(
    heartbeats: pd.DataFrame, *, device_changes: np.ndarray | None = None
) -> np.ndarray:
    """Mark the heartbeats that start a boot, by the rule of `heartbeat_boot_numbers`.

    `device_changes`, from `analysis.row_runs.value_changes` on ``device_id``, saves
    comparing the ids again. Returns a boolean array with one value per heartbeat.
    """
    if device_changes is None:
        device_changes = value_changes(heartbeats["device_id"])
    starts = device_changes.copy()
    if len(starts) < 2:
        return starts

    # Comparisons with a missing uptime or time are False, so they never start a boot.
    uptime = heartbeats["uptime_s"].astype("float64").to_numpy()
    received = heartbeats["received_at"].to_numpy(dtype="datetime64[ns]")
    elapsed = pd.TimedeltaIndex(np.diff(received)).total_seconds().to_numpy()
    starts[1:] |= uptime[1:] < uptime[:-1]
    starts[1:] |= uptime[1:] + CLOCK_SLACK_S < elapsed
    return starts


def _boots_from_heartbeats(heartbeats: pd.DataFrame, starts: np.ndarray) -> pd.DataFrame:
    """Summarise each run of heartbeats that starts at a row of `starts` as one boot.

    Each value is the one ``groupby(boot).first()``, ``last()`` or ``max()`` would give:
    first and last skip missing values.
    """
    index = pd.RangeIndex(len(starts), name="boot_number")
    received = heartbeats["received_at"]
    first_time = first_valid_rows(received, starts)
    uptime = heartbeats["uptime_s"].astype("float64").fillna(0).to_numpy()
    boot_start = values_at(received, first_time, index) - pd.to_timedelta(
        uptime[np.maximum(first_time, 0)], unit="s")

    def first(column: str) -> pd.Series:
        values = heartbeats[column]
        return values_at(values, first_valid_rows(values, starts), index)

    def last(column: str) -> pd.Series:
        values = heartbeats[column]
        return values_at(values, last_valid_rows(values, starts), index)

    boots = pd.DataFrame({
        "device_id": first("device_id"),
        "boot_time": boot_start,
        "firmware_version": first("firmware_version"),
        "reset_reason": first("reset_reason"),
        "last_seen": values_at(received, last_valid_rows(received, starts), index),
        "duration_s": run_max(heartbeats["uptime_s"].astype("float64").to_numpy(), starts),
        "heartbeats": np.diff(np.r_[starts, len(heartbeats)]).astype(np.int64),
        "first_heartbeat_id": first("heartbeat_id"),
        "last_heap_min_free": last("heap_min_free"),
    }, index=index)
    boots["reboot_reason"] = pd.array([pd.NA] * len(boots), dtype="Int64")
    boots["source"] = "heartbeat"
    return boots


def _boot_events_with_reboot_reason(events: pd.DataFrame) -> pd.DataFrame:
    """Return EVT_BOOT events, each with the reason of the last EVT_REBOOT before it.

    An EVT_REBOOT counts for a boot only when no other EVT_BOOT lies between them, that is
    when it was logged in the boot just before.
    """
    is_boot = events["tag"] == codes.EVT_BOOT
    boot_count = is_boot.astype(np.int64).groupby(events["device_id"], sort=False).cumsum()
    reboot = events[events["tag"] == codes.EVT_REBOOT]
    last_reason = (
        reboot.assign(boot_count=boot_count[reboot.index])
        .groupby(["device_id", "boot_count"], sort=False)["d0"].last()
    )

    boot_events = events[is_boot].copy()
    key = pd.MultiIndex.from_arrays([boot_events["device_id"], boot_count[is_boot] - 1])
    reason = last_reason.reindex(key).to_numpy()
    boot_events["reboot_reason"] = pd.array(reason, dtype="Int64")
    return boot_events


def _join_boot_events(
    from_heartbeats: pd.DataFrame,
    boot_events: pd.DataFrame,
    heartbeats: pd.DataFrame,
    boot_number: np.ndarray,
    events: pd.DataFrame,
    report: DataQualityReport,
) -> pd.DataFrame:
    in_current_boot = boot_events["boot_offset"] == 0
    # One look-up for all boot events: it costs a pass over every heartbeat id.
    rows = _heartbeat_rows(heartbeats["heartbeat_id"], boot_events["first_heartbeat_id"])
    attached = boot_events[in_current_boot].copy()
    attached["boot_number"] = _boot_numbers_at(boot_number, rows[in_current_boot.to_numpy()])
    repeated = attached["boot_number"].duplicated(keep="first")
    report.add("boot_event_repeated", attached.loc[repeated, "first_heartbeat_id"])
    attached = attached[~repeated].set_index("boot_number")

    boots = from_heartbeats.copy()
    matched = boots.index.isin(attached.index)
    hits = attached.reindex(boots.index[matched])
    boots.loc[matched, "reboot_reason"] = hits["reboot_reason"].to_numpy()
    boots.loc[matched, "reset_reason"] = (
        boots.loc[matched, "reset_reason"].fillna(hits["d0"]).to_numpy()
    )
    boots.loc[matched, "source"] = "heartbeat+event"

    earlier = ~in_current_boot.to_numpy()
    only_events = _event_only_boots(boot_events[earlier], events, heartbeats, rows[earlier])
    boots, only_events = _reconcile_event_boots(only_events, boots, report)
    return pd.concat([boots, only_events], ignore_index=True)


def _heartbeat_rows(heartbeat_ids: pd.Series, targets: pd.Series) -> np.ndarray:
    """Return, per id in `targets`, the first row of `heartbeat_ids` with that id, or -1.

    Only the distinct targets are hashed, far fewer than an index over every heartbeat id.
    """
    distinct = pd.Index(pd.unique(targets.dropna()))
    if len(distinct) == 0:
        return np.full(len(targets), -1, dtype=np.int64)
    rows = np.flatnonzero(heartbeat_ids.isin(distinct).to_numpy())
    slot = distinct.get_indexer(heartbeat_ids.iloc[rows])
    row_of_slot = np.full(len(distinct), -1, dtype=np.int64)
    # return_index gives each slot's first occurrence, so a repeated id maps to its first row.
    found_slots, first_match = np.unique(slot, return_index=True)
    row_of_slot[found_slots] = rows[first_match]
    target_slot = distinct.get_indexer(targets)
    return np.where(target_slot >= 0, row_of_slot[target_slot], -1)


def _boot_numbers_at(boot_number: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Return the boot number of each row, NaN where a row is -1 (an id not found)."""
    found = rows >= 0
    if found.all():
        return boot_number[rows]
    numbers = np.full(len(rows), np.nan)
    numbers[found] = boot_number[rows[found]]
    return numbers


def _event_only_boots(
    boot_events: pd.DataFrame, events: pd.DataFrame, heartbeats: pd.DataFrame,
    rows: np.ndarray,
) -> pd.DataFrame:
    """Boots seen only as EVT_BOOT events of earlier boots in a heartbeat's list.

    `rows` gives, per boot event, the heartbeat row that first carried it, or -1.
    """
    key = ["device_id", "first_heartbeat_id", "boot_offset"]
    longest_up = events.groupby(key, sort=False)["up"].max()
    duration = longest_up.reindex(pd.MultiIndex.from_frame(boot_events[key])).to_numpy()
    version = np.full(len(rows), np.nan, dtype=object)
    version[rows >= 0] = heartbeats["firmware_version"].iloc[rows[rows >= 0]].to_numpy()

    boots = pd.DataFrame({
        "device_id": boot_events["device_id"].to_numpy(),
        "boot_time": boot_events["event_time"].to_numpy(),
        "firmware_version": version,
        "reset_reason": pd.array(boot_events["d0"].to_numpy(), dtype="Int64"),
        "reboot_reason": pd.array(boot_events["reboot_reason"].to_numpy(), dtype="Int64"),
        "duration_s": pd.array(duration, dtype="Float64").astype("float64"),
        "heartbeats": np.zeros(len(boot_events), dtype=np.int64),
        "first_heartbeat_id": pd.array([pd.NA] * len(boot_events), dtype="Int64"),
        "last_heap_min_free": pd.array([pd.NA] * len(boot_events), dtype="Int64"),
        "source": "event",
    })
    boots["boot_time"] = pd.to_datetime(boots["boot_time"], utc=True)
    boots["last_seen"] = boots["boot_time"] + pd.to_timedelta(boots["duration_s"], unit="s")
    return boots


def _reconcile_event_boots(
    only_events: pd.DataFrame, boots: pd.DataFrame, report: DataQualityReport
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge event-only boots into the heartbeat boots they repeat.

    An EVT_BOOT that starts when a heartbeat boot starts is that boot's own event, seen
    late because the boot's first list was unreadable: its reasons go to the heartbeat
    boot. One that falls inside a boot the heartbeats watched continuously cannot be a boot
    (uptime kept growing), so it is a repeat that the list alignment missed. It is counted
    and dropped.
    """
    if only_events.empty or boots.empty:
        return boots, only_events
    spans = boots[["device_id", "boot_time", "last_seen", "first_heartbeat_id", "source"]]
    merged = only_events.rename_axis("event_row").reset_index().merge(
        spans.rename_axis("observed_row").reset_index(), on="device_id",
        suffixes=("", "_observed"),
    )
    slack = pd.Timedelta(seconds=CLOCK_SLACK_S)
    same_start = (merged["boot_time"] - merged["boot_time_observed"]).abs() <= slack
    inside = (merged["boot_time"] > merged["boot_time_observed"] + slack) & (
        merged["boot_time"] < merged["last_seen_observed"] - slack
    )

    late = merged[same_start & (merged["source_observed"] == "heartbeat")]
    late = late.drop_duplicates("observed_row")
    boots = boots.copy()
    target = late["observed_row"].to_numpy()
    boots.loc[target, "reboot_reason"] = late["reboot_reason"].to_numpy()
    boots.loc[target, "reset_reason"] = (
        boots.loc[target, "reset_reason"].fillna(
            pd.Series(late["reset_reason"].to_numpy(), index=target)).to_numpy()
    )
    boots.loc[target, "source"] = "heartbeat+event"

    repeated = merged.loc[inside & ~same_start, "event_row"].unique()
    report.add("boot_event_inside_boot", merged.loc[inside & ~same_start,
                                                    "first_heartbeat_id_observed"],
               count=len(repeated))
    dropped = np.union1d(repeated, late["event_row"].unique())
    return boots, only_events.drop(index=dropped)


def assign_causes(boots: pd.DataFrame) -> pd.Series:
    """Apply the reboot cause rule to boots sorted by device and time.

    The firmware reboot reason logged in the previous boot wins; otherwise a firmware
    version change with reset reason ESP_RST_SW (3) or none is an ``ota_update``; otherwise
    the reset reason decides; a boot without a reset reason is ``no_diagnostics``.
    """
    reboot_cause = boots["reboot_reason"].map(codes.CAUSE_BY_REBOOT_REASON)
    reset = boots["reset_reason"]
    reset_cause = reset.map(codes.CAUSE_BY_RESET_REASON).astype(object)
    reset_cause = reset_cause.where(reset.isna() | reset_cause.notna(), "unknown")
    reset_cause = reset_cause.where(reset.notna(), "no_diagnostics")

    same_device = boots["device_id"].eq(boots["device_id"].shift())
    version = boots["firmware_version"]
    previous_version = version.shift()
    changed = same_device & version.notna() & previous_version.notna() & (
        version != previous_version
    )
    ota_by_version = changed & (reset.isna() | (reset == 3)).fillna(True)

    cause = reset_cause.where(~ota_by_version, "ota_update")
    return reboot_cause.where(reboot_cause.notna(), cause).astype(object)


def mark_boot_loops(
    boots: pd.DataFrame,
    *,
    window: pd.Timedelta = BOOT_LOOP_WINDOW,
    min_boots: int = BOOT_LOOP_MIN_BOOTS,
) -> pd.Series:
    """Flag boots that belong to a boot loop: `min_boots` or more boots of one device
    within `window`. `boots` must be sorted by device and time."""
    if boots.empty:
        return pd.Series(False, index=boots.index)
    device_code, _ = pd.factorize(boots["device_id"])
    seconds = boots["boot_time"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // 10**9
    # Offsetting each device by far more than any time span keeps windows inside one device.
    key = seconds + device_code.astype(np.int64) * 10**11
    window_end = np.searchsorted(key, key + int(window.total_seconds()), side="right")
    starts_loop = (window_end - np.arange(len(key))) >= min_boots

    coverage = np.zeros(len(key) + 1, dtype=np.int64)
    np.add.at(coverage, np.flatnonzero(starts_loop), 1)
    np.add.at(coverage, window_end[starts_loop], -1)
    return pd.Series(np.cumsum(coverage)[:-1] > 0, index=boots.index)
