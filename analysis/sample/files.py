"""The bundled sample database: where it lives, and generating it on first use."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from analysis.sample.config import DEFAULT_SEED, FleetConfig
from analysis.sample.fleet import simulate_fleet
from analysis.sample.writer import write_database, write_truth_tables

logger = logging.getLogger(__name__)

SAMPLE_FILE_NAME = "sample_fleet.sqlite"
SAMPLE_DEVICES = 200
SAMPLE_DAYS = 30


def default_sample_path() -> Path:
    """Return where the sample database lives: ``data/sample_fleet.sqlite`` in the project.

    The project root is the directory above the `analysis` package when it contains
    ``pyproject.toml`` (a source checkout), else the current directory.
    """
    package_parent = Path(__file__).resolve().parents[2]
    root = package_parent if (package_parent / "pyproject.toml").is_file() else Path.cwd()
    return root / "data" / SAMPLE_FILE_NAME


def generate_sample_database(
    path: str | os.PathLike,
    *,
    devices: int = SAMPLE_DEVICES,
    days: float = SAMPLE_DAYS,
    seed: int = DEFAULT_SEED,
    shape: str = "per_heartbeat",
    time_format: str = "iso",
    truth_dir: str | os.PathLike | None = None,
    progress: bool = False,
    **write_options: object,
) -> Path:
    """Simulate a fleet and write it to `path`, replacing any file there.

    Parameters
    ----------
    path : str or PathLike
        The SQLite file to write; missing parent directories are created.
    devices, days, seed
        Size, window length and seed of the simulated fleet.
    shape, time_format
        As for `write_database`.
    truth_dir : str or PathLike, optional
        Also write the ground-truth tables as CSV files into this directory.
    progress : bool
        Show a progress bar while simulating.
    **write_options
        Further options of `write_database`: ``table``, ``time_column``,
        ``version_column``, ``has_diagnostic_columns``.

    Returns
    -------
    Path
        The written database.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = generate_sample_database(f"{folder}/fleet.sqlite", devices=2, days=1)
    ...     path.name
    'fleet.sqlite'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fleet = simulate_fleet(FleetConfig(devices=devices, days=days, seed=seed), progress=progress)
    write_database(fleet, path, shape=shape, time_format=time_format, **write_options)
    if truth_dir is not None:
        write_truth_tables(fleet, truth_dir)
    return path


def ensure_sample_database(path: str | os.PathLike | None = None) -> Path:
    """Return the sample database at `path`, generating it first if it does not exist.

    Parameters
    ----------
    path : str or PathLike, optional
        Defaults to `default_sample_path`.

    Returns
    -------
    Path
        The existing or newly written database (200 devices, 30 days, default seed).
    """
    path = Path(path) if path is not None else default_sample_path()
    if path.exists():
        return path
    logger.info(
        "generating the sample fleet database %s (%d devices, %d days); this runs once",
        path, SAMPLE_DEVICES, SAMPLE_DAYS,
    )
    return generate_sample_database(
        path, devices=SAMPLE_DEVICES, days=SAMPLE_DAYS, progress=sys.stderr.isatty()
    )
