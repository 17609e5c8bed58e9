"""The device timeline: uptime, heap, RSSI and events of one device on a shared time axis.

Four panels share the time axis (UTC):

1. uptime, whose sawtooth drops at every reboot (boots seen only as EVT_BOOT events are
   drawn dashed from their event data);
2. ``heap_free`` and ``heap_min_free``, each line broken at every boot;
3. RSSI at each EVT_WIFI_UP (sentinel values left out);
4. event lanes: boots coloured by cause class, EVT_REBOOT with the firmware reason,
   Wi-Fi down with the reason, HTTP failures and missed heartbeats.

Heartbeat gaps are shaded on every panel, orange where uptime shows the device kept
running and grey where it was off or rebooting. Each marker artist carries a ``gid``
(``boot``, ``reboot_reason``, ``wifi_down``, ``http_fail``, ``heartbeat_miss``, ``gap``)
and the labelled ones a ``label`` (cause or reason), so tests and callers can find them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis import codes
from analysis.boots import CLOCK_SLACK_S, heartbeat_boot_numbers
from analysis.device import boot_loop_episodes
from analysis.selection import as_span, as_utc

if TYPE_CHECKING:
    from analysis.device import DeviceView

logger = logging.getLogger(__name__)

DEFAULT_ZOOM_SPAN = "10min"
ZOOM_MARGIN = pd.Timedelta(seconds=30)
# Above this many labelled markers in view, the text labels would overlap: the legend
# and the marker labels carry the causes and reasons instead.
MAX_TEXT_LABELS = 40
# A gap is an interval longer than this many median heartbeat intervals.
GAP_INTERVALS = 3
MIN_GAP = pd.Timedelta(minutes=1)
# Lines with fewer points than this also get a dot per point, so a zoomed view that
# contains one heartbeat still shows it.
FEW_POINTS = 50
# In one lane, a text label is left out when it would start closer to the previous one
# than this share of the view's width. The marker keeps its label for the legend.
MIN_LABEL_SPACING = 0.02

CLASS_COLORS = {
    "crash": "tab:red", "recovery": "tab:orange", "power": "tab:purple",
    "power_on": "tab:brown", "planned": "tab:green", "no_diagnostics": "tab:gray",
}
FAMILY_COLORS = {
    "ap_not_found": "tab:red", "signal_loss": "tab:orange", "auth_failure": "tab:purple",
    "association_failure": "tab:pink", "ap_side": "tab:brown", "own_disconnect": "tab:green",
    "roaming": "tab:cyan", "silent_death": "black", "other": "tab:gray", "unknown": "tab:gray",
}
GAP_COLORS = {"alive": ("tab:orange", 0.15), "off": ("0.5", 0.2)}
LANES = ("heartbeat_miss", "http_fail", "wifi_down", "reboot_reason", "boot")
LANE_NAMES = {
    "boot": "boot (cause)", "reboot_reason": "EVT_REBOOT", "wifi_down": "Wi-Fi down",
    "http_fail": "HTTP failure", "heartbeat_miss": "heartbeat missed",
}
UPTIME_UNITS = ((120, "s", 1), (2 * 3600, "min", 60), (3 * 86400, "h", 3600), (None, "d", 86400))


def plot_timeline(
    view: DeviceView,
    *,
    start: object = None,
    end: object = None,
    around: object = None,
    span: str | pd.Timedelta = DEFAULT_ZOOM_SPAN,
    max_labels: int = MAX_TEXT_LABELS,
    figsize: tuple[float, float] = (12.0, 9.0),
) -> Figure:
    """Draw one device's timeline over a window.

    Parameters
    ----------
    view : DeviceView
        From `Fleet.device`.
    start, end : str, datetime or Timestamp, optional
        The window (UTC when no zone); defaults to the fleet's window, else the span of
        the device's data.
    around : str, datetime or Timestamp, optional
        Zoom: a window of length `span` centred on this time; overrides `start` and `end`.
        Use it for a boot loop of a few seconds.
    span : str or Timedelta
        Length of the zoom window, such as ``"2min"``.
    max_labels : int
        Text labels are drawn beside boot, EVT_REBOOT and Wi-Fi-down markers only while at
        most this many are in view.
    figsize : (float, float)
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot, so it is freed when no longer referenced.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> view = load_fleet(ensure_sample_database()).device("dc-0001")
    >>> figure = plot_timeline(view, start="2026-05-03", end="2026-05-04")
    >>> len(figure.axes)
    4
    """
    low, high = _window(view, start, end, around, span)
    figure = Figure(figsize=figsize, layout="constrained")
    axes = figure.subplots(4, 1, sharex=True, height_ratios=[2.0, 2.0, 1.2, 1.8])
    uptime_ax, heap_ax, rssi_ax, event_ax = axes

    heartbeats = _with_boot_numbers(view.heartbeats)
    in_view = _in_view(heartbeats, "received_at", low, high)
    boots = _in_view(view.boots, "boot_time", low, high)
    events = _in_view(view.events, "event_time", low, high)

    _draw_uptime(uptime_ax, in_view, _event_only_boots(view.boots, low, high))
    _draw_heap(heap_ax, in_view)
    _draw_rssi(rssi_ax, events)
    labelled = _draw_events(event_ax, boots, events, max_labels, low, high)
    _shade_gaps(axes, heartbeats, low, high)

    event_ax.set_xlim(_naive(low), _naive(high))
    locator = mdates.AutoDateLocator()
    event_ax.xaxis.set_major_locator(locator)
    event_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    event_ax.set_xlabel("time (UTC)")
    figure.suptitle(f"Device {view.device_id}: {_minute(low)} to {_minute(high)} UTC"
                    + ("" if labelled else " (causes and reasons in the legend)"))
    return figure


def zoom_window(start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return a window around [`start`, `end`] with room on both sides, for a boot loop.

    The margin is a quarter of the span, and at least `ZOOM_MARGIN` before and twice
    that after, so the boot after the loop and its first heartbeat are in view.

    Examples
    --------
    >>> low, high = zoom_window(pd.Timestamp("2026-05-06 08:17:43Z"),
    ...                         pd.Timestamp("2026-05-06 08:18:00Z"))
    >>> f"{low:%H:%M:%S} to {high:%H:%M:%S}"
    '08:17:13 to 08:19:00'
    """
    margin = max((end - start) / 4, ZOOM_MARGIN)
    return start - margin, end + 2 * margin


def _window(view, start, end, around, span) -> tuple[pd.Timestamp, pd.Timestamp]:
    if around is not None:
        centre = as_utc(around, "around")
        half = as_span(span) / 2
        return centre - half, centre + half

    # Boot times are left out, because a device's first boot may lie days before its first
    # heartbeat in the window.
    times = view.heartbeats["received_at"].dropna()
    if times.empty:
        times = view.events["event_time"].dropna()
    low = as_utc(start, "start") or view.start or (times.min() if len(times) else None)
    high = as_utc(end, "end") or view.end or (times.max() if len(times) else None)
    if low is None or high is None:
        now = pd.Timestamp.now(tz="UTC").floor("min")
        low, high = low or high or now, high or low or now
    if high <= low:
        high = low + pd.Timedelta(minutes=1)
    return low, high


def _with_boot_numbers(heartbeats: pd.DataFrame) -> pd.DataFrame:
    frame = heartbeats.reset_index(drop=True)
    frame = frame.assign(boot_number=heartbeat_boot_numbers(frame) if len(frame) else [])
    uptime = pd.to_timedelta(frame["uptime_s"].astype("float64"), unit="s")
    return frame.assign(boot_start=frame["received_at"] - uptime)


def _in_view(frame: pd.DataFrame, column: str, low, high) -> pd.DataFrame:
    return frame[(frame[column] >= low) & (frame[column] <= high)]


def _event_only_boots(boots: pd.DataFrame, low, high) -> pd.DataFrame:
    """Return the boots seen only as events, with ``ran_s``: seconds until the next boot."""
    ordered = boots.sort_values("boot_time")
    next_boot = ordered["boot_time"].shift(-1)
    until_next = (next_boot - ordered["boot_time"]).dt.total_seconds()
    ran = until_next.where(until_next.notna(), ordered["duration_s"]).fillna(0.0)
    ordered = ordered.assign(ran_s=ran)
    only_events = ordered[ordered["heartbeats"] == 0]
    return _in_view(only_events, "boot_time", low, high)


def _draw_uptime(ax, in_view: pd.DataFrame, event_boots: pd.DataFrame) -> None:
    largest = max(in_view["uptime_s"].max() if len(in_view) else 0,
                  event_boots["ran_s"].max() if len(event_boots) else 0)
    unit, scale = _uptime_unit(0 if pd.isna(largest) else float(largest))

    valid = in_view[in_view["uptime_s"].notna()]
    if len(valid):
        # Each boot is drawn from its start (uptime 0) through its heartbeats, and a NaN
        # row after each boot breaks the line, which gives the sawtooth.
        x_parts, y_parts = [], []
        for _, boot in valid.groupby("boot_number", sort=True):
            x_parts += [boot["boot_start"].iloc[:1], boot["received_at"], boot["received_at"]
                        .iloc[-1:]]
            uptimes = boot["uptime_s"].astype("float64").to_numpy() / scale
            y_parts += [np.zeros(1), uptimes, np.full(1, np.nan)]
        x = pd.concat(x_parts, ignore_index=True)
        ax.plot(_naive(x), np.concatenate(y_parts), color="tab:blue", linewidth=1.0,
                marker="." if len(valid) < FEW_POINTS else None, gid="uptime",
                label="uptime (heartbeats)")
    # A boot seen only as an EVT_BOOT event ran until the next boot at most. Its ramp is
    # dashed because no heartbeat reported its uptime.
    for boot in event_boots.itertuples(index=False):
        seconds = float(boot.ran_s)
        ends = boot.boot_time + pd.Timedelta(seconds=seconds)
        ax.plot([_naive(boot.boot_time), _naive(ends)], [0.0, seconds / scale],
                color="tab:blue", linestyle="--", linewidth=1.0, gid="uptime_from_events")
    if not len(valid) and event_boots.empty:
        _note(ax, "no uptime in this window")
    ax.set_ylabel(f"uptime ({unit})")
    ax.set_title("Uptime: each drop is a reboot", loc="left", fontsize=9)


def _draw_heap(ax, in_view: pd.DataFrame) -> None:
    has_heap = in_view["heap_free"].notna() | in_view["heap_min_free"].notna()
    if not has_heap.any():
        _note(ax, "no heap figures (firmware without diagnostics)")
    for column, style in (("heap_free", "-"), ("heap_min_free", ":")):
        x, y = _broken_at_boots(in_view, column)
        ax.plot(_naive(x), y / 1024.0, linestyle=style, linewidth=1.0, gid=column,
                marker="." if len(in_view) < FEW_POINTS else None, label=column)
    ax.set_ylabel("heap (KiB)")
    ax.set_title("Heap: heap_free and its low-water mark heap_min_free", loc="left",
                 fontsize=9)
    if has_heap.any():
        ax.legend(loc="upper left", fontsize=8)


def _draw_rssi(ax, events: pd.DataFrame) -> None:
    up = events[(events["tag"] == codes.EVT_WIFI_UP) & events["rssi_valid"]]
    if up.empty:
        _note(ax, "no EVT_WIFI_UP with an RSSI in this window")
    ax.scatter(_naive(up["event_time"]), up["rssi_dbm"].astype("float64"), s=12,
               color="tab:blue", gid="rssi", label="RSSI at EVT_WIFI_UP")
    ax.set_ylabel("RSSI (dBm)")
    ax.set_title("RSSI at each Wi-Fi connection", loc="left", fontsize=9)


def _draw_events(ax, boots: pd.DataFrame, events: pd.DataFrame, max_labels: int,
                 low, high) -> bool:
    lane = {name: index for index, name in enumerate(LANES)}
    reboots = events[events["tag"] == codes.EVT_REBOOT]
    downs = events[events["tag"] == codes.EVT_WIFI_DOWN]
    with_text = len(boots) + len(reboots) + len(downs) <= max_labels
    spacing = (high - low) * MIN_LABEL_SPACING if with_text else None

    _markers(ax, boots["boot_time"], lane["boot"], "^",
             [CLASS_COLORS.get(name, "tab:gray") for name in boots["cause_class"]],
             "boot", boots["cause"].astype(str), spacing)
    _markers(ax, reboots["event_time"], lane["reboot_reason"], "v",
             ["black"] * len(reboots), "reboot_reason", reboots["reason_name"].astype(str),
             spacing)
    _markers(ax, downs["event_time"], lane["wifi_down"], "x",
             [FAMILY_COLORS.get(name, "tab:gray") for name in downs["disconnect_family"]],
             "wifi_down", downs["reason_name"].astype(str).str.removeprefix("WIFI_REASON_"),
             spacing)
    for tag, name, marker in ((codes.EVT_HTTP_FAIL, "http_fail", "s"),
                              (codes.EVT_HEARTBEAT_MISS, "heartbeat_miss", "|")):
        times = events.loc[events["tag"] == tag, "event_time"]
        ax.scatter(_naive(times), np.full(len(times), lane[name]), marker=marker, s=18,
                   color="0.3", gid=name, label=LANE_NAMES[name])

    _mark_boot_loops(ax, boots, lane["boot"])
    ax.set_yticks(range(len(LANES)), [LANE_NAMES[name] for name in LANES])
    # Head room above the top lane for the boot labels.
    ax.set_ylim(-0.7, len(LANES) + 0.3)
    ax.set_title("Events", loc="left", fontsize=9)
    _event_legend(ax, boots, downs)
    return with_text


def _markers(ax, times: pd.Series, y: int, marker: str, colors: list[str], gid: str,
             labels: pd.Series, spacing: pd.Timedelta | None) -> None:
    """Draw one marker artist per event, so each carries its own gid and label."""
    last_text = None
    for time, color, label in zip(times, colors, labels, strict=True):
        x = _naive(time)
        ax.plot([x], [y], marker=marker, color=color, linestyle="none", markersize=8,
                gid=gid, label=label)
        if spacing is None or (last_text is not None and time - last_text < spacing):
            continue
        ax.annotate(label, (mdates.date2num(x), y), xytext=(3, 5), textcoords="offset points",
                    fontsize=7, rotation=20, gid=f"{gid}_text", clip_on=True)
        last_text = time


def _mark_boot_loops(ax, boots: pd.DataFrame, y: int) -> None:
    for loop in boot_loop_episodes(boots).itertuples(index=False):
        length = (loop.end - loop.start).total_seconds()
        text = f"boot loop: {loop.boots} boots in {_duration(length)}"
        ax.annotate(text, (mdates.date2num(_naive(loop.start)), y), xytext=(0, -16),
                    textcoords="offset points", fontsize=7, color="tab:red", gid="boot_loop",
                    bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "none"})


def _event_legend(ax, boots: pd.DataFrame, downs: pd.DataFrame) -> None:
    handles = [
        Line2D([], [], marker="^", linestyle="none", color=CLASS_COLORS.get(name, "tab:gray"),
               label=f"boot: {name}")
        for name in codes.CAUSE_CLASS_ORDER if name in set(boots["cause_class"])
    ]
    handles += [
        Line2D([], [], marker="x", linestyle="none", color=FAMILY_COLORS.get(name, "tab:gray"),
               label=f"Wi-Fi down: {name}")
        for name in codes.DISCONNECT_FAMILIES if name in set(downs["disconnect_family"])
    ]
    handles += [Patch(color=color, alpha=alpha, label=f"gap: {_gap_text(kind)}")
                for kind, (color, alpha) in GAP_COLORS.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              frameon=False)


def _shade_gaps(axes, heartbeats: pd.DataFrame, low, high) -> None:
    for gap_start, gap_end, kind in heartbeat_gaps(heartbeats).itertuples(index=False):
        if gap_end < low or gap_start > high:
            continue
        color, alpha = GAP_COLORS[kind]
        for ax in axes:
            ax.axvspan(_naive(gap_start), _naive(gap_end), color=color, alpha=alpha,
                       linewidth=0, gid="gap")


def heartbeat_gaps(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Return the gaps between a device's consecutive heartbeats.

    A gap is an interval longer than `GAP_INTERVALS` median intervals (and than
    `MIN_GAP`). Its ``kind`` is ``alive`` when the heartbeat after it shows an uptime that
    covers the gap (the device ran but could not report) and ``off`` otherwise.

    Parameters
    ----------
    heartbeats : DataFrame
        One device's heartbeats, sorted by time.

    Returns
    -------
    DataFrame
        ``start``, ``end`` and ``kind``, one row per gap.
    """
    times = heartbeats["received_at"].reset_index(drop=True)
    elapsed = times.diff()
    if len(times) < 2:
        return pd.DataFrame({"start": times.iloc[:0], "end": times.iloc[:0], "kind": []})
    threshold = max(elapsed.median() * GAP_INTERVALS, MIN_GAP)
    is_gap = elapsed > threshold
    uptime = heartbeats["uptime_s"].reset_index(drop=True).astype("float64")
    covered = uptime + CLOCK_SLACK_S >= elapsed.dt.total_seconds()
    return pd.DataFrame({
        "start": times.shift()[is_gap].to_numpy(),
        "end": times[is_gap].to_numpy(),
        "kind": np.where(covered[is_gap].fillna(False), "alive", "off"),
    })


def _broken_at_boots(in_view: pd.DataFrame, column: str) -> tuple[pd.Series, np.ndarray]:
    values = in_view[column].astype("float64").to_numpy()
    times = in_view["received_at"].reset_index(drop=True)
    starts = np.flatnonzero(np.diff(in_view["boot_number"].to_numpy()) != 0) + 1
    # A NaN value at each boot start breaks the line, because heap_min_free restarts there.
    y = np.insert(values, starts, np.nan)
    # The break point sits at the previous heartbeat's time, so x stays in time order.
    x = pd.concat([times, times.iloc[starts - 1]]).sort_index(kind="stable")
    return x.reset_index(drop=True), y


def _uptime_unit(largest_s: float) -> tuple[str, int]:
    for limit, unit, scale in UPTIME_UNITS:
        if limit is None or largest_s < limit:
            return unit, scale
    return "d", 86400


def _naive(times: pd.Series | pd.Timestamp):
    """Return UTC times without a zone, as matplotlib's date converter expects."""
    if isinstance(times, pd.Timestamp):
        return times.tz_convert("UTC").tz_localize(None).to_datetime64()
    series = pd.to_datetime(pd.Series(times).reset_index(drop=True), utc=True)
    return series.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=9, color="0.4")


def _gap_text(kind: str) -> str:
    return "device kept running" if kind == "alive" else "device off or rebooting"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _minute(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M")
