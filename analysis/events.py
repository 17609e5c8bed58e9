"""Expand the ``recent_events`` ring buffers of heartbeats into one table of events.

Each event appears once, although the ring buffer repeats it across heartbeats (see
`analysis.event_alignment`). Its time comes from ``ts`` when that is plausible: after
2020-01-01 and not after the heartbeat that carried it. Otherwise it is estimated from
uptime: events of the carrying heartbeat's current boot lie at ``received_at - uptime +
up``, and events of earlier boots in the same list are placed back from the start of the
boot that followed them.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from analysis import codes
from analysis.boots import heartbeat_boot_starts
from analysis.errors import DataQualityWarning
from analysis.event_alignment import align_lists
from analysis.event_decoding import add_decoded_columns
from analysis.event_parsing import RING_BUFFER_SIZE, parse_event_lists, runs_of_equal_text
from analysis.quality import DataQualityReport
from analysis.row_runs import value_changes

logger = logging.getLogger(__name__)

# A ts before this is a clock that NTP has not set yet.
EARLIEST_PLAUSIBLE_TS = int(pd.Timestamp("2020-01-01", tz="UTC").timestamp())
# Estimated times outside this span come from an impossible "up" and are left missing.
EARLIEST_EVENT_SECONDS = int(pd.Timestamp("1900-01-01", tz="UTC").timestamp())
LATEST_EVENT_SECONDS = int(pd.Timestamp("2200-01-01", tz="UTC").timestamp())
# Seconds of jitter allowed between an event's up and its heartbeat's uptime.
UPTIME_SLACK_S = 2

TIME_FROM_TS = "ts"
TIME_ESTIMATED_UNSYNCED = "estimated_unsynced"
TIME_ESTIMATED_INVALID = "estimated_invalid"

EVENT_COLUMNS = (
    "device_id", "sequence", "tag", "tag_name", "d0", "d1", "ts", "up", "event_time",
    "time_source", "detail", "reason_name", "disconnect_family", "rssi_dbm", "rssi_valid",
    "http_status", "errno", "first_heartbeat_id", "heartbeat_count", "boot_offset",
)


def expand_events(
    heartbeats: pd.DataFrame, *, quality: DataQualityReport | None = None
) -> pd.DataFrame:
    """Return one row per distinct device event found in the heartbeats' ring buffers.

    Parameters
    ----------
    heartbeats : DataFrame
        From `load_heartbeats`: sorted by device and time, with ``heartbeat_id``,
        ``device_id``, ``received_at``, ``uptime_s`` and ``recent_events``.
    quality : DataQualityReport, optional
        Receives malformed lists, bad elements, unsynced and invalid event times, and
        heartbeat pairs where events may have been lost to a buffer overflow. Without one,
        a `DataQualityWarning` summarises them.

    Returns
    -------
    DataFrame
        Columns `EVENT_COLUMNS`, in device order and then in the order the firmware logged
        them. ``sequence`` numbers a device's events from 0. ``heartbeat_count`` is how many
        consecutive heartbeats carried the event. ``boot_offset`` is 0 for an event of the
        boot that sent ``first_heartbeat_id``, and n for one of the n-th boot before it.

    Examples
    --------
    >>> from analysis import load_heartbeats
    >>> from analysis.sample import ensure_sample_database
    >>> events = expand_events(load_heartbeats(ensure_sample_database(), devices=["dc-0001"]))
    >>> bool(events.groupby("device_id")["sequence"].is_monotonic_increasing.all())
    True
    """
    report = quality if quality is not None else DataQualityReport()
    heartbeats = heartbeats.reset_index(drop=True)
    device_changes = value_changes(heartbeats["device_id"])
    starts_boot = heartbeat_boot_starts(heartbeats, device_changes=device_changes)
    texts = heartbeats["recent_events"].to_numpy(dtype=object)
    run_of_row = runs_of_equal_text(texts)
    representatives, weight = _representative_rows(run_of_row, device_changes, starts_boot)
    parsed = parse_event_lists(texts, heartbeats["heartbeat_id"].to_numpy(), report,
                               keep_rows=representatives, run_of_row=run_of_row)
    full = heartbeats
    heartbeats = heartbeats.iloc[representatives].reset_index(drop=True)

    device_codes, _ = pd.factorize(heartbeats["device_id"])
    max_overlap = _overlap_limits(starts_boot[representatives], parsed.row, parsed.values)
    alignment = align_lists(parsed.row, parsed.values, device_codes, parsed.has_list,
                            max_overlap, parsed.has_bad_element, parsed.keys)
    _report_possible_loss(heartbeats, parsed.lengths, alignment, report)
    _report_uptime_drops_without_boot(full, representatives, parsed, report,
                                      device_changes=device_changes)

    event_seconds, boot_offset = _estimate_times(heartbeats, parsed.row, parsed.values)
    events = _new_events_frame(heartbeats, parsed, alignment, event_seconds, boot_offset,
                               weight)
    events = _assign_times(events, heartbeats, parsed.row[alignment.is_new], report)
    events = add_decoded_columns(events, report)
    logger.info("expanded %d distinct events from %d heartbeats", len(events), len(full))

    if quality is None and report:
        warnings.warn(f"data-quality problems in recent_events: {report!r}",
                      DataQualityWarning, stacklevel=2)
    return events[list(EVENT_COLUMNS)]


def _representative_rows(
    run_of_row: np.ndarray, device_changes: np.ndarray, starts_boot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows that can show a new event, and how many heartbeats each stands for.

    A heartbeat of the same device and boot that repeats the text before it carries the
    same list, so it adds no event and only adds to ``heartbeat_count``. Leaving such rows
    out before the lists are expanded saves most of the work on a quiet fleet.
    `run_of_row` comes from `runs_of_equal_text`, which also puts consecutive heartbeats
    without a list into one run.
    """
    if len(run_of_row) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    new_text = np.r_[True, run_of_row[1:] != run_of_row[:-1]]
    representatives = np.flatnonzero(new_text | device_changes | starts_boot)
    weight = np.diff(np.r_[representatives, len(run_of_row)])
    return representatives, weight


def _overlap_limits(starts_boot: np.ndarray, row: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per heartbeat, how many leading events may repeat the previous list.

    When uptime shows that a heartbeat starts a new boot, its boot's EVT_BOOT (the last one
    in its list) and everything after it were logged since the previous heartbeat.
    """
    n_rows = len(starts_boot)
    limits = np.full(n_rows, np.iinfo(np.int64).max, dtype=np.int64)
    if n_rows == 0:
        return limits

    offsets = np.searchsorted(row, np.arange(n_rows), side="left")
    position = np.arange(len(row)) - offsets[row]
    last_boot = np.full(n_rows, -1, dtype=np.int64)
    is_boot = values[:, 0] == codes.EVT_BOOT
    np.maximum.at(last_boot, row[is_boot], position[is_boot])
    limits[starts_boot] = np.maximum(last_boot[starts_boot], 0)
    return limits


def _estimate_times(
    heartbeats: pd.DataFrame, row: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate every parsed event's time, in unix seconds, from uptime and ``up``."""
    if len(row) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    up = values[:, 4].astype(np.float64)
    is_boot = values[:, 0] == codes.EVT_BOOT

    # boot_offset: how many EVT_BOOT follow the event in its own list.
    boots_through = np.cumsum(is_boot)
    row_start = np.searchsorted(row, row, side="left")
    row_end = np.searchsorted(row, row, side="right") - 1
    boots_before_row = boots_through[row_start] - is_boot[row_start]
    boot_offset = (boots_through[row_end] - boots_before_row) - (
        boots_through - boots_before_row
    )

    # Each boot's span in a list is one contiguous run of equal (row, boot_offset).
    run_start = np.flatnonzero(np.r_[True, (row[1:] != row[:-1]) | (boot_offset[1:] !=
                                                                   boot_offset[:-1])])
    run_of = np.repeat(np.arange(len(run_start)), np.diff(np.r_[run_start, len(row)]))
    run_max_up = np.maximum.reduceat(up, run_start)

    # The current boot started at received_at - uptime; each earlier boot is taken to end
    # where the next one starts, so its start is that minus its largest "up".
    received = heartbeats["received_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    uptime = heartbeats["uptime_s"].to_numpy(dtype="float64", na_value=np.nan)
    run_row = row[run_start]
    run_offset = boot_offset[run_start]
    current_start = received[run_row] - uptime[run_row]
    missing_uptime = np.isnan(current_start)
    current_start[missing_uptime] = received[run_row][missing_uptime] - run_max_up[missing_uptime]

    shift = np.where(run_offset > 0, run_max_up, 0.0)
    # Runs of a row are ordered oldest boot first, so a reverse cumulative sum within the row
    # adds up the spans of every boot from this one to the current one.
    reverse_cum = np.cumsum(shift[::-1])[::-1]
    row_last_run = np.searchsorted(run_row, run_row, side="right") - 1
    span_to_current = reverse_cum - reverse_cum[row_last_run] + shift[row_last_run]
    run_boot_start = current_start - span_to_current
    return run_boot_start[run_of] + up, boot_offset


def _new_events_frame(heartbeats, parsed, alignment, event_seconds, boot_offset,
                      weight) -> pd.DataFrame:
    new = alignment.is_new
    rows = parsed.row[new]
    values = parsed.values[new]
    new_index = np.cumsum(new) - 1
    # Repeats inside a list with a hole have no first appearance to point at.
    counted = new[alignment.root]
    # Each representative row stands for itself and the identical heartbeats after it.
    counts = np.bincount(new_index[alignment.root[counted]],
                         weights=weight[parsed.row[counted]], minlength=int(new.sum()))
    counts = np.rint(counts).astype(np.int64)

    events = pd.DataFrame({
        "device_id": heartbeats["device_id"].to_numpy(dtype=object)[rows],
        "tag": pd.array(values[:, 0], dtype="Int64"),
        "d0": pd.array(values[:, 1], dtype="Int64"),
        "d1": pd.array(values[:, 2], dtype="Int64"),
        "ts": pd.array(values[:, 3], dtype="Int64"),
        "up": pd.array(values[:, 4], dtype="Int64"),
        "estimated_seconds": event_seconds[new] if len(event_seconds) else [],
        "first_heartbeat_id": pd.array(heartbeats["heartbeat_id"].to_numpy()[rows],
                                       dtype="Int64"),
        "heartbeat_count": counts.astype(np.int64),
        "boot_offset": boot_offset[new].astype(np.int64) if len(boot_offset) else [],
    })
    events["sequence"] = events.groupby("device_id", sort=False).cumcount().astype(np.int64)
    return events


def _assign_times(
    events: pd.DataFrame, heartbeats: pd.DataFrame, rows: np.ndarray, report: DataQualityReport
) -> pd.DataFrame:
    received = heartbeats["received_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    carried_at = received[rows] / 1e9 if len(rows) else np.zeros(0)
    ts = events["ts"].to_numpy(dtype="float64", na_value=np.nan)

    unsynced = ts < EARLIEST_PLAUSIBLE_TS
    invalid = ~unsynced & (ts > carried_at)
    seconds = np.where(unsynced | invalid, events["estimated_seconds"].to_numpy(), ts)
    # An impossible "up" can push an estimate outside what datetime64[ns] holds.
    out_of_range = ~((seconds >= EARLIEST_EVENT_SECONDS) & (seconds < LATEST_EVENT_SECONDS))
    seconds = np.where(out_of_range, np.nan, seconds)

    events["event_time"] = pd.to_datetime(np.round(seconds * 1000), unit="ms", utc=True)
    events["event_time"] = events["event_time"].dt.as_unit("ns")
    source = np.full(len(events), TIME_FROM_TS, dtype=object)
    source[unsynced] = TIME_ESTIMATED_UNSYNCED
    source[invalid] = TIME_ESTIMATED_INVALID
    events["time_source"] = source

    report.add("event_time_unsynced", events.loc[unsynced, "first_heartbeat_id"])
    report.add("event_time_invalid", events.loc[invalid, "first_heartbeat_id"])
    report.add("event_time_out_of_range", events.loc[out_of_range, "first_heartbeat_id"])
    return events.drop(columns="estimated_seconds")


def _report_uptime_drops_without_boot(
    heartbeats: pd.DataFrame, representatives: np.ndarray, parsed, report: DataQualityReport,
    *, device_changes: np.ndarray,
) -> None:
    """Count heartbeats whose uptime fell although their own ring buffer shows no new boot.

    A reboot logs EVT_BOOT first, and the buffer survives it, so the list sent after a reboot
    ends with that boot: an EVT_BOOT followed by events whose ``up`` fits the new uptime.
    A list without EVT_BOOT, or whose current boot already ran longer than the uptime, shows
    one continuing boot, so the stored uptime is wrong (hand-edited, or two boards sending
    one device id). The boot table still starts a boot at such a drop.

    `parsed` contains the lists of the `representatives` rows of `heartbeats`. Every
    uptime drop starts a boot, so its row is among them. `device_changes` is True where a
    row's device differs from the previous row's.
    """
    uptime = heartbeats["uptime_s"].to_numpy(dtype="float64", na_value=np.nan)
    is_representative = np.zeros(len(heartbeats), dtype=bool)
    is_representative[representatives] = True
    kept_index = np.cumsum(is_representative) - 1
    has_list = parsed.has_list[kept_index] if len(representatives) else np.zeros(0, dtype=bool)
    dropped = ~device_changes & (uptime < np.r_[np.nan, uptime[:-1]])
    checked = dropped & has_list & np.r_[False, has_list[:-1]]
    if not checked.any():
        return

    tag, up = parsed.values[:, 0], parsed.values[:, 4]
    boots_through = np.cumsum(tag == codes.EVT_BOOT)
    row_end = np.searchsorted(parsed.row, parsed.row, side="right") - 1
    in_current_boot = (boots_through[row_end] - boots_through) == 0
    has_boot = np.zeros(len(representatives), dtype=bool)
    has_boot[parsed.row[tag == codes.EVT_BOOT]] = True
    current_up = np.full(len(representatives), -np.inf)
    np.maximum.at(current_up, parsed.row[in_current_boot],
                  up[in_current_boot].astype(np.float64))

    rows = np.flatnonzero(checked)
    sub = kept_index[rows]
    ran_longer = current_up[sub] > uptime[rows] + UPTIME_SLACK_S
    suspect = rows[~has_boot[sub] | ran_longer]
    report.add("uptime_backwards_without_boot", heartbeats["heartbeat_id"].to_numpy()[suspect])


def _report_possible_loss(heartbeats, lengths, alignment, report: DataQualityReport) -> None:
    # With no overlap and a full buffer, events logged between the two heartbeats may have
    # been pushed out before either was sent, and they cannot be recovered.
    previous = alignment.previous
    has_previous = previous >= 0
    prev_len = np.where(has_previous, lengths[np.maximum(previous, 0)], 0)
    possible = has_previous & (prev_len > 0) & (alignment.overlap == 0) & (
        lengths >= RING_BUFFER_SIZE
    )
    report.add("events_possibly_lost", heartbeats["heartbeat_id"].to_numpy()[possible])
