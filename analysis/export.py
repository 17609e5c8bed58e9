"""Write the fleet tables as CSV and Parquet for spreadsheets and BI tools."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from analysis.fleet import Fleet

logger = logging.getLogger(__name__)

TABLES = ("heartbeats", "events", "boots")
FORMATS = ("csv", "parquet")


def export_fleet(fleet: Fleet, out_dir: str | Path, *, formats=FORMATS) -> list[Path]:
    """Write ``heartbeats``, ``events`` and ``boots`` of `fleet` into `out_dir`.

    Parameters
    ----------
    fleet : Fleet
        From `load_fleet`.
    out_dir : str or Path
        Created if missing; existing files of the same name are replaced.
    formats : sequence of {"csv", "parquet"}
        File formats to write.

    Returns
    -------
    list of Path
        The files written, in table order. Times are UTC; CSV writes them as ISO-8601 and
        missing values as empty cells. The raw ``recent_events`` text stays in the
        heartbeats table so no stored value is lost.

    Examples
    --------
    >>> import tempfile
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001"])
    >>> [p.name for p in export_fleet(fleet, tempfile.mkdtemp(), formats=["csv"])]
    ['heartbeats.csv', 'events.csv', 'boots.csv']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TABLES:
        frame = getattr(fleet, name)
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            _write(frame, path, fmt)
            written.append(path)
            logger.info("wrote %d rows to %s", len(frame), path)
    return written


def _write(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    elif fmt == "parquet":
        # Object columns mix str and missing values; Arrow stores them as nullable strings.
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"unknown export format {fmt!r}; use one of {FORMATS}")
