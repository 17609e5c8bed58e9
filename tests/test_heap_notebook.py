"""The heap_trends notebook, executed on small generated fleets by the runner and by papermill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from conftest import write_heartbeats

from analysis import load_fleet
from analysis.heap_report import analyse_heap, headline_figures
from analysis.notebook import to_json_value
from analysis.runner.kernel import ensure_kernel
from analysis.runner.run import run_reports
from analysis.sample import FirmwareRelease, FleetConfig, simulate_fleet
from analysis.sample.writer import write_database

REPORT = "heap_trends"
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
START = pd.Timestamp("2026-05-01 00:00:00", tz="UTC")

pytestmark = pytest.mark.slow


def shown_text(notebook: nbformat.NotebookNode) -> str:
    """Return what a reader sees: markdown cells and every markdown or HTML output."""
    text = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text += [data.get("text/markdown", ""), data.get("text/html", "")]
    return "\n".join(text)


def stderr_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    return [output["text"] for cell in notebook.cells for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stderr"]


def run_report(db: Path, out_dir: Path) -> dict:
    result = run_reports(db, reports=[REPORT], notebooks_dir=NOTEBOOKS_DIR, out_dir=out_dir)
    (report,) = result.reports
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))
    return {
        "report": report,
        "summary": summary.get(REPORT),
        "page": (result.run_dir / f"{REPORT}.html").read_text(encoding="utf-8"),
        "notebook": nbformat.read(result.run_dir / f"{REPORT}.ipynb", as_version=4),
    }


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory):
    config = FleetConfig(devices=10, days=3, leaking_share=0.3, seed=20260508,
                         releases=(FirmwareRelease("1.1.0", has_diagnostics=True),))
    simulation = simulate_fleet(config)
    db = write_database(simulation, tmp_path_factory.mktemp("sim") / "fleet.sqlite")
    return simulation, db, run_report(db, tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="module")
def no_diagnostics_run(tmp_path_factory):
    """A papermill run on v1.0.0 heartbeats only, with the report's own thresholds set."""
    directory = tmp_path_factory.mktemp("v100")
    rows = [{"id": i, "device_id": f"dc-{i % 3}", "uptime": 600 * i, "firmware_version": "1.0.0",
             "received_at": (START + pd.Timedelta(seconds=600 * i)).isoformat()}
            for i in range(1, 30)]
    db = write_heartbeats(directory / "fleet.sqlite", rows)
    summary_path = directory / "summary.json"
    executed = papermill.execute_notebook(
        NOTEBOOKS_DIR / f"{REPORT}.ipynb", directory / "out.ipynb", cwd=NOTEBOOKS_DIR,
        kernel_name=ensure_kernel(), progress_bar=False,
        parameters={"db": str(db), "summary_path": str(summary_path),
                    "low_water_bytes": 80000.0, "floor_bytes": 50000.0},
    )
    return executed, json.loads(summary_path.read_text(encoding="utf-8"))


def test_notebook_succeeds_on_simulated_fleet(simulated_run):
    _, _, run = simulated_run
    report = run["report"]

    assert report.succeeded, f"{report.error_name}: {report.error_message}"
    assert stderr_outputs(run["notebook"]) == []


def test_summary_equals_figures_computed_in_process(simulated_run):
    _, db, run = simulated_run
    expected = to_json_value(headline_figures(analyse_heap(load_fleet(db))))

    assert run["summary"] == expected


def test_summary_names_simulated_leakers(simulated_run):
    simulation, _, run = simulated_run
    truth = simulation.truth_devices
    leaking = sorted(truth.loc[truth["is_leaking"], "device_id"])

    assert leaking, "the seed should give at least one leaking device"
    assert sorted(run["summary"]["leaking_device_ids"]) == leaking
    assert run["summary"]["devices_with_heap"] == 10


def test_page_shows_summary_and_figures_without_code(simulated_run):
    _, _, run = simulated_run
    text = shown_text(run["notebook"])

    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', run["page"])) >= 5
    assert "analyse_heap" not in run["page"]
    assert "Traceback" not in run["page"]
    assert "leaked heap" in text
    assert "PSRAM" in text


def test_fleet_without_diagnostics_gives_statement(no_diagnostics_run):
    executed, summary = no_diagnostics_run

    assert summary["devices_with_heap"] == 0
    assert summary["leaking_device_ids"] == []
    assert "No heap readings" in shown_text(executed)
    assert stderr_outputs(executed) == []


def test_report_parameters_reach_thresholds(no_diagnostics_run):
    _, summary = no_diagnostics_run

    assert summary["low_water_bytes"] == 80000.0
    assert summary["floor_bytes"] == 50000.0
