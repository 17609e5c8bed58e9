"""The disconnect_codes notebook, executed by the report runner on small generated fleets."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_heartbeats
from report_runs import run_single_report, shown_text

from analysis import load_fleet
from analysis.disconnect_report import build_report, headline_figures
from analysis.notebook import to_json_value

REPORT = "disconnect_codes"
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
START = pd.Timestamp("2026-05-01 00:00:00")

pytestmark = pytest.mark.slow


def relabelling_rows() -> list[dict]:
    """1.6.0 reports 201 forty times, and 1.7.0 on the same devices 201 x5, 212 x32, 211 x3.

    Every heartbeat starts a new boot, so each code counts once, and each version covers
    40 device-days.
    """
    rows = []
    reports = [("1.6.0", [201] * 40, 0), ("1.7.0", [201] * 5 + [212] * 32 + [211] * 3, 8)]
    for version, reported, first_day in reports:
        for number, code in enumerate(reported):
            received = START + pd.Timedelta(days=first_day + number // 5, hours=number % 5)
            rows.append({
                "id": len(rows) + 1, "device_id": f"dev-{number % 5}",
                "received_at": received.isoformat(sep=" "), "uptime": 60,
                "firmware_version": version, "reset_reason": 1, "heap_free": 200_000,
                "heap_min_free": 190_000, "last_disconnect_code": code,
            })
    return rows


def run_report(db: Path, out_dir: Path):
    """Run the report; return its outcome, summary figures, page and shown text."""
    run = run_single_report(db, REPORT, out_dir)
    return run.report, run.summary, run.page, shown_text(run.notebook)


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory):
    from analysis.sample import FirmwareRelease, simulate_fleet, write_database

    # 1.2.0 is built with ESP-IDF 5.2, which reports 210-212 where 1.1.0 reported 201.
    releases = (
        FirmwareRelease("1.1.0", has_diagnostics=True, idf_version="5.1.4"),
        FirmwareRelease("1.2.0", has_diagnostics=True, rollout_day=3.0, rollout_days=0.5,
                        idf_version="5.2.2"),
    )
    simulation = simulate_fleet(devices=10, days=6, seed=11, releases=releases)
    db = write_database(simulation, tmp_path_factory.mktemp("sim") / "fleet.sqlite")
    return (db, *run_report(db, tmp_path_factory.mktemp("reports")))


@pytest.fixture(scope="module")
def relabelling_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("relabelling") / "fleet.sqlite"
    db = write_heartbeats(path, relabelling_rows())
    return (db, *run_report(db, tmp_path_factory.mktemp("reports")))


def test_notebook_succeeds_on_simulated_fleet(simulated_run):
    _, report, summary, _, _ = simulated_run

    assert report.succeeded, f"{report.error_name}: {report.error_message}"
    assert summary is not None


def test_summary_equals_figures_computed_in_process(simulated_run):
    db, _, summary, _, _ = simulated_run
    expected = to_json_value(headline_figures(build_report(load_fleet(db))))

    assert summary == expected


def test_page_shows_figures_without_code(simulated_run):
    _, _, _, page, _ = simulated_run

    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) >= 5
    assert "build_report" not in page
    assert "Traceback" not in page


def test_page_states_weak_signal_threshold(simulated_run):
    _, _, summary, _, text = simulated_run

    assert summary["weak_signal_threshold_dbm"] == -75.0
    assert "below -75 dBm" in text


def test_relabelling_counts_equal_sql(relabelling_run):
    db, report, summary, _, _ = relabelling_run
    with sqlite3.connect(db) as connection:
        (reports,) = connection.execute(
            "SELECT count(*) FROM heartbeats WHERE last_disconnect_code IS NOT NULL"
        ).fetchone()

    assert report.succeeded, f"{report.error_name}: {report.error_message}"
    assert summary["disconnects"] == reports
    assert summary["devices_counted_from_column"] == 5


def test_relabelling_page_makes_no_fix_claim(relabelling_run):
    _, _, summary, _, text = relabelling_run

    assert summary["relabelled_families"] == ["ap_not_found 1.6.0->1.7.0"]
    assert summary["changed_families"] == []
    assert "ap_not_found" in text
    assert "relabelled" in text
    assert "fixed" not in text.lower()
    assert "no change" in text
