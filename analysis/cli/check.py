"""``fleet-report check``: show what the loader finds in a heartbeat database.

The command prints the table and columns found, how many stored rows were loaded or left
out, whether the table lost history, and the data-quality report. It opens the database
read-only. Odd values are counted, and only a database it cannot read ends in exit status 2.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import click
import pandas as pd

from analysis.cli import CONTEXT_SETTINGS, handle_errors
from analysis.database import (
    DIAGNOSTIC_COLUMNS,
    HeartbeatSchema,
    count_rows,
    database_label,
    discover_schema,
    open_database,
)
from analysis.errors import DataQualityWarning
from analysis.fleet import Fleet, load_fleet
from analysis.history import CHECK_BY_SHAPE, SOUND, lost_history_shape
from analysis.pseudonymize import load_pseudonym_key, pseudonymize_fleet
from analysis.quality import CHECK_DESCRIPTIONS
from analysis.runner.source import resolve_database

# Checks whose heartbeats the loader leaves out of the heartbeat table.
REJECTION_CHECKS = ("received_at_unparsable", "device_id_missing")


@dataclass(frozen=True)
class DatabaseCheck:
    """Findings of `fleet-report check` on one database."""

    database: str
    schema: HeartbeatSchema
    rows_stored: int
    fleet: Fleet

    @property
    def left_out(self) -> dict[str, int]:
        """Heartbeats left out of the load, by the check that rejected them."""
        counts = {check: self.fleet.quality.count(check) for check in REJECTION_CHECKS}
        return {check: count for check, count in counts.items() if count}

    def to_dict(self) -> dict[str, object]:
        """Return the findings as plain JSON values."""
        shape = lost_history_shape(self.fleet.quality)
        quality = self.fleet.quality.to_dict()
        return {
            "database": self.database,
            "table": self.schema.table,
            "columns": {logical: stored for logical, stored in self.schema.columns.items()},
            "missing_diagnostic_columns": self.schema.missing_diagnostics,
            "rows_stored": self.rows_stored,
            "heartbeats_loaded": len(self.fleet.heartbeats),
            "heartbeats_left_out": self.left_out,
            "devices": int(self.fleet.heartbeats["device_id"].nunique()),
            "events": len(self.fleet.events),
            "boots": len(self.fleet.boots),
            "history": {
                "shape": shape,
                "detail": quality[CHECK_BY_SHAPE[shape]]["detail"] if shape != SOUND else "",
            },
            "quality": {
                check: {"description": CHECK_DESCRIPTIONS.get(check, check), **entry}
                for check, entry in quality.items()
            },
        }


@click.command(
    "check",
    context_settings=CONTEXT_SETTINGS,
    epilog="Example: fleet-report check --db /srv/doorcounter/server.sqlite --json",
)
@click.option(
    "--db",
    metavar="PATH|URL",
    help="Heartbeat database: a SQLite file or sqlite:///path URL, opened read-only. "
    "Default: $DOORCOUNTER_DB, else the sample fleet.",
)
@click.option("--table", default="heartbeats", show_default=True,
              help="Name of the heartbeat table in the database.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document instead of tables, for scripts.")
@click.option("--pseudonymize", is_flag=True,
              help="Replace device ids in the output with keyed pseudonyms (HMAC-SHA256); "
              "the key comes from $DOORCOUNTER_PSEUDONYM_KEY or --pseudonym-key-file.")
@click.option("--pseudonym-key-file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=str),
              help="File holding the pseudonym key; implies --pseudonymize.")
@handle_errors
def command(
    db: str | None,
    table: str,
    as_json: bool,
    pseudonymize: bool,
    pseudonym_key_file: str | None,
) -> None:
    """Check a heartbeat database: schema, rows loaded, lost history and data quality.

    Every odd value is counted by kind with example heartbeat ids; no heartbeat is left
    out without a count. A live database is read in one consistent snapshot. While a
    writer holds the lock, the read is retried for up to $DOORCOUNTER_LOCK_TIMEOUT_S
    seconds (default 30).

    Exit status: 0 when the database could be read (whatever its quality), 2 when it is
    missing, not SQLite, corrupt, locked, or lacks the table or its device id or time
    column.
    """
    key = None
    if pseudonymize or pseudonym_key_file:
        key = load_pseudonym_key(pseudonym_key_file)

    result = check_database(resolve_database(db), table=table)
    if key is not None:
        result = DatabaseCheck(result.database, result.schema, result.rows_stored,
                               pseudonymize_fleet(result.fleet, key))

    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_check(result))


def check_database(db: str, *, table: str = "heartbeats") -> DatabaseCheck:
    """Read `db` the way the reports do and collect what `fleet-report check` shows."""
    label = database_label(db)
    engine = open_database(db)
    try:
        schema = discover_schema(engine, table, database=label)
        rows_stored = count_rows(engine, schema, database=label)
    finally:
        engine.dispose()

    # The data-quality report and the history verdict below show what these warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        fleet = load_fleet(db, table=table, cache=False)
    return DatabaseCheck(label, schema, rows_stored, fleet)


def format_check(result: DatabaseCheck) -> str:
    """Return the findings as text: a header of key facts, then the data-quality table."""
    found = result.to_dict()
    left_out = ", ".join(f"{check} {count}" for check, count in result.left_out.items())
    lines = [
        f"database  {found['database']} (opened read-only)",
        f"table     {found['table']}: {found['rows_stored']} rows stored, "
        f"{found['heartbeats_loaded']} heartbeats loaded, "
        f"{sum(result.left_out.values())} left out" + (f" ({left_out})" if left_out else ""),
        f"devices   {found['devices']}; {found['events']} distinct events, "
        f"{found['boots']} boots",
        f"columns   {_describe_columns(result.schema)}",
        f"missing   {_describe_missing(result.schema)}",
        f"history   {_describe_history(found['history'])}",
        "",
    ]
    lines.extend(_describe_quality(result))
    return "\n".join(lines)


def _describe_columns(schema: HeartbeatSchema) -> str:
    pairs = [f"{logical}={stored}" for logical, stored in schema.columns.items()
             if stored is not None]
    if not schema.has("heartbeat_id"):
        pairs.insert(0, "heartbeat_id=rowid")
    return ", ".join(pairs)


def _describe_missing(schema: HeartbeatSchema) -> str:
    missing = [name for name, stored in schema.columns.items()
               if stored is None and name != "heartbeat_id"]
    if not missing:
        return "none"
    if set(DIAGNOSTIC_COLUMNS) <= set(missing):
        return ", ".join(missing) + " (a table from before the diagnostics migration)"
    return ", ".join(missing)


def _describe_history(history: dict[str, str]) -> str:
    if history["shape"] == SOUND:
        return "sound: each heartbeat keeps its own diagnostics"
    return f"LOST ({history['shape']}): {history['detail']}"


def _describe_quality(result: DatabaseCheck) -> list[str]:
    frame = result.fleet.quality.to_frame()
    if frame.empty:
        return ["data quality: no problems found"]
    frame = frame.rename(columns={"example_heartbeat_ids": "examples"})
    table = frame[["check", "count", "examples", "description", "detail"]]
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        text = table.to_string(index=False)
    return [f"data quality: {len(frame)} kinds of problem, {int(frame['count'].sum())} in all",
            text]
