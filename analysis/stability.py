"""Stability figures: unexpected reboot rates and crash-free shares, per fleet, version or week.

Unexpected reboots are boots with ``is_unexpected`` (cause classes crash, recovery and
power). ``power_on`` reboots are counted apart, because a power cut, an unplugged cable and
a pressed reset button look alike. Exposure (device-hours) comes from `analysis.exposure`.

Every function accepts `by`: None for the whole fleet, ``"firmware_version"`` or
``"week"`` (ISO week, such as ``2026-W18``). Firmware versions are compared by
exposure-weighted rates, never by raw counts.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import InvalidInputError
from analysis.exposure import (
    GROUPINGS,
    check_by,
    device_hours,
    exposure_intervals,
    group_key,
    iso_week,
    observed_hour_buckets,
    sort_groups,
    with_group_column,
)

logger = logging.getLogger(__name__)

# Rates are given per this many device-hours.
PER_HOURS = 1000.0

STABILITY_COLUMNS = (
    "devices", "device_hours", "unexpected_reboots", "power_on_reboots", "rate_per_1000h",
    "rate_low", "rate_high", "observed_hours", "crash_free_hours_pct", "crash_free_devices",
    "crash_free_devices_pct",
)

_COUNT_COLUMNS = ("devices", "unexpected_reboots", "power_on_reboots", "observed_hours",
                  "crash_free_devices")

__all__ = [
    "GROUPINGS", "STABILITY_COLUMNS", "crash_free_devices", "crash_free_hours",
    "device_hours", "exposure_intervals", "fleet_stability", "iso_week",
    "observed_hour_buckets", "poisson_rate_interval", "stability_headline",
    "unexpected_reboot_rate",
]


def poisson_rate_interval(
    count: int | np.ndarray | pd.Series,
    exposure: float | np.ndarray | pd.Series,
    *,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the exact (Garwood) confidence interval of a Poisson rate ``count / exposure``.

    The bounds are gamma quantiles, the same as the chi-square form
    ``chi2.ppf(a/2, 2k)/2`` and ``chi2.ppf(1-a/2, 2k+2)/2``. The lower bound is 0 for a count
    of 0. Where `exposure` is 0 both bounds are NaN.

    Parameters
    ----------
    count : int or array of int
        Observed events.
    exposure : float or array of float
        Exposure in the unit the rate is wanted per (for example thousands of hours).
    confidence : float
        Two-sided confidence level, between 0 and 1.

    Returns
    -------
    (low, high) : tuple of ndarray
        Rate bounds per unit of exposure.

    Examples
    --------
    >>> low, high = poisson_rate_interval(0, 1.0)
    >>> round(float(low), 6), round(float(high), 6)
    (0.0, 3.688879)
    """
    if not 0 < confidence < 1:
        raise InvalidInputError(
            f"confidence {confidence!r} is invalid. Pass a level between 0 and 1 such as 0.95"
        )
    counts = np.asarray(count, dtype="float64")
    hours = np.asarray(exposure, dtype="float64")
    alpha = 1.0 - confidence
    low = np.where(counts > 0, stats.gamma.ppf(alpha / 2, np.maximum(counts, 1)), 0.0)
    high = stats.gamma.ppf(1 - alpha / 2, counts + 1)

    with np.errstate(divide="ignore", invalid="ignore"):
        low_rate = np.where(hours > 0, low / hours, np.nan)
        high_rate = np.where(hours > 0, high / hours, np.nan)
    return low_rate, high_rate


def unexpected_reboot_rate(
    boots: pd.DataFrame,
    hours: float | pd.DataFrame,
    *,
    by: str | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Return unexpected reboots per 1,000 device-hours with an exact Poisson interval.

    Parameters
    ----------
    boots : DataFrame
        From `analysis.derive_boots`. Rows with ``is_unexpected`` are counted, each under the
        firmware version it booted into and the ISO week of its boot time.
    hours : float or DataFrame
        Device-hours: a number (only with ``by=None``) or the output of `device_hours`
        with the same `by`.
    by : {None, "firmware_version", "week"}
        Grouping of the result.
    confidence : float
        Level of the interval.

    Returns
    -------
    DataFrame
        ``[by], unexpected_reboots, device_hours, rate_per_1000h, rate_low, rate_high``.
    """
    check_by(by)
    unexpected = with_group_column(boots[boots["is_unexpected"].astype(bool)], by,
                                    time="boot_time")
    counts = unexpected.groupby(group_key(by), sort=False).size()
    exposure = _hours_by(hours, by)
    table = pd.concat([counts.rename("unexpected_reboots"), exposure.rename("device_hours")],
                      axis=1)
    table = _whole_fleet_row(table, by).fillna(0.0)
    table["unexpected_reboots"] = table["unexpected_reboots"].astype(np.int64)

    thousands = table["device_hours"].to_numpy() / PER_HOURS
    count = table["unexpected_reboots"].to_numpy()
    low, high = poisson_rate_interval(count, thousands, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(thousands > 0, count / thousands, np.nan)
    table["rate_per_1000h"], table["rate_low"], table["rate_high"] = rate, low, high
    return _finish_grouped(table, by)


def crash_free_hours(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame,
    *,
    by: str | None = None,
    interval_s: float = 300,
    gap_factor: float = 3,
) -> pd.DataFrame:
    """Return the share of observed (device, clock hour) buckets with no unexpected reboot.

    A bucket is observed when counted exposure touches it, a heartbeat arrived in it or an
    unexpected reboot happened in it. With ``by="firmware_version"`` a bucket is kept per
    version that ran in it, so an hour with an OTA update counts once for each version.

    Returns
    -------
    DataFrame
        ``[by], observed_hours, crash_free_hours, crash_free_hours_pct``.
    """
    check_by(by)
    buckets = observed_hour_buckets(heartbeats, boots, interval_s=interval_s,
                                    gap_factor=gap_factor)
    buckets = with_group_column(buckets, by, time="hour")
    group = group_key(by)
    per_bucket = buckets.groupby([group, "device_id", "hour"], sort=False)
    is_stable = ~per_bucket["has_unexpected_reboot"].any()

    grouped = is_stable.groupby(level=group, sort=False)
    table = pd.DataFrame({"observed_hours": grouped.size(), "crash_free_hours": grouped.sum()})
    table = _whole_fleet_row(table, by).fillna(0).astype(np.int64)
    table["crash_free_hours_pct"] = _percent(table["crash_free_hours"], table["observed_hours"])
    return _finish_grouped(table, by)


def crash_free_devices(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame,
    *,
    by: str | None = None,
) -> pd.DataFrame:
    """Return the devices observed and the share of them with no unexpected reboot.

    A device is observed in a group when it sent a heartbeat there (on that version, in that
    week) or had an unexpected reboot there, and it crashed there when one of its
    unexpected reboots falls in the group.

    Returns
    -------
    DataFrame
        ``[by], devices, crash_free_devices, crash_free_devices_pct``.
    """
    check_by(by)
    group = group_key(by)
    unexpected = boots[boots["is_unexpected"].astype(bool)]
    seen = with_group_column(heartbeats, by)[[group, "device_id"]]
    crashed = with_group_column(unexpected, by, time="boot_time")[[group, "device_id"]]
    pairs = pd.concat([seen.assign(has_crashed=False), crashed.assign(has_crashed=True)],
                      ignore_index=True)
    per_device = pairs.groupby([group, "device_id"], sort=False)["has_crashed"].any()

    grouped = (~per_device).groupby(level=group, sort=False)
    table = pd.DataFrame({"devices": grouped.size(), "crash_free_devices": grouped.sum()})
    table = _whole_fleet_row(table, by).fillna(0).astype(np.int64)
    table["crash_free_devices_pct"] = _percent(table["crash_free_devices"], table["devices"])
    return _finish_grouped(table, by)


def fleet_stability(
    fleet: object,
    *,
    by: str | None = None,
    interval_s: float = 300,
    gap_factor: float = 3,
    confidence: float = 0.95,
    diagnostics_only: bool = True,
) -> pd.DataFrame:
    """Return the headline stability figures of a fleet, whole or per version or week.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`.
    by : {None, "firmware_version", "week"}
        None gives one row for the fleet.
    interval_s, gap_factor
        As for `exposure_intervals`.
    confidence : float
        Level of the Poisson interval of the rate.
    diagnostics_only : bool
        Count only heartbeats with diagnostics and boots whose cause is known. Firmware
        v1.0.0 reports no reset reason, so its reboots cannot be classified. Counting its
        hours would make it look crash-free and dilute the fleet's rate.

    Returns
    -------
    DataFrame
        ``[by]`` and `STABILITY_COLUMNS`: devices, device-hours, unexpected reboots,
        power-on reboots (kept apart), rate per 1,000 device-hours with its interval,
        observed and crash-free hours %, crash-free devices and their %. Versions sort as
        versions, weeks in time order. With ``by=None`` there is always one row.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001", "dc-0002"])
    >>> int(fleet_stability(fleet)["devices"].iloc[0])
    2
    """
    heartbeats, boots = fleet.heartbeats, fleet.boots
    if diagnostics_only:
        heartbeats = heartbeats[heartbeats["has_diagnostics"].astype(bool)]
        boots = boots[boots["cause_class"] != "no_diagnostics"]
    options = {"interval_s": interval_s, "gap_factor": gap_factor}
    hours = device_hours(heartbeats, boots, by=by, **options)
    parts = [
        unexpected_reboot_rate(boots, hours, by=by, confidence=confidence),
        crash_free_hours(heartbeats, boots, by=by, **options),
        crash_free_devices(heartbeats, boots, by=by),
        _power_on_reboots(boots, by),
    ]
    key = [by] if by else []
    if by:
        parts = [part.set_index(by) for part in parts]
    table = pd.concat(parts, axis=1)

    table[list(_COUNT_COLUMNS)] = table[list(_COUNT_COLUMNS)].fillna(0).astype(np.int64)
    table["device_hours"] = table["device_hours"].fillna(0.0)
    logger.info("Computed stability figures by %s for %d devices", by or "fleet",
                heartbeats["device_id"].nunique())
    return _finish_grouped(table, by)[key + list(STABILITY_COLUMNS)]


def stability_headline(fleet: object, **options: object) -> dict[str, object]:
    """Return the fleet-wide figures of `fleet_stability` as a JSON-ready dict.

    Options are passed to `fleet_stability`. NaN figures (no exposure, no devices) become
    None.
    """
    row = fleet_stability(fleet, **options).iloc[0]
    headline: dict[str, object] = {}
    for column in STABILITY_COLUMNS:
        value = row[column]
        if pd.isna(value):
            headline[column] = None
        elif column in _COUNT_COLUMNS:
            headline[column] = int(value)
        else:
            headline[column] = float(value)
    return headline


def _whole_fleet_row(table: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Keep exactly one row for the whole fleet, also when there is no data."""
    return table.reindex([0]) if by is None else table


def _power_on_reboots(boots: pd.DataFrame, by: str | None) -> pd.DataFrame:
    power_on = boots[boots["is_reboot"].astype(bool) & boots["cause_class"].eq("power_on")]
    power_on = with_group_column(power_on, by, time="boot_time")
    counts = power_on.groupby(group_key(by), sort=False).size().rename("power_on_reboots")
    return _finish_grouped(_whole_fleet_row(counts.to_frame(), by).fillna(0), by)


def _hours_by(hours: float | pd.DataFrame, by: str | None) -> pd.Series:
    if isinstance(hours, pd.DataFrame):
        if by is None:
            return pd.Series([float(hours["hours"].sum())], index=[0])
        if by not in hours.columns:
            raise InvalidInputError(
                f"device-hours table has no {by!r} column. Call device_hours(..., by={by!r})"
            )
        return hours.groupby(by, sort=False)["hours"].sum()
    if by is not None:
        raise InvalidInputError(
            f"a single number of hours cannot be split by {by!r}. Pass the table from "
            f"device_hours(..., by={by!r})"
        )
    return pd.Series([float(hours)], index=[0])


def _percent(part: pd.Series, whole: pd.Series) -> pd.Series:
    whole = whole.astype("float64")
    return (100.0 * part.astype("float64") / whole).where(whole > 0)


def _finish_grouped(table: pd.DataFrame, by: str | None) -> pd.DataFrame:
    if by is None:
        return table.reset_index(drop=True)
    table = table.rename_axis(by).reset_index()
    return sort_groups(table, by)


