"""Read the heartbeat rows into Arrow tables, with the fast reader or the exact one.

The fast reader (`analysis.heartbeat_read_adbc`) uses the ADBC SQLite driver. The exact
reader, the ``sqlite3`` module, takes over whenever the fast one fails (a locked database,
text that is not UTF-8, a corrupt file) and handles those cases with the lock retry and the
error messages of `analysis.database`. It runs its queries in one read transaction, so they
see one snapshot while the server keeps writing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from analysis.database import HeartbeatSchema, decode_text_leniently, retry_while_locked
from analysis.heartbeat_query import (
    INTEGER_COLUMNS,
    NOT_AN_INTEGER,
    RAW_COLUMNS,
    TEXT_COLUMNS,
    heartbeat_query,
    raw_values_query,
)
from analysis.heartbeat_read_adbc import encode_text, read_with_adbc

logger = logging.getLogger(__name__)

ROWS_SCHEMA = pa.schema(
    [pa.field("heartbeat_id", pa.int64()), pa.field("received_jd", pa.float64())]
    + [pa.field(name, pa.string()) for name in TEXT_COLUMNS]
    + [pa.field(name, pa.int64()) for name in INTEGER_COLUMNS]
)
RAW_SCHEMA = pa.schema([pa.field("heartbeat_id", pa.int64())]
                       + [pa.field(name, pa.string()) for name in RAW_COLUMNS])
ROWID = sa.literal_column("rowid")
# Stored text is fetched for this many flagged cells per column: enough for the examples
# in the data-quality report, while the counts come from the main query.
RAW_EXAMPLE_ROWS = 100
# Below SQLite's oldest limit on bound parameters per statement (999).
IDS_PER_QUERY = 900


@dataclass
class StoredHeartbeats:
    """The heartbeat rows as read, and the stored text of some of their unreadable cells.

    ``rows`` has the fields of `ROWS_SCHEMA`, its text dictionary-encoded with one
    dictionary per column. ``received_jd`` is missing where the time could not be read, and
    an integer column contains `NOT_AN_INTEGER` where the cell held something else.
    ``raw`` has `RAW_SCHEMA`: for up to `RAW_EXAMPLE_ROWS` such cells per column, the
    stored text, taken from the same snapshot.
    """

    rows: pa.Table
    raw: pa.Table


def read_heartbeats(
    path: Path,
    engine: sa.Engine,
    schema: HeartbeatSchema,
    window: tuple[pd.Timestamp | None, pd.Timestamp | None],
    devices: Iterable[str] | None,
    *,
    database: str,
    lock_timeout_s: float | None = None,
) -> StoredHeartbeats:
    """Read the heartbeats of a window, and the stored text of their unreadable cells.

    Parameters
    ----------
    path : Path
        The SQLite file, opened read-only by the fast reader.
    engine : sqlalchemy.Engine
        Read-only engine on the same file, for the fallback reader.
    schema : HeartbeatSchema
        The discovered table and columns.
    window : (Timestamp or None, Timestamp or None)
        Start and end in UTC, filtered in SQL with a one-second margin.
    devices : iterable of str, optional
        Device ids to keep.
    database : str
        Label used in messages.
    lock_timeout_s : float, optional
        How long the fallback reader retries while a writer holds the lock.

    Raises
    ------
    DatabaseLockedError, NotSQLiteError, DatabaseError
        From the fallback reader, as `analysis.database.retry_while_locked`.
    """
    def main_query(rowids: tuple[int, int | None] | None = None) -> tuple[str, tuple]:
        return _compile(heartbeat_query(schema, *window, devices, rowids), engine)

    def raw_queries(rows: pa.Table) -> list[tuple[str, tuple]]:
        ids = _flagged_ids(rows)
        return [_compile(raw_values_query(schema, ids[i:i + IDS_PER_QUERY]), engine)
                for i in range(0, len(ids), IDS_PER_QUERY)]

    span = _compile(sa.select(sa.func.min(ROWID), sa.func.max(ROWID))
                    .select_from(sa.table(schema.table)), engine)
    fast = read_with_adbc(path, span, main_query, raw_queries, (ROWS_SCHEMA, RAW_SCHEMA))
    if fast is not None:
        return StoredHeartbeats(rows=fast[0], raw=fast[1])
    return retry_while_locked(lambda: _read_with_sqlite3(engine, main_query(), raw_queries),
                              database=database, lock_timeout_s=lock_timeout_s)


def _compile(statement: sa.CompoundSelect, engine: sa.Engine) -> tuple[str, tuple]:
    compiled = statement.compile(dialect=engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    return str(compiled), tuple(params[name] for name in compiled.positiontup or ())


def _flagged_ids(rows: pa.Table) -> list[int]:
    """Return the ids of the first `RAW_EXAMPLE_ROWS` unreadable cells of each column."""
    ids = rows.column("heartbeat_id")
    picked: set[int] = set()
    masks = [rows.column("received_jd").is_null()]
    masks += [pc.equal(rows.column(name), NOT_AN_INTEGER) for name in INTEGER_COLUMNS]
    for mask in masks:
        flagged = ids.filter(pc.fill_null(mask, False)).slice(0, RAW_EXAMPLE_ROWS)
        picked.update(i for i in flagged.to_pylist() if i is not None)
    return sorted(picked)


def _read_with_sqlite3(engine: sa.Engine, main: tuple[str, tuple], raw_queries
                       ) -> StoredHeartbeats:
    with engine.connect() as connection:
        # Plain DB-API tuples: SQLAlchemy's Row objects cost more than the read itself.
        dbapi = connection.connection.driver_connection
        try:
            return _read_snapshot(dbapi, main, raw_queries)
        except sqlite3.OperationalError as err:
            if "decode" not in str(err):
                raise sa.exc.DBAPIError.instance(main[0], main[1], err, sqlite3.Error) from err
            dbapi.text_factory = decode_text_leniently
            return _read_snapshot(dbapi, main, raw_queries)
        except sqlite3.Error as err:
            # Wrapped as SQLAlchemy would, so that the lock retry can read the error code.
            raise sa.exc.DBAPIError.instance(main[0], main[1], err, sqlite3.Error) from err


def _read_snapshot(dbapi: sqlite3.Connection, main: tuple[str, tuple], raw_queries
                   ) -> StoredHeartbeats:
    # One explicit read transaction keeps one snapshot for both queries.
    if dbapi.in_transaction:
        dbapi.rollback()
    dbapi.execute("BEGIN")
    try:
        rows = encode_text(_rows_to_table(_fetch_all(dbapi, main), ROWS_SCHEMA))
        raw = [_rows_to_table(_fetch_all(dbapi, query), RAW_SCHEMA)
               for query in raw_queries(rows)]
    finally:
        dbapi.rollback()
    return StoredHeartbeats(rows=rows, raw=_concat(raw, RAW_SCHEMA))


def _fetch_all(dbapi: sqlite3.Connection, query: tuple[str, tuple]) -> list:
    cursor = dbapi.cursor()
    try:
        # The first row is the marker row.
        return cursor.execute(*query).fetchall()[1:]
    finally:
        cursor.close()


def _rows_to_table(rows: list, schema: pa.Schema) -> pa.Table:
    # np.array builds the 2-D object array in C, far faster than zip(*rows).
    cells = np.empty((len(rows), len(schema)), dtype=object)
    if rows:
        cells[:] = rows
    return pa.table([pa.array(cells[:, i], type=field.type) for i, field in enumerate(schema)],
                    schema=schema)


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()
