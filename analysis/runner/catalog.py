"""Find the report notebooks and the metadata that describes them.

Each ``<name>.ipynb`` in the notebooks directory is a report named ``<name>``. Its
notebook metadata may carry a ``doorcounter`` entry::

    {"title": "Fleet overview", "order": 10, "default": true, "description": "..."}

so adding a report needs no central list. A notebook without that entry can still be run
by name but is not part of the default set.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import analysis
from analysis.errors import InvalidInputError

logger = logging.getLogger(__name__)

METADATA_KEY = "doorcounter"
DEFAULT_ORDER = 1000
REPORT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class UnknownReportError(InvalidInputError):
    """A requested report name matches no notebook."""


@dataclass(frozen=True)
class Report:
    """A report notebook and the metadata the runner needs to show it."""

    name: str
    path: Path
    title: str
    order: int = DEFAULT_ORDER
    is_default: bool = False
    description: str = ""


def default_notebooks_dir() -> Path:
    """Return the ``notebooks`` directory beside the package, else in the working directory.

    Raises
    ------
    InvalidInputError
        If neither directory exists.
    """
    candidates = [Path(analysis.__file__).resolve().parent.parent / "notebooks",
                  Path.cwd() / "notebooks"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InvalidInputError(
        f"no notebooks directory found (looked in {', '.join(map(str, candidates))}); "
        "pass --notebooks with the directory that holds the report notebooks"
    )


def discover_reports(notebooks_dir: str | Path) -> dict[str, Report]:
    """Read the report metadata of every notebook in `notebooks_dir`.

    Parameters
    ----------
    notebooks_dir : str or Path
        Directory with ``<name>.ipynb`` files; subdirectories are not searched.

    Returns
    -------
    dict of str to Report
        Reports by name, sorted by their ``order`` and then by name.

    Raises
    ------
    InvalidInputError
        If the directory does not exist or a notebook is not valid JSON.
    """
    directory = Path(notebooks_dir)
    if not directory.is_dir():
        raise InvalidInputError(
            f"notebooks directory {directory} not found; pass --notebooks with the directory "
            "that holds the report notebooks"
        )

    reports = [_read_report(path) for path in sorted(directory.glob("*.ipynb"))]
    reports.sort(key=lambda report: (report.order, report.name))
    return {report.name: report for report in reports}


def select_reports(catalog: dict[str, Report], names: Iterable[str] = ()) -> list[Report]:
    """Return the reports named in `names`, or the default set when `names` is empty.

    Raises
    ------
    UnknownReportError
        If a name matches no notebook, or no notebook is marked as a default report.
    """
    requested = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if not requested:
        defaults = [report for report in catalog.values() if report.is_default]
        if not defaults:
            raise UnknownReportError(
                f"no default reports found (reports: {_listing(catalog)}); mark one with "
                f'"default": true in its notebook metadata or pass --report NAME'
            )
        return defaults

    unknown = [name for name in requested if name not in catalog]
    if unknown:
        raise UnknownReportError(
            f"unknown report {', '.join(map(repr, unknown))}; known reports: "
            f"{_listing(catalog)}"
        )
    return [catalog[name] for name in requested]


def _read_report(path: Path) -> Report:
    name = path.stem
    if not REPORT_NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"notebook {path} has a name that cannot be a report name; rename it to letters, "
            "digits, '_' and '-'"
        )

    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInputError(f"cannot read notebook {path}: {err}") from err

    entry = notebook.get("metadata", {}).get(METADATA_KEY)
    if not isinstance(entry, dict):
        logger.debug("notebook %s has no %r metadata: not a default report", path, METADATA_KEY)
        return Report(name=name, path=path.resolve(), title=name)

    return Report(
        name=name,
        path=path.resolve(),
        title=str(entry.get("title") or name),
        order=_order(entry.get("order"), path),
        is_default=entry.get("default") is True,
        description=str(entry.get("description") or ""),
    )


def _order(value: object, path: Path) -> int:
    if value is None:
        return DEFAULT_ORDER
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"notebook {path}: metadata {METADATA_KEY}.order is {value!r}; set it to an integer"
        )
    return value


def _listing(catalog: dict[str, Report]) -> str:
    return ", ".join(catalog) or "none"
