"""The device drill-down and explore notebooks, executed by ``fleet-report run``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis import load_fleet
from analysis.cli import main
from analysis.runner.run import run_reports
from analysis.sample import FleetConfig, simulate_fleet, write_database

CONFIG = FleetConfig(devices=6, days=2, seed=11, brownout_loop_share=0.4,
                     camera_loop_share=0.0, malformed_rows=0)
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory) -> Path:
    return write_database(simulate_fleet(CONFIG), tmp_path_factory.mktemp("db") / "f.sqlite")


@pytest.fixture(scope="module")
def loop_boots(fleet_db) -> pd.DataFrame:
    boots = load_fleet(fleet_db, cache=False).boots
    device = boots.loc[boots["is_boot_loop"], "device_id"].iloc[0]
    return boots[boots["device_id"] == device]


@pytest.fixture(scope="module")
def drilldown_run(fleet_db, loop_boots, tmp_path_factory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("reports")
    device = loop_boots["device_id"].iloc[0]
    result = CliRunner().invoke(main, [
        "run", "--db", str(fleet_db), "--report", "device_drilldown", "--report", "explore",
        "--device", device, "--out", str(out), "--quiet",
    ])
    (run_dir,) = [path for path in out.iterdir() if path.is_dir()]
    return result, run_dir


def page_text(run_dir: Path, report: str) -> str:
    page = (run_dir / f"{report}.html").read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", page)


def test_drilldown_run_succeeds(drilldown_run):
    result, run_dir = drilldown_run
    statuses = {report["name"]: report["status"]
                for report in json.loads((run_dir / "run.json").read_text())["reports"]}

    assert result.exit_code == 0, result.output
    assert statuses == {"device_drilldown": "succeeded", "explore": "succeeded"}


def test_drilldown_page_lists_loop_boots(drilldown_run, loop_boots):
    _, run_dir = drilldown_run
    text = page_text(run_dir, "device_drilldown")
    looping = loop_boots[loop_boots["is_boot_loop"]]

    assert len(looping) >= 3
    for boot_time, cause in zip(looping["boot_time"], looping["cause"], strict=True):
        assert f"<td>{boot_time}</td>" in text
        assert f"<td>{cause}</td>" in text


def test_drilldown_page_shows_loop_and_log(drilldown_run, loop_boots):
    _, run_dir = drilldown_run
    text = page_text(run_dir, "device_drilldown")
    device = loop_boots["device_id"].iloc[0]

    assert f"Device {device}" in text
    assert re.search(r"a boot loop of \d+ boots in \d+ s from", text)
    assert "Event log (" in text
    assert "EVT_BOOT" in text


def test_drilldown_summary_counts_equal_boot_table(drilldown_run, loop_boots):
    _, run_dir = drilldown_run
    summary = json.loads((run_dir / "summary.json").read_text())["device_drilldown"]
    device = loop_boots["device_id"].iloc[0]

    assert summary["devices"] == [device]
    assert summary[device]["boots"] == len(loop_boots)
    assert summary[device]["unexpected_reboots"] == int(loop_boots["is_unexpected"].sum())
    assert summary[device]["boot_loops"] >= 1


def test_explore_page_answers_questions(drilldown_run):
    _, run_dir = drilldown_run
    text = page_text(run_dir, "explore")

    assert "Which devices had the most unexpected reboots in the last week?" in text
    assert "Boot loops in the last day" in text


def test_drilldown_without_reboots_says_so(heartbeat_db, tmp_path):
    rows = [{"id": n + 1, "device_id": "dev-calm", "uptime": 600 + 300 * n,
             "firmware_version": "1.0.0",
             "received_at": str(pd.Timestamp("2026-05-01 10:00") + pd.Timedelta(minutes=5 * n))}
            for n in range(12)]
    result = run_reports(heartbeat_db(rows), reports=["device_drilldown"], out_dir=tmp_path)
    text = page_text(result.run_dir, "device_drilldown")

    assert result.succeeded
    assert "No device to show: no device had an unexpected reboot in the window." in text
