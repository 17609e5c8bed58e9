"""Figures of the heap report, drawn from the tables of `analysis.heap_report.analyse_heap`.

Every function returns None for an empty table, so the notebook can print a statement
instead. Figures are built without pyplot, so a notebook shows each once, where it is the
value of a cell. Heap values are shown in kB (1 kB = 1,000 bytes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.heap import HEAP_MEASURES
from analysis.heap_report import HeapReport

KB = 1_000.0
MEASURE_TITLES = {
    "heap_free": "heap_free (includes PSRAM)",
    "heap_min_free": "heap_min_free (low-water mark since boot)",
    "last_heap_min_free": "last heap_min_free before a reboot (one value per boot)",
}
CRASH_COLOUR = "tab:red"
OTHER_REBOOT_COLOUR = "tab:gray"


def plot_heap_by_firmware(by_firmware: pd.DataFrame) -> Figure | None:
    """Draw box plots of each heap measure per firmware version.

    Boxes span the 25th to 75th percentile, whiskers the 5th to 95th, from the table of
    `analysis.heap.heap_by_firmware`.
    """
    if by_firmware.empty:
        return None
    measures = [m for m in MEASURE_TITLES if m in set(by_firmware["measure"])]
    figure = Figure(figsize=(10, 3.2 * len(measures)), layout="constrained")
    for axes, measure in zip(figure.subplots(len(measures), 1, squeeze=False)[:, 0],
                             measures, strict=True):
        rows = by_firmware[by_firmware["measure"] == measure]
        stats = [
            {"med": row["median"] / KB, "q1": row["p25"] / KB, "q3": row["p75"] / KB,
             "whislo": row["p5"] / KB, "whishi": row["p95"] / KB, "fliers": [],
             "label": f"{row['firmware_version']}\n(n={row['values']:,})"}
            for _, row in rows.iterrows()
        ]
        axes.bxp(stats, showfliers=False)
        axes.set_title(MEASURE_TITLES[measure])
        axes.set_xlabel("firmware version")
        axes.set_ylabel("free heap (kB)")
    return figure


def plot_daily_heap(daily: pd.DataFrame) -> Figure | None:
    """Draw the daily median of each heap measure with its 25-75 and 5-95 percentile bands."""
    if daily.empty:
        return None
    figure = Figure(figsize=(10, 6), layout="constrained")
    axes_list = figure.subplots(len(HEAP_MEASURES), 1, squeeze=False)[:, 0]
    for axes, measure in zip(axes_list, HEAP_MEASURES, strict=True):
        rows = daily[daily["measure"] == measure]
        day = rows["day"].dt.tz_localize(None)
        axes.fill_between(day, rows["p5"] / KB, rows["p95"] / KB, alpha=0.2,
                          color="tab:blue", label="5th-95th percentile")
        axes.fill_between(day, rows["p25"] / KB, rows["p75"] / KB, alpha=0.4,
                          color="tab:blue", label="25th-75th percentile")
        axes.plot(day, rows["median"] / KB, color="tab:blue", marker="o", label="median")
        axes.set_title(f"{MEASURE_TITLES[measure]} per day")
        axes.set_xlabel("day (UTC)")
        axes.set_ylabel("free heap (kB)")
        axes.legend(loc="lower left", fontsize="small")
    return figure


def plot_leak_rates(report: HeapReport) -> Figure | None:
    """Draw a histogram of the fitted boots' current heap trends, leaks in red."""
    fitted = report.trends[report.trends["status"].eq("fitted")]
    min_leak_bytes_per_hour = report.settings.min_leak_bytes_per_hour
    if fitted.empty:
        return None
    slope = fitted["trend_slope"].astype("float64") / KB
    bins = np.histogram_bin_edges(slope, bins=min(40, max(10, len(slope) // 3)))
    figure = Figure(figsize=(10, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(slope[~fitted["is_leak"]], bins=bins, color="tab:blue", label="no leak")
    axes.hist(slope[fitted["is_leak"]], bins=bins, color=CRASH_COLOUR, label="leak")
    axes.axvline(-min_leak_bytes_per_hour / KB, color="black", linestyle="--",
                 label=f"minimum leak rate ({min_leak_bytes_per_hour / KB:g} kB/h)")
    axes.set_title("Heap trend per boot (current segment of the Theil-Sen fit of heap_free)")
    axes.set_xlabel("trend of heap_free (kB per hour of uptime)")
    axes.set_ylabel("boots")
    axes.legend(fontsize="small")
    return figure


def worst_devices(report: HeapReport, heartbeats: pd.DataFrame, count: int = 4) -> list[str]:
    """Return up to `count` device ids: the fastest leaks, then the lowest ``heap_min_free``."""
    chosen = [str(device) for device in report.leaking_devices["device_id"]][:count]
    low_water = heartbeats["heap_min_free"].astype("Float64")
    lowest = (heartbeats.assign(low_water=low_water)[low_water.notna()]
              .groupby("device_id")["low_water"].min().sort_values())
    chosen += [str(device) for device in lowest.index if str(device) not in chosen]
    return chosen[:count]


def plot_device_heap(
    report: HeapReport, heartbeats: pd.DataFrame, device_ids: list[str]
) -> Figure | None:
    """Draw heap_free, heap_min_free and the fitted trends over time, one panel per device.

    Reboots are vertical lines labelled with their cause, red for a crash ending.
    """
    if not device_ids:
        return None
    figure = Figure(figsize=(10, 3.2 * len(device_ids)), layout="constrained")
    axes_list = figure.subplots(len(device_ids), 1, squeeze=False)[:, 0]
    for axes, device in zip(axes_list, device_ids, strict=True):
        rows = heartbeats[heartbeats["device_id"] == device]
        time = rows["received_at"].dt.tz_localize(None)
        for measure in HEAP_MEASURES:
            axes.plot(time, rows[measure].astype("Float64").astype("float64") / KB,
                      linewidth=1, label=measure)
        _draw_trends(axes, report, device)
        _draw_reboots(axes, report, device)
        axes.set_title(f"{device}: heap over time, reboots marked with their cause")
        axes.set_xlabel("time (UTC)")
        axes.set_ylabel("free heap (kB)")
        axes.legend(loc="lower left", fontsize="small")
    return figure


def _draw_trends(axes, report: HeapReport, device: str) -> None:
    segments = report.segments[report.segments["device_id"] == device]
    boot_time = report.trends.set_index("first_heartbeat_id")["boot_time"]
    for index, segment in enumerate(segments.itertuples()):
        hours = np.array([segment.start_h, segment.end_h])
        start = boot_time[segment.first_heartbeat_id].tz_localize(None)
        times = start + pd.to_timedelta(hours, unit="h")
        axes.plot(times, (segment.intercept + segment.slope * hours) / KB, color="black",
                  linestyle="--", linewidth=1.5, label="fitted trend" if index == 0 else None)


def _draw_reboots(axes, report: HeapReport, device: str) -> None:
    boots = report.endings
    reboots = boots[(boots["device_id"] == device) & boots["is_reboot"]]
    for boot in reboots.itertuples():
        is_crash = boot.cause in report.settings.crash_causes
        colour = CRASH_COLOUR if is_crash else OTHER_REBOOT_COLOUR
        when = boot.boot_time.tz_localize(None)
        axes.axvline(when, color=colour, linewidth=1)
        axes.annotate(str(boot.cause), (when, 1.0), xycoords=("data", "axes fraction"),
                      rotation=90, va="top", ha="right", fontsize="x-small", color=colour)


def plot_low_water_outcomes(report: HeapReport) -> Figure | None:
    """Draw the share of ended boots that ended in a crash, under and over the low-water level."""
    outcomes, settings = report.outcomes, report.settings
    if outcomes["boots"].sum() == 0:
        return None
    level = f"{settings.low_water_bytes / KB:g} kB"
    labels = [f"under {level}", f"{level} or more"]
    shares = outcomes["crash_share_pct"].fillna(0).to_numpy()
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.bar(labels, shares, color=[CRASH_COLOUR, OTHER_REBOOT_COLOUR])
    axes.bar_label(bars, labels=[f"{c} of {n} boots" for c, n in
                                 zip(outcomes["crash_endings"], outcomes["boots"], strict=True)])
    axes.set_title(f"Boots that ended in a crash ({', '.join(settings.crash_causes)})")
    axes.set_ylabel("share of ended boots (%)")
    axes.set_xlabel("last heap_min_free before the reboot")
    axes.set_ylim(0, 110)
    return figure
