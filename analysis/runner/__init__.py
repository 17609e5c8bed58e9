"""Run report notebooks with papermill and publish them as HTML.

`run_reports` is the entry point. Each module below it does one step: `catalog` finds
the notebooks, `source` checks the database, `kernel` provides a Jupyter kernel,
`execute` runs one notebook, `html` writes the pages and `summary` the JSON records.

The names are imported on first use because papermill and nbconvert take seconds to
import, and every report notebook imports `analysis.notebook`, which needs only `window`
and `source` from this package.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Report", "ReportResult", "RunResult", "discover_reports", "run_reports"]

_LOCATIONS = {
    "Report": "analysis.runner.catalog",
    "ReportResult": "analysis.runner.summary",
    "RunResult": "analysis.runner.run",
    "discover_reports": "analysis.runner.catalog",
    "run_reports": "analysis.runner.run",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'analysis.runner' has no attribute {name!r}")
    return getattr(importlib.import_module(_LOCATIONS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
