"""``fleet-report sample``: write a simulated fleet database, optionally with its ground truth."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analysis.cli import CONTEXT_SETTINGS, handle_errors
from analysis.errors import InvalidInputError
from analysis.sample.config import DEFAULT_SEED
from analysis.sample.files import SAMPLE_DAYS, SAMPLE_DEVICES
from analysis.sample.writer import SHAPES, TIME_FORMATS


@click.command("sample", context_settings=CONTEXT_SETTINGS)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--devices", default=SAMPLE_DEVICES, show_default=True, type=click.IntRange(min=1),
              help="Number of simulated devices.")
@click.option("--days", default=float(SAMPLE_DAYS), show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Length of the simulated window, in days from 2026-05-01 00:00 UTC.")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=int,
              help="Random seed; the same seed and options write the same file.")
@click.option("--shape", type=click.Choice(SHAPES), default="per_heartbeat", show_default=True,
              help="Table shape: one row per heartbeat, one row per device, or one row per "
                   "heartbeat with every row's diagnostics overwritten by the newest.")
@click.option("--time-format", type=click.Choice(TIME_FORMATS), default="iso",
              show_default=True,
              help="How received_at is stored: ISO text in UTC, ISO text with an offset, or "
                   "integer unix seconds.")
@click.option("--table", default="heartbeats", show_default=True,
              help="Name of the heartbeat table.")
@click.option("--time-column", default="received_at", show_default=True,
              help="Name of the receive-time column.")
@click.option("--version-column", default="firmware_version", show_default=True,
              help="Name of the firmware-version column.")
@click.option("--pre-migration", is_flag=True,
              help="Leave out the five diagnostic columns, as before migration 005.")
@click.option("--truth", "truth_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the ground-truth tables (boots, events, devices, malformed "
                   "rows) as CSV files into this directory.")
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option("--quiet", is_flag=True, help="Show no progress bar.")
@handle_errors
def command(path, devices, days, seed, shape, time_format, table, time_column, version_column,
            pre_migration, truth_dir, force, quiet):
    """Simulate a DoorCounter fleet from a seed and write its heartbeats to PATH (SQLite).

    The firmware of each device is simulated boot by boot: crashes, boot loops, heap
    leaks, Wi-Fi outages, missed heartbeats and an OTA update from v1.0.0 to v1.1.0
    around the middle of the window.

    Example: fleet-report sample data/fleet.sqlite --devices 50 --days 7 --truth data/truth
    """
    from analysis.sample.files import generate_sample_database

    if path.exists() and not force:
        raise InvalidInputError(f"{path} already exists; pass --force to replace it")
    written = generate_sample_database(
        path, devices=devices, days=days, seed=seed, shape=shape, time_format=time_format,
        truth_dir=truth_dir, progress=not quiet and sys.stderr.isatty(),
        table=table, time_column=time_column, version_column=version_column,
        has_diagnostic_columns=not pre_migration,
    )
    click.echo(str(written))
