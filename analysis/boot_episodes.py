"""Boot episodes: boot loops, power problems and devices that went silent.

A boot loop is 3 or more boots of one device within 10 minutes. A power problem is a burst
of the same size made of POWERON or BROWNOUT boots (cause classes ``power_on`` and
``power``) that each stayed up only briefly, the pattern of a weak supply or a bad cable.
Each episode is one row: overlapping windows of a device merge into one episode.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd

from analysis.boots import BOOT_LOOP_MIN_BOOTS, BOOT_LOOP_WINDOW, mark_boot_loops
from analysis.errors import InvalidInputError

logger = logging.getLogger(__name__)

# A power-problem boot stays up for less than this many seconds.
# NOTE: a judgement, not a measured limit: brownout loops seen in the field last seconds.
POWER_PROBLEM_MAX_UPTIME_S = 120.0
POWER_CLASSES = ("power", "power_on")
SILENT_AFTER = pd.Timedelta(hours=1)
NOT_REPORTED = "not reported"

EPISODE_COLUMNS = (
    "device_id", "start", "end", "boots", "reboots", "causes", "reset_reasons",
    "max_uptime_s", "firmware_version",
)
SILENT_COLUMNS = (
    "device_id", "firmware_version", "last_seen", "silent_for", "last_uptime_s",
    "last_reset_reason_name",
)


def detect_boot_loops(
    boots: pd.DataFrame,
    *,
    window: pd.Timedelta = BOOT_LOOP_WINDOW,
    min_boots: int = BOOT_LOOP_MIN_BOOTS,
) -> pd.DataFrame:
    """Return one row per boot loop: `min_boots` or more boots of a device within `window`.

    Parameters
    ----------
    boots : DataFrame
        From `analysis.derive_boots`.
    window : Timedelta
        The span that the boots of a loop fall within.
    min_boots : int
        The number of boots that makes a loop.

    Returns
    -------
    DataFrame
        `EPISODE_COLUMNS`: device, first and last boot time, the number of boots and of
        reboots, the causes and reset reasons with counts (``brownout ×4``), the longest
        uptime seen in the loop in seconds and the firmware version of its first boot.

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> loops = detect_boot_loops(load_fleet(ensure_sample_database()).boots)
    >>> list(loops.columns[:4])
    ['device_id', 'start', 'end', 'boots']
    """
    _check_episode_options(window, min_boots)
    ordered = _sorted_boots(boots)
    in_loop = mark_boot_loops(ordered, window=window, min_boots=min_boots).to_numpy()
    episodes = _episodes(ordered, in_loop, window)
    logger.info("Found %d boot loops on %d devices", len(episodes),
                episodes["device_id"].nunique())
    return episodes


def detect_power_problems(
    boots: pd.DataFrame,
    *,
    max_uptime_s: float = POWER_PROBLEM_MAX_UPTIME_S,
    window: pd.Timedelta = BOOT_LOOP_WINDOW,
    min_boots: int = BOOT_LOOP_MIN_BOOTS,
) -> pd.DataFrame:
    """Return bursts of short POWERON or BROWNOUT boots, one row per burst.

    Parameters
    ----------
    boots : DataFrame
        From `analysis.derive_boots`.
    max_uptime_s : float
        A boot takes part only if its longest uptime seen is below this, in seconds. A boot
        whose uptime is unknown takes no part.
    window, min_boots
        A burst is `min_boots` or more such boots of one device within `window`.

    Returns
    -------
    DataFrame
        `EPISODE_COLUMNS`, as for `detect_boot_loops`, counting only the short power boots.
    """
    _check_episode_options(window, min_boots)
    ordered = _sorted_boots(boots)
    is_power = ordered["cause_class"].isin(POWER_CLASSES).to_numpy()
    is_short = (ordered["duration_s"].astype("float64") < max_uptime_s).to_numpy()
    candidates = ordered[is_power & is_short].reset_index(drop=True)

    in_burst = mark_boot_loops(candidates, window=window, min_boots=min_boots).to_numpy()
    episodes = _episodes(candidates, in_burst, window)
    logger.info("Found %d power problems on %d devices", len(episodes),
                episodes["device_id"].nunique())
    return episodes


def silent_devices(
    heartbeats: pd.DataFrame,
    *,
    as_of: pd.Timestamp | str | None = None,
    after: pd.Timedelta = SILENT_AFTER,
) -> pd.DataFrame:
    """Return the devices whose last heartbeat is older than `after` at `as_of`.

    Parameters
    ----------
    heartbeats : DataFrame
        From `analysis.load_heartbeats`.
    as_of : Timestamp or str, optional
        The moment of the check. Pass the window end (``fleet.end``) where the window has
        one. By default it is the latest heartbeat in `heartbeats`.
    after : Timedelta
        Silence longer than this makes a device silent.

    Returns
    -------
    DataFrame
        `SILENT_COLUMNS`: device, firmware version, time of and uptime at the last
        heartbeat, its reset reason and the silence up to `as_of`. Longest silence first.
    """
    timed = heartbeats[heartbeats["received_at"].notna()]
    if timed.empty:
        return pd.DataFrame(columns=list(SILENT_COLUMNS))
    reference = _as_utc(as_of) if as_of is not None else timed["received_at"].max()

    last = timed.sort_values(["device_id", "received_at"], kind="stable")
    last = last.groupby("device_id", sort=False).tail(1)
    table = pd.DataFrame({
        "device_id": last["device_id"].to_numpy(),
        "firmware_version": last["firmware_version"].to_numpy(),
        "last_seen": last["received_at"].to_numpy(),
        "silent_for": (reference - last["received_at"]).to_numpy(),
        "last_uptime_s": last["uptime_s"].to_numpy(),
        "last_reset_reason_name": last["reset_reason_name"].to_numpy(),
    })
    table["last_seen"] = pd.to_datetime(table["last_seen"], utc=True)
    silent = table[table["silent_for"] > after]
    return silent.sort_values(["silent_for", "device_id"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)


def count_labels(values: pd.Series) -> str:
    """Return the distinct values with their counts, most common first (``brownout ×3``).

    Missing values are left out. Equal counts keep the order of first appearance.

    Examples
    --------
    >>> count_labels(pd.Series(["panic", "brownout", "brownout"]))
    'brownout ×2, panic ×1'
    """
    counts = Counter(value for value in values if not pd.isna(value))
    return ", ".join(f"{value} ×{count}" for value, count in counts.most_common())


def _episodes(boots: pd.DataFrame, flagged: np.ndarray, window: pd.Timedelta) -> pd.DataFrame:
    """Group flagged boots into episodes: a new one starts on a new device or after a gap."""
    members = boots[flagged]
    if members.empty:
        return pd.DataFrame(columns=list(EPISODE_COLUMNS))
    # Firmware v1.0.0 reports no reset reason, which the episode shows rather than omits.
    reason = members["reset_reason_name"].astype(object)
    members = members.assign(reset_reason_label=reason.where(reason.notna(), NOT_REPORTED))
    device = members["device_id"]
    gap = members["boot_time"].diff()
    starts = device.ne(device.shift()) | (gap > window).fillna(True)
    grouped = members.groupby(starts.cumsum().to_numpy(), sort=True)

    episodes = pd.DataFrame({
        "device_id": grouped["device_id"].first(),
        "start": grouped["boot_time"].min(),
        "end": grouped["boot_time"].max(),
        "boots": grouped.size().astype(np.int64),
        "reboots": grouped["is_reboot"].sum().astype(np.int64),
        "causes": grouped["cause"].agg(count_labels),
        "reset_reasons": grouped["reset_reason_label"].agg(count_labels),
        "max_uptime_s": grouped["duration_s"].max().astype("float64"),
        "firmware_version": grouped["firmware_version"].first(),
    })
    return episodes[list(EPISODE_COLUMNS)].reset_index(drop=True)


def _sorted_boots(boots: pd.DataFrame) -> pd.DataFrame:
    timed = boots[boots["boot_time"].notna()]
    return timed.sort_values(["device_id", "boot_time"], kind="stable").reset_index(drop=True)


def _check_episode_options(window: pd.Timedelta, min_boots: int) -> None:
    if pd.Timedelta(window) <= pd.Timedelta(0) or int(min_boots) < 2:
        raise InvalidInputError(
            f"window={window!r} and min_boots={min_boots!r} cannot define an episode. Pass a "
            "positive window and at least 2 boots (the defaults are 10 minutes and 3 boots)"
        )


def _as_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
