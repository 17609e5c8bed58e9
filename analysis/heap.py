"""Heap figures: distributions per firmware and day, leak candidates and low-water alerts.

``heap_free`` on camera boards includes PSRAM, so a large number can hide an internal RAM
that is running out. ``heap_min_free`` (the lowest free heap since boot) is the sharper
signal, and boots are compared by their last ``heap_min_free`` before the reboot.

Every function accepts tables without heap readings (a v1.0.0 fleet, an empty window) and
then returns empty results, so a report can state that instead of failing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from analysis.boots import heartbeat_boot_numbers
from analysis.versions import version_key

HEAP_MEASURES = ("heap_free", "heap_min_free")
QUANTILES = {"p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
# A leak slower than this takes over a week to use up 200 kB, so it is not flagged.
MIN_LEAK_BYTES_PER_HOUR = 1_000.0
# Heap level that the time-to-exhaustion projection counts down to.
HEAP_FLOOR_BYTES = 20_000
# Low-water alert level for heap_min_free: twice the floor, so the alert comes first.
LOW_WATER_BYTES = 40_000
CRASH_CAUSES = ("panic", "watchdog")
NO_LATER_BOOT = "no_later_boot"

DISTRIBUTION_COLUMNS = ("measure", "values", "devices", "min", *QUANTILES, "max")
ALERT_COLUMNS = (
    "device_id", "first_heartbeat_id", "boot_time", "firmware_version", "first_alert_at",
    "alert_uptime_h", "readings_below", "lowest_heap_min_free",
)


def heap_readings(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Return the heartbeats with a usable heap reading, in long form.

    Returns
    -------
    DataFrame
        ``device_id, received_at, firmware_version, uptime_s, measure, value`` with one row
        per heartbeat and measure; negative readings are invalid and left out.
    """
    frame = heartbeats[["device_id", "received_at", "firmware_version", "uptime_s",
                        *HEAP_MEASURES]]
    long = frame.melt(id_vars=["device_id", "received_at", "firmware_version", "uptime_s"],
                      value_vars=list(HEAP_MEASURES), var_name="measure")
    value = long["value"].astype("Float64")
    long = long[value.notna() & (value >= 0)]
    return long.assign(value=long["value"].astype("float64")).reset_index(drop=True)


def _describe(groups: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
    table = pd.DataFrame({
        "values": groups["value"].size(),
        "devices": groups["device_id"].nunique(),
        "min": groups["value"].min(),
    })
    for name, share in QUANTILES.items():
        table[name] = groups["value"].quantile(share)
    table["max"] = groups["value"].max()
    return table.reset_index()


def heap_by_firmware(heartbeats: pd.DataFrame, boots: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the distribution of each heap measure per firmware version, in bytes.

    Parameters
    ----------
    heartbeats : DataFrame
        ``Fleet.heartbeats``.
    boots : DataFrame, optional
        ``Fleet.boots``; adds the measure ``last_heap_min_free`` with one value per boot
        that ended in a reboot (its low-water mark before the reboot).

    Returns
    -------
    DataFrame
        ``firmware_version`` and `DISTRIBUTION_COLUMNS` (``values`` counts readings, or
        boots for ``last_heap_min_free``), versions in version order.
    """
    long = heap_readings(heartbeats)[["device_id", "firmware_version", "measure", "value"]]
    if boots is not None:
        ended = boot_endings(boots)
        ended = ended[ended["ended_by"].ne(NO_LATER_BOOT)]
        last = ended[["device_id", "firmware_version", "last_heap_min_free"]].dropna()
        long = pd.concat([long, pd.DataFrame({
            "device_id": last["device_id"], "firmware_version": last["firmware_version"],
            "measure": "last_heap_min_free",
            "value": last["last_heap_min_free"].astype("float64")})], ignore_index=True)
    columns = ["firmware_version", *DISTRIBUTION_COLUMNS]
    if long.empty:
        return pd.DataFrame(columns=columns)

    long["firmware_version"] = long["firmware_version"].astype("object").fillna("unknown")
    table = _describe(long.groupby(["firmware_version", "measure"], sort=False))
    version_rank = table["firmware_version"].map(version_key)
    measure_rank = table["measure"].map([*HEAP_MEASURES, "last_heap_min_free"].index)
    order = sorted(range(len(table)), key=lambda i: (version_rank[i], measure_rank[i]))
    return table.iloc[order][columns].reset_index(drop=True)


def daily_heap_quantiles(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Return each heap measure's quantiles per UTC day, in bytes.

    Returns
    -------
    DataFrame
        ``day`` (UTC midnight) and `DISTRIBUTION_COLUMNS`, sorted by measure and day.
    """
    long = heap_readings(heartbeats)
    columns = ["day", *DISTRIBUTION_COLUMNS]
    if long.empty:
        return pd.DataFrame(columns=columns)
    long["day"] = long["received_at"].dt.floor("D")
    table = _describe(long.groupby(["measure", "day"], sort=True))
    return table[columns]


def boot_endings(
    boots: pd.DataFrame, crash_causes: tuple[str, ...] = CRASH_CAUSES
) -> pd.DataFrame:
    """Return `boots` with how each boot ended: the cause of the device's next boot.

    Parameters
    ----------
    boots : DataFrame
        ``Fleet.boots``, sorted by device and boot time.
    crash_causes : tuple of str
        Causes that count as a crash ending.

    Returns
    -------
    DataFrame
        `boots` plus ``ended_by`` (the next boot's cause, or ``"no_later_boot"`` for a
        device's last boot) and ``ended_in_crash``.

    NOTE: with a firmware filter, the next boot may run a version that was filtered out.
    The boot then takes the cause of the next boot that was kept.
    """
    same_device = boots["device_id"].shift(-1).eq(boots["device_id"])
    ended_by = boots["cause"].shift(-1).where(same_device, NO_LATER_BOOT)
    return boots.assign(ended_by=ended_by.astype(object),
                        ended_in_crash=ended_by.isin(crash_causes))


def find_leaks(
    trends: pd.DataFrame,
    *,
    min_leak_bytes_per_hour: float = MIN_LEAK_BYTES_PER_HOUR,
    floor_bytes: float = HEAP_FLOOR_BYTES,
) -> pd.DataFrame:
    """Mark the boots whose heap falls significantly, with the rate and time to the floor.

    The decision rests on the boot's current trend (the last segment of a split boot),
    because a heap that fell and then levelled off (a cache filling up) is not leaking.

    Returns
    -------
    DataFrame
        `trends` (from `fit_heap_trends`) plus three columns. ``is_leak`` is True when the
        upper confidence bound of the current slope is below zero and the heap falls
        faster than `min_leak_bytes_per_hour`. ``leak_bytes_per_hour`` is that rate, and
        ``hours_to_floor`` the time from the last reading until the fitted heap reaches
        `floor_bytes` (0 when it is already below). Both are NaN for boots that do not leak.
    """
    fitted = trends["status"].eq("fitted")
    falling = trends["trend_slope_high"].astype("float64") < 0
    rate = -trends["trend_slope"].astype("float64")
    is_leak = fitted & falling & (rate >= min_leak_bytes_per_hour)
    rate = rate.where(is_leak)
    left = (trends["fitted_last_heap"].astype("float64") - floor_bytes).clip(lower=0)
    return trends.assign(is_leak=is_leak, leak_bytes_per_hour=rate,
                         hours_to_floor=left / rate)


def leaking_devices(
    leaks: pd.DataFrame, *, floor_bytes: float = HEAP_FLOOR_BYTES
) -> pd.DataFrame:
    """Return one row per device with a leaking boot, fastest leak first.

    Parameters
    ----------
    leaks : DataFrame
        From `find_leaks`, sorted by device and boot time.
    floor_bytes : float
        Heap level that ``hours_to_floor`` counts down to.

    Returns
    -------
    DataFrame
        ``device_id``, ``firmware_version`` of the last leaking boot, ``fitted_boots``,
        ``leaking_boots``, ``leak_bytes_per_hour`` (the median over the leaking boots),
        ``max_leak_bytes_per_hour``, ``last_boot_leaking`` and ``hours_to_floor``.
        ``last_boot_leaking`` tells whether the device's latest boot with heap readings
        leaks. If it does, ``hours_to_floor`` is that boot's own projection. Otherwise it
        projects the boot's last heap reading at the device's median rate, assuming that
        the leak returns as it did in earlier boots.
    """
    columns = ["device_id", "firmware_version", "fitted_boots", "leaking_boots",
               "leak_bytes_per_hour", "max_leak_bytes_per_hour", "last_boot_leaking",
               "hours_to_floor"]
    leaking = leaks[leaks["is_leak"]]
    if leaking.empty:
        return pd.DataFrame(columns=columns)

    rates = leaking.groupby("device_id")["leak_bytes_per_hour"]
    devices = pd.DataFrame({
        "firmware_version": leaking.groupby("device_id")["firmware_version"].last(),
        "fitted_boots": leaks[leaks["status"].eq("fitted")].groupby("device_id").size(),
        "leaking_boots": rates.size(),
        "leak_bytes_per_hour": rates.median(),
        "max_leak_bytes_per_hour": rates.max(),
    }).dropna(subset=["leaking_boots"])

    latest = leaks.drop_duplicates("device_id", keep="last").set_index("device_id")
    latest = latest.reindex(devices.index)
    devices["last_boot_leaking"] = latest["is_leak"].astype(bool)
    left = (latest["last_heap"] - floor_bytes).clip(lower=0)
    devices["hours_to_floor"] = latest["hours_to_floor"].where(
        devices["last_boot_leaking"], left / devices["leak_bytes_per_hour"])
    devices = devices.reset_index().sort_values("leak_bytes_per_hour", ascending=False)
    return devices[columns].astype({"leaking_boots": "int64", "fitted_boots": "int64"})


def low_water_alerts(
    heartbeats: pd.DataFrame, *, low_water_bytes: float = LOW_WATER_BYTES
) -> pd.DataFrame:
    """Return one row per boot whose ``heap_min_free`` fell under `low_water_bytes`.

    Returns
    -------
    DataFrame
        `ALERT_COLUMNS`: the time and uptime in hours of the first reading under the
        level, the number of readings under it and the lowest value.
        ``first_heartbeat_id`` joins the table to ``Fleet.boots``.
    """
    heartbeats = heartbeats.reset_index(drop=True)
    number = pd.Series(heartbeat_boot_numbers(heartbeats), index=heartbeats.index)
    first_ids = heartbeats["heartbeat_id"].groupby(number).first()
    low_water = heartbeats["heap_min_free"].astype("Float64")
    below = heartbeats[(low_water.notna() & (low_water >= 0)
                        & (low_water < low_water_bytes)).to_numpy(dtype=bool)]
    if below.empty:
        return pd.DataFrame(columns=list(ALERT_COLUMNS))

    groups = below.groupby(number[below.index], sort=True)
    first = groups.first()
    alerts = pd.DataFrame({
        "device_id": first["device_id"],
        "first_heartbeat_id": first_ids.reindex(first.index).to_numpy(),
        "boot_time": first["received_at"] - pd.to_timedelta(
            first["uptime_s"].astype("float64"), unit="s"),
        "firmware_version": first["firmware_version"],
        "first_alert_at": first["received_at"],
        "alert_uptime_h": first["uptime_s"].astype("float64") / 3600.0,
        "readings_below": groups.size(),
        "lowest_heap_min_free": groups["heap_min_free"].min().astype("int64"),
    })
    return alerts[list(ALERT_COLUMNS)].reset_index(drop=True)


def low_water_outcomes(
    endings: pd.DataFrame, *, low_water_bytes: float = LOW_WATER_BYTES
) -> pd.DataFrame:
    """Compare how often a boot ended in a crash after its low-water mark fell under the level.

    Only boots that ended (a later boot of the device exists) and reported
    ``last_heap_min_free`` are compared.

    Returns
    -------
    DataFrame
        Index ``below_low_water`` (True, False); columns ``boots``, ``crash_endings``,
        ``other_endings``, ``crash_share_pct`` (NaN without boots).
    """
    ended = endings[endings["ended_by"].ne(NO_LATER_BOOT)
                    & endings["last_heap_min_free"].notna()]
    below = ended["last_heap_min_free"].astype("float64") < low_water_bytes
    index = pd.Index([True, False], name="below_low_water")
    boots = below.value_counts().reindex(index, fill_value=0)
    crashes = ended["ended_in_crash"].groupby(below).sum().reindex(index, fill_value=0)
    table = pd.DataFrame({"boots": boots.astype("int64"),
                          "crash_endings": crashes.astype("int64")})
    table["other_endings"] = table["boots"] - table["crash_endings"]
    share = 100.0 * table["crash_endings"] / table["boots"].replace(0, np.nan)
    table["crash_share_pct"] = share.round(1)
    return table


def low_water_crash_p_value(outcomes: pd.DataFrame) -> float:
    """Return the one-sided Fisher exact p-value that low-water boots crash more often.

    NaN when either group has no boots.
    """
    if (outcomes["boots"] == 0).any():
        return float("nan")
    counts = outcomes[["crash_endings", "other_endings"]].to_numpy()
    return float(fisher_exact(counts, alternative="greater").pvalue)


def last_min_free_by_ending(endings: pd.DataFrame) -> pd.DataFrame:
    """Return the distribution of the boots' last ``heap_min_free`` per ending, in bytes.

    Returns
    -------
    DataFrame
        ``ended_by`` and `DISTRIBUTION_COLUMNS` without ``measure``: crash endings first,
        then other reboot causes by number of boots, then boots with no later boot.
    """
    known = endings[endings["last_heap_min_free"].notna()]
    columns = ["ended_by", *DISTRIBUTION_COLUMNS[1:]]
    if known.empty:
        return pd.DataFrame(columns=columns)
    long = pd.DataFrame({"ended_by": known["ended_by"], "device_id": known["device_id"],
                         "value": known["last_heap_min_free"].astype("float64")})
    table = _describe(long.groupby("ended_by"))
    crash = endings.loc[endings["ended_in_crash"], "ended_by"].unique()
    rank = np.where(table["ended_by"].isin(crash), 0,
                    np.where(table["ended_by"].eq(NO_LATER_BOOT), 2, 1))
    table = table.assign(rank=rank).sort_values(["rank", "values", "ended_by"],
                                                ascending=[True, False, True])
    return table[columns].reset_index(drop=True)
