"""Run one report notebook through the runner and read back what it produced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat

from analysis.runner.run import run_reports

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass
class ReportRun:
    """One report's outcome, its summary figures, its HTML page and its executed notebook."""

    report: object
    summary: dict | None
    page: str
    notebook: nbformat.NotebookNode


def run_single_report(db: Path, name: str, out_dir: Path, **options) -> ReportRun:
    """Run report `name` on `db` with `run_reports` and return what it wrote."""
    result = run_reports(db, reports=[name], notebooks_dir=NOTEBOOKS_DIR, out_dir=out_dir,
                         **options)
    (report,) = result.reports
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    return ReportRun(
        report=report,
        summary=summary.get(name),
        page=(result.run_dir / f"{name}.html").read_text(encoding="utf-8"),
        notebook=nbformat.read(result.run_dir / f"{name}.ipynb", as_version=4),
    )


def shown_text(notebook: nbformat.NotebookNode, *, markdown_cells: bool = True) -> str:
    """Return the text a reader of the report gets: every markdown and HTML output, and
    the markdown cells unless `markdown_cells` is False."""
    parts = [cell.source for cell in notebook.cells
             if markdown_cells and cell.cell_type == "markdown"]
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts += [data.get("text/markdown", ""), data.get("text/html", "")]
    return "\n".join(parts)
