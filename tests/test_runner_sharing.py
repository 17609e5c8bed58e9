"""A run loads the fleet once for all its kernels, and can hide device ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_runner import write_notebook

from analysis.errors import InvalidInputError
from analysis.fleet import load_fleet
from analysis.notebook import open_report_fleet
from analysis.runner.run import run_reports
from analysis.runner.snapshot import (
    SNAPSHOT_ENVIRONMENT_VARIABLE,
    snapshot_key,
    write_snapshot,
)
from analysis.runner.source import resolve_database
from analysis.sample import simulate_fleet, write_database

KEY = "a-test-key-of-at-least-16-bytes"


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "fleet.sqlite"
    return write_database(simulate_fleet(devices=4, days=1, seed=7), path)


def test_snapshot_used_for_same_selection(fleet_db, tmp_path, monkeypatch):
    database = resolve_database(str(fleet_db))
    key = snapshot_key(database, "heartbeats", "", "", [], [])
    snapshot = write_snapshot(tmp_path / "fleet.pickle", key)
    monkeypatch.setenv(SNAPSHOT_ENVIRONMENT_VARIABLE, str(snapshot))

    fleet = open_report_fleet(str(fleet_db))

    direct = load_fleet(fleet_db, cache=False)
    assert len(fleet.heartbeats) == len(direct.heartbeats)
    assert len(fleet.events) == len(direct.events)
    assert fleet.boots["cause"].tolist() == direct.boots["cause"].tolist()
    assert fleet.heartbeats["recent_events"].isna().all()


def test_snapshot_ignored_for_other_selection(fleet_db, tmp_path, monkeypatch):
    database = resolve_database(str(fleet_db))
    key = snapshot_key(database, "heartbeats", "", "", [], [])
    snapshot = write_snapshot(tmp_path / "fleet.pickle", key)
    monkeypatch.setenv(SNAPSHOT_ENVIRONMENT_VARIABLE, str(snapshot))

    fleet = open_report_fleet(str(fleet_db), devices=["dc-0001"])

    assert fleet.heartbeats["device_id"].unique().tolist() == ["dc-0001"]
    assert fleet.heartbeats["recent_events"].notna().any()


def test_pseudonymized_run_hides_device_ids(fleet_db, tmp_path, monkeypatch):
    monkeypatch.setenv("DOORCOUNTER_PSEUDONYM_KEY", KEY)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "device_list", [
        "from analysis.notebook import open_report_fleet, write_summary\n"
        "fleet = open_report_fleet(db, start, end, firmware, devices, table=table)\n"
        "ids = sorted(fleet.heartbeats['device_id'].unique())\n"
        "print(ids)\n"
        "write_summary({'ids': ids}, summary_path)",
    ])

    result = run_reports(fleet_db, out_dir=tmp_path / "reports", notebooks_dir=notebooks,
                         pseudonymize=True)

    assert result.succeeded
    ids = json.loads((result.run_dir / "summary.json").read_text())["device_list"]["ids"]
    assert len(ids) == 4
    assert all(device.startswith("anon-") for device in ids)
    for page in result.run_dir.iterdir():
        text = page.read_text(errors="replace")
        assert "dc-000" not in text, page.name
        assert KEY not in text, page.name
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["parameters"]["pseudonymize"] is True


def test_pseudonymize_without_key_stops_before_running(fleet_db, tmp_path, monkeypatch):
    monkeypatch.delenv("DOORCOUNTER_PSEUDONYM_KEY", raising=False)

    with pytest.raises(InvalidInputError, match="DOORCOUNTER_PSEUDONYM_KEY"):
        run_reports(fleet_db, out_dir=tmp_path / "reports", pseudonymize=True)

    assert not (tmp_path / "reports").exists()


def test_pseudonymize_with_device_filter_rejected(fleet_db, tmp_path, monkeypatch):
    monkeypatch.setenv("DOORCOUNTER_PSEUDONYM_KEY", KEY)

    with pytest.raises(InvalidInputError, match="--device"):
        run_reports(fleet_db, out_dir=tmp_path / "reports", pseudonymize=True,
                    devices=["dc-0001"])


def test_empty_selection_logs_warning(fleet_db, tmp_path, caplog):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks, "noop", ["print('ok')"])

    result = run_reports(fleet_db, start="2030-01-01", out_dir=tmp_path / "reports",
                         notebooks_dir=notebooks)

    assert result.succeeded
    assert "no heartbeats match the selection" in caplog.text
