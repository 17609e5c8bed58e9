"""`load_fleet`: heartbeats, events, boots and the data-quality report in one call."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.boots import derive_boots
from analysis.events import expand_events
from analysis.heartbeats import load_heartbeats
from analysis.quality import DataQualityReport

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


def load_fleet(
    db: str | Path,
    *,
    table: str = "heartbeats",
    start: object = None,
    end: object = None,
    devices: Iterable[str] | None = None,
    firmware: Iterable[str] | None = None,
    columns: Mapping[str, str] | None = None,
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

    Returns
    -------
    Fleet

    Examples
    --------
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001", "dc-0002"])
    >>> sorted(fleet.heartbeats["device_id"].unique())
    ['dc-0001', 'dc-0002']
    """
    quality = DataQualityReport()
    heartbeats = load_heartbeats(db, table=table, start=start, end=end, devices=devices,
                                 columns=columns, quality=quality)
    events = expand_events(heartbeats, quality=quality)
    boots = derive_boots(heartbeats, events, quality=quality)
    fleet = Fleet(heartbeats, events, boots, quality, source=str(db),
                  start=_as_utc(start), end=_as_utc(end))
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


def _as_utc(value: object) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
