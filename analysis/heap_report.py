"""The heap report: every heap table of a fleet, its headline figures and summary in words.

`analyse_heap` builds the tables from `analysis.heap` and `analysis.heap_trend`. The
``heap_trends`` notebook shows them with the plots of `analysis.heap_plots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.errors import InvalidInputError
from analysis.fleet import Fleet
from analysis.heap import (
    CRASH_CAUSES,
    HEAP_FLOOR_BYTES,
    LOW_WATER_BYTES,
    MIN_LEAK_BYTES_PER_HOUR,
    boot_endings,
    daily_heap_quantiles,
    find_leaks,
    heap_by_firmware,
    last_min_free_by_ending,
    leaking_devices,
    low_water_alerts,
    low_water_crash_p_value,
    low_water_outcomes,
)
from analysis.heap_trend import TrendSettings, fit_heap_trends


@dataclass(frozen=True, kw_only=True)
class HeapSettings:
    """Thresholds of the heap report.

    Attributes
    ----------
    trend : TrendSettings
        Minimums and limits of the per-boot trend fit.
    min_leak_bytes_per_hour : float
        A boot leaks when its current trend falls significantly and faster than this.
    floor_bytes : float
        Heap level the projected time to exhaustion counts down to.
    low_water_bytes : float
        A ``heap_min_free`` under this raises a low-water alert.
    crash_causes : tuple of str
        Reboot causes counted as crashes after a low-water alert.
    """

    trend: TrendSettings = field(default_factory=TrendSettings)
    min_leak_bytes_per_hour: float = MIN_LEAK_BYTES_PER_HOUR
    floor_bytes: float = HEAP_FLOOR_BYTES
    low_water_bytes: float = LOW_WATER_BYTES
    crash_causes: tuple[str, ...] = CRASH_CAUSES

    def __post_init__(self) -> None:
        for name in ("min_leak_bytes_per_hour", "floor_bytes", "low_water_bytes"):
            if not getattr(self, name) >= 0:
                raise InvalidInputError(
                    f"{name}={getattr(self, name)} is invalid; pass a number of bytes, 0 or more"
                )


@dataclass(frozen=True)
class HeapReport:
    """Every table of the heap report; see `analyse_heap` for the columns."""

    by_firmware: pd.DataFrame
    daily: pd.DataFrame
    trends: pd.DataFrame
    segments: pd.DataFrame
    leaking_devices: pd.DataFrame
    endings: pd.DataFrame
    alerts: pd.DataFrame
    outcomes: pd.DataFrame
    by_ending: pd.DataFrame
    settings: HeapSettings
    is_history_suspect: bool = False


def analyse_heap(fleet: Fleet, settings: HeapSettings | None = None) -> HeapReport:
    """Build every table of the heap report from a fleet.

    Parameters
    ----------
    fleet : analysis.fleet.Fleet
        From `load_fleet`.
    settings : HeapSettings, optional
        Thresholds; the defaults when omitted.

    Returns
    -------
    HeapReport
        ``by_firmware`` from `heap_by_firmware` and ``daily`` from
        `daily_heap_quantiles`. ``trends`` is `find_leaks` on the ``heap_free`` trends,
        with ``ended_by`` added, and ``segments`` has one row per trend segment.
        ``leaking_devices`` comes from `leaking_devices` and ``endings`` from
        `boot_endings`. ``alerts`` is `low_water_alerts` with ``ended_by`` added,
        ``outcomes`` comes from `low_water_outcomes` and ``by_ending`` from
        `last_min_free_by_ending`. ``is_history_suspect`` is True when the data-quality
        report found diagnostics overwritten with later values, or one row per device.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> report = analyse_heap(load_fleet(ensure_sample_database(), devices=["dc-0001"]))
    >>> list(report.outcomes.index)
    [True, False]
    """
    settings = settings or HeapSettings()
    heartbeats, boots = fleet.heartbeats, fleet.boots
    trends = fit_heap_trends(heartbeats, settings=settings.trend)
    leaks = find_leaks(trends.boots, min_leak_bytes_per_hour=settings.min_leak_bytes_per_hour,
                       floor_bytes=settings.floor_bytes)
    endings = boot_endings(boots, settings.crash_causes)
    alerts = low_water_alerts(heartbeats, low_water_bytes=settings.low_water_bytes)
    return HeapReport(
        by_firmware=heap_by_firmware(heartbeats, boots),
        daily=daily_heap_quantiles(heartbeats),
        trends=_with_ending(leaks, endings),
        segments=trends.segments,
        leaking_devices=leaking_devices(leaks, floor_bytes=settings.floor_bytes),
        endings=endings,
        alerts=_with_ending(alerts, endings),
        outcomes=low_water_outcomes(endings, low_water_bytes=settings.low_water_bytes),
        by_ending=last_min_free_by_ending(endings),
        settings=settings,
        is_history_suspect=bool(fleet.quality.count("history_overwritten")
                                or fleet.quality.count("history_one_row_per_device")),
    )


def _with_ending(table: pd.DataFrame, endings: pd.DataFrame) -> pd.DataFrame:
    """Add ``ended_by`` to a per-boot table, matched on the boot's first heartbeat."""
    known = endings.dropna(subset=["first_heartbeat_id"])
    ended_by = pd.Series(known["ended_by"].to_numpy(),
                         index=known["first_heartbeat_id"].astype("int64").to_numpy())
    ids = table["first_heartbeat_id"].astype("int64").to_numpy()
    return table.assign(ended_by=ended_by.reindex(ids).to_numpy())


def leaking_boots(report: HeapReport) -> pd.DataFrame:
    """Return the leaking boots for display, fastest first, slopes and heap rounded.

    Returns
    -------
    DataFrame
        ``device_id, boot_time, firmware_version, points, span_h, segments,
        breakpoint_h, trend_slope, trend_slope_low, trend_slope_high,
        leak_bytes_per_hour, hours_to_floor, ended_by``; slopes in bytes per hour.
    """
    columns = ["device_id", "boot_time", "firmware_version", "points", "span_h", "segments",
               "breakpoint_h", "trend_slope", "trend_slope_low", "trend_slope_high",
               "leak_bytes_per_hour", "hours_to_floor", "ended_by"]
    boots = report.trends[report.trends["is_leak"]]
    boots = boots.sort_values("leak_bytes_per_hour", ascending=False)[columns]
    return boots.round({"span_h": 1, "breakpoint_h": 1, "trend_slope": 0,
                        "trend_slope_low": 0, "trend_slope_high": 0,
                        "leak_bytes_per_hour": 0, "hours_to_floor": 1})


def headline_figures(report: HeapReport) -> dict:
    """Return the heap report's headline figures, for ``summary.json`` and the summary text.

    Returns
    -------
    dict
        ``devices_with_heap``, ``boots_fitted``, ``leaking_boots``, ``leaking_devices``,
        ``leaking_device_ids``, ``fastest_leak_bytes_per_hour``,
        ``shortest_hours_to_floor``, ``floor_bytes``, ``low_water_bytes``,
        ``low_water_boots``, ``crash_causes``, ``crash_share_below_low_water_pct``,
        ``crash_share_above_low_water_pct``, ``low_water_crash_p_value``,
        ``median_last_heap_min_free_before_crash`` and ``is_history_suspect``;
        missing figures are None.
    """
    trends, devices, outcomes = report.trends, report.leaking_devices, report.outcomes
    settings = report.settings
    crashed = report.endings.loc[report.endings["ended_in_crash"], "last_heap_min_free"]
    return {
        "devices_with_heap": int(trends["device_id"].nunique()),
        "boots_fitted": int(trends["status"].eq("fitted").sum()),
        "leaking_boots": int(trends["is_leak"].sum()),
        "leaking_devices": int(len(devices)),
        "leaking_device_ids": [str(device) for device in devices["device_id"]],
        "fastest_leak_bytes_per_hour": _round_or_none(devices["max_leak_bytes_per_hour"].max()),
        "shortest_hours_to_floor": _round_or_none(devices["hours_to_floor"].min(), 1),
        "floor_bytes": settings.floor_bytes,
        "low_water_bytes": settings.low_water_bytes,
        "low_water_boots": int(len(report.alerts)),
        "crash_causes": list(settings.crash_causes),
        "crash_share_below_low_water_pct": _round_or_none(
            outcomes.loc[True, "crash_share_pct"], 1),
        "crash_share_above_low_water_pct": _round_or_none(
            outcomes.loc[False, "crash_share_pct"], 1),
        "low_water_crash_p_value": _significant_or_none(low_water_crash_p_value(outcomes)),
        "median_last_heap_min_free_before_crash": _round_or_none(
            crashed.astype("float64").median()),
        "is_history_suspect": report.is_history_suspect,
    }


def _round_or_none(value: object, digits: int = 0) -> float | int | None:
    if value is None or pd.isna(value):
        return None
    return int(round(float(value))) if digits == 0 else round(float(value), digits)


def _significant_or_none(value: float, digits: int = 3) -> float | None:
    # A p-value rounded to fixed decimals would turn 1e-9 into 0.
    return None if pd.isna(value) else float(f"{value:.{digits}g}")


def rounded(frame: pd.DataFrame, digits: int = 0) -> pd.DataFrame:
    """Return `frame` with its float columns rounded to `digits`, for display.

    Time columns are left as they are, which ``DataFrame.round`` would warn about.
    """
    floats = frame.select_dtypes(include="floating").columns
    return frame.round(dict.fromkeys(floats, digits))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def describe_headline(figures: dict, window: str, *, listed: int = 10) -> str:
    """Return the headline figures as a short Markdown summary.

    Parameters
    ----------
    figures : dict
        From `headline_figures`.
    window : str
        The window in words, such as ``notebook.describe_window(start, end)`` returns.
    listed : int
        At most this many leaking device ids are named.
    """
    if not figures["devices_with_heap"]:
        return (f"**No heap readings** in the window ({window}): no device sent "
                "diagnostics (firmware v1.1.0 or later). Widen the window or check the "
                "`--firmware` and `--device` filters.")

    lines = [f"Heap readings came from **{_count(figures['devices_with_heap'], 'device')}** "
             f"({window}). The trend of free heap against uptime was fitted for "
             f"**{_count(figures['boots_fitted'], 'boot')}**."]
    if figures["is_history_suspect"]:
        lines.append("**Warning:** the table lost diagnostic history (rows overwritten with "
                     "later values, or one row per device; see the data-quality report), so "
                     "heap histories can look flat and leaks can go unseen.")
    lines.append(_describe_leaks(figures, listed))
    lines.append(_describe_low_water(figures))
    lines.append("`heap_free` includes PSRAM on camera boards and can hide an internal RAM "
                 "that runs out. `heap_min_free`, the lowest free heap since boot, is the "
                 "sharper signal, so boots are compared by their last `heap_min_free`.")
    return "\n\n".join(lines)


def _describe_leaks(figures: dict, listed: int) -> str:
    ids = figures["leaking_device_ids"]
    if not ids:
        return "No boot shows a significant heap leak."
    named = ", ".join(ids[:listed]) + (", ..." if len(ids) > listed else "")
    text = (f"**{_count(figures['leaking_devices'], 'device')}** leaked heap in "
            f"{_count(figures['leaking_boots'], 'boot')}: {named}. The fastest leak loses "
            f"**{figures['fastest_leak_bytes_per_hour']:,} bytes per hour**.")
    if figures["shortest_hours_to_floor"] is not None:
        text += (f" At its leak rate, the most urgent device reaches "
                 f"{figures['floor_bytes']:,.0f} bytes of free heap "
                 f"**{figures['shortest_hours_to_floor']} h** after its last heartbeat.")
    return text


def _describe_low_water(figures: dict) -> str:
    level = f"{figures['low_water_bytes']:,.0f} bytes"
    if not figures["low_water_boots"]:
        return f"No boot's `heap_min_free` fell under {level}."
    below, above = (figures["crash_share_below_low_water_pct"],
                    figures["crash_share_above_low_water_pct"])
    boots = _count(figures["low_water_boots"], "boot")
    text = f"In **{boots}** `heap_min_free` fell under {level}."
    if below is not None and above is not None:
        causes = " or ".join(figures["crash_causes"])
        text += (f" Of the boots that ended with their last `heap_min_free` under that level, "
                 f"**{below} %** ended in a {causes}, against {above} % of the others.")
    return text
