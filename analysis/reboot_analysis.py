"""Reboot analysis: causes, the worst devices and what came before unexpected reboots.

Reboots are boots with ``is_reboot`` (every boot after a device's first observed one).
Tables keep the raw reset reason beside the cause, so ESP_RST_PANIC, ESP_RST_INT_WDT,
ESP_RST_TASK_WDT and ESP_RST_WDT stay apart although they share the class crash. The time
to an unexpected reboot (Kaplan–Meier) lives in `analysis.survival` and is re-exported here.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from analysis import codes
from analysis.boot_episodes import NOT_REPORTED, count_labels
from analysis.boots import heartbeat_boot_numbers
from analysis.errors import InvalidInputError
from analysis.survival import boot_lifetimes, kaplan_meier, median_survival, reboot_survival

logger = logging.getLogger(__name__)

__all__ = [
    "boot_lifetimes", "common_sequences", "event_labels", "events_before_reboots",
    "join_labels", "kaplan_meier", "median_survival", "reboot_causes", "reboot_classes",
    "reboot_survival", "reboots_by_device", "top_unexpected_devices",
]

EVENTS_BEFORE = 5
# Prefixes that the short event labels drop, because the tag already names the code table.
_NAME_PREFIXES = ("WIFI_REASON_", "ESP_RST_")
_TAGS_WITH_REASON = frozenset({codes.EVT_WIFI_DOWN, codes.EVT_BOOT, codes.EVT_REBOOT})


def reboot_causes(boots: pd.DataFrame) -> pd.DataFrame:
    """Count reboots by cause class, cause and raw reset reason.

    Parameters
    ----------
    boots : DataFrame
        From `analysis.derive_boots`.

    Returns
    -------
    DataFrame
        ``cause_class, cause, reset_reason_name, reboots, devices, share_pct,
        is_unexpected``, classes in `codes.CAUSE_CLASS_ORDER`, then by count. A reboot
        without a reset reason (firmware v1.0.0) shows ``not reported``. ``share_pct`` is the
        share of all reboots.
    """
    reboots = boots[boots["is_reboot"].astype(bool)]
    reset_name = reboots["reset_reason_name"].astype(object).where(
        reboots["reset_reason_name"].notna(), NOT_REPORTED)
    keys = ["cause_class", "cause", "reset_reason_name"]
    grouped = reboots.assign(reset_reason_name=reset_name).groupby(keys, sort=False)
    table = pd.DataFrame({"reboots": grouped.size(),
                          "devices": grouped["device_id"].nunique()}).reset_index()

    table["share_pct"] = _share(table["reboots"])
    table["is_unexpected"] = table["cause_class"].isin(codes.UNEXPECTED_CLASSES)
    table["_class_rank"] = table["cause_class"].map(_class_rank())
    table = table.sort_values(["_class_rank", "reboots", "cause", "reset_reason_name"],
                              ascending=[True, False, True, True], kind="stable")
    return table.drop(columns="_class_rank").reset_index(drop=True)


def reboot_classes(boots: pd.DataFrame) -> pd.DataFrame:
    """Count reboots by cause class, every class listed even when it has none.

    Returns
    -------
    DataFrame
        ``cause_class, reboots, devices, share_pct, is_unexpected`` in the order of
        `codes.CAUSE_CLASS_ORDER`.
    """
    reboots = boots[boots["is_reboot"].astype(bool)]
    grouped = reboots.groupby("cause_class", sort=False)
    order = list(codes.CAUSE_CLASS_ORDER)
    table = pd.DataFrame({
        "reboots": grouped.size().reindex(order, fill_value=0).astype(np.int64),
        "devices": grouped["device_id"].nunique().reindex(order, fill_value=0).astype(np.int64),
    }).rename_axis("cause_class").reset_index()
    table["share_pct"] = _share(table["reboots"])
    table["is_unexpected"] = table["cause_class"].isin(codes.UNEXPECTED_CLASSES)
    return table


def reboots_by_device(boots: pd.DataFrame) -> pd.DataFrame:
    """Return a device × cause table of reboot counts (devices with no reboot left out)."""
    reboots = boots[boots["is_reboot"].astype(bool)]
    counts = reboots.groupby(["device_id", "cause"], sort=True).size()
    return counts.unstack(fill_value=0).astype(np.int64).rename_axis(columns=None)


def top_unexpected_devices(
    boots: pd.DataFrame,
    hours: pd.DataFrame | None = None,
    *,
    top: int = 10,
) -> pd.DataFrame:
    """Return the devices with the most unexpected reboots.

    Parameters
    ----------
    boots : DataFrame
        From `analysis.derive_boots`.
    hours : DataFrame, optional
        Per-device device-hours from `analysis.exposure.device_hours`; adds the rate.
    top : int
        At most this many devices.

    Returns
    -------
    DataFrame
        ``device_id, unexpected_reboots, causes, first_reboot, last_reboot,
        firmware_versions`` and, with `hours`, ``device_hours, rate_per_1000h``. Most
        reboots first, ties by device id.
    """
    unexpected = boots[boots["is_unexpected"].astype(bool)]
    grouped = unexpected.groupby("device_id", sort=True)
    table = pd.DataFrame({
        "unexpected_reboots": grouped.size().astype(np.int64),
        "causes": grouped["cause"].agg(count_labels),
        "first_reboot": grouped["boot_time"].min(),
        "last_reboot": grouped["boot_time"].max(),
        "firmware_versions": grouped["firmware_version"].agg(count_labels),
    }).reset_index()
    if hours is not None:
        exposure = hours.groupby("device_id")["hours"].sum()
        table["device_hours"] = table["device_id"].map(exposure).astype("float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = table["unexpected_reboots"] / table["device_hours"] * 1000.0
        table["rate_per_1000h"] = rate.where(table["device_hours"] > 0)
    table = table.sort_values(["unexpected_reboots", "device_id"], ascending=[False, True],
                              kind="stable")
    return table.head(top).reset_index(drop=True)


def events_before_reboots(
    events: pd.DataFrame,
    boots: pd.DataFrame,
    heartbeats: pd.DataFrame,
    *,
    k: int = EVENTS_BEFORE,
) -> pd.DataFrame:
    """Return the last `k` events a device logged before each unexpected reboot.

    The boot is found in the event log through its EVT_BOOT event, and the events before
    it are taken in logging order, back to and including the EVT_BOOT of the boot before.
    A boot without an EVT_BOOT in the log (a wiped buffer, firmware v1.0.0) takes the
    events timed before its boot time instead.

    Parameters
    ----------
    events, boots, heartbeats : DataFrame
        The tables of one `analysis.Fleet`.
    k : int
        The number of events to keep per reboot.

    Returns
    -------
    DataFrame
        ``device_id, boot_time, firmware_version, cause, reset_reason_name, events,
        sequence``: one row per unexpected reboot. ``sequence`` reads like
        ``EVT_WIFI_DOWN NO_AP_FOUND → EVT_HEARTBEAT_MISS ×3 → EVT_REBOOT HEARTBEAT_MISS``
        (repeats of one label merged) and is empty when no event came before.
    """
    if k < 1:
        raise InvalidInputError(f"k={k!r} is invalid. Pass the number of events to show, 1 or more")
    unexpected = boots[boots["is_unexpected"].astype(bool) & boots["boot_time"].notna()]
    unexpected = unexpected.reset_index(drop=True)
    ordered = events.sort_values(["device_id", "sequence"], kind="stable").reset_index(drop=True)
    cut = _cut_positions(unexpected, ordered, heartbeats)
    low = _window_starts(ordered, unexpected["device_id"], cut, k)

    spans = [range(int(lo), int(hi)) if not np.isnan(hi) else range(0)
             for lo, hi in zip(low, cut, strict=True)]
    needed = sorted({position for span in spans for position in span})
    label_of = dict(zip(needed, event_labels(ordered.iloc[needed]), strict=True))
    picked = [[label_of[position] for position in span] for span in spans]
    table = unexpected[["device_id", "boot_time", "firmware_version", "cause",
                        "reset_reason_name"]].copy()
    table["events"] = np.array([len(run) for run in picked], dtype=np.int64)
    table["sequence"] = [join_labels(run) for run in picked]
    return table


def common_sequences(before: pd.DataFrame, *, top: int = 10) -> pd.DataFrame:
    """Group the output of `events_before_reboots` into its most common sequences.

    Returns
    -------
    DataFrame
        ``sequence, reboots, devices, causes, share_pct``: most reboots first. A reboot with
        no event before it shows the sequence ``(no events)``.
    """
    sequence = before["sequence"].where(before["sequence"] != "", "(no events)")
    grouped = before.assign(sequence=sequence).groupby("sequence", sort=False)
    table = pd.DataFrame({
        "reboots": grouped.size().astype(np.int64),
        "devices": grouped["device_id"].nunique().astype(np.int64),
        "causes": grouped["cause"].agg(count_labels),
    }).reset_index()
    table["share_pct"] = _share(table["reboots"])
    table = table.sort_values(["reboots", "sequence"], ascending=[False, True], kind="stable")
    return table.head(top).reset_index(drop=True)


def event_labels(events: pd.DataFrame) -> pd.Series:
    """Label events for sequences: the tag plus the reason, status or errno that matters.

    EVT_WIFI_DOWN adds its Wi-Fi reason, EVT_BOOT its reset reason, EVT_REBOOT its firmware
    reason and EVT_HTTP_FAIL its HTTP status or errno. Values that change with every event
    (RSSI, miss counters, elapsed ms) are left out so that equal situations read alike.

    Examples
    --------
    >>> frame = pd.DataFrame({"tag": [3, 6], "tag_name": ["EVT_WIFI_DOWN", "EVT_HEARTBEAT_MISS"],
    ...                       "reason_name": ["WIFI_REASON_NO_AP_FOUND", None],
    ...                       "http_status": [None, None], "errno": [None, None]})
    >>> event_labels(frame).tolist()
    ['EVT_WIFI_DOWN NO_AP_FOUND', 'EVT_HEARTBEAT_MISS']
    """
    columns = [events[name].astype(object).to_numpy()
               for name in ("tag", "tag_name", "reason_name", "http_status", "errno")]
    labels = [_event_label(*values) for values in zip(*columns, strict=True)]
    return pd.Series(labels, index=events.index, dtype=object)


def _event_label(tag: object, name: object, reason: object, status: object,
                 errno: object) -> str:
    label = str(name)
    if tag in _TAGS_WITH_REASON and not pd.isna(reason):
        text = str(reason)
        for prefix in _NAME_PREFIXES:
            text = text.removeprefix(prefix)
        return f"{label} {text}"
    if tag == codes.EVT_HTTP_FAIL and not pd.isna(status):
        return f"{label} {int(status)}"
    if tag == codes.EVT_HTTP_FAIL and not pd.isna(errno):
        return f"{label} errno {int(errno)}"
    return label


def join_labels(labels: pd.Series) -> str:
    """Join labels with arrows, merging runs of one label into ``label ×n``.

    Examples
    --------
    >>> join_labels(pd.Series(["A", "B", "B", "B", "C"]))
    'A → B ×3 → C'
    """
    parts: list[str] = []
    previous, run = None, 0
    for label in list(labels) + [None]:
        if label == previous:
            run += 1
            continue
        if previous is not None:
            parts.append(previous if run == 1 else f"{previous} ×{run}")
        previous, run = label, 1
    return " → ".join(parts)


def _cut_positions(
    boots: pd.DataFrame, ordered: pd.DataFrame, heartbeats: pd.DataFrame
) -> np.ndarray:
    """Return, per boot, the position in `ordered` events where its story ends (exclusive).

    That is the boot's own EVT_BOOT where the log has it. Otherwise it is just after the
    latest event timed before the boot. NaN where the device has no such event.
    """
    if ordered.empty or boots.empty:
        return np.full(len(boots), np.nan)
    position = pd.Series(np.arange(len(ordered)),
                         index=pd.MultiIndex.from_frame(ordered[["device_id", "sequence"]]))
    sequence = _boot_event_sequences(boots, ordered, heartbeats)
    has_sequence = ~np.isnan(sequence)
    key = pd.MultiIndex.from_arrays([boots["device_id"].to_numpy()[has_sequence],
                                     sequence[has_sequence].astype(np.int64)])
    cut = np.full(len(boots), np.nan)
    cut[has_sequence] = position.reindex(key).to_numpy(dtype="float64")

    timed = ordered[ordered["event_time"].notna()]
    right = pd.DataFrame({"device_id": timed["device_id"].to_numpy(),
                          "time": pd.to_datetime(timed["event_time"], utc=True).to_numpy(),
                          "position": np.arange(len(ordered))[ordered["event_time"].notna()]})
    left = pd.DataFrame({"device_id": boots["device_id"].to_numpy(),
                         "time": pd.to_datetime(boots["boot_time"], utc=True).to_numpy(),
                         "row": np.arange(len(boots))})
    found = pd.merge_asof(left.sort_values("time"), right.sort_values("time"), on="time",
                          by="device_id", direction="backward", allow_exact_matches=False)
    after_latest = pd.Series(found["position"].to_numpy(dtype="float64") + 1,
                             index=found["row"].to_numpy()).sort_index().to_numpy()
    return np.where(np.isnan(cut), after_latest, cut)


def _window_starts(
    ordered: pd.DataFrame, device: pd.Series, cut: np.ndarray, k: int
) -> np.ndarray:
    """Return where each window of at most `k` events before `cut` starts.

    A window stays inside the device's events and starts no earlier than the device's last
    EVT_BOOT before `cut`, because older events belong to the story of another boot.
    """
    positions = np.arange(len(ordered))
    first_of_device = ordered.groupby("device_id", sort=False)["sequence"].head(1)
    device_first = pd.Series(first_of_device.index.to_numpy(),
                             index=ordered.loc[first_of_device.index, "device_id"].to_numpy())
    last_boot = np.maximum.accumulate(
        np.where(ordered["tag"].eq(codes.EVT_BOOT).to_numpy(), positions, -1)
    ) if len(ordered) else positions

    start = device.map(device_first).to_numpy(dtype="float64")
    has_cut = ~np.isnan(cut) & ~np.isnan(start)
    low = np.full(len(cut), np.nan)
    end = cut[has_cut].astype(np.int64)
    boot_before = np.where(end > 0, last_boot[np.maximum(end - 1, 0)], -1)
    low[has_cut] = np.maximum.reduce([end - k, start[has_cut].astype(np.int64), boot_before])
    return np.where(has_cut, np.minimum(low, cut), cut)


def _boot_event_sequences(
    boots: pd.DataFrame, events: pd.DataFrame, heartbeats: pd.DataFrame
) -> np.ndarray:
    """Return the sequence of each boot's EVT_BOOT event, NaN where the log has none.

    A boot seen by heartbeats owns the EVT_BOOT that a heartbeat of the same boot carried as
    its current boot. A boot seen only as an event owns the EVT_BOOT of the same device and
    time, and boots at one time pair with events at that time in order.
    """
    boot_events = events[events["tag"] == codes.EVT_BOOT]
    sequence = np.full(len(boots), np.nan)
    if boot_events.empty or boots.empty:
        return sequence

    first_of_boot = _first_heartbeat_of_boot(heartbeats)
    current = boot_events[boot_events["boot_offset"] == 0]
    owner = current["first_heartbeat_id"].map(first_of_boot)
    by_heartbeat = pd.Series(current["sequence"].to_numpy(), index=owner.to_numpy())
    by_heartbeat = by_heartbeat[~by_heartbeat.index.duplicated(keep="first")]
    from_heartbeat = boots["first_heartbeat_id"].map(by_heartbeat).to_numpy(dtype="float64")
    sequence = np.where(boots["source"].eq("event").to_numpy(), np.nan, from_heartbeat)

    earlier = boot_events[boot_events["boot_offset"] > 0]
    by_time = pd.Series(earlier["sequence"].to_numpy(),
                        index=_occurrence_key(earlier["device_id"], earlier["event_time"]))
    only_events = boots[boots["source"].eq("event")]
    found = by_time.reindex(_occurrence_key(only_events["device_id"], only_events["boot_time"]))
    sequence[np.flatnonzero(boots["source"].eq("event").to_numpy())] = found.to_numpy(
        dtype="float64")
    return sequence


def _first_heartbeat_of_boot(heartbeats: pd.DataFrame) -> pd.Series:
    ordered = heartbeats.reset_index(drop=True)
    numbers = heartbeat_boot_numbers(ordered)
    first = ordered.groupby(numbers)["heartbeat_id"].transform("first")
    return pd.Series(first.to_numpy(), index=ordered["heartbeat_id"].to_numpy())


def _occurrence_key(device: pd.Series, time: pd.Series) -> pd.MultiIndex:
    """Key (device, time, n) where n counts earlier rows with the same device and time."""
    frame = pd.DataFrame({"device": device.to_numpy(),
                          "time": pd.to_datetime(time.to_numpy(), utc=True)})
    frame["n"] = frame.groupby(["device", "time"], sort=False).cumcount()
    return pd.MultiIndex.from_frame(frame)


def _share(counts: pd.Series) -> pd.Series:
    total = counts.sum()
    return (100.0 * counts / total) if total else counts.astype("float64") * np.nan


def _class_rank() -> dict[str, int]:
    return {name: rank for rank, name in enumerate(codes.CAUSE_CLASS_ORDER)}
