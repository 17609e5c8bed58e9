"""Time to an unexpected reboot: boot lifetimes and the Kaplan–Meier estimate per version.

Each boot is a unit at risk from its start. Its end is observed when the device's next boot
is an unexpected reboot. It is censored when the next boot is not unexpected (planned,
power-on or without diagnostics), or when no boot follows in the window. Then the boot ran
at least until its last heartbeat or event.
Time between two unexpected reboots is the lifetime of a boot that began with one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.exposure import sort_groups, version_labels

SURVIVAL_AT_HOURS = 24.0


def boot_lifetimes(boots: pd.DataFrame) -> pd.DataFrame:
    """Return how long each boot ran and whether it ended in an unexpected reboot.

    A boot ends when the device's next boot starts. It is an observed end when that next
    boot is unexpected, and censored otherwise. A boot that no boot follows is censored at
    its last heartbeat or event.

    Returns
    -------
    DataFrame
        ``device_id, firmware_version, boot_time, hours, is_unexpected_end``, one row per
        boot with a boot time.
    """
    ordered = boots[boots["boot_time"].notna()].sort_values(["device_id", "boot_time"],
                                                            kind="stable")
    same_device = ordered["device_id"].eq(ordered["device_id"].shift(-1))
    next_start = ordered["boot_time"].shift(-1)
    end = next_start.where(same_device, ordered["last_seen"])
    is_unexpected_end = same_device & ordered["is_unexpected"].shift(-1, fill_value=False)

    hours = (end - ordered["boot_time"]).dt.total_seconds() / 3600.0
    return pd.DataFrame({
        "device_id": ordered["device_id"].to_numpy(),
        "firmware_version": ordered["firmware_version"].to_numpy(),
        "boot_time": ordered["boot_time"].to_numpy(),
        "hours": hours.clip(lower=0).to_numpy(),
        "is_unexpected_end": is_unexpected_end.astype(bool).to_numpy(),
    }).dropna(subset=["hours"])


def kaplan_meier(durations: pd.Series, observed: pd.Series) -> pd.DataFrame:
    """Estimate the survival function from durations with right censoring.

    Parameters
    ----------
    durations : Series of float
        Time to the end of each unit, or to its censoring.
    observed : Series of bool
        True where the end was observed, False where the unit was censored.

    Returns
    -------
    DataFrame
        ``time, at_risk, events, censored, survival``, one row per distinct duration.
        ``survival`` is the product of ``1 - events / at_risk`` over all times up to the row.

    Examples
    --------
    >>> curve = kaplan_meier(pd.Series([1, 2, 2, 3]), pd.Series([True, True, False, True]))
    >>> curve["survival"].round(3).tolist()
    [0.75, 0.5, 0.0]
    """
    frame = pd.DataFrame({"time": np.asarray(durations, dtype="float64"),
                          "observed": np.asarray(observed, dtype=bool)}).dropna()
    grouped = frame.groupby("time", sort=True)["observed"]
    table = pd.DataFrame({"events": grouped.sum().astype(np.int64),
                          "leaving": grouped.size().astype(np.int64)})
    table["at_risk"] = len(frame) - table["leaving"].cumsum().shift(fill_value=0)
    table["censored"] = table["leaving"] - table["events"]
    table["survival"] = (1.0 - table["events"] / table["at_risk"]).cumprod()
    return table.reset_index()[["time", "at_risk", "events", "censored", "survival"]]


def median_survival(curve: pd.DataFrame) -> float:
    """Return the first time at which survival falls to 0.5 or below (NaN if it never does)."""
    reached = curve.loc[curve["survival"] <= 0.5, "time"]
    return float(reached.iloc[0]) if len(reached) else float("nan")


def reboot_survival(boots: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimate the time to an unexpected reboot per firmware version (Kaplan–Meier).

    Each boot is at risk from its start. See `boot_lifetimes` for which ends are observed.

    Returns
    -------
    (curves, summary) : tuple of DataFrame
        ``curves``: `kaplan_meier` columns plus ``firmware_version`` (time in hours).
        ``summary``: ``firmware_version, boots, unexpected_ends, censored, median_hours,
        survival_24h`` (the share of boots still running after 24 h). Versions sort as
        versions.
    """
    lifetimes = boot_lifetimes(boots)
    lifetimes["firmware_version"] = version_labels(lifetimes["firmware_version"])
    curves, rows = [], []
    for version, group in lifetimes.groupby("firmware_version", sort=False):
        curve = kaplan_meier(group["hours"], group["is_unexpected_end"])
        curves.append(curve.assign(firmware_version=version))
        rows.append({
            "firmware_version": version, "boots": len(group),
            "unexpected_ends": int(group["is_unexpected_end"].sum()),
            "censored": int((~group["is_unexpected_end"]).sum()),
            "median_hours": median_survival(curve),
            "survival_24h": _survival_at(curve, SURVIVAL_AT_HOURS),
        })
    columns = ["firmware_version", "boots", "unexpected_ends", "censored", "median_hours",
               "survival_24h"]
    summary = sort_groups(pd.DataFrame(rows, columns=columns), "firmware_version")
    curve_columns = ["firmware_version", "time", "at_risk", "events", "censored", "survival"]
    all_curves = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=curve_columns)
    return all_curves[curve_columns], summary


def _survival_at(curve: pd.DataFrame, time: float) -> float:
    before = curve.loc[curve["time"] <= time, "survival"]
    return float(before.iloc[-1]) if len(before) else 1.0
