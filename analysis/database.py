"""Open the heartbeat database read-only and discover the heartbeat table's columns.

The analysis never writes to the database it reads: SQLite files are opened with
``mode=ro`` through a URI, so even a bug cannot change the file. The table and its columns
are discovered from the schema, never assumed, and identifiers reach SQL only through
SQLAlchemy's quoting after they were found in the schema.

The server writes to the same file while reports read it. When a writer holds the lock
(rollback-journal mode), reads are retried with exponential backoff for up to
``lock_timeout_s`` seconds (argument, else ``DOORCOUNTER_LOCK_TIMEOUT_S``, else
`DEFAULT_LOCK_TIMEOUT_S`), and then fail with `DatabaseLockedError`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from analysis.errors import (
    DatabaseError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    InvalidInputError,
    MissingColumnError,
    NotSQLiteError,
    TableNotFoundError,
    UnsupportedDatabaseError,
)

logger = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"

LOCK_TIMEOUT_ENVIRONMENT_VARIABLE = "DOORCOUNTER_LOCK_TIMEOUT_S"
# A server transaction takes milliseconds; 30 s also rides out a short backup or VACUUM.
DEFAULT_LOCK_TIMEOUT_S = 30.0
FIRST_RETRY_WAIT_S = 0.05
MAX_RETRY_WAIT_S = 5.0
_LOCKED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

T = TypeVar("T")

# Logical column -> names seen in the field, in order of preference (matched case-insensitively).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "heartbeat_id": ("id", "heartbeat_id", "rowid"),
    "device_id": ("device_id", "device", "deviceid", "device_uid", "device_name"),
    "received_at": (
        "received_at", "created_at", "timestamp", "time", "ts", "recorded_at",
        "inserted_at", "received", "created",
    ),
    "uptime_s": ("uptime", "uptime_s", "uptime_sec", "uptime_seconds"),
    "firmware_version": (
        "firmware_version", "fw_version", "firmware", "fw", "version", "app_version",
    ),
    "reset_reason": ("reset_reason",),
    "heap_free": ("heap_free", "free_heap"),
    "heap_min_free": ("heap_min_free", "min_free_heap"),
    "last_disconnect_code": ("last_disconnect_code", "disconnect_code"),
    "recent_events": ("recent_events",),
}
REQUIRED_COLUMNS = ("device_id", "received_at")
DIAGNOSTIC_COLUMNS = (
    "reset_reason", "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
)


@dataclass(frozen=True)
class HeartbeatSchema:
    """Mapping of each logical heartbeat column to its column in the stored table.

    A value of None means the table has no such column; ``heartbeat_id`` falls back to the
    SQLite ``rowid``.
    """

    table: str
    columns: Mapping[str, str | None]

    def has(self, logical: str) -> bool:
        """Return True when the table stores the logical column `logical`."""
        return self.columns.get(logical) is not None

    @property
    def missing_diagnostics(self) -> list[str]:
        """Diagnostic columns that the table lacks (all five before migration 005)."""
        return [name for name in DIAGNOSTIC_COLUMNS if not self.has(name)]


def database_label(db: str | Path) -> str:
    """Return `db` as text for messages, with any password in a URL hidden."""
    text = str(db)
    if "://" not in text:
        return text
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        return text


def sqlite_path(db: str | Path) -> Path:
    """Return the file path of a SQLite database given as a path or a ``sqlite:///`` URL.

    Raises
    ------
    UnsupportedDatabaseError
        If `db` is a URL for another engine, or an in-memory SQLite URL.
    """
    text = str(db)
    if "://" not in text:
        return Path(text).expanduser()

    try:
        url = make_url(text)
    except ArgumentError as err:
        raise InvalidInputError(f"invalid database URL {text!r}: {err}") from err
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise UnsupportedDatabaseError(
            f"unsupported database {database_label(text)!r}: the loader reads SQLite files; "
            "pass a file path or a sqlite:///path URL (copy other databases to SQLite first)",
            database=database_label(text),
        )
    return Path(url.database).expanduser()


def open_database(db: str | Path) -> Engine:
    """Open a SQLite heartbeat database read-only.

    Parameters
    ----------
    db : str or Path
        A file path or a ``sqlite:///path`` SQLAlchemy URL.

    Returns
    -------
    sqlalchemy.engine.Engine
        An engine whose connections are opened with ``mode=ro``.

    Raises
    ------
    DatabaseNotFoundError
        If the file does not exist.
    NotSQLiteError
        If the file is not a SQLite database.
    """
    path = sqlite_path(db)
    label = database_label(db)
    if not path.is_file():
        raise DatabaseNotFoundError(
            f"database not found: {path}; pass --db with the server's heartbeat database "
            "(or set DOORCOUNTER_DB), or omit it to use the sample fleet",
            database=label,
        )
    _check_sqlite_header(path, label)

    uri = read_only_uri(path)

    def connect() -> sqlite3.Connection:
        # timeout=0 turns off SQLite's own busy wait, so that retry_while_locked decides
        # how long to wait and logs each retry.
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=0)

    logger.debug("opening %s read-only", path)
    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def read_only_uri(path: Path) -> str:
    """Return the SQLite URI that opens `path` read-only (``mode=ro``)."""
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"


def discover_schema(
    engine: Engine,
    table: str = "heartbeats",
    columns: Mapping[str, str] | None = None,
    *,
    database: str = "",
    lock_timeout_s: float | None = None,
) -> HeartbeatSchema:
    """Find the heartbeat table and map its columns to the logical heartbeat columns.

    Parameters
    ----------
    engine : Engine
        From `open_database`.
    table : str
        Name of the heartbeat table; it must exist exactly (case-insensitively) in the schema.
    columns : mapping of str to str, optional
        Explicit ``{logical name: stored name}`` overrides, for example
        ``{"received_at": "server_time"}``.
    database : str
        Label used in messages.
    lock_timeout_s : float, optional
        How long to retry while a writer holds the lock; see `lock_timeout`.

    Raises
    ------
    TableNotFoundError
        If the table does not exist.
    MissingColumnError
        If the device id or the time column cannot be found, or a mapped column is missing.
    DatabaseLockedError
        If a writer held the lock for longer than `lock_timeout_s`.
    NotSQLiteError
        If the file is corrupt.
    """

    def read_schema() -> tuple[list[str], sa.Inspector]:
        # A fresh inspector per attempt: an inspector caches what it has read.
        inspector = sa.inspect(engine)
        return inspector.get_table_names(), inspector

    table_names, inspector = retry_while_locked(read_schema, database=database,
                                                lock_timeout_s=lock_timeout_s)

    stored_table = _match_name(table, table_names)
    if stored_table is None:
        listing = ", ".join(sorted(table_names)) or "none"
        raise TableNotFoundError(
            f"table {table!r} not found in {database or 'the database'} (tables: {listing}); "
            "pass --table with the name of the heartbeat table",
            table=table,
        )

    stored_columns = [
        col["name"]
        for col in retry_while_locked(lambda: inspector.get_columns(stored_table),
                                      database=database, lock_timeout_s=lock_timeout_s)
    ]
    mapping = _map_columns(stored_table, stored_columns, dict(columns or {}))
    return HeartbeatSchema(table=stored_table, columns=mapping)


def _map_columns(
    table: str, stored: list[str], overrides: dict[str, str]
) -> dict[str, str | None]:
    unknown = set(overrides) - set(COLUMN_ALIASES)
    if unknown:
        raise InvalidInputError(
            f"unknown logical column(s) {sorted(unknown)} in columns=; "
            f"valid names are {sorted(COLUMN_ALIASES)}"
        )

    mapping: dict[str, str | None] = {}
    for logical, aliases in COLUMN_ALIASES.items():
        if logical in overrides:
            found = _match_name(overrides[logical], stored)
            if found is None:
                raise MissingColumnError(
                    f"column {overrides[logical]!r} (mapped to {logical}) not found in table "
                    f"{table!r}; its columns are {', '.join(stored)}",
                    table=table,
                    column=logical,
                )
        else:
            found = next((m for a in aliases if (m := _match_name(a, stored))), None)
        mapping[logical] = found

    for logical in REQUIRED_COLUMNS:
        if mapping[logical] is None:
            raise MissingColumnError(
                f"table {table!r} has no {logical} column (looked for "
                f"{', '.join(COLUMN_ALIASES[logical])}); map it in Python with "
                f"columns={{'{logical}': '<column>'}}, or rename the column in a copy of "
                "the database",
                table=table,
                column=logical,
            )
    return mapping


def _match_name(name: str, candidates: list[str]) -> str | None:
    exact = [c for c in candidates if c == name]
    if exact:
        return exact[0]
    folded = [c for c in candidates if c.lower() == name.lower()]
    return folded[0] if folded else None


def _check_sqlite_header(path: Path, label: str) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as err:
        raise DatabaseNotFoundError(f"cannot read {path}: {err}", database=label) from err
    # An empty file is a valid, empty SQLite database; anything else needs the magic header.
    if header and header != SQLITE_HEADER:
        raise NotSQLiteError(
            f"{path} is not a SQLite database (no SQLite header); pass the server's "
            "heartbeat database file",
            database=label,
        )


def lock_timeout(lock_timeout_s: float | None = None) -> float:
    """Return how many seconds to retry a locked read.

    Parameters
    ----------
    lock_timeout_s : float, optional
        An explicit timeout; None reads ``DOORCOUNTER_LOCK_TIMEOUT_S`` from the environment,
        else uses `DEFAULT_LOCK_TIMEOUT_S`.

    Raises
    ------
    InvalidInputError
        If the timeout is negative or not a number.
    """
    source = "lock_timeout_s"
    value: object = lock_timeout_s
    if value is None:
        value = os.environ.get(LOCK_TIMEOUT_ENVIRONMENT_VARIABLE, "").strip() or None
        source = LOCK_TIMEOUT_ENVIRONMENT_VARIABLE
    if value is None:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"invalid {source} {value!r}: expected a number of seconds such as 30"
        ) from err
    if not seconds >= 0:
        raise InvalidInputError(f"invalid {source} {value!r}: expected 0 or more seconds")
    return seconds


def retry_while_locked(
    read: Callable[[], T], *, database: str, lock_timeout_s: float | None = None
) -> T:
    """Call `read`, retrying with exponential backoff while another connection holds the lock.

    Parameters
    ----------
    read : callable
        One read; it must be safe to repeat, as a SELECT is.
    database : str
        Label used in messages.
    lock_timeout_s : float, optional
        Total seconds to wait before giving up; see `lock_timeout`.

    Raises
    ------
    DatabaseLockedError
        If the database is still locked when the timeout has passed.
    NotSQLiteError
        If SQLite reports the file as corrupt or not a database.
    DatabaseError
        For any other SQLite error while reading.
    """
    timeout_s = lock_timeout(lock_timeout_s)
    waited_s = 0.0
    wait_s = FIRST_RETRY_WAIT_S
    attempt = 1
    while True:
        try:
            return read()
        except sa.exc.DBAPIError as err:
            if not is_locked_error(err):
                raise read_error(err, database) from err
            if waited_s >= timeout_s:
                raise _locked_error(database, attempt, waited_s) from err
            wait_s = min(wait_s, MAX_RETRY_WAIT_S, timeout_s - waited_s)
            logger.warning(
                "database %s is locked by another connection (attempt %d); retrying in %.2f s",
                database or "(unnamed)", attempt, wait_s,
            )
            time.sleep(wait_s)
            waited_s += wait_s
            wait_s *= 2
            attempt += 1


def is_locked_error(err: BaseException) -> bool:
    """Return True when `err` (or the driver error it wraps) is SQLITE_BUSY or SQLITE_LOCKED."""
    original = getattr(err, "orig", err)
    return getattr(original, "sqlite_errorcode", None) in _LOCKED_CODES


def read_error(err: sa.exc.DBAPIError, database: str) -> DatabaseError:
    """Return the `DatabaseError` to raise for an SQLite error met while reading."""
    original = err.orig
    label = database or "the database"
    if getattr(original, "sqlite_errorcode", None) in _CORRUPT_CODES:
        return NotSQLiteError(
            f"cannot read {label}: {original}; the file is corrupt or not a SQLite database. "
            f"Check it with sqlite3 {label} 'PRAGMA integrity_check' and restore it from a "
            f"backup, or salvage the rows with sqlite3 {label} .recover",
            database=database,
        )
    return DatabaseError(f"cannot read {label}: {original}", database=database)


def _locked_error(database: str, attempts: int, waited_s: float) -> DatabaseLockedError:
    label = database or "the database"
    return DatabaseLockedError(
        f"{label} is locked: another connection (the server, a backup or a VACUUM) held "
        f"its write lock for {waited_s:.1f} s ({attempts} reads tried); retry later, "
        f"raise {LOCK_TIMEOUT_ENVIRONMENT_VARIABLE}, or run against a copy made with "
        "sqlite3 SOURCE '.backup copy.sqlite'",
        database=database,
    )


def decode_text_leniently(raw: bytes) -> str:
    """Decode TEXT from SQLite, replacing bytes that are not UTF-8.

    SQLite does not check that TEXT is valid UTF-8, and the sqlite3 module's default
    decoder fails the whole read on one hand-edited value. Set this as a connection's
    ``text_factory`` to read such a table. It is slower than the default, so readers use
    it only after the default failed.
    """
    return raw.decode("utf-8", errors="replace")


def count_rows(
    engine: Engine, schema: HeartbeatSchema, *, database: str = "",
    lock_timeout_s: float | None = None,
) -> int:
    """Return the number of rows stored in the heartbeat table, to compare with a load.

    Raises
    ------
    DatabaseLockedError, NotSQLiteError, DatabaseError
        As `retry_while_locked`.
    """
    statement = sa.select(sa.func.count()).select_from(sa.table(schema.table))

    def read() -> int:
        with engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    return retry_while_locked(read, database=database, lock_timeout_s=lock_timeout_s)
