"""One device's view: its tables, a decoded event log, the events before each reboot.

`Fleet.device` returns a `DeviceView`. The event log lists the device's ring-buffer events
once each, in the order the firmware logged them, which is the order to read when asking
"what happened before that reboot?". Event times can be estimates (see
`analysis.events`), so the log shows where each time came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.boots import BOOT_LOOP_WINDOW
from analysis.events import TIME_FROM_TS
from analysis.versions import sort_versions

logger = logging.getLogger(__name__)

LOG_COLUMNS = ("sequence", "time", "time_source", "tag", "detail", "first_heartbeat_id")
EVENTS_BEFORE_REBOOT = 8
DRILLDOWN_DEVICES = 3
BOOT_TABLE_COLUMNS = (
    "boot_time", "firmware_version", "cause", "cause_class", "reset_reason_name",
    "reboot_reason_name", "is_boot_loop", "duration_s", "heartbeats", "last_heap_min_free",
    "source",
)
# How far an EVT_BOOT event's time may lie from the boot's time and still be that boot's
# event: both come from the same received_at - uptime unless the event carries a ts.
BOOT_EVENT_TOLERANCE = pd.Timedelta(seconds=5)
TAG_WIDTH = max(len(name) for name in codes.EVENT_TAGS.values())
SOURCE_WIDTH = len("estimated_unsynced")


@dataclass(frozen=True)
class DeviceView:
    """The heartbeats, events and boots of one device, with readable views of them.

    Attributes
    ----------
    device_id : str
        The device.
    heartbeats, events, boots : DataFrame
        The device's rows of the fleet tables, in the same columns and order.
    start, end : Timestamp or None
        The fleet's window (UTC); None where open.
    """

    device_id: str
    heartbeats: pd.DataFrame
    events: pd.DataFrame
    boots: pd.DataFrame
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def __repr__(self) -> str:
        return (f"DeviceView({self.device_id!r}, heartbeats={len(self.heartbeats)}, "
                f"events={len(self.events)}, boots={len(self.boots)})")

    def _repr_html_(self) -> str:
        from analysis.display import device_html

        return device_html(self)

    def summary(self) -> dict[str, object]:
        """Return the device's headline counts: heartbeats, boots, reboots, lowest heap."""
        times = self.heartbeats["received_at"]
        versions = self.heartbeats["firmware_version"].dropna().unique()
        lowest = self.heartbeats["heap_min_free"].min()
        return {
            "device_id": self.device_id,
            "first_heartbeat": times.min() if len(times) else None,
            "last_heartbeat": times.max() if len(times) else None,
            "firmware_versions": sort_versions(str(version) for version in versions),
            "heartbeats": len(self.heartbeats),
            "events": len(self.events),
            "boots": len(self.boots),
            "reboots": int(self.boots["is_reboot"].sum()),
            "unexpected_reboots": int(self.boots["is_unexpected"].sum()),
            "boot_loop_boots": int(self.boots["is_boot_loop"].sum()),
            "lowest_heap_min_free": None if pd.isna(lowest) else int(lowest),
        }

    def log(self) -> pd.DataFrame:
        """Return the decoded event log: one row per event, in the order it was logged.

        Returns
        -------
        DataFrame
            Columns `LOG_COLUMNS`: ``time`` (UTC), ``time_source`` (``ts`` or how it was
            estimated), ``tag`` (the EVT_* name) and ``detail`` (decoded d0 and d1).
        """
        return event_log(self.events)

    def log_text(self, *, limit: int | None = None) -> str:
        """Return the event log as text, one line per event, like a system log.

        Times estimated from uptime carry a ``~``. `limit` keeps the last `limit` lines.
        """
        return format_log(self.log(), device_id=self.device_id, limit=limit,
                          has_diagnostics=bool(self.heartbeats["has_diagnostics"].any()))

    def events_before_reboots(
        self, count: int = EVENTS_BEFORE_REBOOT, *, unexpected_only: bool = True
    ) -> pd.DataFrame:
        """Return the last `count` events logged before each unexpected reboot.

        Of a boot loop only the first boot is kept, because before each later boot of the
        loop the device logged little more than the loop's own EVT_BOOT events.

        Parameters
        ----------
        count : int
            Events kept per reboot.
        unexpected_only : bool
            False takes every reboot, planned ones included.

        Returns
        -------
        DataFrame
            As `events_before_boots`.
        """
        wanted = self.boots["is_unexpected"] if unexpected_only else self.boots["is_reboot"]
        boots = self.boots[wanted & ~_later_boot_of_loop(self.boots)]
        return events_before_boots(boots, self.events, count=count)

    def boot_loops(self) -> pd.DataFrame:
        """Return the device's boot loops, one row each; see `boot_loop_episodes`."""
        return boot_loop_episodes(self.boots)

    def timeline(self, **options: object) -> Figure:
        """Draw the device's timeline; `options` go to `analysis.timeline.plot_timeline`."""
        from analysis.timeline import plot_timeline

        return plot_timeline(self, **options)


def event_log(events: pd.DataFrame) -> pd.DataFrame:
    """Return `events` as a decoded log with the columns `LOG_COLUMNS`, in logging order."""
    ordered = events.sort_values(["device_id", "sequence"], kind="stable")
    log = pd.DataFrame({
        "sequence": ordered["sequence"].to_numpy(),
        "time": ordered["event_time"].to_numpy(),
        "time_source": ordered["time_source"].to_numpy(),
        "tag": ordered["tag_name"].to_numpy(),
        "detail": ordered["detail"].to_numpy(),
        "first_heartbeat_id": ordered["first_heartbeat_id"].to_numpy(),
    })
    log["time"] = pd.to_datetime(log["time"], utc=True)
    if "device_id" in events and events["device_id"].nunique() > 1:
        log.insert(0, "device_id", ordered["device_id"].to_numpy())
    return log


def format_log(
    log: pd.DataFrame, *, device_id: str = "", limit: int | None = None,
    has_diagnostics: bool = True,
) -> str:
    """Render an `event_log` frame as text lines: time, time source, tag, detail.

    Examples
    --------
    >>> log = pd.DataFrame({"sequence": [0], "time": [pd.Timestamp("2026-05-01 10:00:15Z")],
    ...                     "time_source": ["ts"], "tag": ["EVT_WIFI_UP"],
    ...                     "detail": ["RSSI -70 dBm"], "first_heartbeat_id": [7]})
    >>> print(format_log(log))
     2026-05-01 10:00:15  ts                  EVT_WIFI_UP         RSSI -70 dBm
    """
    if log.empty:
        subject = f"device {device_id}" if device_id else "these devices"
        reason = ("its firmware sends no event log" if not has_diagnostics
                  else "none in the window")
        return f"no events for {subject}: {reason}"
    selected = log if limit is None else log.tail(limit)
    marks = np.where(selected["time_source"] == TIME_FROM_TS, " ", "~")
    times = selected["time"].dt.strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"{mark}{time}  {source:<{SOURCE_WIDTH}}  {tag:<{TAG_WIDTH}}  {detail}"
        for mark, time, source, tag, detail in zip(
            marks, times, selected["time_source"], selected["tag"], selected["detail"], strict=True)
    ]
    return "\n".join(lines)


def events_before_boots(
    boots: pd.DataFrame, events: pd.DataFrame, *, count: int = EVENTS_BEFORE_REBOOT
) -> pd.DataFrame:
    """Return, for each boot, the last `count` events the device logged before it.

    A boot is matched to its EVT_BOOT event, the device's EVT_BOOT nearest in time within
    `BOOT_EVENT_TOLERANCE`, and the events logged before that one (by ``sequence``) are
    taken. A boot without an EVT_BOOT (firmware without the event log, or a lost event)
    takes the events whose time is before the boot's time.

    Parameters
    ----------
    boots : DataFrame
        Rows of the boot table, such as the unexpected reboots.
    events : DataFrame
        The event table of the same devices.
    count : int
        Events kept per boot.

    Returns
    -------
    DataFrame
        One row per (boot, event): ``device_id``, ``boot_time``, ``cause``,
        ``cause_class``, ``position`` (-1 for the last event before the boot, -2 before
        it, ...) and the `LOG_COLUMNS` of the event. Boots with no earlier event are left
        out.
    """
    columns = ["device_id", "boot_time", "cause", "cause_class", "position", *LOG_COLUMNS]
    if boots.empty or events.empty:
        return pd.DataFrame(columns=columns)

    matched = _boot_event_sequence(boots, events)
    pieces = []
    for boot, boot_sequence in zip(boots.itertuples(index=False), matched, strict=True):
        device_events = events[events["device_id"] == boot.device_id]
        if pd.notna(boot_sequence):
            earlier = device_events[device_events["sequence"] < boot_sequence]
        else:
            earlier = device_events[device_events["event_time"] < boot.boot_time]
        log = event_log(earlier.tail(count)).drop(columns="device_id", errors="ignore")
        if log.empty:
            continue
        log.insert(0, "position", np.arange(-len(log), 0))
        for name in ("cause_class", "cause", "boot_time", "device_id"):
            log.insert(0, name, getattr(boot, name))
        pieces.append(log)
    if not pieces:
        return pd.DataFrame(columns=columns)
    return pd.concat(pieces, ignore_index=True)[columns]


def _boot_event_sequence(boots: pd.DataFrame, events: pd.DataFrame) -> list[object]:
    """Return the sequence of each boot's EVT_BOOT event, or NA where none lies close."""
    boot_events = events.loc[events["tag"] == codes.EVT_BOOT,
                             ["device_id", "event_time", "sequence"]]
    left = boots[["device_id", "boot_time"]].reset_index(drop=True)
    left["row"] = np.arange(len(left))
    left["boot_time"] = pd.to_datetime(left["boot_time"], utc=True).dt.as_unit("ns")
    right = boot_events.rename(columns={"event_time": "boot_time"})
    right["boot_time"] = right["boot_time"].dt.as_unit("ns")
    # merge_asof needs one dtype for the "by" key; the tables may hold str or object ids.
    left["device_id"] = left["device_id"].astype(object)
    right["device_id"] = right["device_id"].astype(object)
    matched = pd.merge_asof(
        left.sort_values("boot_time"), right.sort_values("boot_time"),
        on="boot_time", by="device_id", direction="nearest",
        tolerance=BOOT_EVENT_TOLERANCE,
    )
    return matched.sort_values("row")["sequence"].tolist()


def boot_loop_episodes(boots: pd.DataFrame) -> pd.DataFrame:
    """Group the boots flagged ``is_boot_loop`` into episodes, one row per loop.

    Boots of one device belong to the same episode while each follows the previous one
    within `analysis.boots.BOOT_LOOP_WINDOW`.

    Returns
    -------
    DataFrame
        ``device_id``, ``start`` and ``end`` (first and last boot time), ``boots``,
        ``causes`` (each cause with its count, most frequent first) and ``reset_reasons``
        (the same for the reset reason names).
    """
    columns = ["device_id", "start", "end", "boots", "causes", "reset_reasons"]
    looping = boots[boots["is_boot_loop"]].sort_values(["device_id", "boot_time"])
    if looping.empty:
        return pd.DataFrame(columns=columns)

    same_device = looping["device_id"].eq(looping["device_id"].shift())
    close = looping["boot_time"].diff() <= BOOT_LOOP_WINDOW
    episode = (~(same_device & close)).cumsum()
    grouped = looping.groupby(episode.to_numpy(), sort=True)
    return pd.DataFrame({
        "device_id": grouped["device_id"].first(),
        "start": grouped["boot_time"].min(),
        "end": grouped["boot_time"].max(),
        "boots": grouped.size(),
        "causes": grouped["cause"].agg(_count_text),
        "reset_reasons": grouped["reset_reason_name"].agg(_count_text),
    }).reset_index(drop=True)[columns]


def summarize_devices(
    heartbeats: pd.DataFrame, events: pd.DataFrame, boots: pd.DataFrame
) -> pd.DataFrame:
    """Return one row per device: what it runs, how often it rebooted, how low its heap got.

    Returns
    -------
    DataFrame
        ``device_id``, ``firmware_version`` (of its last heartbeat), ``heartbeats``,
        ``first_heartbeat``, ``last_heartbeat``, ``boots``, ``reboots``,
        ``unexpected_reboots``, ``boot_loop_boots``, ``lowest_heap_min_free`` and
        ``wifi_down_events``; most unexpected reboots first, then by device id.
    """
    by_heartbeat = heartbeats.groupby("device_id", sort=True)
    by_boot = boots.groupby("device_id", sort=True)
    down = events[events["tag"] == codes.EVT_WIFI_DOWN].groupby("device_id").size()
    summary = pd.DataFrame({
        "firmware_version": by_heartbeat["firmware_version"].last(),
        "heartbeats": by_heartbeat.size(),
        "first_heartbeat": by_heartbeat["received_at"].min(),
        "last_heartbeat": by_heartbeat["received_at"].max(),
        "boots": by_boot.size(),
        "reboots": by_boot["is_reboot"].sum(),
        "unexpected_reboots": by_boot["is_unexpected"].sum(),
        "boot_loop_boots": by_boot["is_boot_loop"].sum(),
        "lowest_heap_min_free": by_heartbeat["heap_min_free"].min(),
        "wifi_down_events": down,
    })
    counts = ["heartbeats", "boots", "reboots", "unexpected_reboots", "boot_loop_boots",
              "wifi_down_events"]
    summary[counts] = summary[counts].fillna(0).astype(np.int64)
    summary = summary.rename_axis("device_id").reset_index()
    return summary.sort_values(["unexpected_reboots", "device_id"],
                               ascending=[False, True], kind="stable").reset_index(drop=True)


def drilldown_devices(
    summary: pd.DataFrame, requested: list[str], *, limit: int = DRILLDOWN_DEVICES
) -> list[str]:
    """Return the devices a drill-down report shows: those requested, else the worst.

    Parameters
    ----------
    summary : DataFrame
        From `summarize_devices` (or `Fleet.device_summary`).
    requested : list of str
        Device ids asked for; those with no data in `summary` are left out.
    limit : int
        Without a request, up to this many devices with unexpected reboots are taken,
        most unexpected reboots first.
    """
    present = set(summary["device_id"])
    if requested:
        return [device for device in requested if device in present]
    worst = summary[summary["unexpected_reboots"] > 0]
    return worst["device_id"].head(limit).tolist()


def drilldown_figures(views: list[DeviceView]) -> dict[str, object]:
    """Return the headline figures of a drill-down: per device boots, reboots and loops."""
    figures: dict[str, object] = {"devices": [view.device_id for view in views]}
    for view in views:
        summary = view.summary()
        figures[view.device_id] = {
            "boots": summary["boots"],
            "unexpected_reboots": summary["unexpected_reboots"],
            "boot_loops": len(view.boot_loops()),
            "events": summary["events"],
            "lowest_heap_min_free": summary["lowest_heap_min_free"],
        }
    return figures


def describe_drilldown(
    views: list[DeviceView], requested: list[str], window: str, *, devices_in_window: int
) -> str:
    """Return the drill-down's opening summary in words, one sentence per device.

    Parameters
    ----------
    views : list of DeviceView
        The devices shown.
    requested : list of str
        The device ids asked for (empty when the report chose the worst devices).
    window : str
        The window in words, such as `analysis.notebook.describe_window` returns.
    devices_in_window : int
        Devices with data in the loaded window; 0 gives a hint to widen the selection.
    """
    if devices_in_window == 0:
        return (f"Drill-down of {window}: no heartbeat matched. Widen the window with "
                "--since and --until, or check the --device and --firmware options.")
    missing = [device for device in requested if device not in {v.device_id for v in views}]
    lines = [f"Drill-down of {window}."]
    if missing:
        lines.append(f"No data in the window for {', '.join(missing)}.")
    if not views:
        lines.append("No device to show: no device had an unexpected reboot in the window."
                     if not requested else "None of the requested devices has data here.")
        return " ".join(lines)
    if not requested:
        lines.append(f"No device was requested, so the {len(views)} with the most unexpected "
                     "reboots are shown.")
    return " ".join(lines) + "\n\n" + "\n".join(f"- {_device_sentence(v)}" for v in views)


def _device_sentence(view: DeviceView) -> str:
    summary = view.summary()
    unexpected = view.boots[view.boots["is_unexpected"]]
    causes = _count_text(unexpected["cause"])
    sentence = (f"{view.device_id}: {summary['boots']} boots, "
                f"{summary['unexpected_reboots']} unexpected reboots"
                + (f" ({causes})" if causes else ""))
    for loop in view.boot_loops().itertuples(index=False):
        seconds = (loop.end - loop.start).total_seconds()
        sentence += (f"; a boot loop of {loop.boots} boots in {seconds:.0f} s from "
                     f"{loop.start:%Y-%m-%d %H:%M:%S} UTC")
    return sentence + "."


def _later_boot_of_loop(boots: pd.DataFrame) -> pd.Series:
    """Flag boot-loop boots that follow another boot of the same loop (boots sorted by time)."""
    previous_in_loop = boots["is_boot_loop"].shift(fill_value=False).astype(bool)
    close = boots["boot_time"].diff() <= BOOT_LOOP_WINDOW
    same_device = boots["device_id"].eq(boots["device_id"].shift())
    return boots["is_boot_loop"] & previous_in_loop & close & same_device


def _count_text(values: pd.Series) -> str:
    counts = values.dropna().astype(str).value_counts()
    return ", ".join(f"{name} ({count})" for name, count in counts.items())
