"""``fleet-report export`` writes the three tables with the documented columns."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from analysis import load_fleet
from analysis.boots import BOOT_COLUMNS
from analysis.cli.export import command
from analysis.events import EVENT_COLUMNS

ROWS = [
    {"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 10:00:00", "uptime": 40,
     "firmware_version": "1.1.0", "reset_reason": 1,
     "recent_events": [{"t": 1, "d0": 1, "d1": 0, "ts": 0, "up": 0},
                       {"t": 3, "d0": 201, "d1": 0, "ts": 0, "up": 20}]},
    {"id": 2, "device_id": "dev-A", "received_at": "2026-05-01 10:05:00", "uptime": 340,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 150000},
]


def test_export_writes_csv_and_parquet(heartbeat_db, tmp_path):
    db = heartbeat_db(ROWS)
    out = tmp_path / "out"

    result = CliRunner().invoke(command, ["--db", str(db), "--out", str(out)])

    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["boots.csv", "boots.parquet", "events.csv", "events.parquet",
                     "heartbeats.csv", "heartbeats.parquet"]


def test_exported_tables_match_fleet(heartbeat_db, tmp_path):
    db = heartbeat_db(ROWS)
    fleet = load_fleet(db)

    CliRunner().invoke(command, ["--db", str(db), "--out", str(tmp_path)])

    events = pd.read_parquet(tmp_path / "events.parquet")
    boots = pd.read_csv(tmp_path / "boots.csv")
    heartbeats = pd.read_parquet(tmp_path / "heartbeats.parquet")
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert list(boots.columns) == list(BOOT_COLUMNS)
    assert len(events) == len(fleet.events) == 2
    assert heartbeats["heap_free"].dtype == "Int64"
    assert heartbeats["heap_free"].isna().tolist() == [True, False]


def test_export_missing_database_exits_2(tmp_path):
    result = CliRunner().invoke(command, ["--db", str(tmp_path / "none.sqlite"),
                                          "--out", str(tmp_path / "out")])

    assert result.exit_code == 2
    assert "not found" in result.output
