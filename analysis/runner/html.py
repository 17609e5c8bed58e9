"""Write the HTML pages of a run: each report without its code, and the two index pages."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import jinja2
import nbformat
from nbconvert import HTMLExporter

from analysis.runner.templates import (
    CONTENT_SECURITY_POLICY,
    PAGE_STYLE,
    REPORT_TEMPLATE,
    RUN_INDEX_TEMPLATE,
    RUNS_INDEX_TEMPLATE,
)

logger = logging.getLogger(__name__)

REPORT_TEMPLATE_FILE = "doorcounter_report.html.j2"
_PAGES = jinja2.Environment(
    loader=jinja2.DictLoader({"run": RUN_INDEX_TEMPLATE, "runs": RUNS_INDEX_TEMPLATE}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def export_report_html(notebook_path: Path, html_path: Path, *, title: str) -> Path:
    """Convert an executed notebook to a standalone HTML page without code cells.

    Outputs are kept, with figures embedded as ``data:`` images, and so are error outputs,
    so a failed report shows its traceback. Input and output prompts are left out.

    Parameters
    ----------
    notebook_path : Path
        The executed notebook.
    html_path : Path
        Where the page is written.
    title : str
        The page title.

    Returns
    -------
    Path
        `html_path`.
    """
    exporter = HTMLExporter(
        template_name="lab",
        template_file=REPORT_TEMPLATE_FILE,
        extra_loaders=[jinja2.DictLoader({REPORT_TEMPLATE_FILE: REPORT_TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    notebook = nbformat.read(notebook_path, as_version=4)
    resources = {
        "metadata": {"name": title},
        "content_security_policy": CONTENT_SECURITY_POLICY,
    }
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def write_run_index(run_dir: Path, run: Mapping, summaries: Mapping[str, object]) -> Path:
    """Write ``index.html`` of one run: status, errors and headline figures of each report.

    Parameters
    ----------
    run_dir : Path
        The run's directory.
    run : mapping
        The content of ``run.json``.
    summaries : mapping
        The content of ``summary.json``: headline figures by report name.
    """
    titles = {report["name"]: report["title"] for report in run["reports"]}
    displayed = {
        name: {key: _display_value(value) for key, value in figures.items()}
        for name, figures in summaries.items()
        if isinstance(figures, Mapping)
    }
    # An empty filter keeps everything and an empty bound leaves the window open.
    parameters = {key: _display_value(value, empty_list="all", missing="open")
                  for key, value in run["parameters"].items()}
    database = {key: _display_value(value) for key, value in run["database"].items()}
    page = _PAGES.get_template("run").render(
        run=run, parameters=parameters, database=database, summaries=displayed,
        titles=titles, csp=CONTENT_SECURITY_POLICY, style=PAGE_STYLE,
    )
    path = run_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_runs_index(out_dir: Path) -> Path:
    """Write ``index.html`` in `out_dir`, listing every run found there, newest first.

    Each run is read from its ``run.json``. A directory without a readable one is skipped
    with a warning, so one damaged run cannot hide the others.
    """
    runs = []
    for run_json in sorted(out_dir.glob("*/run.json"), reverse=True):
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("skipping run %s in the index: cannot read run.json (%s)",
                           run_json.parent.name, err)
            continue
        runs.append(_run_row(run_json.parent.name, run))

    runs.sort(key=lambda row: (row["started_at"], row["run_id"]), reverse=True)
    page = _PAGES.get_template("runs").render(
        runs=runs, csp=CONTENT_SECURITY_POLICY, style=PAGE_STYLE
    )
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _run_row(run_id: str, run: Mapping) -> dict[str, object]:
    reports = run.get("reports", [])
    parameters = run.get("parameters", {})
    return {
        "run_id": run_id,
        "started_at": str(run.get("started_at", "")),
        "status": str(run.get("status", "unknown")),
        "succeeded": sum(1 for report in reports if report.get("status") == "succeeded"),
        "total": len(reports),
        "failed_names": [r.get("name", "?") for r in reports if r.get("status") == "failed"],
        "window": _window_text(parameters.get("start"), parameters.get("end")),
        "database": run.get("database", {}).get("label", ""),
        "duration_s": float(run.get("duration_s", 0.0)),
    }


def _window_text(start: object, end: object) -> str:
    if not start and not end:
        return "all heartbeats"
    return f"{start or 'first heartbeat'} to {end or 'last heartbeat'}"


def _display_value(value: object, *, empty_list: str = "none", missing: str = "n/a") -> str:
    if isinstance(value, list):
        return ", ".join(map(_display_value, value)) if value else empty_list
    if isinstance(value, dict):
        return "; ".join(f"{key} {_display_value(item)}" for key, item in value.items())
    if value is None or value == "":
        return missing
    if isinstance(value, float):
        return _display_number(value)
    return str(value)


def _display_number(value: float) -> str:
    """Round a figure for reading: whole numbers with separators, others to 4 digits.

    ``summary.json`` keeps the full value for machines, and the page is for people.
    """
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer():
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"
