"""Exposure: the hours each device was observed, and how they split by version and week.

Exposure is counted between consecutive heartbeats of a device. A gap longer than
``gap_factor`` heartbeat intervals is dropped only where uptime shows that the device was
off: a reboot happened inside it, so the time from the earlier heartbeat to the new boot's
start (``received_at - uptime``) is not counted. A long gap across which uptime kept growing
counts, because the device ran but could not report.

Figures split by ``"firmware_version"`` or by ``"week"`` (ISO week, such as ``2026-W18``,
in UTC) share the grouping helpers here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.boots import heartbeat_boot_numbers
from analysis.errors import InvalidInputError
from analysis.versions import version_key

GROUPINGS = ("firmware_version", "week")
UNKNOWN_VERSION = "unknown"

_HOUR_NS = 3600 * 10**9
_WEEK_NS = 7 * 24 * _HOUR_NS
# 1970-01-05 was a Monday, so week bins counted from it start on Monday like ISO weeks.
_WEEK_ORIGIN_NS = 4 * 24 * _HOUR_NS


def iso_week(times: pd.Series) -> pd.Series:
    """Label each time with its ISO week, such as ``2026-W18`` (UTC)."""
    times = pd.to_datetime(times, utc=True)
    calendar = times.dt.isocalendar()
    labels = calendar["year"].astype(str) + "-W" + calendar["week"].astype(str).str.zfill(2)
    return labels.astype(object).where(times.notna(), None)


def exposure_intervals(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame | None = None,
    *,
    interval_s: float = 300,
    gap_factor: float = 3,
) -> pd.DataFrame:
    """Return one row per pair of consecutive heartbeats of a device, with its counted time.

    Parameters
    ----------
    heartbeats : DataFrame
        From `analysis.load_heartbeats`.
    boots : DataFrame, optional
        From `analysis.derive_boots`. Where given, an off gap ends at the first boot inside
        it, also a boot seen only as an EVT_BOOT event, because the device ran from then on.
    interval_s : float
        The heartbeat interval of the firmware, in seconds.
    gap_factor : float
        A gap longer than this many intervals, with a reboot inside, has its off time removed.

    Returns
    -------
    DataFrame
        ``device_id, firmware_version, start, on_from, end, is_off_gap, counted_s, off_s``.
        The interval from ``start`` to ``end`` belongs to the firmware version of the
        heartbeat at ``start``. Only ``on_from`` to ``end`` counts as exposure.
    """
    _check_gap_options(interval_s, gap_factor)
    frame = heartbeats[heartbeats["received_at"].notna()]
    frame = frame.sort_values(["device_id", "received_at"], kind="stable")
    frame = frame.reset_index(drop=True)
    boot_number = heartbeat_boot_numbers(frame)

    start = _as_ns(frame["received_at"])
    end = np.roll(start, -1)
    uptime_ns = frame["uptime_s"].astype("float64").to_numpy() * 1e9
    next_boot_start = end - np.nan_to_num(np.roll(uptime_ns, -1), nan=0.0).astype(np.int64)
    has_next = frame["device_id"].eq(frame["device_id"].shift(-1)).to_numpy()
    rebooted = np.roll(boot_number, -1) != boot_number
    long_gap = (end - start) > interval_s * gap_factor * 1e9
    is_off = has_next & rebooted & long_gap

    # Columns come from Series, which keep their dtype. An array of str would make pandas
    # infer a string type again, which is slow for millions of heartbeats.
    intervals = pd.DataFrame({
        "device_id": frame["device_id"],
        "firmware_version": version_labels(frame["firmware_version"]),
        "start": start, "on_from": np.where(is_off, next_boot_start, start), "end": end,
        "is_off_gap": is_off,
    })[has_next].reset_index(drop=True)
    if boots is not None and intervals["is_off_gap"].any():
        intervals["on_from"] = _end_off_at_first_boot(intervals, boots)

    intervals["on_from"] = intervals["on_from"].clip(intervals["start"], intervals["end"])
    intervals["counted_s"] = (intervals["end"] - intervals["on_from"]) / 1e9
    intervals["off_s"] = (intervals["on_from"] - intervals["start"]) / 1e9
    for column in ("start", "on_from", "end"):
        intervals[column] = pd.to_datetime(intervals[column], unit="ns", utc=True)
    return intervals


def device_hours(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame | None = None,
    *,
    interval_s: float = 300,
    gap_factor: float = 3,
    by: str | None = None,
) -> pd.DataFrame:
    """Return the hours each device was observed, whole or split by firmware version or week.

    Parameters
    ----------
    heartbeats, boots, interval_s, gap_factor
        As for `exposure_intervals`.
    by : {None, "firmware_version", "week"}
        None gives one row per device. ``"firmware_version"`` gives one row per (device,
        version): each interval between two heartbeats belongs to the version of the
        heartbeat that starts it, so after an OTA update the new version is charged from its
        first heartbeat on. ``"week"`` gives one row per (device, ISO week), with intervals
        that cross midnight between Sunday and Monday split at it.

    Returns
    -------
    DataFrame
        ``device_id, [by], heartbeats, first_heartbeat, last_heartbeat, off_hours, hours``.
        ``hours`` is the exposure and ``off_hours`` the removed off time. A device with a single
        heartbeat has 0 hours.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001"])
    >>> bool(device_hours(fleet.heartbeats, fleet.boots)["hours"].iloc[0] > 0)
    True
    """
    check_by(by)
    keys = ["device_id"] if by is None else ["device_id", by]
    intervals = exposure_intervals(heartbeats, boots, interval_s=interval_s,
                                   gap_factor=gap_factor)
    if by == "week":
        intervals = _split_at_weeks(intervals)
    exposure = intervals.groupby(keys, sort=False)[["off_s", "counted_s"]].sum() / 3600.0
    exposure = exposure.rename(columns={"off_s": "off_hours", "counted_s": "hours"})

    seen = with_group_column(heartbeats, by).groupby(keys, sort=False)["received_at"]
    observed = pd.DataFrame({"heartbeats": seen.size(), "first_heartbeat": seen.min(),
                             "last_heartbeat": seen.max()})
    table = observed.join(exposure, how="outer").reset_index()
    table[["off_hours", "hours"]] = table[["off_hours", "hours"]].fillna(0.0)
    table["heartbeats"] = table["heartbeats"].fillna(0).astype(np.int64)
    return sort_groups(table, by, extra=["device_id"])


def observed_hour_buckets(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame,
    *,
    interval_s: float = 300,
    gap_factor: float = 3,
) -> pd.DataFrame:
    """Return the observed (device, firmware version, clock hour) buckets.

    Returns
    -------
    DataFrame
        ``device_id, firmware_version, hour, has_unexpected_reboot``, one row per bucket.
        ``hour`` is the start of the UTC clock hour.
    """
    intervals = exposure_intervals(heartbeats, boots, interval_s=interval_s,
                                   gap_factor=gap_factor)
    timed = heartbeats[heartbeats["received_at"].notna()]
    unexpected = boots[boots["is_unexpected"].astype(bool) & boots["boot_time"].notna()]
    on = intervals[intervals["counted_s"] > 0]

    parts = []
    for frame, start, end, crashed in (
        (on, on["on_from"], on["end"], False),
        (timed, timed["received_at"], timed["received_at"], False),
        (unexpected, unexpected["boot_time"], unexpected["boot_time"], True),
    ):
        touched = _hours_touched(frame["device_id"], version_labels(frame["firmware_version"]),
                                 start, end)
        parts.append(touched.assign(has_unexpected_reboot=crashed))

    buckets = pd.concat(parts, ignore_index=True)
    keys = ["device_id", "firmware_version", "hour"]
    return buckets.groupby(keys, sort=True)["has_unexpected_reboot"].any().reset_index()


def check_by(by: str | None) -> None:
    """Raise `InvalidInputError` unless `by` is None or one of `GROUPINGS`."""
    if by is not None and by not in GROUPINGS:
        raise InvalidInputError(
            f"by={by!r} is not a supported grouping. Pass None, 'firmware_version' or 'week'"
        )


def version_labels(versions: pd.Series) -> pd.Series:
    """Return the firmware versions with missing ones labelled `UNKNOWN_VERSION`."""
    return versions.astype(object).where(versions.notna(), UNKNOWN_VERSION)


def group_key(by: str | None) -> str:
    """Return the column that `with_group_column` adds for `by` (``_group`` for None)."""
    return by if by else "_group"


def with_group_column(
    frame: pd.DataFrame, by: str | None, *, time: str = "received_at"
) -> pd.DataFrame:
    """Add the grouping column: the version label, the ISO week of `time`, or one group 0."""
    if by == "firmware_version":
        return frame.assign(firmware_version=version_labels(frame["firmware_version"]))
    if by == "week":
        return frame.assign(week=iso_week(frame[time]))
    return frame.assign(_group=0)


def sort_groups(
    table: pd.DataFrame, by: str | None, *, extra: list[str] | None = None
) -> pd.DataFrame:
    """Sort `table` by the `extra` columns, then by `by`: versions as versions, weeks in order."""
    keys = list(extra or []) + ([by] if by else [])
    if not keys or table.empty:
        return table.reset_index(drop=True)
    if by == "firmware_version":
        order = table[by].map(version_key)
        rank = order.map({key: n for n, key in enumerate(sorted(set(order)))})
        table = table.assign(_rank=rank)
        keys = [("_rank" if key == by else key) for key in keys]
    table = table.sort_values(keys, kind="stable").drop(columns="_rank", errors="ignore")
    return table.reset_index(drop=True)


def _check_gap_options(interval_s: float, gap_factor: float) -> None:
    if not interval_s > 0 or not gap_factor > 0:
        raise InvalidInputError(
            f"interval_s={interval_s!r} and gap_factor={gap_factor!r} must both be positive. "
            "Pass the firmware's heartbeat interval in seconds (300 by default)"
        )


def _as_ns(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _end_off_at_first_boot(intervals: pd.DataFrame, boots: pd.DataFrame) -> np.ndarray:
    """Move the end of each off gap to the first boot inside it, where that comes earlier."""
    gaps = intervals.loc[intervals["is_off_gap"], ["device_id", "start"]]
    gaps = gaps.reset_index().sort_values("start", kind="stable")
    # merge_asof needs the same dtype on both sides, and the loader's tables may differ.
    gaps["device_id"] = gaps["device_id"].astype("str")
    known = boots[boots["boot_time"].notna()]
    starts = pd.DataFrame({"device_id": known["device_id"].astype("str").reset_index(drop=True),
                           "boot_ns": _as_ns(known["boot_time"])}).sort_values("boot_ns")
    found = pd.merge_asof(gaps, starts, left_on="start", right_on="boot_ns", by="device_id",
                          direction="forward", allow_exact_matches=False)

    on_from = intervals["on_from"].to_numpy().copy()
    earliest = found["boot_ns"].to_numpy(dtype="float64")
    rows = found["index"].to_numpy()
    has_boot = ~np.isnan(earliest)
    on_from[rows[has_boot]] = np.minimum(on_from[rows[has_boot]],
                                         earliest[has_boot].astype(np.int64))
    return on_from


def _split_at_weeks(intervals: pd.DataFrame) -> pd.DataFrame:
    """Split each interval at week starts and give each piece its ISO week label."""
    start, on_from, end = (_as_ns(intervals[c]) for c in ("start", "on_from", "end"))
    first = (start - _WEEK_ORIGIN_NS) // _WEEK_NS
    last = (np.maximum(end - 1, start) - _WEEK_ORIGIN_NS) // _WEEK_NS
    repeats = (last - first + 1).astype(np.int64)
    row = np.repeat(np.arange(len(intervals)), repeats)
    week = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(repeats) - repeats, repeats)

    piece_start = np.maximum(start[row], week * _WEEK_NS + _WEEK_ORIGIN_NS)
    piece_end = np.minimum(end[row], (week + 1) * _WEEK_NS + _WEEK_ORIGIN_NS)
    off = np.clip(np.minimum(piece_end, on_from[row]) - piece_start, 0, None)
    pieces = pd.DataFrame({
        "device_id": intervals["device_id"].iloc[row].reset_index(drop=True),
        "week": iso_week(pd.Series(pd.to_datetime(piece_start, unit="ns", utc=True))),
        "off_s": off / 1e9,
        "counted_s": (piece_end - piece_start - off) / 1e9,
    })
    return pieces


def _hours_touched(
    device: pd.Series, version: pd.Series, start: pd.Series, end: pd.Series
) -> pd.DataFrame:
    """Return one row per (device, version, clock hour) that a span from start to end touches."""
    start_ns, end_ns = _as_ns(start), _as_ns(end)
    first = start_ns // _HOUR_NS
    # A span that ends exactly on the hour does not touch the next hour.
    last = np.where(end_ns > start_ns, (end_ns - 1) // _HOUR_NS, first)
    repeats = (last - first + 1).astype(np.int64)
    row = np.repeat(np.arange(len(start_ns)), repeats)
    hour = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    return pd.DataFrame({
        "device_id": device.iloc[row].reset_index(drop=True),
        "firmware_version": version.iloc[row].reset_index(drop=True),
        "hour": pd.to_datetime(hour * _HOUR_NS, unit="ns", utc=True),
    })
