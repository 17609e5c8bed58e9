"""Load heartbeats from the server's SQLite table into a typed DataFrame.

The SELECT (`analysis.heartbeat_query`) converts times and checks types in SQL, the rows
arrive as one Arrow table (`analysis.heartbeat_read`), and this module turns that table
into the typed frame: nullable ``Int64`` integers, UTC times, and text columns in which
equal values share one Python object. Rows without a usable time or device id are left out
and counted; an integer cell that held text is missing and counted, never 0.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import codes
from analysis.database import (
    DIAGNOSTIC_COLUMNS,
    HeartbeatSchema,
    database_label,
    discover_schema,
    open_database,
    sqlite_path,
)
from analysis.errors import DataQualityWarning
from analysis.heartbeat_checks import check_heartbeats
from analysis.heartbeat_query import (
    INTEGER_COLUMNS,
    NOT_AN_INTEGER,
    SECONDS_PER_DAY,
    UNIX_EPOCH_JULIAN_DAY,
)
from analysis.heartbeat_read import StoredHeartbeats, read_heartbeats
from analysis.quality import DataQualityReport
from analysis.runner.window import parse_time

logger = logging.getLogger(__name__)

HEARTBEAT_COLUMNS = (
    "heartbeat_id", "device_id", "received_at", "uptime_s", "firmware_version",
    "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
    "has_diagnostics", "reset_reason_name", "disconnect_reason_name", "disconnect_family",
)
NAT = np.iinfo(np.int64).min
EARLIEST_RECEIVED_MS = int(pd.Timestamp("1900-01-01", tz="UTC").timestamp()) * 1000
LATEST_RECEIVED_MS = int(pd.Timestamp("2200-01-01", tz="UTC").timestamp()) * 1000


def load_heartbeats(
    db: str | Path,
    *,
    table: str = "heartbeats",
    start: object = None,
    end: object = None,
    devices: Iterable[str] | None = None,
    columns: Mapping[str, str] | None = None,
    quality: DataQualityReport | None = None,
    lock_timeout_s: float | None = None,
) -> pd.DataFrame:
    """Load one typed row per stored heartbeat.

    Parameters
    ----------
    db : str or Path
        SQLite file path or ``sqlite:///`` URL, opened read-only.
    table : str, default "heartbeats"
        Heartbeat table; validated against the schema and quoted, never pasted into SQL.
    start, end : str, datetime or Timestamp, optional
        Keep heartbeats received at or after `start` and before `end` (UTC when no zone).
    devices : iterable of str, optional
        Keep only these device ids.
    columns : mapping of str to str, optional
        ``{logical name: stored name}`` for columns whose names the loader does not know,
        for example ``{"received_at": "server_time"}``.
    quality : DataQualityReport, optional
        Report that receives the anomalies found. Without one, a `DataQualityWarning`
        summarises them.
    lock_timeout_s : float, optional
        Seconds to keep retrying, with exponential backoff, while a writer holds the
        database lock. Default: ``DOORCOUNTER_LOCK_TIMEOUT_S``, else 30.

    Returns
    -------
    DataFrame
        Columns `HEARTBEAT_COLUMNS`, sorted by device and time. ``received_at`` is
        ``datetime64[ns, UTC]``; integer columns are nullable ``Int64``; decoded name
        columns sit beside the codes. Heartbeats whose time cannot be parsed, and
        heartbeats without a device id, are left out and counted as
        ``received_at_unparsable`` and ``device_id_missing``.

    Raises
    ------
    DatabaseNotFoundError, NotSQLiteError, UnsupportedDatabaseError
        If the file is missing, is not SQLite or is corrupt, or the URL names another engine.
    TableNotFoundError, MissingColumnError
        If the table, its device id column or its time column is missing.
    DatabaseLockedError
        If a writer held the lock for longer than `lock_timeout_s`.

    Examples
    --------
    >>> from analysis.sample import ensure_sample_database
    >>> heartbeats = load_heartbeats(ensure_sample_database(), devices=["dc-0001"])
    >>> heartbeats["reset_reason"].dtype
    Int64Dtype()
    """
    report = quality if quality is not None else DataQualityReport()
    engine = open_database(db)
    label = database_label(db)
    start_at, end_at = parse_time(start, "start"), parse_time(end, "end")
    try:
        schema = discover_schema(engine, table, columns, database=label,
                                 lock_timeout_s=lock_timeout_s)
        _report_missing_diagnostics(schema, report)
        stored = read_heartbeats(sqlite_path(db), engine, schema, (start_at, end_at), devices,
                                 database=label, lock_timeout_s=lock_timeout_s)
    finally:
        engine.dispose()

    logger.info("loaded %d heartbeats from %s table %s", stored.rows.num_rows, label,
                schema.table)
    heartbeats = _build_frame(stored, report)
    del stored
    heartbeats = _clip_window(heartbeats, start_at, end_at)
    check_heartbeats(heartbeats, report)

    if quality is None and report:
        warnings.warn(
            f"data-quality problems in {label}: {report!r}; pass quality=DataQualityReport() "
            "or use load_fleet to see them with example heartbeat ids",
            DataQualityWarning,
            stacklevel=2,
        )
    return heartbeats


def _report_missing_diagnostics(schema: HeartbeatSchema, report: DataQualityReport) -> None:
    missing = schema.missing_diagnostics
    if not missing:
        return
    detail = f"missing columns: {', '.join(missing)}; loaded as missing values"
    report.add("diagnostic_columns_missing", count=1, detail=detail)
    warnings.warn(
        f"table {schema.table!r} has no {', '.join(missing)} column(s), as a database from "
        "before the diagnostics migration; those values load as missing",
        DataQualityWarning,
        stacklevel=3,
    )


def _build_frame(stored: StoredHeartbeats, report: DataQualityReport) -> pd.DataFrame:
    """Turn the stored rows into the typed heartbeat frame, sorted by device and time."""
    rows = stored.rows
    ids = _int64(rows.column("heartbeat_id"))
    _report_missing_ids(ids, report)
    integers = {name: _checked_int64(name, rows, ids, stored.raw, report)
                for name in INTEGER_COLUMNS}

    received_ns = _julian_to_nanoseconds(rows.column("received_jd"))
    device_code, device_names = _encoded(rows.column("device_id"))
    usable = _usable_rows(stored, ids, received_ns, device_code, device_names, report)
    order = _sort_order(usable, device_code, device_names, received_ns, ids)

    frame = pd.DataFrame({
        "heartbeat_id": ids[order],
        "device_id": pd.Series(_with_missing(device_names)[device_code[order]], dtype=object),
        "received_at": pd.to_datetime(received_ns[order], unit="ns", utc=True),
        "uptime_s": integers["uptime_s"][order],
        "firmware_version": _object_column(rows.column("firmware_version"), order),
    })
    for logical in INTEGER_COLUMNS[1:]:
        frame[logical] = integers[logical][order]
    frame["recent_events"] = _object_column(rows.column("recent_events"), order)
    return _add_decoded_columns(frame)


def _int64(column: pa.ChunkedArray) -> pd.arrays.IntegerArray:
    values, missing = _values_and_mask(column, np.int64)
    return pd.arrays.IntegerArray(values, missing)


def _values_and_mask(column: pa.ChunkedArray, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Return a numeric column's values and where they are missing, as numpy arrays.

    The values come straight from the Arrow buffer, so under a missing value lies whatever
    the buffer has there. Filling the gaps first would cost a pass over every chunk.
    """
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if len(array) == 0:
        return np.zeros(0, dtype=dtype), np.zeros(0, dtype=bool)
    data = array.buffers()[1]
    if data is None:
        values = np.zeros(len(array), dtype=dtype)
    else:
        values = np.frombuffer(data, dtype=dtype)[array.offset:array.offset + len(array)].copy()
    missing = array.is_null().to_numpy(zero_copy_only=False)
    return values, missing


def _report_missing_ids(ids: pd.arrays.IntegerArray, report: DataQualityReport) -> None:
    # Events and boots refer to heartbeats by id, so an id that is not an integer is counted
    # rather than left missing without a word. The rows themselves are kept.
    missing = np.asarray(ids.isna(), dtype=bool)
    if missing.any():
        report.add("heartbeat_id_not_integer", count=int(missing.sum()),
                   detail="the id column contains values that are not integers; map an "
                   "integer id column with columns={'heartbeat_id': '<column>'}, or drop the "
                   "mapping to use SQLite's rowid")


def _checked_int64(name: str, rows: pa.Table, ids: pd.arrays.IntegerArray, raw: pa.Table,
                   report: DataQualityReport) -> pd.arrays.IntegerArray:
    """Return an integer column with its unreadable cells missing, counted with examples."""
    data, missing = _values_and_mask(rows.column(name), np.int64)
    flagged = (data == NOT_AN_INTEGER) & ~missing
    values = pd.arrays.IntegerArray(data, missing | flagged)
    if not flagged.any():
        return values
    stored = "uptime" if name == "uptime_s" else name
    examples = ", ".join(repr(text) for text in _raw_examples(raw, name))
    report.add("integer_not_numeric", ids[flagged], detail=f"{stored}: {examples}")
    return values


def _raw_examples(raw: pa.Table, name: str, limit: int = 3) -> list[str]:
    texts = pd.Series(raw.column(name).to_numpy(zero_copy_only=False), dtype=object)
    return texts.dropna().astype(str).unique()[:limit].tolist()


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Return one code per row (-1 where missing) and the distinct values as str objects.

    Encoding first turns each distinct text into one Python object shared by its rows, so
    a million ring buffers that repeat each other cost a few thousand strings.
    """
    is_encoded = pa.types.is_dictionary(column.type)
    encoded = column if is_encoded else column.dictionary_encode()
    if encoded.num_chunks == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    codes = np.concatenate([chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
                            for chunk in encoded.chunks]).astype(np.int64)
    # The chunks share one dictionary: the readers unify the dictionaries of their parts.
    values = encoded.chunk(0).dictionary.to_numpy(zero_copy_only=False).astype(object)
    return codes, values


def _with_missing(values: np.ndarray) -> np.ndarray:
    # Code -1 picks the last entry, which stands for a missing value.
    return np.append(values, None).astype(object)


def _object_column(column: pa.ChunkedArray, order: np.ndarray) -> pd.Series:
    codes, values = _encoded(column)
    # dtype=object keeps the shared objects. Without it pandas copies them into "str".
    return pd.Series(_with_missing(values)[codes[order]], dtype=object)


def _usable_rows(stored, ids, received_ns, device_code, device_names, report) -> np.ndarray:
    """Return the rows with a time and a device id, counting the others by reason."""
    unparsable = received_ns == NAT
    if unparsable.any():
        examples = _raw_examples(stored.raw, "received_at")
        report.add("received_at_unparsable", ids[unparsable],
                   detail=f"values such as {list(examples)} (not a time, or outside 1900-2200); "
                   "heartbeats left out")

    blank = np.array([not str(name).strip() for name in device_names] + [True], dtype=bool)
    no_device = ~unparsable & blank[device_code]
    if no_device.any():
        report.add("device_id_missing", ids[no_device], detail="heartbeats left out")
    return ~(unparsable | no_device)


def _sort_order(usable, device_code, device_names, received_ns, ids) -> np.ndarray:
    """Return the usable rows' positions ordered by device id, time and heartbeat id."""
    rank = np.empty(len(device_names) + 1, dtype=np.int64)
    rank[np.argsort(_with_missing(device_names)[:-1], kind="stable")] = np.arange(
        len(device_names))
    rank[-1] = len(device_names)
    rows = np.flatnonzero(usable)
    keys = (ids.to_numpy(dtype=np.int64, na_value=0)[rows], received_ns[rows],
            rank[device_code[rows]])
    return rows[np.lexsort(keys)]


def _clip_window(
    frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["received_at"] >= start
    if end is not None:
        keep &= frame["received_at"] < end
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _add_decoded_columns(frame: pd.DataFrame) -> pd.DataFrame:
    diagnostics = [c for c in DIAGNOSTIC_COLUMNS if c in frame]
    frame["has_diagnostics"] = frame[diagnostics].notna().any(axis=1)
    frame["reset_reason_name"] = codes.decode(frame["reset_reason"], codes.RESET_REASONS)
    frame["disconnect_reason_name"] = codes.decode_disconnect_reason(
        frame["last_disconnect_code"]
    )
    frame["disconnect_family"] = codes.disconnect_family(frame["last_disconnect_code"])
    return frame


def _julian_to_nanoseconds(julian: pa.ChunkedArray) -> np.ndarray:
    """Return nanoseconds since the epoch, `NAT` where the time is missing or out of range."""
    days, missing = _values_and_mask(julian, np.float64)
    days[missing] = np.nan
    seconds = (days - UNIX_EPOCH_JULIAN_DAY) * SECONDS_PER_DAY
    # julianday() is a double: round to milliseconds to drop its representation error.
    milliseconds = np.round(seconds * 1000.0)
    # Times outside 1900-2200 are treated as unparsable: datetime64[ns] ends in 1677 and
    # 2262, and the margin keeps received_at - uptime and event times representable.
    valid = np.isfinite(milliseconds) & (milliseconds >= EARLIEST_RECEIVED_MS) & (
        milliseconds < LATEST_RECEIVED_MS
    )
    nanoseconds = np.full(len(days), NAT, dtype=np.int64)
    nanoseconds[valid] = milliseconds[valid].astype(np.int64) * 1_000_000
    return nanoseconds
