"""``fleet-report release``: run the release impact report for two firmware versions."""

from __future__ import annotations

import sys

import click

from analysis.cli import CONTEXT_SETTINGS, EXIT_OK, EXIT_REPORT_FAILED, handle_errors
from analysis.release import choose_versions, database_versions
from analysis.runner.source import resolve_database
from analysis.runner.window import parse_since, parse_time

REPORT = "release_impact"


@click.command(
    "release",
    context_settings=CONTEXT_SETTINGS,
    epilog="Example: fleet-report release --baseline 1.1.0 --candidate 1.2.0 --since 30d",
)
@click.option("--baseline", metavar="VERSION", default="",
              help="Firmware version compared against, such as 1.1.0. Default: the newest "
              "version older than the candidate.")
@click.option("--candidate", metavar="VERSION", default="",
              help="Firmware version under review, such as 1.2.0. Default: the newest version.")
@click.option("--db", metavar="PATH|URL",
              help="Heartbeat database: a SQLite file or sqlite:///path URL, opened read-only. "
              "Default: $DOORCOUNTER_DB, else the sample fleet.")
@click.option("--table", default="heartbeats", show_default=True,
              help="Name of the heartbeat table in the database.")
@click.option("--since", metavar="SPAN|DATE",
              help="Start of the window: a span before --until (or before now) such as 30d, "
              "or an ISO-8601 date or time (UTC when no offset). Default: the first heartbeat.")
@click.option("--until", metavar="DATE",
              help="End of the window, excluded: an ISO-8601 date or time (UTC when no "
              "offset). Default: the last heartbeat.")
@click.option("--out", "out_dir", metavar="DIR", default="reports", show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Directory that receives one <UTC time>/ folder per run.")
@click.option("--quiet", is_flag=True, help="No progress bar and no closing summary.")
@handle_errors
def command(
    baseline: str,
    candidate: str,
    db: str | None,
    table: str,
    since: str | None,
    until: str | None,
    out_dir: str,
    quiet: bool,
) -> None:
    """Compare a candidate firmware version with a baseline and write the report as HTML.

    The versions are checked against the database before the notebook runs. Exit status:
    0 when the report was written, 1 when the report failed, 2 for bad input (a version
    that is not in the database, a missing database, a bad date).
    """
    # Imported here: papermill and nbconvert take seconds to import, and --help needs neither.
    from analysis.runner.run import run_reports

    database = resolve_database(db)
    baseline, candidate = choose_versions(database_versions(database, table=table),
                                          baseline, candidate)
    end = parse_time(until, "until")
    start = parse_since(since, now=end) if since else None
    result = run_reports(
        database,
        start=start,
        end=end,
        reports=[REPORT],
        out_dir=out_dir,
        table=table,
        show_progress=sys.stderr.isatty() and not quiet,
        parameters={"baseline": baseline, "candidate": candidate},
    )
    if not quiet:
        for report in result.reports:
            click.echo(f"{report.status.upper():9}  {report.name}  {candidate} vs {baseline}  "
                       f"({report.duration_s:.1f} s)")
        click.echo(f"index: {result.index_path}")
    sys.exit(EXIT_OK if result.succeeded else EXIT_REPORT_FAILED)
