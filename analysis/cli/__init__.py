"""The ``fleet-report`` command line: a thin layer over the `analysis` package.

Each subcommand lives in its own module and calls one library function. Errors that
`analysis` raises on purpose become a one-line message and a distinct exit status.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from analysis.errors import AnalysisError

EXIT_OK = 0
EXIT_REPORT_FAILED = 1
EXIT_BAD_INPUT = 2

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an `AnalysisError` into a one-line message on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AnalysisError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Level of the log lines written to stderr.",
)
@click.version_option(package_name="analysis")
def main(log_level: str) -> None:
    """Fleet-reliability reports for DoorCounter devices.

    Reads the heartbeat table of the server's SQLite database (read-only) and turns it
    into reports on reboots, heap, Wi-Fi disconnects and firmware releases.

    Example: fleet-report run --since 7d
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _register_commands() -> None:
    # Imported here so that each module can import `main`, `handle_errors` and the exit
    # codes from this package without a cycle.
    from analysis.cli import check, export, lab, release, run, sample

    for module in (sample, export, run, release, lab, check):
        main.add_command(module.command)


_register_commands()
