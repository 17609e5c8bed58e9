"""Within-device comparison of a release: each upgraded device against itself.

A device that moved from the baseline to the candidate in the window is observed for the
same number of whole UTC days before and after its upgrade. The upgrade day itself is left
out, because it mixes both versions and the update's own reboot. Devices that stayed on
the baseline, observed over the same dates, show what changed without the upgrade (server
outages, weather, a new AP), and the ratio of the two changes is the difference in
differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import rate_tests
from analysis.disconnects import collect_disconnects, counted
from analysis.release_measures import RATE, core_metrics, measure_versions, reports_diagnostics

DAY = pd.Timedelta(days=1)
WITHIN_DEVICE_METRICS = ("unexpected_reboots", "uptime_resets", "boot_loops",
                         "heartbeat_misses")
WINDOW_COLUMNS = ("device_id", "upgraded_at", "days", "before_start", "before_end",
                  "after_start", "after_end")


@dataclass(frozen=True)
class WithinDeviceComparison:
    """Upgraded devices before and after their upgrade, beside devices that stayed.

    Attributes
    ----------
    windows : DataFrame
        One row per upgraded device, columns `WINDOW_COLUMNS`; ``days`` is the length of
        each of its two windows.
    metrics : DataFrame
        Rows as in `analysis.release.compare_samples` ("baseline" is before the upgrade,
        "candidate" after it) plus ``control_before``, ``control_after`` (rates of the
        devices that stayed), ``control_change`` with its interval, and ``did`` with its
        interval (upgraded change ÷ control change).
    control_devices : int
        Devices that stayed on the baseline and were observed on those dates.
    """

    windows: pd.DataFrame
    metrics: pd.DataFrame
    control_devices: int = 0


def upgrade_windows(heartbeats: pd.DataFrame, baseline: str, candidate: str) -> pd.DataFrame:
    """Return the before and after windows of each device that moved to `candidate`.

    A device counts as upgraded when it sent a baseline heartbeat before its first
    candidate heartbeat. Its window length is the smaller of two numbers of whole days:
    those seen on the baseline before the upgrade day, and those seen on the candidate
    after it. Devices with less than one day on either side are left out.

    Returns
    -------
    DataFrame
        Columns `WINDOW_COLUMNS`, windows as ``[start, end)`` in UTC.
    """
    times = heartbeats.groupby(["device_id", "firmware_version"])["received_at"].agg(
        ["min", "max"])
    on_baseline = times.xs(baseline, level="firmware_version") if _has(times, baseline) else None
    on_candidate = times.xs(candidate, level="firmware_version") if _has(
        times, candidate) else None
    if on_baseline is None or on_candidate is None:
        return pd.DataFrame(columns=list(WINDOW_COLUMNS))

    both = on_baseline.add_suffix("_baseline").join(on_candidate.add_suffix("_candidate"),
                                                    how="inner")
    both = both[both["min_baseline"] < both["min_candidate"]]
    upgrade_day = both["min_candidate"].dt.floor("D")
    days_before = (upgrade_day - both["min_baseline"].dt.floor("D")) // DAY
    days_after = (both["max_candidate"].dt.floor("D") - upgrade_day) // DAY
    days = np.minimum(days_before, days_after)

    windows = pd.DataFrame({
        "device_id": both.index.astype(object),
        "upgraded_at": both["min_candidate"],
        "days": days.astype(np.int64),
        "before_start": upgrade_day - days * DAY,
        "before_end": upgrade_day,
        "after_start": upgrade_day + DAY,
        "after_end": upgrade_day + (days + 1) * DAY,
    }).reset_index(drop=True)
    return windows[windows["days"] >= 1].reset_index(drop=True)


def compare_within_devices(
    fleet: object,
    baseline: str,
    candidate: str,
    *,
    disconnects: pd.DataFrame | None = None,
    has_diagnostics: bool | None = None,
    interval_s: float = 300,
    gap_factor: float = 3,
    alpha: float = 0.05,
) -> WithinDeviceComparison:
    """Compare upgraded devices with themselves, and with devices that stayed.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`.
    baseline, candidate : str
        The two versions.
    disconnects : DataFrame, optional
        Counted rows of `analysis.disconnects.collect_disconnects` for the fleet; computed
        when omitted.
    has_diagnostics : bool, optional
        Whether both versions report diagnostics; found from the heartbeats when omitted.
    interval_s, gap_factor, alpha
        As for `analysis.release.compare_release`.

    Returns
    -------
    WithinDeviceComparison
    """
    from analysis.release import compare_samples

    if disconnects is None:
        disconnects = counted(collect_disconnects(fleet.heartbeats, fleet.events))
    if has_diagnostics is None:
        has_diagnostics = all(reports_diagnostics(fleet.heartbeats, version)
                              for version in (baseline, candidate))
    windows = upgrade_windows(fleet.heartbeats, baseline, candidate)
    options = {"interval_s": interval_s, "gap_factor": gap_factor}
    metrics = [m for m in core_metrics(interval_s=interval_s) if m.key in WITHIN_DEVICE_METRICS]
    tables = (fleet.heartbeats, fleet.boots, disconnects)

    before = _measure(tables, windows, "before", baseline, options)
    after = _measure(tables, windows, "after", candidate, options)
    table = compare_samples(metrics, before, after, has_diagnostics=has_diagnostics,
                            alpha=alpha)

    control_windows = _control_windows(fleet.heartbeats, windows, candidate)
    control_before = _measure(tables, control_windows, "before", baseline, options)
    control_after = _measure(tables, control_windows, "after", baseline, options)
    table = _add_controls(table, metrics, (before, after, control_before, control_after))
    return WithinDeviceComparison(windows, table, int(control_windows["device_id"].nunique()))


def _measure(tables, windows, side, version, options) -> dict:
    heartbeats = _clip(tables[0], "received_at", windows, side)
    boots = _clip(tables[1], "boot_time", windows, side)
    disconnects = _clip(tables[2], "time", windows, side)
    return measure_versions(heartbeats, boots, disconnects, [version], **options)[version]


def _clip(frame: pd.DataFrame, time: str, windows: pd.DataFrame, side: str) -> pd.DataFrame:
    """Keep the rows of `frame` inside a `side` window ("before" or "after") of their device.

    Each window becomes its own device id (``device|start``), so that exposure is never
    counted across the days between two windows of one device.
    """
    start, end = f"{side}_start", f"{side}_end"
    bounds = windows.loc[windows[start].notna(), ["device_id", start, end]]
    if bounds.empty:
        return frame.iloc[0:0]
    merged = frame.merge(bounds, on="device_id", how="inner")
    merged = merged[(merged[time] >= merged[start]) & (merged[time] < merged[end])]
    labels = merged["device_id"].astype(str) + "|" + merged[start].dt.strftime("%Y-%m-%d")
    merged = merged.assign(device_id=labels.astype(object)).drop(columns=[start, end])
    return merged.sort_values(["device_id", time], kind="stable").reset_index(drop=True)


def _control_windows(
    heartbeats: pd.DataFrame, windows: pd.DataFrame, candidate: str
) -> pd.DataFrame:
    """Give each device that never ran `candidate` the dates of the upgraded devices.

    The before dates are the union of the upgraded devices' before windows, and the after
    dates the union of their after windows. Days that fall in both unions are dropped, and
    each control device gets one window per remaining day.
    """
    if windows.empty:
        return pd.DataFrame(columns=list(WINDOW_COLUMNS))
    upgraded = set(heartbeats.loc[heartbeats["firmware_version"] == candidate, "device_id"])
    controls = sorted(set(heartbeats["device_id"]) - upgraded)
    before_days = _days(windows["before_start"], windows["before_end"])
    after_days = _days(windows["after_start"], windows["after_end"])
    shared = before_days & after_days

    rows = []
    for days, side in ((before_days - shared, "before"), (after_days - shared, "after")):
        for day in sorted(days):
            rows += [{"device_id": device, "side": side, "start": day, "end": day + DAY}
                     for device in controls]
    return _day_rows_to_windows(pd.DataFrame(rows, columns=["device_id", "side", "start",
                                                            "end"]))


def _day_rows_to_windows(rows: pd.DataFrame) -> pd.DataFrame:
    # One window row per control device and day, so that `_clip` keeps exactly those days.
    frame = pd.DataFrame({"device_id": rows["device_id"]})
    for side in ("before", "after"):
        is_side = rows["side"] == side
        frame[f"{side}_start"] = pd.to_datetime(rows["start"].where(is_side), utc=True)
        frame[f"{side}_end"] = pd.to_datetime(rows["end"].where(is_side), utc=True)
    return frame


def _days(starts: pd.Series, ends: pd.Series) -> set[pd.Timestamp]:
    days: set[pd.Timestamp] = set()
    for start, end in zip(starts, ends, strict=True):
        days.update(pd.date_range(start, end - DAY, freq="D"))
    return days


def _add_controls(table: pd.DataFrame, metrics, samples) -> pd.DataFrame:
    before, after, control_before, control_after = samples
    extra = []
    for metric in metrics:
        key = metric.key
        row = {"control_before": _rate(metric, control_before[key]),
               "control_after": _rate(metric, control_after[key])}
        counts = (after[key].count, before[key].count, control_after[key].count,
                  control_before[key].count)
        exposures = (after[key].exposure, before[key].exposure, control_after[key].exposure,
                     control_before[key].exposure)
        row.update(_control_change(metric, control_after[key], control_before[key]))
        row.update(_difference_in_differences(metric, counts, exposures))
        extra.append(row)
    return pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)


def _rate(metric, sample) -> float:
    return sample.count / sample.exposure * metric.per if sample.exposure > 0 else np.nan


def _control_change(metric, after, before) -> dict[str, float]:
    if metric.kind != RATE or min(after.exposure, before.exposure) <= 0:
        return {"control_change": np.nan, "control_low": np.nan, "control_high": np.nan}
    result = rate_tests.compare_poisson_rates(after.count, after.exposure, before.count,
                                              before.exposure)
    return {"control_change": result.estimate, "control_low": result.low,
            "control_high": result.high}


def _difference_in_differences(metric, counts, exposures) -> dict[str, float]:
    if metric.kind != RATE or min(exposures) <= 0:
        return {"did": np.nan, "did_low": np.nan, "did_high": np.nan, "did_p_value": np.nan}
    result = rate_tests.compare_rate_ratios(counts, exposures)
    return {"did": result.estimate, "did_low": result.low, "did_high": result.high,
            "did_p_value": result.p_value}


def _has(times: pd.DataFrame, version: str) -> bool:
    return version in times.index.get_level_values("firmware_version")
