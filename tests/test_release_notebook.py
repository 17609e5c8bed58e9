"""The release_impact notebook, executed on small simulated fleets."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from analysis.runner.execute import execute_notebook
from analysis.runner.kernel import ensure_kernel
from analysis.runner.run import run_reports
from analysis.sample import FirmwareRelease, FleetConfig, simulate_fleet
from analysis.sample.writer import write_database

REPORT = "release_impact"
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory) -> Path:
    """Eight devices for six days; 1.2.0 reaches five of them on day 2, three stay."""
    releases = (
        FirmwareRelease("1.1.0", has_diagnostics=True),
        FirmwareRelease("1.2.0", has_diagnostics=True, rollout_day=2, rollout_days=0.5,
                        rollout_share=0.6, idf_version="5.2.2"),
    )
    config = FleetConfig(devices=8, days=6, releases=releases, seed=7, malformed_rows=0)
    path = tmp_path_factory.mktemp("release_notebook") / "fleet.sqlite"
    return write_database(simulate_fleet(config), path)


def shown_text(notebook_path: Path) -> str:
    """Return the markdown cells and every text, markdown or HTML output of a notebook."""
    executed = nbformat.read(notebook_path, as_version=4)
    parts = [cell.source for cell in executed.cells if cell.cell_type == "markdown"]
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            parts += [str(data.get(kind, "")) for kind in ("text/markdown", "text/html")]
            parts.append(str(output.get("text", "")))
    return "\n".join(parts)


def test_runner_writes_release_report(fleet_db, tmp_path):
    result = run_reports(fleet_db, reports=[REPORT], notebooks_dir=NOTEBOOKS_DIR,
                         out_dir=tmp_path)
    (report,) = result.reports
    summary = json.loads((result.run_dir / "summary.json").read_text(encoding="utf-8"))

    assert report.succeeded, report.error_message
    assert summary[REPORT]["baseline"] == "1.1.0"
    assert summary[REPORT]["candidate"] == "1.2.0"
    assert sum(summary[REPORT]["verdicts"].values()) >= 8
    assert (result.run_dir / f"{REPORT}.html").is_file()
    assert "3 devices stayed on the baseline" in shown_text(result.run_dir / f"{REPORT}.ipynb")


def test_notebook_takes_versions_as_parameters(fleet_db, tmp_path):
    output, summary_path = tmp_path / "out.ipynb", tmp_path / "summary.json"
    outcome = execute_notebook(
        NOTEBOOKS_DIR / f"{REPORT}.ipynb", output,
        {"db": str(fleet_db), "baseline": "1.2.0", "candidate": "1.1.0",
         "summary_path": str(summary_path)},
        kernel_name=ensure_kernel(),
    )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    text = shown_text(output)

    assert outcome.succeeded, outcome.error_message
    assert summary["baseline"] == "1.2.0"
    assert summary["candidate"] == "1.1.0"
    assert "Holm's step-down method" in text
    # No device moved from 1.2.0 to 1.1.0, so there is no within-device comparison.
    assert "No device moved from the baseline to the candidate" in text


def test_notebook_without_heartbeats_states_it(fleet_db, tmp_path):
    output, summary_path = tmp_path / "out.ipynb", tmp_path / "summary.json"
    outcome = execute_notebook(
        NOTEBOOKS_DIR / f"{REPORT}.ipynb", output,
        {"db": str(fleet_db), "start": "2030-01-01T00:00:00+00:00",
         "summary_path": str(summary_path)},
        kernel_name=ensure_kernel(),
    )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))

    assert outcome.succeeded, outcome.error_message
    assert summary["compared"] is False
    assert "No heartbeats in the window" in shown_text(output)


def test_notebook_with_missing_version_states_it(fleet_db, tmp_path):
    output, summary_path = tmp_path / "out.ipynb", tmp_path / "summary.json"
    outcome = execute_notebook(
        NOTEBOOKS_DIR / f"{REPORT}.ipynb", output,
        {"db": str(fleet_db), "candidate": "9.9.9", "summary_path": str(summary_path)},
        kernel_name=ensure_kernel(),
    )

    assert outcome.succeeded, outcome.error_message
    assert "versions present: 1.1.0, 1.2.0" in shown_text(output)


def test_release_command_runs_notebook_with_versions(fleet_db, tmp_path):
    from click.testing import CliRunner

    from analysis.cli import main

    result = CliRunner().invoke(main, ["release", "--db", str(fleet_db), "--baseline", "1.2.0",
                                       "--candidate", "1.1.0", "--out", str(tmp_path),
                                       "--quiet"])

    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary[REPORT]["baseline"] == "1.2.0"
    assert summary[REPORT]["candidate"] == "1.1.0"
