"""``fleet-report run``: execute the report notebooks and publish them as HTML."""

from __future__ import annotations

import logging
import sys

import click

from analysis.cli import CONTEXT_SETTINGS, EXIT_OK, EXIT_REPORT_FAILED, handle_errors
from analysis.runner.window import parse_since, parse_time


@click.command(
    "run",
    context_settings=CONTEXT_SETTINGS,
    epilog="Example: fleet-report run --db /srv/doorcounter/server.sqlite --since 7d",
)
@click.option(
    "--db",
    metavar="PATH|URL",
    help="Heartbeat database: a SQLite file or sqlite:///path URL, opened read-only. "
    "Default: $DOORCOUNTER_DB, else the sample fleet (generated under data/ on first use).",
)
@click.option(
    "--table",
    default="heartbeats",
    show_default=True,
    help="Name of the heartbeat table in the database.",
)
@click.option(
    "--since",
    metavar="SPAN|DATE",
    help="Start of the window: a span before --until (or before now) such as 30m, 12h, 7d "
    "or 2w, or an ISO-8601 date or time such as 2026-05-01 or 2026-05-01T08:00:00+02:00 "
    "(UTC when no offset). Default: the first heartbeat.",
)
@click.option(
    "--until",
    metavar="DATE",
    help="End of the window, excluded: an ISO-8601 date or time (UTC when no offset). "
    "--until 2026-05-08 stops at midnight UTC that starts May 8. Default: the last heartbeat.",
)
@click.option(
    "--firmware",
    metavar="VERSION",
    multiple=True,
    help="Keep only this firmware version, such as 1.1.0. Repeat for several.",
)
@click.option(
    "--device",
    "devices",
    metavar="ID",
    multiple=True,
    help="Keep only this device id. Repeat for several.",
)
@click.option(
    "--report",
    "reports",
    metavar="NAME",
    multiple=True,
    help="Run this report (a notebook name without .ipynb). Repeat for several. "
    "Default: every report marked as default in its notebook metadata.",
)
@click.option(
    "--notebooks",
    "notebooks_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=str),
    help="Directory of the report notebooks. Default: notebooks/ of the project.",
)
@click.option(
    "--out",
    "out_dir",
    metavar="DIR",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Directory that receives one <UTC time>/ folder per run and index.html of all runs.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Reports executed at the same time, each in its own Jupyter kernel. Every kernel "
    "loads the selected heartbeats, so each job needs that much memory again.",
)
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace device ids in every report with stable keyed pseudonyms (anon-...), so "
    "reports can be shared. The key comes from --pseudonym-key-file or "
    "$DOORCOUNTER_PSEUDONYM_KEY (16 bytes or more) and is never written to a report.",
)
@click.option(
    "--pseudonym-key-file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=str),
    help="File that contains the pseudonym key, for --pseudonymize.",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bar and no closing summary; log lines still follow --log-level.",
)
@handle_errors
def command(
    db: str | None,
    table: str,
    since: str | None,
    until: str | None,
    firmware: tuple[str, ...],
    devices: tuple[str, ...],
    reports: tuple[str, ...],
    notebooks_dir: str | None,
    out_dir: str,
    jobs: int,
    pseudonymize: bool,
    pseudonym_key_file: str | None,
    quiet: bool,
) -> None:
    """Run the report notebooks on a heartbeat database and write them as HTML.

    Each run writes reports/<UTC time>/ with one HTML page and one executed notebook per
    report, summary.json (the headline figures), run.json (parameters, versions, database
    fingerprint, timings) and index.html; reports/index.html lists every run.

    Exit status: 0 when every report succeeded, 1 when a report failed (the others are
    still written), 2 for bad input (database, table, report name, date), before any
    report runs.
    """
    # Imported here: papermill and nbconvert take seconds to import, and --help needs neither.
    from analysis.runner.run import run_reports

    # papermill logs four INFO lines per notebook; the runner logs one per report.
    logging.getLogger("papermill").setLevel(max(logging.WARNING, logging.getLogger().level))

    end = parse_time(until, "until")
    start = parse_since(since, now=end) if since else None
    result = run_reports(
        db,
        start=start,
        end=end,
        firmware=firmware,
        devices=devices,
        reports=reports,
        out_dir=out_dir,
        notebooks_dir=notebooks_dir,
        table=table,
        show_progress=sys.stderr.isatty() and not quiet,
        jobs=jobs,
        pseudonymize=pseudonymize,
        pseudonym_key_file=pseudonym_key_file,
    )

    if not quiet:
        for report in result.reports:
            click.echo(f"{report.status.upper():9}  {report.name}  ({report.duration_s:.1f} s)")
        click.echo(f"index: {result.index_path}")
    sys.exit(EXIT_OK if result.succeeded else EXIT_REPORT_FAILED)
