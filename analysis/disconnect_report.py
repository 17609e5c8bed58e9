"""The disconnect report: every table of the ``disconnect_codes`` notebook, its headline
figures and its summary in words.

Examples
--------
>>> from analysis import load_fleet
>>> from analysis.sample import ensure_sample_database
>>> report = build_report(load_fleet(ensure_sample_database(), devices=["dc-0001"]))
>>> figures = headline_figures(report)
>>> figures["link_failures"] + figures["own_disconnects"] + figures["roaming"] == (
...     figures["disconnects"])
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from analysis import disconnect_versions, disconnects, outages, rssi
from analysis.fleet import Fleet

logger = logging.getLogger(__name__)

WORST_DEVICES_NAMED = 3


@dataclass
class DisconnectReport:
    """The tables of the disconnect report, computed once from one fleet.

    Attributes
    ----------
    heartbeats : DataFrame
        The fleet's heartbeats.
    disconnects : DataFrame
        `analysis.disconnects.collect_disconnects`.
    by_code, by_version, comparison, per_day, ranking, pattern : DataFrame
        Counts by reason code, per version and family, the version comparison, counts per
        device-day, the devices ranked by link failures, and the weekday-by-hour pattern.
    outages, outage_summary, miss_runs, miss_by_device, http : DataFrame
        Wi-Fi outages and their durations per family, heartbeat-miss runs, and HTTP
        failures by class.
    readings, rssi_devices, connections, bands : DataFrame
        RSSI readings, per-device RSSI, connections and link failures per RSSI band.
    weak_below_dbm : float
        The weak-signal threshold the report used.
    devices_with_events : frozenset of str
        Devices that logged any ring-buffer event, so their disconnects count from events.
    """

    heartbeats: pd.DataFrame
    disconnects: pd.DataFrame
    by_code: pd.DataFrame
    by_version: pd.DataFrame
    comparison: pd.DataFrame
    per_day: pd.DataFrame
    ranking: pd.DataFrame
    pattern: pd.DataFrame
    outages: pd.DataFrame
    outage_summary: pd.DataFrame
    miss_runs: pd.DataFrame
    miss_by_device: pd.DataFrame
    http: pd.DataFrame
    readings: pd.DataFrame
    rssi_devices: pd.DataFrame
    connections: pd.DataFrame
    bands: pd.DataFrame
    weak_below_dbm: float
    devices_with_events: frozenset[str]


def build_report(
    fleet: Fleet,
    *,
    weak_below_dbm: float = rssi.WEAK_SIGNAL_DBM,
    band_edges: tuple[int, ...] = rssi.BAND_EDGES_DBM,
    top_devices: int | None = 10,
) -> DisconnectReport:
    """Compute every table of the disconnect report.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`.
    weak_below_dbm : float
        A device has weak signal when its median RSSI at connection is below this.
    band_edges : tuple of int
        Upper edges of the RSSI bands, in dBm, increasing.
    top_devices : int or None
        Rows of the device ranking, or every device with a link failure when None.

    Returns
    -------
    DisconnectReport
    """
    heartbeats, events = fleet.heartbeats, fleet.events
    table = disconnects.collect_disconnects(heartbeats, events)
    per_day = disconnects.count_by_device_day(table, heartbeats)
    outage_table = outages.wifi_outages(events)
    runs = outages.heartbeat_miss_runs(events)
    readings = rssi.rssi_readings(events)
    connection_table = rssi.connections(events, edges=band_edges)

    report = DisconnectReport(
        heartbeats=heartbeats,
        disconnects=table,
        by_code=disconnects.count_by_code(table),
        by_version=disconnect_versions.count_by_version(table, heartbeats),
        comparison=disconnect_versions.compare_versions(table, heartbeats),
        per_day=per_day,
        ranking=disconnects.rank_devices(per_day, top=top_devices),
        pattern=disconnects.weekly_pattern(table),
        outages=outage_table,
        outage_summary=outages.outage_durations(outage_table),
        miss_runs=runs,
        miss_by_device=outages.miss_runs_by_device(runs),
        http=outages.http_failures(events),
        readings=readings,
        rssi_devices=rssi.rssi_by_device(readings, weak_below_dbm=weak_below_dbm),
        connections=connection_table,
        bands=rssi.link_failures_by_band(connection_table),
        weak_below_dbm=weak_below_dbm,
        devices_with_events=frozenset(events["device_id"].unique()),
    )
    logger.info("built the disconnect report: %d disconnects counted, %d outages",
                int(table["is_counted"].sum()), len(outage_table))
    return report


def headline_figures(report: DisconnectReport) -> dict[str, object]:
    """Return the report's headline figures for ``summary.json`` and the summary text.

    Returns
    -------
    dict
        Counts of counted disconnects (``disconnects``, ``link_failures``,
        ``own_disconnects``, ``roaming``, ``silent_deaths``), ``silent_death_share_pct``,
        ``link_failures_per_device_day``, the ``top_link_failure_family``,
        ``worst_devices``, ``relabelled_families`` and ``changed_families`` (as
        ``family baseline->candidate`` text), outage, heartbeat-miss, RSSI and HTTP
        figures. Rates and medians are None where there is nothing to divide.
    """
    figures = _count_figures(report)
    comparison = report.comparison
    figures["worst_devices"] = [
        str(device) for device in report.ranking["device_id"].head(WORST_DEVICES_NAMED)
    ]
    figures["relabelled_families"] = _pairs(comparison[comparison["is_relabelled"].astype(bool)])
    figures["changed_families"] = _pairs(
        comparison[comparison["change"] != disconnect_versions.NO_CHANGE])
    figures.update(_link_figures(report))
    return figures


def _count_figures(report: DisconnectReport) -> dict[str, object]:
    rows = disconnects.counted(report.disconnects)
    heartbeats = report.heartbeats
    diagnostic = set(heartbeats.loc[heartbeats["has_diagnostics"].astype(bool), "device_id"])
    with_events = set(report.devices_with_events)
    days = len(disconnects.device_days(heartbeats))

    family = rows["family"]
    is_failure = rows["is_link_failure"].astype(bool)
    failure_families = family[is_failure].value_counts()
    return {
        "devices_with_diagnostics": len(diagnostic),
        "device_days": days,
        "devices_counted_from_events": len(with_events),
        "devices_counted_from_column": len(diagnostic - with_events),
        "disconnects": len(rows),
        "link_failures": int(is_failure.sum()),
        "own_disconnects": int((family == "own_disconnect").sum()),
        "roaming": int((family == "roaming").sum()),
        "silent_deaths": int((family == "silent_death").sum()),
        "silent_death_share_pct": _rounded(disconnects.silent_death_share(report.disconnects)),
        "link_failures_per_device_day": _rounded(is_failure.sum() / days if days else None, 3),
        "top_link_failure_family": failure_families.index[0] if len(failure_families) else None,
    }


def _link_figures(report: DisconnectReport) -> dict[str, object]:
    outage_table = report.outages
    valid = report.readings.loc[report.readings["rssi_valid"].astype(bool), "rssi_dbm"]
    excluded = rssi.excluded_readings(report.readings)
    weak = rssi.weak_signal_devices(report.rssi_devices)
    http = report.http.groupby("class")["failures"].sum() if len(report.http) else pd.Series()
    return {
        "outages": len(outage_table),
        "open_outages": int(outage_table["is_open"].sum()) if len(outage_table) else 0,
        "median_outage_min": _rounded(outage_table["duration_s"].median() / 60.0
                                      if outage_table["duration_s"].notna().any() else None),
        "heartbeat_miss_runs": len(report.miss_runs),
        "max_consecutive_misses": (int(report.miss_runs["max_consecutive"].max())
                                   if len(report.miss_runs) else 0),
        "rssi_readings": int(len(valid)),
        "rssi_median_dbm": _rounded(float(valid.median()) if len(valid) else None),
        "rssi_sentinels_excluded": excluded["sentinel"],
        "rssi_impossible_excluded": excluded["impossible"],
        "weak_signal_threshold_dbm": report.weak_below_dbm,
        "weak_signal_devices": [str(d) for d in weak["device_id"]],
        "http_failures": {name: int(http.get(name, 0)) for name in outages.HTTP_CLASSES},
    }


def _pairs(comparison: pd.DataFrame) -> list[str]:
    return [f"{row.family} {row.baseline}->{row.candidate}"
            for row in comparison.itertuples(index=False)]


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


def describe_headline(report: DisconnectReport, figures: dict[str, object], window: str) -> str:
    """Return the summary in words that opens the report, as Markdown paragraphs.

    Parameters
    ----------
    report : DisconnectReport
        From `build_report`.
    figures : dict
        From `headline_figures` on the same report.
    window : str
        The window in words, such as ``analysis.notebook.describe_window`` returns.
    """
    if report.heartbeats.empty:
        return (f"**No heartbeats** in the window ({window}), so there are no disconnect "
                "figures. Widen the window (`--since`, `--until`) or check the `--firmware` and "
                "`--device` filters.")
    if not figures["devices_with_diagnostics"]:
        return (f"No heartbeat in the window ({window}) carries diagnostics, so there are no "
                "disconnect reasons to count: only firmware v1.1.0 and later reports them.")

    paragraphs = [_describe_counts(figures, window)]
    comparison = disconnect_versions.describe_comparison(report.comparison)
    if comparison:
        paragraphs.append("Between firmware versions, by disconnect family:\n\n"
                          + "\n".join(f"- {sentence}" for sentence in comparison))
    paragraphs.append(_describe_link(report, figures))
    return "\n\n".join(paragraphs)


def _describe_counts(figures: dict[str, object], window: str) -> str:
    if not figures["disconnects"]:
        return (f"**No Wi-Fi disconnects** on {figures['devices_with_diagnostics']} devices "
                f"with diagnostics over {figures['device_days']} device-days ({window}).")
    lines = [
        f"**{figures['link_failures']} link failures** on "
        f"{figures['devices_with_diagnostics']} devices with diagnostics over "
        f"{figures['device_days']} device-days ({window}): "
        f"{figures['link_failures_per_device_day']} per device-day.",
        f"Counted from EVT_WIFI_DOWN events for {figures['devices_counted_from_events']} "
        "devices that log them, and from changes of last_disconnect_code for "
        f"{figures['devices_counted_from_column']} devices without ring-buffer events.",
    ]
    if figures["own_disconnects"] or figures["roaming"]:
        lines.append(f"Not counted as link failures: {figures['own_disconnects']} disconnects "
                     f"the devices made themselves and {figures['roaming']} roaming "
                     "disconnects. They are shown apart and rank no device.")
    lines.append(f"Silent deaths (code 255): {figures['silent_deaths']}, "
                 f"{figures['silent_death_share_pct']} % of all {figures['disconnects']} "
                 "disconnects.")
    if figures["top_link_failure_family"]:
        lines.append(f"The most common link-failure family is "
                     f"**{figures['top_link_failure_family']}**.")
    if figures["worst_devices"]:
        lines.append("Most link failures: " + ", ".join(figures["worst_devices"]) + ".")
    return " ".join(lines)


def _describe_link(report: DisconnectReport, figures: dict[str, object]) -> str:
    if report.outages.empty and report.readings.empty:
        return ("No EVT_WIFI_DOWN or EVT_WIFI_UP events in the window, so there are no outage "
                "or RSSI figures.")
    lines = [f"{figures['outages']} Wi-Fi outages ({figures['open_outages']} still open at the "
             "end of the data)"]
    if figures["median_outage_min"] is not None:
        lines[0] += f", median duration {figures['median_outage_min']} min"
    lines[0] += "."
    if figures["heartbeat_miss_runs"]:
        lines.append(f"{figures['heartbeat_miss_runs']} runs of missed heartbeats, at most "
                     f"{figures['max_consecutive_misses']} in a row.")
    if figures["rssi_readings"]:
        weak = figures["weak_signal_devices"]
        lines.append(
            f"Median RSSI at connection {figures['rssi_median_dbm']} dBm over "
            f"{figures['rssi_readings']} readings (sentinel readings excluded: "
            f"{figures['rssi_sentinels_excluded']}), and {len(weak)} devices have a median below "
            f"{figures['weak_signal_threshold_dbm']:g} dBm."
        )
    http = figures["http_failures"]
    lines.append(f"HTTP failures: {http['4xx']} with a 4xx status, {http['5xx']} with a 5xx "
                 f"status, {http['errno']} with an errno, {http['other status']} with another "
                 "status.")
    return " ".join(lines)
