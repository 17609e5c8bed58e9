"""``fleet-report export``: the three fleet tables as CSV and Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from analysis.cli import CONTEXT_SETTINGS, handle_errors
from analysis.runner.source import resolve_database


@click.command("export", context_settings=CONTEXT_SETTINGS)
@click.option("--db", "db", default=None,
              help="Heartbeat database: SQLite path or sqlite:/// URL. Default: $DOORCOUNTER_DB, "
                   "else the sample fleet.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for heartbeats, events and boots (.csv and .parquet).")
@click.option("--table", default="heartbeats", show_default=True,
              help="Name of the heartbeat table in the database.")
@click.option("--since", default=None, help="Start of the window: ISO-8601 date or time (UTC).")
@click.option("--until", default=None, help="End of the window (exclusive): ISO-8601 date or time.")
@click.option("--device", "devices", multiple=True, help="Only this device id; repeatable.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["csv", "parquet"]),
              help="File format; repeatable. Default: both.")
@handle_errors
def command(db, out_dir, table, since, until, devices, formats):
    """Write the heartbeats, events and boots tables for a spreadsheet or BI tool.

    The database is opened read-only. Times are UTC.

    Example: fleet-report export --db heartbeats.sqlite --out exports/ --since 2026-05-01
    """
    from analysis.export import export_fleet
    from analysis.fleet import load_fleet

    fleet = load_fleet(resolve_database(db), table=table, start=since, end=until,
                       devices=list(devices) or None)
    for path in export_fleet(fleet, out_dir, formats=formats or ("csv", "parquet")):
        click.echo(str(path))
