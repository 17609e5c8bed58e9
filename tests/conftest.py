"""Shared fixtures: real SQLite heartbeat databases built from rows written in the test."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest

HEARTBEAT_COLUMNS = (
    "id", "device_id", "received_at", "uptime", "firmware_version", "reset_reason",
    "heap_free", "heap_min_free", "last_disconnect_code", "recent_events",
)
COLUMN_TYPES = {
    "id": "INTEGER PRIMARY KEY", "device_id": "TEXT", "received_at": "TEXT",
    "uptime": "INTEGER", "firmware_version": "TEXT", "reset_reason": "INTEGER",
    "heap_free": "INTEGER", "heap_min_free": "INTEGER", "last_disconnect_code": "INTEGER",
    "recent_events": "TEXT",
}


def write_heartbeats(
    path: Path,
    rows: Iterable[Mapping[str, object]],
    *,
    table: str = "heartbeats",
    columns: Iterable[str] = HEARTBEAT_COLUMNS,
    rename: Mapping[str, str] | None = None,
) -> Path:
    """Create a SQLite file with a heartbeat table holding `rows`.

    Lists in ``recent_events`` are stored as JSON text; strings are stored as given, so a
    test can store malformed JSON. Missing keys are NULL. `rename` maps a column to the
    name it gets in the file, for alias tests.
    """
    rename = dict(rename or {})
    columns = list(columns)
    stored = [rename.get(c, c) for c in columns]
    definition = ", ".join(f'"{name}" {COLUMN_TYPES.get(col, "")}'
                           for col, name in zip(columns, stored, strict=True))
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f'CREATE TABLE "{table}" ({definition})')
        placeholders = ", ".join("?" for _ in columns)
        names = ", ".join(f'"{name}"' for name in stored)
        for row in rows:
            values = [_stored_value(row.get(col)) for col in columns]
            connection.execute(f'INSERT INTO "{table}" ({names}) VALUES ({placeholders})',
                               values)
    connection.close()
    return path


def _stored_value(value: object) -> object:
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


@pytest.fixture
def heartbeat_db(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that writes rows to a fresh SQLite file and returns its path."""
    counter = {"n": 0}

    def build(rows: Iterable[Mapping[str, object]], **options: object) -> Path:
        counter["n"] += 1
        return write_heartbeats(tmp_path / f"heartbeats_{counter['n']}.sqlite", rows, **options)

    return build
