"""Write a simulated fleet to SQLite in the table shapes and time formats found in the field.

Shapes:

- ``per_heartbeat``: one row per heartbeat, as the server should keep them.
- ``per_device``: one row per device holding its newest values, as a server that upserts
  by device keeps them.
- ``overwritten``: one row per heartbeat, but the diagnostics of every row of a device equal
  its newest heartbeat's. That is the end state of running
  ``UPDATE heartbeats SET reset_reason=?, heap_free=?, heap_min_free=?,
  last_disconnect_code=?, recent_events=? WHERE device_id=?`` after each insert.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InvalidInputError
from analysis.sample.assemble import DIAGNOSTIC_COLUMNS
from analysis.sample.fleet import SimulatedFleet

logger = logging.getLogger(__name__)

SHAPES = ("per_heartbeat", "per_device", "overwritten")
TIME_FORMATS = ("iso", "iso_offset", "unix")
# iso_offset writes each row's time with one of these UTC offsets in turn, so one table
# contains "Z", "+00:00" and local times with other offsets, all for the same instants.
OFFSET_SUFFIXES = (("Z", 0), ("+00:00", 0), ("+02:00", 120), ("-05:00", -300))
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_database(
    fleet: SimulatedFleet,
    path: str | os.PathLike,
    *,
    shape: str = "per_heartbeat",
    table: str = "heartbeats",
    time_column: str = "received_at",
    version_column: str = "firmware_version",
    time_format: str = "iso",
    has_diagnostic_columns: bool = True,
) -> Path:
    """Write the fleet's heartbeats to a new SQLite file, replacing `path` atomically.

    Parameters
    ----------
    fleet : SimulatedFleet
        From `simulate_fleet`.
    path : str or PathLike
        The database file to create; its directory must exist.
    shape : {"per_heartbeat", "per_device", "overwritten"}
        How the table keeps history (see the module docstring).
    table, time_column, version_column : str
        Names of the table, the receive-time column and the firmware-version column.
    time_format : {"iso", "iso_offset", "unix"}
        ``iso`` writes "2026-05-01 10:00:00" (UTC, no offset); ``iso_offset`` writes
        ISO-8601 with "Z" or an offset, same instant; ``unix`` writes integer seconds into
        an INTEGER column.
    has_diagnostic_columns : bool
        False writes a table from before migration 005, without the five diagnostic columns.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InvalidInputError
        For an unknown shape or time format, or a name that is not a plain SQL identifier.
    """
    _check_choice("shape", shape, SHAPES)
    _check_choice("time_format", time_format, TIME_FORMATS)
    for label, name in (("table", table), ("time_column", time_column),
                        ("version_column", version_column)):
        if not _IDENTIFIER.match(name):
            raise InvalidInputError(
                f"{label} {name!r} is not a plain SQL identifier; use letters, digits and _"
            )

    rows = _shape_rows(fleet.heartbeats, shape)
    columns = _stored_columns(rows, time_format, has_diagnostic_columns)
    names = {"received_at": time_column, "firmware_version": version_column}
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidInputError(
            f"directory {path.parent} does not exist; create it before writing {path.name}"
        )
    with _atomic_file(path) as temporary:
        _write_table(temporary, table, columns, names, time_format)
    logger.debug("wrote %d %s rows to %s", len(rows), shape, path)
    return path


def _check_choice(label: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInputError(f"{label} {value!r} is not one of {', '.join(choices)}")


def _shape_rows(heartbeats: pd.DataFrame, shape: str) -> pd.DataFrame:
    if shape == "per_heartbeat":
        return heartbeats
    newest = heartbeats.drop_duplicates("device_id", keep="last").set_index("device_id")
    if shape == "per_device":
        # The upserted row keeps the id of the device's first heartbeat.
        first_ids = heartbeats.drop_duplicates("device_id", keep="first").set_index(
            "device_id")["id"]
        rows = newest.assign(id=first_ids.reindex(newest.index)).reset_index()
        return rows.sort_values("id", ignore_index=True).loc[:, heartbeats.columns]
    rows = heartbeats.copy()
    for column in DIAGNOSTIC_COLUMNS:
        values = newest[column].reindex(rows["device_id"]).to_numpy()
        rows[column] = pd.Series(values, dtype=heartbeats[column].dtype)
    return rows


def _stored_columns(
    rows: pd.DataFrame, time_format: str, has_diagnostic_columns: bool
) -> dict[str, list]:
    columns = {
        "id": rows["id"].tolist(),
        "device_id": rows["device_id"].tolist(),
        "received_at": _format_times(rows["received_at"], time_format, rows["id"]),
        "uptime": rows["uptime"].tolist(),
        "firmware_version": rows["firmware_version"].tolist(),
    }
    if has_diagnostic_columns:
        for column in DIAGNOSTIC_COLUMNS:
            columns[column] = rows[column].to_numpy(dtype=object, na_value=None).tolist()
    return columns


def _format_times(times: pd.Series, time_format: str, ids: pd.Series) -> list:
    seconds = times.dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    if time_format == "unix":
        return seconds.astype(np.int64).tolist()
    if time_format == "iso":
        return [text.replace("T", " ") for text in np.datetime_as_string(seconds).tolist()]
    texts = np.empty(len(seconds), dtype=object)
    choice = ids.to_numpy() % len(OFFSET_SUFFIXES)
    for number, (suffix, minutes) in enumerate(OFFSET_SUFFIXES):
        mask = choice == number
        local = seconds[mask] + np.timedelta64(minutes * 60, "s")
        texts[mask] = [text + suffix for text in np.datetime_as_string(local).tolist()]
    return texts.tolist()


def _write_table(
    path: Path, table: str, columns: dict[str, list], names: dict[str, str], time_format: str
) -> None:
    types = {
        "id": "INTEGER PRIMARY KEY", "device_id": "TEXT NOT NULL",
        "received_at": "INTEGER" if time_format == "unix" else "TEXT", "uptime": "INTEGER",
        "firmware_version": "TEXT", "reset_reason": "INTEGER", "heap_free": "INTEGER",
        "heap_min_free": "INTEGER", "last_disconnect_code": "INTEGER", "recent_events": "TEXT",
    }
    stored = [names.get(column, column) for column in columns]
    definition = ", ".join(
        f"{name} {types[column]}" for column, name in zip(columns, stored, strict=True)
    )
    placeholders = ", ".join("?" for _ in columns)
    time_name = names["received_at"]

    connection = sqlite3.connect(path)
    try:
        # The file is private until it is renamed into place, so durability settings can
        # be relaxed for speed.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(f"CREATE TABLE {table} ({definition})")
        connection.executemany(
            f"INSERT INTO {table} ({', '.join(stored)}) VALUES ({placeholders})",
            zip(*columns.values(), strict=True),
        )
        connection.execute(
            f"CREATE INDEX idx_{table}_device_time ON {table} (device_id, {time_name})"
        )
        connection.commit()
    finally:
        connection.close()


@contextlib.contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` and rename it to `path` when the block succeeds."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.unlink()
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_truth_tables(fleet: SimulatedFleet, directory: str | os.PathLike) -> list[Path]:
    """Write the ground-truth tables as CSV files into `directory`, creating it if needed.

    Files: ``truth_boots.csv``, ``truth_events.csv``, ``truth_devices.csv`` and
    ``truth_malformed.csv``; times are ISO-8601 UTC.

    Returns
    -------
    list of Path
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = {
        "truth_boots": fleet.truth_boots,
        "truth_events": fleet.truth_events,
        "truth_devices": fleet.truth_devices,
        "truth_malformed": fleet.truth_malformed,
    }
    paths = []
    for name, frame in tables.items():
        path = directory / f"{name}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
        paths.append(path)
    logger.debug("wrote %d truth tables to %s", len(paths), directory)
    return paths
