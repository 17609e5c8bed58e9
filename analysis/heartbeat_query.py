"""Build the SELECT that reads the heartbeat table with one fixed type per column.

Times are converted in SQL with SQLite's own date functions, which accept ISO-8601 text
with or without an offset (no offset means UTC) and, here, unix seconds. Filters on time and
device run in SQL.

SQLite lets any cell hold any type. Here every result column gets exactly one type, so the
result can be read straight into Arrow arrays. An integer column yields an integer, NULL,
or `NOT_AN_INTEGER` where the cell held something other than a whole number. The stored
text of such cells, and of times that could not be read, comes from a second, small query
by heartbeat id (`raw_values_query`) for the data-quality report.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa

from analysis.database import HeartbeatSchema
from analysis.errors import InvalidInputError

INTEGER_COLUMNS = (
    "uptime_s", "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code",
)
TEXT_COLUMNS = ("device_id", "firmware_version", "recent_events")
RAW_COLUMNS = ("received_at",) + INTEGER_COLUMNS
# Marks a cell that held text, a fraction or a blob. A stored INT64_MIN reads as this too,
# which is right here: no uptime, heap size or reason code can have that value.
NOT_AN_INTEGER = -(2**63)
UNIX_EPOCH_JULIAN_DAY = 2440587.5
SECONDS_PER_DAY = 86400.0
# The first row of every result fixes each column's type for readers that infer types from
# the first rows. The readers drop it by position and check its id.
MARKER_HEARTBEAT_ID = -1
MARKER_TEXT = ""


def heartbeat_query(
    schema: HeartbeatSchema,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    devices: Iterable[str] | None = None,
    rowids: tuple[int, int | None] | None = None,
) -> sa.CompoundSelect:
    """Return the SELECT of the heartbeats in a window, after a first marker row.

    Parameters
    ----------
    schema : HeartbeatSchema
        The discovered table and columns; names reach SQL only through SQLAlchemy quoting.
    start, end : Timestamp, optional
        Window in UTC. The SQL keeps a one-second margin, because ``julianday()`` is a
        double; the caller applies the exact bounds to the parsed times.
    devices : iterable of str, optional
        Device ids to keep.
    rowids : (int, int or None), optional
        Keep rows with ``first <= rowid < last`` (no upper bound for None): one part of a
        read split across connections.

    Returns
    -------
    sqlalchemy.CompoundSelect
        Columns ``heartbeat_id`` (integer), ``received_jd`` (real, Julian day or NULL),
        the `TEXT_COLUMNS` (text), the `INTEGER_COLUMNS` (integer) and one
        ``<name>__raw`` text column per integer column. The first row is the marker row
        (``heartbeat_id`` = `MARKER_HEARTBEAT_ID`).
    """
    stored = {k: v for k, v in schema.columns.items() if v is not None}
    table = sa.table(schema.table, *(sa.column(name) for name in stored.values()))

    def col(logical: str) -> sa.ColumnElement:
        return _id_column(stored, table) if logical == "heartbeat_id" else table.c[stored[logical]]

    julian = _julian_day(col("received_at"))
    selected = [
        _whole_number(col("heartbeat_id")).label("heartbeat_id"),
        julian.label("received_jd"),
    ]
    for logical in TEXT_COLUMNS:
        # SQLite lets a TEXT column hold numbers and blobs; text keeps device ids sortable.
        value = _as_text(col(logical)) if logical in stored else sa.null()
        selected.append(value.label(logical))
    for logical in INTEGER_COLUMNS:
        value = _checked_integer(col(logical)) if logical in stored else sa.null()
        selected.append(value.label(logical))

    statement = sa.select(*selected).select_from(table)
    statement = _filter(statement, julian, col("device_id"), start, end, devices)
    if rowids is not None:
        rowid = sa.literal_column("rowid")
        statement = statement.where(rowid >= rowids[0])
        if rowids[1] is not None:
            statement = statement.where(rowid < rowids[1])
    return sa.union_all(_marker_row(INTEGER_COLUMNS), statement)


def raw_values_query(schema: HeartbeatSchema, heartbeat_ids: list[int]) -> sa.CompoundSelect:
    """Return the SELECT of the stored text of `RAW_COLUMNS` for some heartbeats.

    A cell is NULL where it needs no explanation: a readable time or an integer. Blobs are
    shown as ``X'..'`` hex. The first row is the marker row, as in `heartbeat_query`.
    """
    stored = {k: v for k, v in schema.columns.items() if v is not None}
    table = sa.table(schema.table, *(sa.column(name) for name in stored.values()))
    heartbeat_id = _id_column(stored, table)
    selected = [_whole_number(heartbeat_id).label("heartbeat_id")]
    for logical in RAW_COLUMNS:
        value = _raw_text(table.c[stored[logical]], logical) if logical in stored else None
        selected.append((value if value is not None else sa.null()).label(logical))
    statement = sa.select(*selected).where(heartbeat_id.in_(heartbeat_ids))
    return sa.union_all(_marker_row(RAW_COLUMNS), statement)


def _id_column(stored: dict, table: sa.TableClause) -> sa.ColumnElement:
    name = stored.get("heartbeat_id", "rowid")
    return sa.literal_column("rowid") if name.lower() == "rowid" else table.c[name]


def _marker_row(text_or_integer: tuple[str, ...]) -> sa.Select:
    values = [_const(MARKER_HEARTBEAT_ID).label("heartbeat_id")]
    if text_or_integer == INTEGER_COLUMNS:
        values.append(_const(0.0).label("received_jd"))
        values += [_const(MARKER_TEXT).label(name) for name in TEXT_COLUMNS]
        values += [_const(0).label(name) for name in INTEGER_COLUMNS]
    else:
        values += [_const(MARKER_TEXT).label(name) for name in text_or_integer]
    return sa.select(*values)


def _filter(statement, julian, device, start, end, devices) -> sa.Select:
    if start is not None:
        lower = to_julian(start) - 1 / SECONDS_PER_DAY
        statement = statement.where(sa.or_(julian >= lower, julian.is_(None)))
    if end is not None:
        upper = to_julian(end) + 1 / SECONDS_PER_DAY
        statement = statement.where(sa.or_(julian < upper, julian.is_(None)))
    if devices is not None:
        statement = statement.where(device.in_(device_list(devices)))
    return statement


def _julian_day(column: sa.ColumnElement) -> sa.ColumnElement:
    # Numbers, and text made only of digits, are unix seconds. Other text goes to SQLite's
    # julianday(), which understands ISO-8601 with "T" or space and a "Z"/"+HH:MM" offset.
    # CASE typeof(x) WHEN ... calls typeof() once per row. A condition per branch calls it
    # once per branch, which costs about 0.15 s on a million rows.
    from_unix = sa.cast(column, sa.Float) / _const(SECONDS_PER_DAY) + _const(
        UNIX_EPOCH_JULIAN_DAY)
    not_unix_text = sa.or_(column.op("GLOB")(_const("*[^0-9]*")), column == _const(""))
    text_time = sa.case((not_unix_text, sa.func.julianday(column)), else_=from_unix)
    return sa.case(
        (_const("text"), text_time),
        (_const("integer"), from_unix),
        (_const("real"), from_unix),
        value=sa.func.typeof(column),
        else_=None,
    )


def _is_whole_real(column: sa.ColumnElement) -> sa.ColumnElement:
    # CAST to INTEGER truncates and saturates, so only a whole real in range equals it.
    return sa.and_(sa.func.typeof(column) == _const("real"),
                   column == sa.cast(column, sa.Integer))


def _whole_number(column: sa.ColumnElement) -> sa.ColumnElement:
    """Keep an integer, turn a whole real into that integer, and anything else into NULL."""
    return _integer_or(column, None)


def _checked_integer(column: sa.ColumnElement) -> sa.ColumnElement:
    """Keep an integer or NULL, turn a whole real into that integer, flag anything else."""
    return _integer_or(column, _const(NOT_AN_INTEGER))


def _integer_or(column: sa.ColumnElement, other: sa.ColumnElement | None) -> sa.ColumnElement:
    whole = sa.cast(column, sa.Integer)
    return sa.case(
        (_const("integer"), column),
        (_const("null"), None),
        (_const("real"), sa.case((column == whole, whole), else_=other)),
        value=sa.func.typeof(column),
        else_=other,
    )


def _raw_text(column: sa.ColumnElement, logical: str) -> sa.ColumnElement:
    kind = sa.func.typeof(column)
    readable = _julian_day(column).is_not(None) if logical == "received_at" else sa.or_(
        kind == _const("integer"), _is_whole_real(column))
    return sa.case(
        (column.is_(None) | readable, None),
        # A blob is shown as hex: its bytes need not be text at all.
        (kind == _const("blob"), _const("X'") + sa.func.hex(column) + _const("'")),
        else_=sa.cast(column, sa.Text),
    )


def _const(value: object) -> sa.ColumnElement:
    # Constants are written into the SQL, not bound. In one measurement of a million-row
    # read this took the time from 2.46 s to 2.13 s.
    if isinstance(value, str):
        return sa.literal_column("'" + value.replace("'", "''") + "'", sa.Text)
    if value == NOT_AN_INTEGER:
        # SQLite reads the literal 9223372036854775808 as a real, so INT64_MIN is computed.
        return sa.literal_column(f"({NOT_AN_INTEGER + 1} - 1)", sa.Integer)
    return sa.literal_column(repr(value))


def _as_text(column: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(column, sa.Text)


def to_julian(stamp: pd.Timestamp) -> float:
    """Return the Julian day of a UTC timestamp, as SQLite's ``julianday()`` does."""
    return stamp.timestamp() / SECONDS_PER_DAY + UNIX_EPOCH_JULIAN_DAY


def device_list(devices: Iterable[str]) -> list[str]:
    """Return `devices` as a list of str; one str is one device.

    Raises
    ------
    InvalidInputError
        If `devices` is empty.
    """
    if isinstance(devices, str):
        return [devices]
    listed = [str(device) for device in devices]
    if not listed:
        raise InvalidInputError("devices= is empty; pass None to load every device")
    return listed
