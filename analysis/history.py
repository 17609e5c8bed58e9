"""Detect heartbeat tables that lost diagnostic history, and keep only what is still sound.

Two table shapes lose history:

- **One row per device**: the server upserts by device id, so only each device's newest
  heartbeat is stored.
- **Overwritten**: one row per heartbeat, but the server stores the diagnostics with
  ``UPDATE heartbeats SET <diagnostics> WHERE device_id = ?``. That statement gives every
  earlier row of the device the newest values, so every row of a device carries identical
  diagnostics (``recent_events`` included) while its uptime varies, and any trend looks flat.

Uptime and receive times are written once per row in both shapes, so they stay sound, and
so does each device's newest ring buffer. `apply_history_check` (run by `load_fleet`)
records the shape in the data-quality report, raises a `HistoryOverwrittenWarning` and sets
the diagnostics of a device's older rows to missing, so that no report presents them as a
trend. `history_notice` gives reports the sentence to show at the top.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import codes
from analysis.errors import HistoryOverwrittenWarning
from analysis.event_parsing import parse_event_lists
from analysis.events import EARLIEST_PLAUSIBLE_TS
from analysis.quality import DataQualityReport

if TYPE_CHECKING:
    from analysis.fleet import Fleet

logger = logging.getLogger(__name__)

SOUND = "sound"
ONE_ROW_PER_DEVICE = "one_row_per_device"
OVERWRITTEN = "overwritten"
CHECK_BY_SHAPE = {ONE_ROW_PER_DEVICE: "history_one_row_per_device",
                  OVERWRITTEN: "history_overwritten"}

# The diagnostics that the server's UPDATE overwrites, and the columns decoded from them.
OVERWRITTEN_COLUMNS = (
    "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
)
DECODED_COLUMNS = ("reset_reason_name", "disconnect_reason_name", "disconnect_family")

# A device is judged only with this many rows, varying uptime and a non-empty ring buffer.
MIN_ROWS_TO_JUDGE = 3
# A table where each of this many devices has one row is taken as one row per device.
# NOTE: a window shorter than the heartbeat interval looks the same. The verdict is only
# sure on a load without --since or --until.
MIN_DEVICES_ONE_ROW = 10
# Seconds of jitter allowed between an event's ts or up and its heartbeat's time or uptime.
CLOCK_SLACK_S = 2

_EMPTY_LIST = r"^\s*\[\s*\]\s*$"


@dataclass(frozen=True)
class HistoryVerdict:
    """Whether the heartbeat table kept each heartbeat's own diagnostics.

    Attributes
    ----------
    shape : {"sound", "one_row_per_device", "overwritten"}
        The table shape found.
    devices : tuple of str
        Devices whose history is lost: every device for ``one_row_per_device``, the devices
        whose rows carry one set of diagnostics for ``overwritten``.
    judged_devices : int
        Devices with enough rows and a ring buffer to show overwriting (see
        `MIN_ROWS_TO_JUDGE`); for ``one_row_per_device``, the number of devices.
    stale_heartbeat_ids : ndarray of int
        Heartbeats whose stored diagnostics belong to a later heartbeat.
    """

    shape: str
    devices: tuple[str, ...] = ()
    judged_devices: int = 0
    stale_heartbeat_ids: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False
    )

    @property
    def is_lost(self) -> bool:
        """True when the table lost history."""
        return self.shape != SOUND

    def describe(self) -> str:
        """Return the verdict as one sentence for the data-quality report."""
        if self.shape == ONE_ROW_PER_DEVICE:
            return (f"each of {len(self.devices)} devices has a single row, so only its newest "
                    "heartbeat is stored")
        if self.shape == OVERWRITTEN:
            return (f"{len(self.devices)} of {self.judged_devices} devices with ring buffers "
                    "carry one set of diagnostics on every row; "
                    f"{len(self.stale_heartbeat_ids)} older rows set to missing")
        return f"each heartbeat keeps its own diagnostics ({self.judged_devices} devices judged)"


def detect_lost_history(heartbeats: pd.DataFrame) -> HistoryVerdict:
    """Find out whether a heartbeat table lost diagnostic history, and how.

    Parameters
    ----------
    heartbeats : DataFrame
        From `load_heartbeats`, sorted by device and time, before any repair.

    Returns
    -------
    HistoryVerdict
        ``one_row_per_device`` when each of at least `MIN_DEVICES_ONE_ROW` devices has
        exactly one row. ``overwritten`` when at least half of the devices that can be judged
        (`MIN_ROWS_TO_JUDGE` rows or more, uptime varying, a non-empty ring buffer) carry
        identical diagnostics on every row, and the shared ring buffer contains an event
        logged after one of those rows was sent. Otherwise ``sound``.

    Notes
    -----
    Identical values alone are weak evidence: an idle device can send the same heap value
    and the same list several times. An event logged after the heartbeat that carries it is
    impossible, so it shows that the list belongs to a later heartbeat: a trusted ``ts``
    later than the row's ``received_at``, or, among the events after the list's last
    EVT_BOOT (the current boot), an ``up`` larger than the row's uptime.

    Examples
    --------
    >>> from analysis import DataQualityReport, load_heartbeats
    >>> from analysis.sample import ensure_sample_database
    >>> heartbeats = load_heartbeats(ensure_sample_database(), quality=DataQualityReport())
    >>> detect_lost_history(heartbeats).shape
    'sound'
    """
    rows_per_device = heartbeats["device_id"].value_counts()
    if len(rows_per_device) >= MIN_DEVICES_ONE_ROW and (rows_per_device == 1).all():
        devices = tuple(sorted(rows_per_device.index))
        return HistoryVerdict(ONE_ROW_PER_DEVICE, devices, judged_devices=len(devices))

    per_device = _summarise_devices(heartbeats)
    judged = per_device["is_judged"]
    candidates = per_device.index[judged & per_device["is_flat"]]
    flagged = per_device.index.isin(_devices_with_later_events(heartbeats, candidates))
    if not judged.any() or 2 * flagged.sum() < judged.sum():
        return HistoryVerdict(SOUND, judged_devices=int(judged.sum()))

    # The server's UPDATE hits every device, also those too short to judge, so each device
    # whose rows share one set of diagnostics is repaired.
    overwritten = per_device.index[per_device["is_flat"] & per_device["has_values"]]
    stale = _older_rows(heartbeats, overwritten)
    return HistoryVerdict(OVERWRITTEN, tuple(sorted(overwritten)),
                          judged_devices=int(judged.sum()), stale_heartbeat_ids=stale)


def apply_history_check(heartbeats: pd.DataFrame, report: DataQualityReport) -> pd.DataFrame:
    """Detect lost history, record it, warn, and return heartbeats with only sound values.

    Parameters
    ----------
    heartbeats : DataFrame
        From `load_heartbeats`.
    report : DataQualityReport
        Receives ``history_one_row_per_device`` or ``history_overwritten``.

    Returns
    -------
    DataFrame
        `heartbeats` itself when history is sound or stored one row per device. For an
        overwritten table, a copy in which the diagnostics of each device's older rows and
        the names decoded from them are missing, and ``has_diagnostics`` is False.

    Warns
    -----
    HistoryOverwrittenWarning
        When the table lost history.
    """
    verdict = detect_lost_history(heartbeats)
    if not verdict.is_lost:
        return heartbeats

    check = CHECK_BY_SHAPE[verdict.shape]
    examples = (verdict.stale_heartbeat_ids if verdict.shape == OVERWRITTEN
                else heartbeats["heartbeat_id"])
    count = len(verdict.stale_heartbeat_ids) if verdict.shape == OVERWRITTEN else len(
        verdict.devices)
    report.add(check, examples[:5], count=count, detail=verdict.describe())
    warnings.warn(_warning_text(verdict), HistoryOverwrittenWarning, stacklevel=2)
    logger.warning("lost history: %s", verdict.describe())
    if verdict.shape == OVERWRITTEN:
        return keep_newest_diagnostics(heartbeats, verdict.stale_heartbeat_ids)
    return heartbeats


def keep_newest_diagnostics(heartbeats: pd.DataFrame, stale_ids: np.ndarray) -> pd.DataFrame:
    """Return a copy of `heartbeats` with the diagnostics of the `stale_ids` rows missing."""
    repaired = heartbeats.copy()
    stale = repaired["heartbeat_id"].isin(stale_ids).to_numpy()
    for column in (*OVERWRITTEN_COLUMNS, *DECODED_COLUMNS):
        if column in repaired:
            repaired.loc[stale, column] = pd.NA
    if "has_diagnostics" in repaired:
        repaired.loc[stale, "has_diagnostics"] = False
    return repaired


def lost_history_shape(report: DataQualityReport) -> str:
    """Return the table shape that `report` recorded: a key of `CHECK_BY_SHAPE`, or "sound"."""
    for shape, check in CHECK_BY_SHAPE.items():
        if report.count(check):
            return shape
    return SOUND


def history_notice(fleet: Fleet) -> str | None:
    """Return the sentence a report shows at the top when the fleet's history was lost.

    Parameters
    ----------
    fleet : Fleet
        From `load_fleet`, which records the table shape in ``fleet.quality``.

    Returns
    -------
    str or None
        Markdown text naming the problem, what the report still uses and the server fix;
        None when each heartbeat kept its own diagnostics.
    """
    shape = lost_history_shape(fleet.quality)
    if shape == SOUND:
        return None
    detail = next(entry["detail"] for check, entry in fleet.quality.to_dict().items()
                  if check == CHECK_BY_SHAPE[shape])
    if shape == ONE_ROW_PER_DEVICE:
        return (f"**History missing:** the heartbeat table keeps one row per device ({detail}). "
                "Boots and events come from each device's newest ring buffer alone, and no "
                "figure can show a trend over time. The server should insert one row per "
                "heartbeat.")
    return (f"**History overwritten:** the server stores diagnostics with `UPDATE heartbeats "
            f"... WHERE device_id = ?`, which copies the newest values onto every earlier row "
            f"of a device ({detail}). This report uses uptime, receive times and each "
            "device's newest ring buffer, and leaves the older reset reasons, heap values and "
            "disconnect codes out instead of showing them as a flat trend. The server should "
            "insert one row per heartbeat with its own diagnostics.")


def _summarise_devices(heartbeats: pd.DataFrame) -> pd.DataFrame:
    # Every test runs on integer codes per device: groupby over object columns of a million
    # rows is several times slower, and a ring-buffer text is matched once, not per row.
    device_code, devices = pd.factorize(heartbeats["device_id"])
    value_codes = pd.DataFrame({
        column: pd.factorize(heartbeats[column], use_na_sentinel=False)[0]
        for column in OVERWRITTEN_COLUMNS
    })
    by_device = value_codes.groupby(device_code, sort=False)
    uptime = heartbeats["uptime_s"].astype("float64").groupby(device_code, sort=False)
    has_values = heartbeats[list(OVERWRITTEN_COLUMNS)].notna().any(axis=1)

    return pd.DataFrame({
        "is_flat": (by_device.min() == by_device.max()).all(axis=1).to_numpy(),
        "has_values": has_values.groupby(device_code, sort=False).any().to_numpy(),
        "is_judged": (np.bincount(device_code, minlength=len(devices)) >= MIN_ROWS_TO_JUDGE)
        & (uptime.max() > uptime.min()).to_numpy()
        & _has_list(heartbeats["recent_events"]).groupby(device_code, sort=False).any()
        .to_numpy(),
    }, index=pd.Index(devices, name="device_id"))


def _has_list(events: pd.Series) -> pd.Series:
    """Per row, True where the ring buffer text is present and not an empty list."""
    code, texts = pd.factorize(events)
    distinct = ~pd.Series(texts, dtype=object).astype(str).str.match(_EMPTY_LIST).to_numpy()
    return pd.Series((code >= 0) & np.append(distinct, False)[code], index=events.index)


def _devices_with_later_events(heartbeats: pd.DataFrame, devices: pd.Index) -> list:
    """Return the `devices` whose shared ring buffer contains an event logged after a row."""
    if len(devices) == 0:
        return []
    rows = heartbeats[heartbeats["device_id"].isin(devices)]
    newest = rows.drop_duplicates("device_id", keep="last")
    parsed = parse_event_lists(newest["recent_events"].to_numpy(dtype=object),
                               newest["heartbeat_id"].to_numpy(), DataQualityReport())
    tag, ts, up = parsed.values[:, 0], parsed.values[:, 3], parsed.values[:, 4]

    # Events after the last EVT_BOOT of a list belong to the boot that sent it. Rows are
    # contiguous in list order, so boots after an event are the row's total minus those
    # up to and including it.
    boots_through = np.cumsum(tag == codes.EVT_BOOT)
    row_end = np.searchsorted(parsed.row, parsed.row, side="right") - 1
    boots_after = boots_through[row_end] - boots_through if len(tag) else boots_through
    trusted_ts = np.where(ts >= EARLIEST_PLAUSIBLE_TS, ts, np.iinfo(np.int64).min)
    current_up = np.where(boots_after == 0, up, np.iinfo(np.int64).min)
    latest_ts = _max_per_row(parsed.row, trusted_ts, len(newest))
    latest_up = _max_per_row(parsed.row, current_up, len(newest))

    device = newest["device_id"].to_numpy()
    received = rows["received_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // 10**9
    uptime = rows["uptime_s"].to_numpy(dtype="float64", na_value=np.nan)
    position = pd.Index(device).get_indexer(rows["device_id"])
    later = (latest_ts[position] > received + CLOCK_SLACK_S) | (
        latest_up[position] > uptime + CLOCK_SLACK_S
    )
    return sorted(set(rows.loc[later, "device_id"]))


def _max_per_row(row: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    result = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(result, row, values)
    return result.astype(np.float64)


def _older_rows(heartbeats: pd.DataFrame, devices: pd.Index) -> np.ndarray:
    # Rows are sorted by device and time, so the last row of a device is its newest.
    rows = heartbeats[heartbeats["device_id"].isin(devices)]
    older = rows["device_id"].duplicated(keep="last")
    return rows.loc[older, "heartbeat_id"].to_numpy(dtype=np.int64)


def _warning_text(verdict: HistoryVerdict) -> str:
    if verdict.shape == ONE_ROW_PER_DEVICE:
        return (f"the heartbeat table keeps one row per device ({verdict.describe()}); "
                "reports use each device's newest ring buffer only. Store one row per "
                "heartbeat (INSERT, not an upsert by device_id) to keep history")
    return (f"the heartbeat table's diagnostics were overwritten ({verdict.describe()}); "
            "reports use uptime, receive times and each device's newest ring buffer. Store "
            "each heartbeat's diagnostics on its own row (INSERT, not UPDATE ... WHERE "
            "device_id = ?)")
