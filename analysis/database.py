"""Open the heartbeat database read-only and discover the heartbeat table's columns.

The analysis never writes to the database it reads: SQLite files are opened with
``mode=ro`` through a URI, so even a bug cannot change the file. The table and its columns
are discovered from the schema, never assumed, and identifiers reach SQL only through
SQLAlchemy's quoting after they were found in the schema.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from analysis.errors import (
    DatabaseNotFoundError,
    InvalidInputError,
    MissingColumnError,
    NotSQLiteError,
    TableNotFoundError,
    UnsupportedDatabaseError,
)

logger = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"

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
    """Where each logical heartbeat column lives in the stored table.

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

    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    logger.debug("opening %s read-only", path)
    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)


def discover_schema(
    engine: Engine,
    table: str = "heartbeats",
    columns: Mapping[str, str] | None = None,
    *,
    database: str = "",
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

    Raises
    ------
    TableNotFoundError
        If the table does not exist.
    MissingColumnError
        If the device id or the time column cannot be found, or a mapped column is missing.
    """
    inspector = sa.inspect(engine)
    try:
        table_names = inspector.get_table_names()
    except sa.exc.DatabaseError as err:
        raise NotSQLiteError(
            f"cannot read {database or 'the database'}: {err.orig}; the file is corrupt or "
            "not a SQLite database",
            database=database,
        ) from err

    stored_table = _match_name(table, table_names)
    if stored_table is None:
        listing = ", ".join(sorted(table_names)) or "none"
        raise TableNotFoundError(
            f"table {table!r} not found in {database or 'the database'} (tables: {listing}); "
            "pass --table with the name of the heartbeat table",
            table=table,
        )

    stored_columns = [col["name"] for col in inspector.get_columns(stored_table)]
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
                f"{', '.join(COLUMN_ALIASES[logical])}); map it with "
                f"columns={{'{logical}': '<column>'}} or --column {logical}=<column>",
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
