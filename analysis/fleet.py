"""`load_fleet`: heartbeats, events, boots and the data-quality report in one call.

A `Fleet` is also the object a notebook explores: it renders as a summary table, narrows
in memory (`Fleet.between`, `Fleet.last`, `Fleet.firmware`, `Fleet.devices`) without going
back to the database, and opens one device's view with `Fleet.device`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import codes
from analysis.boots import derive_boots
from analysis.cache import FLEET_CACHE, file_identity, query_key
from analysis.errors import InvalidInputError
from analysis.events import expand_events
from analysis.heartbeats import load_heartbeats
from analysis.history import apply_history_check
from analysis.quality import DataQualityReport
from analysis.runner.window import parse_window
from analysis.selection import (
    UnknownDeviceError,
    UnknownFirmwareError,
    as_span,
    as_utc,
    check_device,
    earliest,
    flatten_names,
    latest,
    match_disconnect_reason,
    rows_in_window,
)
from analysis.versions import sort_versions

if TYPE_CHECKING:
    from analysis.device import DeviceView

logger = logging.getLogger(__name__)

@dataclass
class Fleet:
    """The three fleet tables and the anomalies met while building them.

    Attributes
    ----------
    heartbeats, events, boots : DataFrame
        As returned by `load_heartbeats`, `expand_events` and `derive_boots`.
    quality : DataQualityReport
        Every anomaly found, counted by kind with example heartbeat ids.
    source : str
        The database the tables came from.
    start, end : Timestamp or None
        The requested window (UTC); None where open.

    Examples
    --------
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database())
    >>> narrowed = fleet.firmware("1.1.0").between("2026-05-08", "2026-05-09")
    >>> set(narrowed.heartbeats["firmware_version"]) <= {"1.1.0"}
    True
    """

    heartbeats: pd.DataFrame
    events: pd.DataFrame
    boots: pd.DataFrame
    quality: DataQualityReport = field(default_factory=DataQualityReport)
    source: str = ""
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def __repr__(self) -> str:
        return (
            f"Fleet(source={self.source!r}, devices={self.heartbeats['device_id'].nunique()}, "
            f"heartbeats={len(self.heartbeats)}, events={len(self.events)}, "
            f"boots={len(self.boots)}, quality_checks={len(self.quality)})"
        )

    def _repr_html_(self) -> str:
        from analysis.display import fleet_html

        return fleet_html(self)

    @property
    def device_ids(self) -> list[str]:
        """Every device id in the fleet's tables, sorted."""
        seen = set(self.heartbeats["device_id"].dropna())
        seen.update(self.events["device_id"].dropna())
        seen.update(self.boots["device_id"].dropna())
        return sorted(str(device) for device in seen)

    @property
    def firmware_versions(self) -> list[str]:
        """Every firmware version the heartbeats report, oldest first."""
        versions = self.heartbeats["firmware_version"].dropna().unique()
        return sort_versions(str(version) for version in versions)

    def summary(self) -> dict[str, object]:
        """Return the headline counts of the fleet as a dict (as `_repr_html_` shows them).

        Returns
        -------
        dict
            ``source``, ``start``, ``end``, ``first_heartbeat``, ``last_heartbeat``,
            ``devices``, ``devices_with_diagnostics``, ``firmware_versions``,
            ``heartbeats``, ``events``, ``boots``, ``reboots``, ``unexpected_reboots``,
            ``devices_with_boot_loops`` and ``quality_problems`` (sum of the check counts).
        """
        heartbeats, boots = self.heartbeats, self.boots
        times = heartbeats["received_at"]
        with_diagnostics = heartbeats.loc[heartbeats["has_diagnostics"], "device_id"]
        quality = self.quality.to_frame()
        return {
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "first_heartbeat": times.min() if len(times) else None,
            "last_heartbeat": times.max() if len(times) else None,
            "devices": len(self.device_ids),
            "devices_with_diagnostics": int(with_diagnostics.nunique()),
            "firmware_versions": self.firmware_versions,
            "heartbeats": len(heartbeats),
            "events": len(self.events),
            "boots": len(boots),
            "reboots": int(boots["is_reboot"].sum()),
            "unexpected_reboots": int(boots["is_unexpected"].sum()),
            "devices_with_boot_loops": int(boots.loc[boots["is_boot_loop"], "device_id"]
                                           .nunique()),
            "quality_problems": int(quality["count"].sum()) if len(quality) else 0,
        }

    def between(self, start: object = None, end: object = None) -> Fleet:
        """Return the part of the fleet in the window [`start`, `end`), without a reload.

        Heartbeats are kept by ``received_at``, events by ``event_time`` and boots by
        ``boot_time``. Boots keep the causes derived from everything loaded, so a device's
        first boot inside the window is still a reboot when an earlier boot was loaded.
        Loading the window with `load_fleet` cannot know that earlier boot.

        Parameters
        ----------
        start, end : str, datetime or Timestamp, optional
            Bounds (UTC when no zone); None or ``""`` leaves a side as it is.

        Raises
        ------
        InvalidInputError
            If a bound is not a time, or `start` is not before `end`.
        """
        start_time, end_time = parse_window(start, end)
        return self._narrowed(
            rows_in_window(self.heartbeats, "received_at", start_time, end_time),
            rows_in_window(self.events, "event_time", start_time, end_time),
            rows_in_window(self.boots, "boot_time", start_time, end_time),
            start=latest(self.start, start_time),
            end=earliest(self.end, end_time),
        )

    def last(self, span: str | pd.Timedelta) -> Fleet:
        """Return the last `span` of the fleet: the window ending at the fleet's end.

        The end is the fleet's `end` when set, else the newest heartbeat (included), so that
        "the last day" of an old database means its last day of data, not the day before now.

        Parameters
        ----------
        span : str or Timedelta
            Length of the window, such as ``"7D"``, ``"24h"`` or ``pd.Timedelta(days=1)``.

        Raises
        ------
        InvalidInputError
            If `span` is not a positive duration.
        """
        length = as_span(span)
        if self.end is not None:
            return self.between(self.end - length, self.end)
        if self.heartbeats.empty:
            return self._narrowed(self.heartbeats, self.events, self.boots,
                                  start=self.start, end=self.end)
        # An open end stays open, so the newest heartbeat is kept.
        return self.between(self.heartbeats["received_at"].max() - length, None)

    def firmware(self, *versions: str | Iterable[str]) -> Fleet:
        """Return the rows of one or several firmware versions, like ``load_fleet(firmware=)``.

        Heartbeats and boots are kept by their ``firmware_version``; events by the version
        of the heartbeat that first carried them.

        Parameters
        ----------
        *versions : str or iterable of str
            ``fleet.firmware("1.1.0")``, ``fleet.firmware("1.0.0", "1.1.0")`` or
            ``fleet.firmware(["1.0.0", "1.1.0"])``.

        Raises
        ------
        UnknownFirmwareError
            If a version is not in the fleet; the message lists the versions it has.
        """
        wanted = flatten_names(versions)
        known = self.firmware_versions
        unknown = [version for version in wanted if version not in known]
        if not wanted or unknown:
            raise UnknownFirmwareError(
                f"firmware version(s) {', '.join(map(repr, unknown)) or 'none'} not in this "
                f"fleet; it has {', '.join(known) or 'no firmware versions'}"
            )
        narrowed = filter_firmware(self, wanted)
        narrowed.quality = copy.deepcopy(self.quality)
        return narrowed

    def devices(self, device_ids: str | Iterable[str]) -> Fleet:
        """Return the rows of the given devices.

        Raises
        ------
        UnknownDeviceError
            If an id is not in the fleet; the message offers close matches.
        """
        wanted = flatten_names([device_ids])
        if not wanted:
            raise UnknownDeviceError("devices() needs at least one device id")
        for device_id in wanted:
            check_device(device_id, self.device_ids)
        return self._narrowed(
            *(frame[frame["device_id"].isin(wanted)]
              for frame in (self.heartbeats, self.events, self.boots)),
            start=self.start,
            end=self.end,
        )

    def device(self, device_id: str) -> DeviceView:
        """Return one device's view: its tables, event log and timeline figure.

        Raises
        ------
        UnknownDeviceError
            If `device_id` is not in the fleet; the message offers close matches.

        Examples
        --------
        >>> from analysis.sample import ensure_sample_database
        >>> view = load_fleet(ensure_sample_database()).device("dc-0001")
        >>> view.device_id
        'dc-0001'
        """
        from analysis.device import DeviceView

        check_device(device_id, self.device_ids)
        tables = [frame[frame["device_id"] == device_id].reset_index(drop=True)
                  for frame in (self.heartbeats, self.events, self.boots)]
        return DeviceView(device_id, *tables, start=self.start, end=self.end)

    def device_summary(self) -> pd.DataFrame:
        """Return one row per device with its boots, unexpected reboots and lowest heap.

        See `analysis.device.summarize_devices`.
        """
        from analysis.device import summarize_devices

        return summarize_devices(self.heartbeats, self.events, self.boots)

    def wifi_down_events(self, reason: int | str | None = None) -> pd.DataFrame:
        """Return the EVT_WIFI_DOWN events, optionally of one disconnect reason or family.

        Parameters
        ----------
        reason : int or str, optional
            A code (``201``), a name with or without its prefix (``"NO_AP_FOUND"``,
            ``"WIFI_REASON_NO_AP_FOUND"``, ``"SILENT_DEATH"``) or a disconnect family
            (``"ap_not_found"``). None returns every Wi-Fi-down event.

        Raises
        ------
        InvalidInputError
            If `reason` matches no code, name or family.
        """
        down = self.events[self.events["tag"] == codes.EVT_WIFI_DOWN]
        if reason is None:
            return down.reset_index(drop=True)
        return down[match_disconnect_reason(down, reason)].reset_index(drop=True)

    def _narrowed(self, heartbeats, events, boots, *, start, end) -> Fleet:
        # A narrowed fleet gets its own copy of the report, so adding to one cannot change
        # the other; the report still describes the whole load.
        return Fleet(heartbeats.reset_index(drop=True), events.reset_index(drop=True),
                     boots.reset_index(drop=True), copy.deepcopy(self.quality),
                     self.source, start, end)


def load_fleet(
    db: str | Path,
    *,
    table: str = "heartbeats",
    start: object = None,
    end: object = None,
    devices: Iterable[str] | None = None,
    firmware: Iterable[str] | None = None,
    columns: Mapping[str, str] | None = None,
    cache: bool = True,
) -> Fleet:
    """Load heartbeats and derive the event and boot tables in one call.

    Parameters
    ----------
    db : str or Path
        SQLite file path or ``sqlite:///`` URL, opened read-only.
    table, start, end, devices, columns
        As for `load_heartbeats`.
    firmware : iterable of str, optional
        Keep only heartbeats, events and boots of these firmware versions. Boots and events
        are derived from all of a device's heartbeats first, so a boot that follows a
        filtered-out version keeps its true cause.
    cache : bool, default True
        Reuse the tables loaded earlier in this process for the same file contents and
        arguments (see `analysis.cache`); `analysis.cache.clear_cache` empties the cache.
        A reused load logs no new warnings; its data-quality report is the same.

    Returns
    -------
    Fleet
        Frames that the caller owns: changing them does not change the cache.

    Examples
    --------
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001", "dc-0002"])
    >>> sorted(fleet.heartbeats["device_id"].unique())
    ['dc-0001', 'dc-0002']
    """

    def read() -> Fleet:
        quality = DataQualityReport()
        heartbeats = load_heartbeats(db, table=table, start=start, end=end, devices=devices,
                                     columns=columns, quality=quality)
        # A table that lost history keeps only its sound values (see analysis.history).
        heartbeats = apply_history_check(heartbeats, quality)
        events = expand_events(heartbeats, quality=quality)
        boots = derive_boots(heartbeats, events, quality=quality)
        return Fleet(heartbeats, events, boots, quality, source=str(db),
                     start=as_utc(start, "start"), end=as_utc(end, "end"))

    key = _cache_key(db, table, start, end, devices, columns) if cache else None
    fleet = FLEET_CACHE.get_or_load(key, read)
    if firmware is not None:
        fleet = filter_firmware(fleet, firmware)
    return fleet


def filter_firmware(fleet: Fleet, versions: Iterable[str]) -> Fleet:
    """Return a `Fleet` with only the rows of the given firmware versions.

    Events keep the version of the heartbeat that first carried them.
    """
    wanted = [versions] if isinstance(versions, str) else list(versions)
    heartbeats = fleet.heartbeats[fleet.heartbeats["firmware_version"].isin(wanted)]
    carried = set(heartbeats["heartbeat_id"].dropna().astype(int))
    events = fleet.events[fleet.events["first_heartbeat_id"].isin(carried)]
    boots = fleet.boots[fleet.boots["firmware_version"].isin(wanted)]
    return Fleet(heartbeats.reset_index(drop=True), events.reset_index(drop=True),
                 boots.reset_index(drop=True), fleet.quality, fleet.source,
                 fleet.start, fleet.end)


def _cache_key(db, table, start, end, devices, columns) -> tuple | None:
    identity = file_identity(db)
    if identity is None:
        return None
    try:
        start_time, end_time = as_utc(start, "start"), as_utc(end, "end")
    except InvalidInputError:
        # Not cached, so the loader raises its own message for the bad bound.
        return None
    return identity, query_key(table=table, start=start_time, end=end_time,
                               devices=devices, columns=columns)
