"""Fleet overview figures: who reports, who went silent, which firmware runs where.

Every function accepts an empty heartbeat table and then returns empty results, so a
report over an empty window can state that instead of failing.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from analysis.versions import version_key

STALE_AFTER = pd.Timedelta(hours=1)
UNKNOWN_VERSION = "unknown"


def window_end(heartbeats: pd.DataFrame, end: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """Return the end of the observed window: `end` if given, else the newest heartbeat."""
    if end is not None:
        return end
    if heartbeats.empty:
        return None
    return heartbeats["received_at"].max()


def count_reporting(heartbeats: pd.DataFrame) -> dict[str, object]:
    """Return the number of devices and heartbeats and the first and last heartbeat time."""
    times = heartbeats["received_at"]
    return {
        "devices": int(heartbeats["device_id"].nunique()),
        "heartbeats": int(len(heartbeats)),
        "first_heartbeat": times.min() if len(times) else None,
        "last_heartbeat": times.max() if len(times) else None,
    }


def last_seen(
    heartbeats: pd.DataFrame,
    *,
    end: pd.Timestamp | None = None,
    stale_after: pd.Timedelta = STALE_AFTER,
) -> pd.DataFrame:
    """Return one row per device: its last heartbeat and whether it went silent.

    Parameters
    ----------
    heartbeats : DataFrame
        From `analysis.load_heartbeats`.
    end : Timestamp, optional
        End of the window; defaults to the newest heartbeat of the fleet.
    stale_after : Timedelta
        A device is stale when its last heartbeat is older than this at `end`.

    Returns
    -------
    DataFrame
        ``device_id, firmware_version, heartbeats, last_seen, silent_for, is_stale``,
        stale devices first, then by device id.
    """
    columns = ["device_id", "firmware_version", "heartbeats", "last_seen", "silent_for",
               "is_stale"]
    reference = window_end(heartbeats, end)
    if heartbeats.empty or reference is None:
        return pd.DataFrame(columns=columns)

    ordered = heartbeats.sort_values(["device_id", "received_at"], kind="stable")
    grouped = ordered.groupby("device_id", sort=True)
    devices = pd.DataFrame({
        "firmware_version": grouped["firmware_version"].last(),
        "heartbeats": grouped.size(),
        "last_seen": grouped["received_at"].max(),
    }).reset_index()
    devices["silent_for"] = reference - devices["last_seen"]
    devices["is_stale"] = devices["silent_for"] > stale_after
    devices = devices.sort_values(["is_stale", "device_id"], ascending=[False, True])
    return devices[columns].reset_index(drop=True)


def stale_devices(devices: pd.DataFrame) -> pd.DataFrame:
    """Return the stale rows of a `last_seen` table, longest silent first, without ``is_stale``."""
    stale = devices[devices["is_stale"].astype(bool)]
    stale = stale.sort_values(["silent_for", "device_id"], ascending=[False, True])
    return stale.drop(columns="is_stale").reset_index(drop=True)


def firmware_mix(heartbeats: pd.DataFrame, freq: str | None = None) -> pd.DataFrame:
    """Return the heartbeats per period and firmware version, versions in version order.

    Parameters
    ----------
    heartbeats : DataFrame
        From `analysis.load_heartbeats`.
    freq : str, optional
        A pandas frequency such as ``"D"`` or ``"h"``; by default days, or hours when the
        heartbeats span less than three days.

    Returns
    -------
    DataFrame
        Index: period start (UTC); one column per firmware version; heartbeat counts.
    """
    if heartbeats.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="period"))

    times = heartbeats["received_at"]
    if freq is None:
        freq = "h" if times.max() - times.min() < pd.Timedelta(days=3) else "D"
    versions = heartbeats["firmware_version"].astype("object").fillna(UNKNOWN_VERSION)
    counts = pd.crosstab(times.dt.floor(freq).rename("period"), versions.rename("version"))
    counts = counts[sorted(counts.columns, key=version_key)]
    counts.columns.name = "firmware_version"
    return counts


def plot_firmware_mix(mix: pd.DataFrame) -> Figure | None:
    """Plot the share of heartbeats per firmware version over time as stacked areas.

    Returns None for an empty `mix`. The figure is built without pyplot, so a notebook
    shows it once, where it is the value of the cell.
    """
    if mix.empty:
        return None
    shares = mix.div(mix.sum(axis=1), axis=0) * 100.0
    figure = Figure(figsize=(10, 4), layout="constrained")
    axes = figure.add_subplot()
    x = shares.index.tz_convert("UTC").tz_localize(None)
    axes.stackplot(x, shares.T.to_numpy(), labels=[str(c) for c in shares.columns])
    axes.set_ylabel("share of heartbeats (%)")
    axes.set_xlabel("time (UTC)")
    axes.set_ylim(0, 100)
    axes.margins(x=0)
    axes.legend(title="firmware", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def diagnostics_share(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Return heartbeats with and without diagnostic fields, per firmware version.

    Firmware v1.0.0 sends no diagnostics and v1.1.0 sends them, so the two rows of a
    version show which firmware its heartbeats really came from.

    Returns
    -------
    DataFrame
        ``firmware_version, devices, heartbeats, with_diagnostics, share_with_diagnostics``
        (share in percent), versions in version order, then a ``total`` row.
    """
    columns = ["firmware_version", "devices", "heartbeats", "with_diagnostics",
               "share_with_diagnostics"]
    if heartbeats.empty:
        return pd.DataFrame(columns=columns)

    frame = heartbeats.assign(
        firmware_version=heartbeats["firmware_version"].astype("object").fillna(UNKNOWN_VERSION)
    )
    grouped = frame.groupby("firmware_version")
    table = pd.DataFrame({
        "devices": grouped["device_id"].nunique(),
        "heartbeats": grouped.size(),
        "with_diagnostics": grouped["has_diagnostics"].sum().astype(int),
    })
    table = table.loc[sorted(table.index, key=version_key)].reset_index()
    total = {"firmware_version": "total", "devices": frame["device_id"].nunique(),
             "heartbeats": len(frame), "with_diagnostics": int(frame["has_diagnostics"].sum())}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["share_with_diagnostics"] = (100.0 * table["with_diagnostics"]
                                       / table["heartbeats"]).round(1)
    return table[columns]


def headline_figures(heartbeats: pd.DataFrame, *, end: pd.Timestamp | None = None) -> dict:
    """Return the overview's headline figures, for ``summary.json`` and the summary text.

    Returns
    -------
    dict
        ``devices``, ``heartbeats``, ``first_heartbeat``, ``last_heartbeat``,
        ``stale_devices`` (count), ``stale_device_ids``, ``firmware_versions`` (in version
        order) and ``share_with_diagnostics_pct`` (None without heartbeats).
    """
    figures = count_reporting(heartbeats)
    devices = last_seen(heartbeats, end=end)
    stale = devices.loc[devices["is_stale"].astype(bool), "device_id"]
    versions = heartbeats["firmware_version"].dropna().unique()
    figures.update({
        "stale_devices": int(len(stale)),
        "stale_device_ids": [str(device) for device in stale],
        "firmware_versions": sorted((str(v) for v in versions), key=version_key),
        "share_with_diagnostics_pct": (
            round(100.0 * float(heartbeats["has_diagnostics"].mean()), 1)
            if len(heartbeats) else None
        ),
    })
    return figures


def describe_headline(figures: dict, window: str, *, listed: int = 10) -> str:
    """Return the headline figures as a short Markdown paragraph.

    Parameters
    ----------
    figures : dict
        From `headline_figures`.
    window : str
        The window in words, such as ``notebook.describe_window(start, end)`` returns.
    listed : int
        At most this many stale device ids are named.
    """
    if not figures["heartbeats"]:
        return (f"**No heartbeats** in the window ({window}). Widen the window "
                "(`--since`, `--until`) or check the `--firmware` and `--device` filters.")

    first = figures["first_heartbeat"].strftime("%Y-%m-%d %H:%M")
    last = figures["last_heartbeat"].strftime("%Y-%m-%d %H:%M")
    lines = [
        f"**{figures['devices']:,} devices** sent **{figures['heartbeats']:,} heartbeats** "
        f"from {first} to {last} UTC ({window}).",
        f"{figures['share_with_diagnostics_pct']} % of the heartbeats carried diagnostics "
        "(firmware v1.1.0 or later).",
    ]
    stale_ids = figures["stale_device_ids"]
    if stale_ids:
        named = ", ".join(stale_ids[:listed]) + (", ..." if len(stale_ids) > listed else "")
        devices = "device" if len(stale_ids) == 1 else "devices"
        lines.append(f"**{len(stale_ids)} {devices}** sent no heartbeat in the last hour of "
                     f"the window: {named}.")
    else:
        lines.append("Every device sent a heartbeat in the last hour of the window.")
    return "\n\n".join(lines)


def describe_stability(stability: dict) -> str:
    """Return the headline stability figures as one Markdown sentence.

    Parameters
    ----------
    stability : dict
        From `analysis.stability.stability_headline`.

    Examples
    --------
    >>> describe_stability({"unexpected_reboots": 3, "device_hours": 1500.0,
    ...     "rate_per_1000h": 2.0, "rate_low": 0.41, "rate_high": 5.85,
    ...     "crash_free_hours_pct": 99.8, "crash_free_devices": 9, "devices": 10,
    ...     "crash_free_devices_pct": 90.0, "power_on_reboots": 1})
    ... # doctest: +ELLIPSIS
    '**3 unexpected reboots** in 1,500 device-hours: 2.00 per 1,000 device-hours ...'
    """
    hours = stability.get("device_hours") or 0.0
    if not hours:
        return ("No device-hours with diagnostics in the window, so no reboot rate can be "
                "given: firmware v1.0.0 reports no reset reason.")
    reboots = stability["unexpected_reboots"]
    noun = "unexpected reboot" if reboots == 1 else "unexpected reboots"
    return (
        f"**{reboots:,} {noun}** in {hours:,.0f} device-hours: "
        f"{stability['rate_per_1000h']:.2f} per 1,000 device-hours "
        f"(95 % interval {stability['rate_low']:.2f} to {stability['rate_high']:.2f}). "
        f"Crash-free hours {stability['crash_free_hours_pct']:.1f} %; crash-free devices "
        f"{stability['crash_free_devices_pct']:.1f} % ({stability['crash_free_devices']} of "
        f"{stability['devices']}). Power-on boots, counted apart: "
        f"{stability['power_on_reboots']}. Only heartbeats with diagnostics count: "
        "v1.0.0 reports no reset reason, so its reboots cannot be classified."
    )
