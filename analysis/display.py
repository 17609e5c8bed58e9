"""HTML summaries that Jupyter shows for a `Fleet` and a `DeviceView`.

Every value is escaped: device ids, firmware versions and quality details come from the
database, and a stored ``<script>`` must show as text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from analysis.codes import CAUSE_CLASS_ORDER

if TYPE_CHECKING:
    from analysis.device import DeviceView
    from analysis.fleet import Fleet

MAX_QUALITY_ROWS = 10
MAX_LISTED_VERSIONS = 8
# The drill-down shows the newest lines of the event log; the whole log is view.log().
DRILLDOWN_LOG_LINES = 200


def fleet_html(fleet: Fleet) -> str:
    """Return a two-column HTML table summarising `fleet`, then its data-quality counts."""
    figures = fleet.summary()
    rows = [
        ("source", figures["source"] or "(in memory)"),
        ("window", describe_window(fleet.start, fleet.end, figures["first_heartbeat"],
                                   figures["last_heartbeat"])),
        ("devices", f"{figures['devices']:,} ({figures['devices_with_diagnostics']:,} "
                    "sending diagnostics)"),
        ("firmware versions", _version_counts(fleet.heartbeats)),
        ("heartbeats", f"{figures['heartbeats']:,}"),
        ("events", f"{figures['events']:,}"),
        ("boots", f"{figures['boots']:,} ({figures['reboots']:,} reboots)"),
        ("unexpected reboots", _unexpected(fleet.boots)),
        ("devices in a boot loop", f"{figures['devices_with_boot_loops']:,}"),
    ]
    return (f"<div><strong>Fleet</strong>{_table(rows)}"
            f"{_quality_html(fleet.quality.to_frame())}</div>")


def device_html(view: DeviceView) -> str:
    """Return an HTML table summarising one device's view."""
    figures = view.summary()
    rows = [
        ("window", describe_window(view.start, view.end, figures["first_heartbeat"],
                                   figures["last_heartbeat"])),
        ("firmware versions", ", ".join(figures["firmware_versions"]) or "none reported"),
        ("heartbeats", f"{figures['heartbeats']:,}"),
        ("events", f"{figures['events']:,}"),
        ("boots", f"{figures['boots']:,} ({figures['reboots']:,} reboots)"),
        ("unexpected reboots", _unexpected(view.boots)),
        ("boots in a boot loop", f"{figures['boot_loop_boots']:,}"),
        ("lowest heap_min_free", _bytes(figures["lowest_heap_min_free"])),
    ]
    title = html.escape(f"Device {view.device_id}")
    return f"<div><strong>{title}</strong>{_table(rows)}</div>"


def show_device_drilldown(
    view: DeviceView, *, events_before: int = 8, log_lines: int = DRILLDOWN_LOG_LINES
) -> None:
    """Display one device's drill-down in a notebook.

    In order: a heading and summary, the timeline over the window, a zoomed timeline of
    each boot loop, the boots with their causes, the events before each unexpected reboot,
    and the newest `log_lines` lines of the decoded event log.
    """
    from IPython.display import HTML, display

    from analysis import notebook
    from analysis.device import BOOT_TABLE_COLUMNS
    from analysis.timeline import zoom_window

    notebook.show_summary(f"## Device {view.device_id}")
    display(HTML(device_html(view)))
    notebook.show_figure(view.timeline(), empty="")
    for loop in view.boot_loops().itertuples(index=False):
        notebook.show_summary(f"Boot loop of {loop.boots} boots from "
                              f"{loop.start:%Y-%m-%d %H:%M:%S} UTC ({loop.causes}):")
        low, high = zoom_window(loop.start, loop.end)
        notebook.show_figure(view.timeline(start=low, end=high), empty="")

    notebook.show_summary("### Boots and their causes")
    boots = view.boots[list(BOOT_TABLE_COLUMNS)]
    # A duration reads better than a count of seconds; show_table formats Timedeltas.
    boots = boots.assign(duration_s=pd.to_timedelta(boots["duration_s"], unit="s"))
    notebook.show_table(boots.rename(columns={"duration_s": "duration"}),
                        empty="No boot in the window.")
    notebook.show_summary(f"### The last {events_before} events before each unexpected reboot")
    before = view.events_before_reboots(events_before).drop(columns="device_id")
    notebook.show_table(before, empty="No unexpected reboot with logged events before it.")
    _show_log(view, log_lines)


def _show_log(view: DeviceView, log_lines: int) -> None:
    from IPython.display import HTML, display

    from analysis import notebook

    listed = min(len(view.events), log_lines)
    notebook.show_summary(f"### Event log ({listed:,} of {len(view.events):,} events; times "
                          "marked ~ are estimated from uptime)")
    text = html.escape(view.log_text(limit=log_lines))
    display(HTML(f"<pre>{text}</pre>"))


def describe_window(
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    first: pd.Timestamp | None,
    last: pd.Timestamp | None,
) -> str:
    """Return the window in words: the requested bounds, else the data's first and last time.

    Examples
    --------
    >>> describe_window(None, None, pd.Timestamp("2026-05-01 10:00", tz="UTC"),
    ...                 pd.Timestamp("2026-05-02 09:30", tz="UTC"))
    '2026-05-01 10:00 to 2026-05-02 09:30 UTC (first to last heartbeat)'
    """
    if start is None and end is None:
        if first is None:
            return "open, no heartbeats"
        return f"{_minute(first)} to {_minute(last)} UTC (first to last heartbeat)"
    left = f"{_minute(start)} UTC" if start is not None else "the first heartbeat"
    right = f"before {_minute(end)} UTC" if end is not None else "the last heartbeat"
    return f"{left} to {right}"


def _version_counts(heartbeats: pd.DataFrame) -> str:
    from analysis.versions import sort_versions

    devices = heartbeats.groupby("firmware_version")["device_id"].nunique()
    if devices.empty:
        return "none reported"
    versions = sort_versions(devices.index)
    listed = [f"{version} ({devices[version]:,} devices)"
             for version in versions[-MAX_LISTED_VERSIONS:]]
    hidden = len(versions) - len(listed)
    return ", ".join(listed) + (f", and {hidden} older" if hidden > 0 else "")


def _unexpected(boots: pd.DataFrame) -> str:
    unexpected = boots[boots["is_unexpected"]]
    if unexpected.empty:
        return "0"
    by_class = unexpected["cause_class"].value_counts()
    parts = [f"{by_class[name]:,} {name}" for name in CAUSE_CLASS_ORDER if name in by_class]
    return f"{len(unexpected):,} ({', '.join(parts)})"


def _quality_html(quality: pd.DataFrame) -> str:
    if quality.empty:
        return "<p>No data-quality problems found.</p>"
    top = quality.sort_values("count", ascending=False).head(MAX_QUALITY_ROWS)
    rows = [(check, f"{count:,}: {description}")
            for check, count, description in zip(top["check"], top["count"],
                                                 top["description"], strict=True)]
    more = len(quality) - len(top)
    note = f"<p>{more} more checks in fleet.quality.to_frame().</p>" if more > 0 else ""
    return f"<strong>Data quality</strong>{_table(rows)}{note}"


def _table(rows: Iterable[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th style=\"text-align:left\">{html.escape(str(name))}</th>"
        f"<td style=\"text-align:left\">{html.escape(str(value))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{body}</table>"


def _bytes(value: object) -> str:
    if value is None or pd.isna(value):
        return "not reported"
    return f"{int(value):,} bytes"


def _minute(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M")
