"""``fleet-report lab``: start JupyterLab in the report notebooks with the database chosen.

The database reaches the notebooks as ``DOORCOUNTER_DB``, which `analysis.notebook`
reads when a notebook's ``db`` parameter is empty. JupyterLab runs on this interpreter,
so its ``python3`` kernel is this environment's, and new notebooks default to the kernel
that ``fleet-report run`` registers for it.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from analysis.cli import CONTEXT_SETTINGS, handle_errors
from analysis.database import database_label
from analysis.runner.catalog import default_notebooks_dir
from analysis.runner.kernel import ensure_kernel, kernel_config, kernel_name_for
from analysis.runner.source import DATABASE_ENVIRONMENT_VARIABLE, check_database, resolve_database

logger = logging.getLogger(__name__)

DEFAULT_IP = "127.0.0.1"


@dataclass(frozen=True)
class LabPlan:
    """The JupyterLab command line and the environment it needs."""

    argv: list[str]
    database: str
    notebooks_dir: Path

    def describe(self) -> str:
        """Return the plan as a shell line: the variable assignment and the command."""
        assignment = f"{DATABASE_ENVIRONMENT_VARIABLE}={shlex.quote(self.database)}"
        return f"{assignment} {shlex.join(self.argv)}"


def plan_lab(
    db: str | None,
    *,
    notebooks_dir: str | None = None,
    ip: str = DEFAULT_IP,
    port: int | None = None,
    open_browser: bool = True,
    kernel_name: str | None = None,
    extra_args: tuple[str, ...] = (),
) -> LabPlan:
    """Build the JupyterLab command for `db`, checking the database first.

    Parameters
    ----------
    db : str or None
        Database path or URL; empty selects ``DOORCOUNTER_DB``, else the sample fleet.
    notebooks_dir : str, optional
        Directory JupyterLab opens; defaults to the project's ``notebooks/``.
    ip, port : str, int
        Where JupyterLab listens; no port leaves JupyterLab's default (8888, else the
        next free port).
    open_browser : bool
        False passes ``--no-browser``.
    kernel_name : str, optional
        Default kernel of new notebooks; defaults to the kernelspec of this interpreter.
    extra_args : tuple of str
        Further JupyterLab arguments, appended unchanged (``--allow-root``, for example).

    Raises
    ------
    AnalysisError
        If the database is missing, not SQLite or has no heartbeat table.
    """
    database = resolve_database(db)
    check_database(database)
    directory = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    python = os.path.abspath(sys.executable)
    kernel = kernel_name or kernel_name_for(python)

    argv = [python, "-m", "jupyterlab", f"--ServerApp.root_dir={directory.resolve()}",
            f"--ServerApp.ip={ip}", f"--MultiKernelManager.default_kernel_name={kernel}"]
    # The same kernel settings as report runs, such as encrypted kernel connections.
    for section, settings in kernel_config().items():
        argv += [f"--{section}.{key}={value}" for key, value in settings.items()]
    if port is not None:
        argv.append(f"--ServerApp.port={port}")
    if not open_browser:
        argv.append("--no-browser")
    argv += list(extra_args)
    return LabPlan(argv=argv, database=database, notebooks_dir=directory.resolve())


def start_lab(plan: LabPlan) -> int:
    """Run JupyterLab in the foreground and return its exit status."""
    environment = {**os.environ, DATABASE_ENVIRONMENT_VARIABLE: plan.database}
    logger.info("starting JupyterLab in %s with %s=%s", plan.notebooks_dir,
                DATABASE_ENVIRONMENT_VARIABLE, database_label(plan.database))
    process = subprocess.Popen(plan.argv, env=environment)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            # JupyterLab received the same Ctrl-C and prompts whether to shut down, so keep
            # waiting for it instead of leaving it running without its parent.
            continue


@click.command(
    "lab",
    context_settings=CONTEXT_SETTINGS,
    epilog="Example: fleet-report lab --db /srv/doorcounter/server.sqlite --no-browser",
)
@click.option(
    "--db",
    metavar="PATH|URL",
    help="Heartbeat database the notebooks open, exported as DOORCOUNTER_DB: a SQLite file "
    "or sqlite:///path URL. Default: $DOORCOUNTER_DB, else the sample fleet.",
)
@click.option(
    "--notebooks",
    "notebooks_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, exists=True, path_type=str),
    help="Directory JupyterLab opens. Default: notebooks/ of the project.",
)
@click.option("--ip", default=DEFAULT_IP, show_default=True,
              help="Address JupyterLab listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port JupyterLab listens on. Default: 8888, else the next free port.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser window.")
@click.option("--dry-run", is_flag=True,
              help="Print the DOORCOUNTER_DB setting and the JupyterLab command, and exit.")
@click.argument("jupyter_args", nargs=-1, type=click.UNPROCESSED)
@handle_errors
def command(db: str | None, notebooks_dir: str | None, ip: str, port: int | None,
            no_browser: bool, dry_run: bool, jupyter_args: tuple[str, ...]) -> None:
    """Start JupyterLab in the report notebooks, on this environment's Python.

    The notebooks load the chosen database when their db parameter is empty. Open
    explore.ipynb for worked questions or device_drilldown.ipynb for one device.
    JupyterLab prints the address to open, with its access token. Arguments after --
    go to JupyterLab unchanged, for example: fleet-report lab -- --allow-root
    """
    if dry_run:
        plan = plan_lab(db, notebooks_dir=notebooks_dir, ip=ip, port=port,
                        open_browser=not no_browser, extra_args=jupyter_args)
        click.echo(plan.describe())
        return

    # Registering the kernel (and starting it once) makes a broken kernel fail here, with
    # a hint, rather than in the browser.
    kernel = ensure_kernel()
    plan = plan_lab(db, notebooks_dir=notebooks_dir, ip=ip, port=port,
                    open_browser=not no_browser, kernel_name=kernel, extra_args=jupyter_args)
    sys.exit(start_lab(plan))
