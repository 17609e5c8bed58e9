"""Fast heartbeat reads through the ADBC SQLite driver, split by rowid across connections.

The driver copies SQLite's values into Arrow buffers in C, so a million ``recent_events``
texts never become a million Python strings. A large table is read in up to `MAX_PARTS`
rowid ranges on as many connections at once; SQLite and the driver release the GIL, so the
parts run in parallel. Each part reads its rows and the stored text of its unreadable cells
in one read transaction.

A part reads the database as it was when that part started. The server only appends
heartbeats, and a new row gets a rowid above every existing one, so it can only fall into
the last range: the parts together show the table as it was at one moment.

NOTE: that is true of a table that only grows. Where rows are updated or deleted during the
read (one row per device, a retention clean-up), each part may show a slightly different
moment. Each row is still read whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from analysis.database import read_only_uri
from analysis.heartbeat_query import MARKER_HEARTBEAT_ID

logger = logging.getLogger(__name__)

try:
    import adbc_driver_sqlite.dbapi as adbc_sqlite
except ImportError:  # pragma: no cover - a dependency, but the exact reader works without it
    adbc_sqlite = None

Query = tuple[str, tuple]
# Each part spans at least this many rowids, and a table of fewer than two parts is read on
# one connection. On 2 cores, seven parts loaded a million rows slightly faster than four
# (1.32 s against 1.41 s, median of six loads).
PART_ROWS = 125_000
MAX_PARTS = 8
# Rows per Arrow batch: larger than the driver's default of 1,024, which cuts the
# per-batch overhead of everything that later walks the chunks.
BATCH_ROWS = 65536
INT64_MIN = -(2**63)


def read_with_adbc(
    path: Path,
    span_query: Query,
    main_query: Callable[[tuple[int, int | None] | None], Query],
    raw_queries: Callable[[pa.Table], list[Query]],
    schemas: tuple[pa.Schema, pa.Schema],
) -> tuple[pa.Table, pa.Table] | None:
    """Read the rows and their raw values with ADBC; None when that is not possible.

    Parameters
    ----------
    path : Path
        The SQLite file, opened read-only.
    span_query : (str, tuple)
        SQL returning the smallest and largest rowid of the table.
    main_query : callable
        Returns the rows query for a rowid range, or for the whole table given None.
    raw_queries : callable
        Returns the raw values queries for the rows read by one part.
    schemas : (pyarrow.Schema, pyarrow.Schema)
        Schemas of the rows and of the raw values, without the marker row.

    Returns
    -------
    (pyarrow.Table, pyarrow.Table) or None
        None when the driver is missing or failed in any way, for example on a lock, on
        text that is not UTF-8 or on a corrupt file. The caller then uses the exact reader.
    """
    if adbc_sqlite is None:
        return None
    try:
        ranges = _rowid_ranges(path, span_query)
        with ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(
                lambda rowids: _read_part(path, main_query(rowids), raw_queries, schemas),
                ranges))
    except (adbc_sqlite.Error, pa.ArrowException, OSError, ValueError) as err:
        logger.info("fast reader failed (%s); reading with the sqlite3 module", err)
        return None
    rows = pa.concat_tables([part[0] for part in parts]).unify_dictionaries()
    raw = pa.concat_tables([part[1] for part in parts])
    return rows, raw


def _rowid_ranges(path: Path, span_query: Query) -> list[tuple[int, int | None] | None]:
    with adbc_sqlite.connect(read_only_uri(path)) as connection, \
            connection.cursor() as cursor:
        cursor.execute(*span_query)
        first, last = cursor.fetchone()
    if first is None:
        return [None]
    parts = min(MAX_PARTS, (last - first + 1) // PART_ROWS)
    if parts < 2:
        return [None]
    cuts = [first + (last - first + 1) * i // parts for i in range(1, parts)]
    # The outer ranges are open, so rows stored after the span was read are still covered.
    return list(zip([INT64_MIN] + cuts, cuts + [None], strict=True))


def _read_part(path: Path, main: Query, raw_queries, schemas) -> tuple[pa.Table, pa.Table]:
    rows_schema, raw_schema = schemas
    # Without autocommit the driver keeps one read transaction, so the raw values come
    # from the same snapshot as the rows.
    with adbc_sqlite.connect(read_only_uri(path), autocommit=False) as connection, \
            connection.cursor() as cursor:
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
        rows = _fetch(cursor, main, rows_schema)
        raw = [_fetch(cursor, query, raw_schema) for query in raw_queries(rows)]
    return encode_text(rows), pa.concat_tables(raw) if raw else raw_schema.empty_table()


def encode_text(table: pa.Table) -> pa.Table:
    """Dictionary-encode the text columns of `table`.

    The ring buffer repeats between heartbeats, so a million ``recent_events`` texts hold a
    few thousand distinct ones. Encoding keeps one copy of each, and it runs here, in each
    part's thread, so that the parts share the work.
    """
    for index, field in enumerate(table.schema):
        if field.type == pa.string():
            table = table.set_column(index, field.name, table.column(index).dictionary_encode())
    return table


def _fetch(cursor, query: Query, schema: pa.Schema) -> pa.Table:
    """Run one query and return its rows after the marker, checked against `schema`."""
    cursor.execute(*query)
    table = cursor.fetch_arrow_table()
    table = table.rename_columns(schema.names).cast(schema)
    # Neither SQLite nor the driver checks that TEXT is UTF-8, so the check is here. The
    # exact reader replaces the bad bytes instead.
    for field in schema:
        if field.type == pa.string():
            table.column(field.name).validate(full=True)
    if table.num_rows == 0 or table.column("heartbeat_id")[0].as_py() != MARKER_HEARTBEAT_ID:
        raise ValueError("the marker row did not come first")
    return table.slice(1)
