"""Load heartbeats from the server's SQLite table into a typed DataFrame.

Times are converted in SQL with SQLite's own date functions, which accept ISO-8601 text
with or without an offset (no offset means UTC) and, here, unix seconds; filters on time
and device run in SQL. Integer columns are read through ``typeof()`` so a text value in an
INTEGER column (SQLite allows it) becomes missing and is counted, never turned into 0.
"""

from __future__ import annotations

import logging
import sqlite3
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analysis import codes
from analysis.database import (
    DIAGNOSTIC_COLUMNS,
    HeartbeatSchema,
    database_label,
    decode_text_leniently,
    discover_schema,
    open_database,
    retry_while_locked,
)
from analysis.errors import DataQualityWarning, InvalidInputError
from analysis.heartbeat_checks import check_heartbeats
from analysis.quality import DataQualityReport
from analysis.runner.window import parse_time

logger = logging.getLogger(__name__)

INTEGER_COLUMNS = (
    "uptime_s", "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code",
)
HEARTBEAT_COLUMNS = (
    "heartbeat_id", "device_id", "received_at", "uptime_s", "firmware_version",
    "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
    "has_diagnostics", "reset_reason_name", "disconnect_reason_name", "disconnect_family",
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UNIX_EPOCH_JULIAN_DAY = 2440587.5
SECONDS_PER_DAY = 86400.0
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
    try:
        schema = discover_schema(engine, table, columns, database=label,
                                 lock_timeout_s=lock_timeout_s)
        _report_missing_diagnostics(schema, report)
        statement = _select_statement(schema, parse_time(start, "start"), parse_time(end, "end"),
                                      devices)
        names, rows = retry_while_locked(lambda: _read_rows(engine, statement),
                                         database=label, lock_timeout_s=lock_timeout_s)
    finally:
        engine.dispose()

    logger.info("loaded %d heartbeats from %s table %s", len(rows), label, schema.table)
    raw = _raw_frame(names, rows)
    # The tuples and the raw columns refer to the same values, so dropping each as soon as
    # the next form exists keeps the peak memory near one copy.
    del rows
    heartbeats = _build_frame(raw, report)
    del raw
    heartbeats = _clip_window(heartbeats, parse_time(start, "start"), parse_time(end, "end"))
    check_heartbeats(heartbeats, report)

    if quality is None and report:
        warnings.warn(
            f"data-quality problems in {label}: {report!r}; pass quality=DataQualityReport() "
            "or use load_fleet to see them with example heartbeat ids",
            DataQualityWarning,
            stacklevel=2,
        )
    return heartbeats


def _read_rows(engine: sa.Engine, statement: sa.Select) -> tuple[list[str], list]:
    # One statement is one read transaction, so the rows form one consistent snapshot
    # even while the server keeps inserting (WAL mode) between our fetches.
    compiled = statement.compile(dialect=engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    sql = str(compiled)
    arguments = tuple(params[name] for name in compiled.positiontup or ())
    with engine.connect() as connection:
        # Plain DB-API tuples: SQLAlchemy's Row objects cost more than the read itself.
        dbapi = connection.connection.driver_connection
        try:
            return _fetch_all(dbapi, sql, arguments)
        except sqlite3.OperationalError as err:
            if "decode" in str(err):
                dbapi.text_factory = decode_text_leniently
                return _fetch_all(dbapi, sql, arguments)
            raise sa.exc.DBAPIError.instance(sql, arguments, err, sqlite3.Error) from err
        except sqlite3.Error as err:
            # Wrapped as SQLAlchemy would, so that the lock retry can read the error code.
            raise sa.exc.DBAPIError.instance(sql, arguments, err, sqlite3.Error) from err


def _fetch_all(dbapi: sqlite3.Connection, sql: str, arguments: tuple) -> tuple[list[str], list]:
    cursor = dbapi.cursor()
    try:
        rows = cursor.execute(sql, arguments).fetchall()
        return [column[0] for column in cursor.description], rows
    finally:
        cursor.close()


def _raw_frame(names: list[str], rows: list) -> pd.DataFrame:
    # Object columns keep each value as SQLite returned it: letting pandas infer a dtype
    # would turn an integer column with a NULL into floats and round large integers.
    # np.array builds the 2-D object array in C, far faster than zip(*rows).
    table = np.empty((len(rows), len(names)), dtype=object)
    if rows:
        table[:] = rows
    return pd.DataFrame(
        {name: pd.Series(table[:, i], dtype=object) for i, name in enumerate(names)},
        index=pd.RangeIndex(len(rows)),
    )


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


def _select_statement(
    schema: HeartbeatSchema,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    devices: Iterable[str] | None,
) -> sa.Select:
    stored = {k: v for k, v in schema.columns.items() if v is not None}
    table = sa.table(schema.table, *(sa.column(name) for name in stored.values()))

    def col(logical: str) -> sa.ColumnElement:
        if logical == "heartbeat_id" and stored.get(logical, "").lower() == "rowid":
            return sa.literal_column("rowid")
        return table.c[stored[logical]]

    heartbeat_id = col("heartbeat_id") if "heartbeat_id" in stored else sa.literal_column(
        "rowid"
    )
    julian = _julian_day(col("received_at"))
    selected = [
        heartbeat_id.label("heartbeat_id"),
        # SQLite lets a TEXT column hold numbers and blobs; text keeps device ids sortable.
        sa.cast(col("device_id"), sa.Text).label("device_id"),
        julian.label("received_jd"),
        # The stored text is kept only where it could not be read as a time, for the report.
        sa.case((julian.is_(None), sa.cast(col("received_at"), sa.Text)),
                else_=None).label("received_raw"),
        _text_or_null(stored, col, "firmware_version"),
        _text_or_null(stored, col, "recent_events"),
    ]
    for logical in INTEGER_COLUMNS:
        selected.extend(_integer_columns(stored, col, logical))
    selected.append(_integer_type_mask(stored, col))

    # The SQL filter keeps a one-second margin because julianday() is a double; the exact
    # bounds are applied to the parsed times in _clip_window.
    statement = sa.select(*selected)
    if start is not None:
        lower = _to_julian(start) - 1 / SECONDS_PER_DAY
        statement = statement.where(sa.or_(julian >= lower, julian.is_(None)))
    if end is not None:
        upper = _to_julian(end) + 1 / SECONDS_PER_DAY
        statement = statement.where(sa.or_(julian < upper, julian.is_(None)))
    if devices is not None:
        device_list = _device_list(devices)
        statement = statement.where(col("device_id").in_(device_list))
    return statement


def _julian_day(column: sa.ColumnElement) -> sa.ColumnElement:
    # Numbers, and text made only of digits, are unix seconds; other text goes to SQLite's
    # julianday(), which understands ISO-8601 with "T" or space and a "Z"/"+HH:MM" offset.
    kind = sa.func.typeof(column)
    digits_only = sa.and_(kind == "text", sa.not_(column.op("GLOB")("*[^0-9]*")),
                          column != "")
    from_unix = sa.cast(column, sa.Float) / SECONDS_PER_DAY + UNIX_EPOCH_JULIAN_DAY
    return sa.case(
        (kind.in_(["integer", "real"]), from_unix),
        (digits_only, from_unix),
        (kind == "text", sa.func.julianday(column)),
        else_=None,
    )


def _integer_columns(stored: dict, col, logical: str) -> list[sa.ColumnElement]:
    if logical not in stored:
        return [sa.null().label(logical)]
    return [col(logical).label(logical)]


def _integer_type_mask(stored: dict, col) -> sa.ColumnElement:
    """Build one integer per row, with bit i set where INTEGER_COLUMNS[i] is not an integer.

    One mask column costs far less to fetch than a checked copy of every integer column.
    The few flagged cells are sorted out in Python by `_split_integer_cells`.
    """
    flags = [
        sa.case((sa.func.typeof(col(logical)).in_(["integer", "null"]), 0), else_=1 << bit)
        for bit, logical in enumerate(INTEGER_COLUMNS) if logical in stored
    ]
    total = flags[0] if flags else sa.literal(0)
    for flag in flags[1:]:
        total = total + flag
    return total.label("integer_type_mask")


def _split_integer_cells(raw: pd.DataFrame) -> None:
    """Replace flagged cells by a whole number or missing, keeping the text of bad ones.

    A whole real such as 150000.0 is taken as the integer. Any other value (text, a
    fraction, a blob) becomes missing, and its text goes to ``<column>__raw`` for the
    data-quality report.
    """
    mask = pd.to_numeric(raw.pop("integer_type_mask"), errors="coerce").fillna(0)
    mask = mask.to_numpy(dtype=np.int64)
    for bit, logical in enumerate(INTEGER_COLUMNS):
        raw[f"{logical}__raw"] = pd.Series(None, index=raw.index, dtype=object)
        flagged = np.flatnonzero(mask & (1 << bit))
        if len(flagged) == 0:
            continue
        values, texts = [], []
        for value in raw[logical].to_numpy()[flagged]:
            whole = (isinstance(value, float) and value.is_integer()
                     and INT64_MIN <= value <= INT64_MAX)
            values.append(int(value) if whole else None)
            texts.append(None if whole else _cell_text(value))
        column = raw[logical].to_numpy(dtype=object).copy()
        column[flagged] = values
        raw[logical] = pd.Series(column, index=raw.index, dtype=object)
        raw.loc[raw.index[flagged], f"{logical}__raw"] = pd.Series(
            texts, index=raw.index[flagged], dtype=object)


def _cell_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _text_or_null(stored: dict, col, logical: str) -> sa.ColumnElement:
    if logical not in stored:
        return sa.null().label(logical)
    return sa.cast(col(logical), sa.Text).label(logical)


def _build_frame(raw: pd.DataFrame, report: DataQualityReport) -> pd.DataFrame:
    _split_integer_cells(raw)
    frame = pd.DataFrame(index=raw.index)
    frame["heartbeat_id"] = pd.array(raw["heartbeat_id"], dtype="Int64")
    frame["device_id"] = raw["device_id"].astype(object)
    frame["received_at"] = _julian_to_timestamp(raw["received_jd"])
    for logical in INTEGER_COLUMNS:
        frame[logical] = pd.array(raw[logical].astype(object), dtype="Int64")
        _report_invalid_integers(raw, logical, report)
    frame["firmware_version"] = raw["firmware_version"].astype(object)
    frame["recent_events"] = raw["recent_events"].astype(object)

    frame = _drop_unusable(frame, raw, report)

    frame = frame[["heartbeat_id", "device_id", "received_at", "uptime_s",
                   "firmware_version", "reset_reason", "heap_free", "heap_min_free",
                   "last_disconnect_code", "recent_events"]]
    frame = frame.sort_values(["device_id", "received_at", "heartbeat_id"], kind="stable")
    return _add_decoded_columns(frame.reset_index(drop=True))


def _drop_unusable(
    frame: pd.DataFrame, raw: pd.DataFrame, report: DataQualityReport
) -> pd.DataFrame:
    """Leave out heartbeats without a time or a device id, counting each by its reason."""
    unparsable = frame["received_at"].isna()
    if unparsable.any():
        examples = raw.loc[unparsable, "received_raw"].dropna().astype(str).unique()[:3]
        report.add("received_at_unparsable", frame.loc[unparsable, "heartbeat_id"],
                   detail=f"values such as {list(examples)} (not a time, or outside 1900-2200); "
                   "heartbeats left out")

    device = frame["device_id"]
    no_device = ~unparsable & (device.isna() | (device.astype(str).str.strip() == ""))
    if no_device.any():
        report.add("device_id_missing", frame.loc[no_device, "heartbeat_id"],
                   detail="heartbeats left out")
    return frame[~(unparsable | no_device)]


def _clip_window(
    frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["received_at"] >= start
    if end is not None:
        keep &= frame["received_at"] < end
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _report_invalid_integers(raw: pd.DataFrame, logical: str, report: DataQualityReport) -> None:
    invalid = raw[f"{logical}__raw"].notna()
    if not invalid.any():
        return
    values = raw.loc[invalid, f"{logical}__raw"].astype(str).unique()[:3]
    stored = "uptime" if logical == "uptime_s" else logical
    report.add("integer_not_numeric", raw.loc[invalid, "heartbeat_id"],
               detail=f"{stored}: {', '.join(repr(v) for v in values)}")


def _add_decoded_columns(frame: pd.DataFrame) -> pd.DataFrame:
    diagnostics = [c for c in DIAGNOSTIC_COLUMNS if c in frame]
    frame["has_diagnostics"] = frame[diagnostics].notna().any(axis=1)
    frame["reset_reason_name"] = codes.decode(frame["reset_reason"], codes.RESET_REASONS)
    frame["disconnect_reason_name"] = codes.decode_disconnect_reason(
        frame["last_disconnect_code"]
    )
    frame["disconnect_family"] = codes.disconnect_family(frame["last_disconnect_code"])
    return frame


def _julian_to_timestamp(julian: pd.Series) -> pd.Series:
    seconds = (pd.to_numeric(julian, errors="coerce") - UNIX_EPOCH_JULIAN_DAY) * SECONDS_PER_DAY
    # julianday() is a double: round to milliseconds to drop its representation error.
    milliseconds = np.round(seconds.to_numpy(dtype="float64") * 1000.0)
    # Times outside 1900-2200 are treated as unparsable: datetime64[ns] ends in 1677 and
    # 2262, and the margin keeps received_at - uptime and event times representable.
    out_of_range = ~np.isfinite(milliseconds) | (milliseconds < EARLIEST_RECEIVED_MS) | (
        milliseconds >= LATEST_RECEIVED_MS
    )
    milliseconds[out_of_range] = np.nan
    return pd.to_datetime(milliseconds, unit="ms", utc=True).as_unit("ns").to_series(
        index=julian.index
    )


def _to_julian(stamp: pd.Timestamp) -> float:
    return stamp.timestamp() / SECONDS_PER_DAY + UNIX_EPOCH_JULIAN_DAY


def _device_list(devices: Iterable[str]) -> list[str]:
    if isinstance(devices, str):
        return [devices]
    device_list = [str(device) for device in devices]
    if not device_list:
        raise InvalidInputError("devices= is empty; pass None to load every device")
    return device_list
