"""Heap trend of each boot: a robust line of free heap against uptime, split where it bends.

The slope comes from the Theil-Sen estimator (`scipy.stats.theilslopes`), the median of
the slopes between all pairs of heartbeats, so one outlying reading cannot swing it. Its
confidence interval is the one scipy computes after Sen (1968), from the rank statistic of
the pairwise slopes. A boot is fitted on its own heartbeats only, because the heap restarts
at every boot and a line across a reboot would average a leak with the fresh heap after it.

A leak often starts in the middle of a boot, when a feature is switched on. Each boot is
therefore also fitted as two lines meeting at a breakpoint, chosen to minimise the summed
absolute residuals, and the split is kept only when it clearly beats one line.

NOTE: the slope intervals assume independent readings. Heap readings of one boot are
autocorrelated, so the true uncertainty is wider. The minimum leak rate of the leak rule
guards against slopes that are significant but too small to matter.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import theilslopes

from analysis.boots import heartbeat_boot_numbers
from analysis.errors import InvalidInputError

logger = logging.getLogger(__name__)

SECONDS_PER_HOUR = 3600.0

TREND_COLUMNS = (
    "device_id", "first_heartbeat_id", "boot_time", "firmware_version", "points", "span_h",
    "status", "line_slope", "line_slope_low", "line_slope_high", "segments", "breakpoint_h",
    "trend_slope", "trend_slope_low", "trend_slope_high", "trend_start_h", "last_uptime_h",
    "last_heap", "fitted_last_heap",
)
SEGMENT_COLUMNS = (
    "device_id", "first_heartbeat_id", "segment", "start_h", "end_h", "points", "slope",
    "slope_low", "slope_high", "intercept",
)


@dataclass(frozen=True, kw_only=True)
class TrendSettings:
    """Minimums and limits of the per-boot heap trend fit.

    Attributes
    ----------
    min_points : int
        Heartbeats with a heap reading that a boot needs before its trend is fitted.
    min_hours : float
        Uptime between a boot's first and last reading needed before its trend is fitted.
    min_segment_points, min_segment_hours : int, float
        The same two minimums for each side of a split.
    max_split_residual_ratio : float
        A split is kept only when the two lines' summed absolute residuals are at most this
        share of the one line's.
    min_slope_change : float
        A split is kept only when the two slopes differ by at least this many bytes per hour
        and their confidence intervals do not overlap.
    confidence : float
        Confidence level of the slope intervals, between 0.5 and 1.
    max_fit_points : int
        A boot with more readings is thinned evenly over uptime to this many before a line
        is fitted, because Theil-Sen compares every pair of points.
    max_search_points, max_breakpoints : int
        The breakpoint search works on at most this many readings and tries at most this
        many breakpoints.
    """

    min_points: int = 6
    min_hours: float = 3.0
    min_segment_points: int = 3
    min_segment_hours: float = 1.5
    max_split_residual_ratio: float = 0.5
    min_slope_change: float = 1_000.0
    confidence: float = 0.95
    max_fit_points: int = 600
    max_search_points: int = 120
    max_breakpoints: int = 40

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise InvalidInputError(
                f"confidence={self.confidence} is invalid; give a level such as 0.95"
            )
        if self.min_segment_points < 2 or self.min_points < 2 * self.min_segment_points:
            raise InvalidInputError(
                f"min_points={self.min_points} and min_segment_points="
                f"{self.min_segment_points} are invalid; a segment needs 2 or more points "
                "and a boot at least two segments' worth"
            )


@dataclass(frozen=True)
class LineFit:
    """A Theil-Sen line of heap (bytes) against uptime (hours).

    Attributes
    ----------
    slope, slope_low, slope_high : float
        Slope in bytes per hour and its confidence interval.
    intercept : float
        Heap in bytes at uptime 0.
    start_h, end_h : float
        Uptime of the first and last reading fitted, in hours.
    points : int
        Readings in the span, including any thinned out before fitting.
    """

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    start_h: float
    end_h: float
    points: int

    def predict(self, hours: float | np.ndarray) -> float | np.ndarray:
        """Return the fitted heap in bytes at uptime `hours`."""
        return self.intercept + self.slope * hours


@dataclass(frozen=True)
class BootTrend:
    """The heap trend of one boot: one line, or two segments meeting at a breakpoint."""

    line: LineFit
    segments: tuple[LineFit, ...]
    breakpoint_h: float | None = None

    @property
    def current(self) -> LineFit:
        """The segment that ends the boot, which decides whether the heap runs out."""
        return self.segments[-1]


@dataclass(frozen=True)
class HeapTrends:
    """Per-boot heap trends of a fleet: one row per boot and one row per segment."""

    boots: pd.DataFrame
    segments: pd.DataFrame


def fit_line(hours: np.ndarray, heap: np.ndarray, *, confidence: float = 0.95) -> LineFit:
    """Fit a Theil-Sen line of `heap` (bytes) against `hours` of uptime.

    Examples
    --------
    >>> fit = fit_line(np.array([4.0, 5.0, 6.0, 12.0]), np.array([230e3, 212e3, 195e3, 80e3]))
    >>> round(fit.slope)
    -18375
    """
    result = theilslopes(heap, hours, alpha=confidence)
    return LineFit(
        slope=float(result.slope),
        intercept=float(result.intercept),
        slope_low=float(result.low_slope),
        slope_high=float(result.high_slope),
        start_h=float(hours[0]),
        end_h=float(hours[-1]),
        points=len(hours),
    )


def trend_status(hours: np.ndarray, settings: TrendSettings) -> str:
    """Return ``"fitted"`` if a boot's readings meet the minimums, else why they do not.

    The other values are ``"too_few_points"`` and ``"too_short"``.
    """
    if len(hours) < settings.min_points:
        return "too_few_points"
    if hours[-1] - hours[0] < settings.min_hours:
        return "too_short"
    return "fitted"


def fit_trend(
    uptime_s: np.ndarray, heap: np.ndarray, settings: TrendSettings | None = None
) -> BootTrend:
    """Fit the heap trend of one boot, split in two where the slope changes.

    Parameters
    ----------
    uptime_s : array of float
        Uptime of each reading in seconds, ascending, all of one boot.
    heap : array of float
        Heap in bytes at each reading.
    settings : TrendSettings, optional
        Minimums and limits; the defaults when omitted.

    Returns
    -------
    BootTrend

    Raises
    ------
    InvalidInputError
        If the readings do not meet `settings.min_points` and `settings.min_hours`; check
        them first with `trend_status`.
    """
    settings = settings or TrendSettings()
    hours = np.asarray(uptime_s, dtype="float64") / SECONDS_PER_HOUR
    heap = np.asarray(heap, dtype="float64")
    status = trend_status(hours, settings)
    if status != "fitted":
        raise InvalidInputError(
            f"cannot fit a heap trend to {len(hours)} readings over "
            f"{hours[-1] - hours[0] if len(hours) else 0:.1f} h ({status}); a boot needs "
            f"{settings.min_points} readings over {settings.min_hours} h"
        )

    line = _fit_thinned(hours, heap, settings)
    split = _find_split(hours, heap, settings)
    if split is None:
        return BootTrend(line, (line,))
    return BootTrend(line, split[:2], breakpoint_h=split[2])


def _thin(length: int, limit: int) -> np.ndarray:
    """Return at most `limit` indices spread evenly over ``range(length)``."""
    if length <= limit:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, limit).round().astype(np.int64))


def _find_split(
    hours: np.ndarray, heap: np.ndarray, settings: TrendSettings
) -> tuple[LineFit, LineFit, float] | None:
    """Return the two segments and the breakpoint (hours), or None when one line is better."""
    sample = _thin(len(hours), settings.max_search_points)
    search_hours, search_heap = hours[sample], heap[sample]
    candidates = _split_candidates(search_hours, settings)
    if candidates.size == 0:
        return None

    slopes = _pairwise_slopes(search_hours, search_heap)
    one_line = _absolute_residual(search_hours, search_heap, slopes)
    residuals = [
        _absolute_residual(search_hours[:k], search_heap[:k], slopes[:k, :k])
        + _absolute_residual(search_hours[k:], search_heap[k:], slopes[k:, k:])
        for k in candidates
    ]
    best = int(candidates[int(np.argmin(residuals))])
    if one_line == 0 or min(residuals) > settings.max_split_residual_ratio * one_line:
        return None

    # Readings thinned out of the search go to the side of the nearer search point.
    boundary = (search_hours[best - 1] + search_hours[best]) / 2
    before, after = hours <= boundary, hours > boundary
    first = _fit_thinned(hours[before], heap[before], settings)
    second = _fit_thinned(hours[after], heap[after], settings)
    if not _slopes_differ(first, second, settings):
        return None
    return first, second, _breakpoint(first, second, boundary)


def _split_candidates(hours: np.ndarray, settings: TrendSettings) -> np.ndarray:
    """Return split positions k (readings [:k] and [k:]) that leave both sides long enough."""
    positions = np.arange(settings.min_segment_points,
                          len(hours) - settings.min_segment_points + 1)
    before_span = hours[positions - 1] - hours[0]
    after_span = hours[-1] - hours[positions]
    # A split between two readings at the same uptime would divide one moment in two.
    distinct = hours[positions] > hours[positions - 1]
    long_enough = (before_span >= settings.min_segment_hours) & (
        after_span >= settings.min_segment_hours
    )
    positions = positions[long_enough & distinct]
    return positions[_thin(len(positions), settings.max_breakpoints)]


def _pairwise_slopes(hours: np.ndarray, heap: np.ndarray) -> np.ndarray:
    """Return the slope from reading i to each later reading j (upper triangle), else NaN.

    The breakpoint search takes Theil-Sen estimates of many sub-ranges from this one
    matrix; calling `theilslopes` for each would also compute an unused interval.
    """
    delta_hours = hours[np.newaxis, :] - hours[:, np.newaxis]
    delta_heap = heap[np.newaxis, :] - heap[:, np.newaxis]
    # Pairs at the same uptime have no slope, as in theilslopes.
    later = np.triu(delta_hours > 0, k=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(later, delta_heap / delta_hours, np.nan)


def _absolute_residual(hours: np.ndarray, heap: np.ndarray, slopes: np.ndarray) -> float:
    """Return the summed absolute residuals of the Theil-Sen line through the readings.

    The intercept is the median of heap minus slope times the median of uptime, as
    `theilslopes` computes it by default.
    """
    slope = float(np.median(slopes[~np.isnan(slopes)]))
    intercept = float(np.median(heap) - slope * np.median(hours))
    return float(np.abs(heap - (intercept + slope * hours)).sum())


def _fit_thinned(hours: np.ndarray, heap: np.ndarray, settings: TrendSettings) -> LineFit:
    thinned = _thin(len(hours), settings.max_fit_points)
    fit = fit_line(hours[thinned], heap[thinned], confidence=settings.confidence)
    return dataclasses.replace(fit, points=len(hours))


def _slopes_differ(first: LineFit, second: LineFit, settings: TrendSettings) -> bool:
    disjoint = first.slope_high < second.slope_low or second.slope_high < first.slope_low
    return disjoint and abs(first.slope - second.slope) >= settings.min_slope_change


def _breakpoint(first: LineFit, second: LineFit, boundary: float) -> float:
    """Return where the two lines cross, or the boundary when they cross outside the boot.

    The crossing is the better estimate: the split falls between two readings, and a
    reading or two at the bend can land on the wrong side of it.
    """
    crossing = (second.intercept - first.intercept) / (first.slope - second.slope)
    if first.start_h <= crossing <= second.end_h:
        return float(crossing)
    return float(boundary)


def fit_heap_trends(
    heartbeats: pd.DataFrame,
    *,
    column: str = "heap_free",
    settings: TrendSettings | None = None,
) -> HeapTrends:
    """Fit the heap trend of every boot that has heap readings.

    Parameters
    ----------
    heartbeats : DataFrame
        ``Fleet.heartbeats``, sorted by device and time.
    column : str
        The heap column to fit: ``"heap_free"`` or ``"heap_min_free"``.
    settings : TrendSettings, optional
        Minimums and limits; the defaults when omitted.

    Returns
    -------
    HeapTrends
        ``boots`` has `TREND_COLUMNS`, one row per boot with readings. ``status`` is
        ``"fitted"``, or the reason from `trend_status` why the boot was not fitted.
        Slopes are in bytes per hour, each with its confidence interval. ``line_*`` is
        one line over the boot and ``trend_*`` the segment that ends it, which is the same
        line unless ``segments`` is 2. ``breakpoint_h`` is the uptime in hours where the
        slope changes.

        ``segments`` has `SEGMENT_COLUMNS`, one row per segment of each fitted boot: its
        uptime span in hours, its slope in bytes per hour and its intercept in bytes at
        uptime 0. ``first_heartbeat_id`` joins both tables to ``Fleet.boots``.
    """
    if column not in ("heap_free", "heap_min_free"):
        raise InvalidInputError(
            f"column={column!r} is not a heap column; use 'heap_free' or 'heap_min_free'"
        )
    settings = settings or TrendSettings()
    heartbeats = heartbeats.reset_index(drop=True)
    boot_number = heartbeat_boot_numbers(heartbeats)
    first_ids = heartbeats["heartbeat_id"].groupby(boot_number).first()
    readings = _heap_readings(heartbeats, column).assign(boot_number=boot_number)
    readings = readings[readings["heap"].notna()]

    rows, segment_rows = [], []
    for number, boot in readings.groupby("boot_number", sort=True):
        row, segments = _fit_boot(boot, int(first_ids[number]), settings)
        rows.append(row)
        segment_rows.extend(segments)
    logger.info("fitted %s trends of %d boots", column,
                sum(row["status"] == "fitted" for row in rows))
    return HeapTrends(
        boots=pd.DataFrame(rows, columns=list(TREND_COLUMNS)),
        segments=pd.DataFrame(segment_rows, columns=list(SEGMENT_COLUMNS)),
    )


def _heap_readings(heartbeats: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return uptime (s) and heap (bytes) as floats, NaN where missing or negative."""
    heap = heartbeats[column].astype("Float64")
    uptime = heartbeats["uptime_s"].astype("Float64")
    # A negative heap is invalid (the data-quality report counts it), so it is not fitted.
    usable = heap.notna() & (heap >= 0) & uptime.notna()
    return pd.DataFrame({
        "device_id": heartbeats["device_id"],
        "received_at": heartbeats["received_at"],
        "firmware_version": heartbeats["firmware_version"],
        "uptime_s": uptime.where(usable).astype("float64"),
        "heap": heap.where(usable).astype("float64"),
    })


def _fit_boot(
    boot: pd.DataFrame, first_heartbeat_id: int, settings: TrendSettings
) -> tuple[dict, list[dict]]:
    boot = boot.sort_values("uptime_s", kind="stable")
    uptime_s = boot["uptime_s"].to_numpy()
    heap = boot["heap"].to_numpy()
    hours = uptime_s / SECONDS_PER_HOUR
    first = boot.iloc[0]
    row = dict.fromkeys(TREND_COLUMNS, np.nan)
    row.update({
        "device_id": first["device_id"],
        "first_heartbeat_id": first_heartbeat_id,
        "boot_time": first["received_at"] - pd.Timedelta(seconds=float(first["uptime_s"])),
        "firmware_version": first["firmware_version"],
        "points": len(boot),
        "span_h": float(hours[-1] - hours[0]),
        "status": trend_status(hours, settings),
        "segments": 0,
        "last_uptime_h": float(hours[-1]),
        "last_heap": float(heap[-1]),
    })
    if row["status"] != "fitted":
        return row, []

    trend = fit_trend(uptime_s, heap, settings)
    row.update(_trend_figures(trend, float(hours[-1])))
    segments = [
        {"device_id": row["device_id"], "first_heartbeat_id": first_heartbeat_id,
         "segment": index, "start_h": part.start_h, "end_h": part.end_h,
         "points": part.points, "slope": part.slope, "slope_low": part.slope_low,
         "slope_high": part.slope_high, "intercept": part.intercept}
        for index, part in enumerate(trend.segments, start=1)
    ]
    return row, segments


def _trend_figures(trend: BootTrend, last_hours: float) -> dict:
    current = trend.current
    return {
        "line_slope": trend.line.slope,
        "line_slope_low": trend.line.slope_low,
        "line_slope_high": trend.line.slope_high,
        "segments": len(trend.segments),
        "breakpoint_h": np.nan if trend.breakpoint_h is None else trend.breakpoint_h,
        "trend_slope": current.slope,
        "trend_slope_low": current.slope_low,
        "trend_slope_high": current.slope_high,
        "trend_start_h": current.start_h,
        "fitted_last_heap": float(current.predict(last_hours)),
    }
