"""Signal strength at connection (EVT_WIFI_UP RSSI) and how it relates to link failures.

The firmware reports RSSI as a signed dBm value. 0 and -127 are sentinels for "no
reading", and values outside -127..0 dBm are impossible. Both are excluded from every
figure here and counted instead (the event column ``rssi_valid`` marks the usable ones).

A connection lasts from an EVT_WIFI_UP to the next EVT_WIFI_DOWN or EVT_BOOT of the
device. Its RSSI band and the family of the disconnect that ended it give the link-failure
rate per band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.errors import InvalidInputError

WEAK_SIGNAL_DBM = -75.0
# Upper edges of the RSSI bands in dBm. Each band includes its upper edge.
BAND_EDGES_DBM = (-80, -70, -60)

CONNECTION_COLUMNS = (
    "device_id", "start", "rssi_dbm", "band", "end", "duration_s", "ended_by", "end_family",
)
ENDED_BY_LINK_FAILURE, ENDED_BY_OWN, ENDED_BY_ROAMING = "link_failure", "own_disconnect", "roaming"
ENDED_BY_REBOOT, STILL_CONNECTED, ENDED_UNKNOWN = "reboot", "still_connected", "unknown"


def rssi_readings(events: pd.DataFrame) -> pd.DataFrame:
    """Return the EVT_WIFI_UP events with ``device_id, event_time, rssi_dbm, rssi_valid``."""
    up = events[events["tag"] == codes.EVT_WIFI_UP]
    return up[["device_id", "event_time", "rssi_dbm", "rssi_valid"]].reset_index(drop=True)


def excluded_readings(readings: pd.DataFrame) -> dict[str, int]:
    """Count the readings left out of RSSI figures: ``sentinel`` (0, -127) and ``impossible``."""
    rssi = readings["rssi_dbm"]
    sentinel = rssi.isin([0, -127]).fillna(False)
    impossible = ((rssi > 0) | (rssi < -127)).fillna(False)
    return {"sentinel": int(sentinel.sum()), "impossible": int(impossible.sum())}


def rssi_by_device(
    readings: pd.DataFrame, *, weak_below_dbm: float = WEAK_SIGNAL_DBM
) -> pd.DataFrame:
    """Summarise each device's valid RSSI readings, weakest median first.

    Parameters
    ----------
    readings : DataFrame
        From `rssi_readings`.
    weak_below_dbm : float
        A device has weak signal when its median RSSI is below this.

    Returns
    -------
    DataFrame
        ``device_id, readings, median_dbm, min_dbm, max_dbm, is_weak``.
    """
    columns = ["device_id", "readings", "median_dbm", "min_dbm", "max_dbm", "is_weak"]
    valid = readings[readings["rssi_valid"].astype(bool)]
    if valid.empty:
        return pd.DataFrame(columns=columns)
    rssi = valid["rssi_dbm"].astype("float64")
    grouped = rssi.groupby(valid["device_id"].to_numpy(dtype=object))
    table = pd.DataFrame({
        "readings": grouped.size(),
        "median_dbm": grouped.median(),
        "min_dbm": grouped.min(),
        "max_dbm": grouped.max(),
    })
    table["is_weak"] = table["median_dbm"] < weak_below_dbm
    table = table.rename_axis("device_id").reset_index()
    table = table.sort_values(["median_dbm", "device_id"]).reset_index(drop=True)
    return table[columns]


def weak_signal_devices(device_rssi: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of `rssi_by_device` output whose device has weak signal."""
    if device_rssi.empty:
        return device_rssi
    return device_rssi[device_rssi["is_weak"].astype(bool)].reset_index(drop=True)


def band_labels(edges: tuple[int, ...] = BAND_EDGES_DBM) -> list[str]:
    """Return the band names for `edges`, weakest first.

    Examples
    --------
    >>> band_labels((-80, -70, -60))
    ['<= -80 dBm', '-79 to -70 dBm', '-69 to -60 dBm', '-59 to -1 dBm']
    """
    if list(edges) != sorted(set(edges)) or not all(-127 < edge < 0 for edge in edges):
        raise InvalidInputError(
            f"RSSI band edges {edges!r} must be increasing whole dBm values between -127 "
            "and 0, such as (-80, -70, -60)"
        )
    labels = [f"<= {edges[0]} dBm"]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        labels.append(f"{low + 1} to {high} dBm")
    labels.append(f"{edges[-1] + 1} to -1 dBm")
    return labels


def assign_bands(rssi: pd.Series, edges: tuple[int, ...] = BAND_EDGES_DBM) -> pd.Series:
    """Return the band of each RSSI value as an ordered categorical, weakest first."""
    labels = band_labels(edges)
    bins = [-np.inf, *edges, np.inf]
    return pd.cut(rssi.astype("float64"), bins=bins, labels=labels, right=True)


def connections(events: pd.DataFrame, *, edges: tuple[int, ...] = BAND_EDGES_DBM) -> pd.DataFrame:
    """Return one row per Wi-Fi connection with a valid RSSI, and what ended it.

    Returns
    -------
    DataFrame
        Columns `CONNECTION_COLUMNS`. ``ended_by`` is ``link_failure``, ``own_disconnect``
        or ``roaming`` (from the family of the EVT_WIFI_DOWN that ended it), ``reboot``
        (an EVT_BOOT came first), ``still_connected`` (nothing followed in the data) or
        ``unknown`` (another EVT_WIFI_UP followed, so the disconnect was not logged).
        ``end`` and ``duration_s`` are missing where the end is not known.
    """
    link = events[events["tag"].isin([codes.EVT_WIFI_UP, codes.EVT_WIFI_DOWN, codes.EVT_BOOT])]
    link = link.reset_index(drop=True)
    is_up = (link["tag"] == codes.EVT_WIFI_UP).to_numpy()
    same_device_next = np.r_[link["device_id"].to_numpy(dtype=object)[1:]
                             == link["device_id"].to_numpy(dtype=object)[:-1], False]
    up_rows = np.flatnonzero(is_up & link["rssi_valid"].astype(bool).to_numpy())
    if len(up_rows) == 0:
        return pd.DataFrame(columns=list(CONNECTION_COLUMNS))

    # The link event right after an EVT_WIFI_UP ends the connection.
    has_next = same_device_next[up_rows]
    following = link.iloc[np.where(has_next, up_rows + 1, up_rows)].reset_index(drop=True)
    ups = link.iloc[up_rows].reset_index(drop=True)
    ended_by = _ended_by(following, has_next)
    end = following["event_time"].where(
        pd.Series(~np.isin(ended_by, [STILL_CONNECTED, ENDED_UNKNOWN])))
    duration = (end - ups["event_time"]).dt.total_seconds()

    table = pd.DataFrame({
        "device_id": ups["device_id"],
        "start": ups["event_time"],
        "rssi_dbm": ups["rssi_dbm"].astype("Int64"),
        "band": assign_bands(ups["rssi_dbm"], edges),
        "end": end,
        "duration_s": duration.where(duration >= 0),
        "ended_by": ended_by,
        "end_family": following["disconnect_family"].where(pd.Series(has_next)),
    })
    return table[list(CONNECTION_COLUMNS)]


def _ended_by(following: pd.DataFrame, has_next: np.ndarray) -> np.ndarray:
    tag = following["tag"].to_numpy(dtype=np.int64)
    family = following["disconnect_family"].astype(object).to_numpy()
    is_down = has_next & (tag == codes.EVT_WIFI_DOWN)
    return np.select(
        [is_down & (family == "own_disconnect"), is_down & (family == "roaming"), is_down,
         has_next & (tag == codes.EVT_BOOT), has_next],
        [ENDED_BY_OWN, ENDED_BY_ROAMING, ENDED_BY_LINK_FAILURE, ENDED_BY_REBOOT, ENDED_UNKNOWN],
        default=STILL_CONNECTED,
    )


def link_failures_by_band(connection_table: pd.DataFrame) -> pd.DataFrame:
    """Return the link-failure rate of connections per RSSI band.

    Returns
    -------
    DataFrame
        ``band, connections, link_failures, link_failure_pct, connected_hours,
        link_failures_per_day``: the share of connections a link failure ended, and link
        failures per 24 connected hours (connections with a known end only). Every band
        appears, weakest first.
    """
    columns = ["band", "connections", "link_failures", "link_failure_pct", "connected_hours",
               "link_failures_per_day"]
    if connection_table.empty:
        return pd.DataFrame(columns=columns)
    is_failure = connection_table["ended_by"] == ENDED_BY_LINK_FAILURE
    table = connection_table.assign(
        is_failure=is_failure,
        is_timed_failure=is_failure & connection_table["duration_s"].notna(),
        hours=connection_table["duration_s"] / 3600.0,
    )
    grouped = table.groupby("band", observed=False)
    result = pd.DataFrame({
        "connections": grouped.size(),
        "link_failures": grouped["is_failure"].sum().astype(np.int64),
        "connected_hours": grouped["hours"].sum(),
    })
    result["link_failure_pct"] = 100.0 * result["link_failures"] / result["connections"]
    hours = result["connected_hours"].where(result["connected_hours"] > 0)
    result["link_failures_per_day"] = 24.0 * grouped["is_timed_failure"].sum() / hours
    return result.reset_index()[columns]


def plot_rssi_distribution(
    readings: pd.DataFrame, *, weak_below_dbm: float = WEAK_SIGNAL_DBM
) -> Figure | None:
    """Plot a histogram of valid RSSI readings, with the weak-signal threshold marked."""
    valid = readings.loc[readings["rssi_valid"].astype(bool), "rssi_dbm"].astype("float64")
    if valid.empty:
        return None
    figure = Figure(figsize=(9, 4), layout="constrained")
    axes = figure.add_subplot()
    low, high = int(valid.min()), int(valid.max())
    axes.hist(valid, bins=np.arange(low - 0.5, high + 1.5, 1.0), color="tab:blue")
    axes.axvline(weak_below_dbm, color="tab:red", linestyle="--",
                 label=f"weak signal threshold ({weak_below_dbm:g} dBm)")
    axes.set_title("RSSI at Wi-Fi connection (EVT_WIFI_UP)")
    axes.set_xlabel("RSSI (dBm)")
    axes.set_ylabel("connections")
    axes.legend()
    return figure
