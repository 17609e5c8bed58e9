"""The records a run leaves beside its reports: ``summary.json`` and ``run.json``.

Both schemas are described in ``docs/reports.md``; ``RUN_SCHEMA_VERSION`` changes when a
field is renamed or removed.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import nbconvert
import numpy
import pandas
import papermill
import sqlalchemy

import analysis

logger = logging.getLogger(__name__)

RUN_SCHEMA_VERSION = 1
SUCCEEDED = "succeeded"
FAILED = "failed"


@dataclass(frozen=True)
class ReportResult:
    """The outcome of one report and its file names, relative to the run directory."""

    name: str
    title: str
    status: str
    started_at: str
    duration_s: float
    notebook: str
    html: str
    error_name: str = ""
    error_message: str = ""

    @property
    def succeeded(self) -> bool:
        """True when the notebook ran to the end and its page was written."""
        return self.status == SUCCEEDED

    def to_dict(self) -> dict[str, object]:
        """Return the report's entry in ``run.json``."""
        entry = asdict(self)
        del entry["error_name"], entry["error_message"]
        entry["error"] = (
            {"name": self.error_name, "message": self.error_message}
            if self.error_name or self.error_message
            else None
        )
        return entry


def read_report_summary(path: Path, report: str) -> dict | None:
    """Return the headline figures a notebook wrote to `path`, or None if it wrote none."""
    if not path.is_file():
        return None
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        logger.warning("report %s wrote an unreadable summary %s: %s", report, path, err)
        return None
    return figures if isinstance(figures, dict) else {"value": figures}


def software_versions() -> dict[str, str]:
    """Return the versions of the package, Python and the libraries that shape the results."""
    return {
        "analysis": analysis.__version__,
        "python": platform.python_version(),
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "papermill": papermill.__version__,
        "nbconvert": nbconvert.__version__,
    }


def write_json(path: Path, document: Mapping) -> Path:
    """Write `document` as indented UTF-8 JSON, with NaN rejected rather than written."""
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
