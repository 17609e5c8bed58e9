"""Times a device could not reach the server: Wi-Fi outages, missed heartbeats, HTTP failures.

A Wi-Fi outage runs from an EVT_WIFI_DOWN to the next EVT_WIFI_UP of the device. The
driver reports a disconnect for every failed reconnection attempt as well, so consecutive
EVT_WIFI_DOWN events without an EVT_WIFI_UP between them form one outage, which takes the
reason and family of its first event. An outage with no EVT_WIFI_UP after it in the data
is open: its end is unknown.

EVT_HEARTBEAT_MISS carries the count of consecutive heartbeats that could not be sent, so a
run of misses logs 1, 2, 3, and so on. A run continues while each count is one more than
the previous one of the device.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.events import TIME_FROM_TS

OUTAGE_COLUMNS = (
    "device_id", "start", "end", "duration_s", "code", "reason_name", "family",
    "down_events", "boots_during", "is_open", "is_time_estimated",
)
HTTP_CLASSES = ("4xx", "5xx", "other status", "errno")


def wifi_outages(events: pd.DataFrame) -> pd.DataFrame:
    """Return one row per Wi-Fi outage, from its first EVT_WIFI_DOWN to the next EVT_WIFI_UP.

    Parameters
    ----------
    events : DataFrame
        ``Fleet.events``, sorted by device and ``sequence``.

    Returns
    -------
    DataFrame
        Columns `OUTAGE_COLUMNS`. ``down_events`` counts the EVT_WIFI_DOWN events of the
        outage, and ``boots_during`` the EVT_BOOT events between its start and end (the
        device rebooted while offline). ``duration_s`` is missing for an open outage and
        where the end lies before the start (a clock error). ``is_time_estimated`` is True when
        the start or end time was estimated from uptime rather than taken from ``ts``.
    """
    link = events[events["tag"].isin([codes.EVT_WIFI_DOWN, codes.EVT_WIFI_UP])]
    link = link.reset_index(drop=True)
    is_down = (link["tag"] == codes.EVT_WIFI_DOWN).to_numpy()
    device = link["device_id"].to_numpy(dtype=object)
    same_device_before = np.r_[False, device[1:] == device[:-1]]
    starts = is_down & ~(same_device_before & np.r_[False, is_down[:-1]])
    if not starts.any():
        return pd.DataFrame(columns=list(OUTAGE_COLUMNS))

    # Each outage's rows run from its start to the row before the next start or UP.
    start_rows = np.flatnonzero(starts)
    run_id = np.cumsum(starts) - 1
    down_events = np.bincount(run_id[is_down], minlength=len(start_rows))
    end_rows = start_rows + down_events
    has_end = end_rows < len(link)
    has_end[has_end] = device[end_rows[has_end]] == device[start_rows[has_end]]

    first = link.iloc[start_rows].reset_index(drop=True)
    ends = link.iloc[np.where(has_end, end_rows, start_rows)].reset_index(drop=True)
    return _outage_frame(first, ends, has_end, down_events, events)


def _outage_frame(first, ends, has_end, down_events, events) -> pd.DataFrame:
    end_time = ends["event_time"].where(has_end)
    duration = (end_time - first["event_time"]).dt.total_seconds()
    end_sequence = ends["sequence"].where(has_end, np.iinfo(np.int64).max)
    outages = pd.DataFrame({
        "device_id": first["device_id"],
        "start": first["event_time"],
        "end": end_time,
        "duration_s": duration.where(duration >= 0),
        "code": first["d0"].astype("Int64"),
        "reason_name": first["reason_name"],
        "family": first["disconnect_family"],
        "down_events": down_events.astype(np.int64),
        "boots_during": _boots_between(events, first["device_id"], first["sequence"],
                                       end_sequence),
        "is_open": ~has_end,
        "is_time_estimated": (first["time_source"] != TIME_FROM_TS).to_numpy()
        | (has_end & (ends["time_source"] != TIME_FROM_TS).to_numpy()),
    })
    return outages[list(OUTAGE_COLUMNS)]


def _boots_between(events, devices, after_sequence, before_sequence) -> np.ndarray:
    """Count each device's EVT_BOOT events with a sequence strictly between the bounds."""
    boots = events[events["tag"] == codes.EVT_BOOT]
    names = pd.Index(pd.unique(events["device_id"].to_numpy(dtype=object)))
    # One sorted key per boot: device number in the high bits, sequence in the low bits.
    span = np.int64(2**40)
    boot_keys = np.sort(names.get_indexer(boots["device_id"]).astype(np.int64) * span
                        + boots["sequence"].to_numpy(dtype=np.int64))
    base = names.get_indexer(devices).astype(np.int64) * span
    after = after_sequence.to_numpy(dtype=np.int64)
    before = np.minimum(before_sequence.to_numpy(dtype=np.int64), span - 1)
    low = np.searchsorted(boot_keys, base + after, side="right")
    high = np.searchsorted(boot_keys, base + before, side="left")
    return (high - low).astype(np.int64)


def outage_durations(outages: pd.DataFrame) -> pd.DataFrame:
    """Summarise outage durations per disconnect family.

    Returns
    -------
    DataFrame
        ``family, outages, open, median_min, p90_min, max_min, total_hours`` in the order
        of `analysis.codes.DISCONNECT_FAMILIES`. Durations cover closed outages only.
    """
    columns = ["family", "outages", "open", "median_min", "p90_min", "max_min",
               "total_hours"]
    if outages.empty:
        return pd.DataFrame(columns=columns)
    minutes = outages["duration_s"] / 60.0
    grouped = outages.assign(minutes=minutes).groupby("family")
    table = pd.DataFrame({
        "outages": grouped.size(),
        "open": grouped["is_open"].sum().astype(np.int64),
        "median_min": grouped["minutes"].median(),
        "p90_min": grouped["minutes"].quantile(0.9),
        "max_min": grouped["minutes"].max(),
        "total_hours": grouped["minutes"].sum() / 60.0,
    })
    order = [family for family in codes.DISCONNECT_FAMILIES if family in table.index]
    return table.loc[order].reset_index()[columns]


def heartbeat_miss_runs(events: pd.DataFrame) -> pd.DataFrame:
    """Return one row per run of consecutive missed heartbeats (EVT_HEARTBEAT_MISS).

    Returns
    -------
    DataFrame
        ``device_id, start, end, max_consecutive, events``: ``max_consecutive`` is the
        largest count logged in the run. Heartbeats missed after the firmware stopped
        logging, or whose events were lost, are not in it, so it is a lower bound.
    """
    columns = ["device_id", "start", "end", "max_consecutive", "events"]
    misses = events[events["tag"] == codes.EVT_HEARTBEAT_MISS].reset_index(drop=True)
    if misses.empty:
        return pd.DataFrame(columns=columns)

    count = misses["d0"].astype("float64").to_numpy()
    device = misses["device_id"].to_numpy(dtype=object)
    continues = np.r_[False, (device[1:] == device[:-1]) & (count[1:] == count[:-1] + 1)]
    run = np.cumsum(~continues)
    grouped = misses.assign(run=run).groupby("run", sort=True)
    table = pd.DataFrame({
        "device_id": grouped["device_id"].first(),
        "start": grouped["event_time"].first(),
        "end": grouped["event_time"].last(),
        "max_consecutive": grouped["d0"].max().astype(np.int64),
        "events": grouped.size().astype(np.int64),
    })
    return table.reset_index(drop=True)[columns]


def miss_runs_by_device(runs: pd.DataFrame) -> pd.DataFrame:
    """Return per device the number of miss runs and the largest consecutive count, worst first."""
    columns = ["device_id", "runs", "max_consecutive", "last_run_start"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    grouped = runs.groupby("device_id")
    table = pd.DataFrame({
        "runs": grouped.size(),
        "max_consecutive": grouped["max_consecutive"].max(),
        "last_run_start": grouped["start"].max(),
    }).reset_index()
    table = table.sort_values(["max_consecutive", "runs", "device_id"],
                              ascending=[False, False, True])
    return table.reset_index(drop=True)[columns]


def http_failures(events: pd.DataFrame) -> pd.DataFrame:
    """Count EVT_HTTP_FAIL events by HTTP status class and errno value.

    Returns
    -------
    DataFrame
        ``class, value, failures, devices``: ``class`` is ``4xx``, ``5xx``, ``other
        status`` (a status below 400) or ``errno``, following the event table's
        ``http_status`` and ``errno`` columns, and ``value`` is the status or errno.
        Ordered by class in `HTTP_CLASSES`, then most frequent first.
    """
    columns = ["class", "value", "failures", "devices"]
    failed = events[events["tag"] == codes.EVT_HTTP_FAIL]
    if failed.empty:
        return pd.DataFrame(columns=columns)

    status = failed["http_status"]
    kind = np.select(
        [status.between(400, 499).fillna(False).to_numpy(),
         status.between(500, 599).fillna(False).to_numpy(),
         status.notna().to_numpy()],
        ["4xx", "5xx", "other status"],
        default="errno",
    )
    frame = pd.DataFrame({
        "class": kind,
        "value": status.fillna(failed["errno"]).astype("Int64").to_numpy(),
        "device_id": failed["device_id"].to_numpy(dtype=object),
    })
    grouped = frame.groupby(["class", "value"])
    table = pd.DataFrame({"failures": grouped.size(),
                          "devices": grouped["device_id"].nunique()}).reset_index()
    table["order"] = table["class"].map({name: i for i, name in enumerate(HTTP_CLASSES)})
    table = table.sort_values(["order", "failures", "value"], ascending=[True, False, True])
    return table.reset_index(drop=True)[columns]


def plot_outage_durations(outages: pd.DataFrame) -> Figure | None:
    """Plot the durations of closed outages per family as box plots on a log scale."""
    closed = outages.dropna(subset=["duration_s"])
    closed = closed[closed["duration_s"] > 0]
    if closed.empty:
        return None
    order = [f for f in codes.DISCONNECT_FAMILIES if f in set(closed["family"])]
    samples = [closed.loc[closed["family"] == f, "duration_s"].to_numpy() / 60.0 for f in order]

    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.boxplot(samples, orientation="horizontal", tick_labels=order)
    axes.set_xscale("log")
    # Families read from the top down, in the order of the family table.
    axes.invert_yaxis()
    axes.set_title("Wi-Fi outage durations by disconnect family (closed outages)")
    axes.set_xlabel("outage duration (minutes, log scale)")
    axes.set_ylabel("disconnect family")
    return figure
