"""The source database is never changed, and a live one is read in one consistent snapshot."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis import DataQualityReport, load_heartbeats
from analysis.cli import EXIT_OK, main
from analysis.sample import FleetConfig, simulate_fleet, write_database

# The writer commits heartbeats in transactions of this many rows, so a load that saw part
# of a transaction would hold a count that is not a multiple of it.
ROWS_PER_TRANSACTION = 7
WRITER = textwrap.dedent("""
    import sqlite3, sys, time
    from pathlib import Path

    path, stop, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    connection = sqlite3.connect(path, isolation_level=None)
    next_id = connection.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM heartbeats").fetchone()[0]
    while not stop.exists():
        connection.execute("BEGIN IMMEDIATE")
        for offset in range(size):
            number = next_id + offset
            connection.execute(
                "INSERT INTO heartbeats (id, device_id, received_at, uptime, firmware_version)"
                " VALUES (?, ?, datetime(1777629600 + ?, 'unixepoch'), ?, '1.0.0')",
                (number, f"dev-{number % size}", number, 60 + number),
            )
        connection.execute("COMMIT")
        next_id += size
        time.sleep(0.002)
    connection.close()
""")


def file_state(path: Path) -> tuple[str, int, list[str]]:
    """Return the file's SHA-256, its modification time and the names in its directory."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, path.stat().st_mtime_ns, sorted(os.listdir(path.parent))


@pytest.fixture(scope="module")
def small_fleet():
    return simulate_fleet(FleetConfig(devices=6, days=1.0))


@pytest.mark.slow
def test_report_run_leaves_database_unchanged(small_fleet, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    path = write_database(small_fleet, source / "fleet.sqlite")
    before = file_state(path)

    result = CliRunner().invoke(main, ["run", "--db", str(path), "--out",
                                       str(tmp_path / "reports"), "--quiet"])
    checked = CliRunner().invoke(main, ["check", "--db", str(path)])

    assert result.exit_code == EXIT_OK, result.output
    assert checked.exit_code == EXIT_OK, checked.output
    assert file_state(path) == before


def test_check_leaves_database_unchanged(small_fleet, tmp_path):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", shape="overwritten")
    before = file_state(path)

    result = CliRunner().invoke(main, ["check", "--db", str(path), "--json"])

    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.stdout)["history"]["shape"] == "overwritten"
    assert file_state(path) == before


@pytest.fixture
def live_db(tmp_path):
    """A WAL-mode database that another process keeps inserting into while the test runs."""
    path = tmp_path / "live.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE heartbeats (id INTEGER PRIMARY KEY, device_id TEXT, received_at TEXT, "
        "uptime INTEGER, firmware_version TEXT, reset_reason INTEGER, heap_free INTEGER, "
        "heap_min_free INTEGER, last_disconnect_code INTEGER, recent_events TEXT)"
    )
    connection.commit()
    connection.close()

    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(stop), str(ROWS_PER_TRANSACTION)]
    )
    _wait_for_rows(path, 10 * ROWS_PER_TRANSACTION)
    yield path
    stop.touch()
    writer.wait(timeout=30)


def _wait_for_rows(path: Path, rows: int) -> None:
    # Polls the row count, never the clock, so a slow machine only makes the test longer.
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        while reader.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0] < rows:
            pass
    finally:
        reader.close()


def test_live_database_loads_whole_transactions(live_db):
    # Loads repeat until three different counts show that rows arrived between them.
    counts = []
    while len(set(counts)) < 3 and len(counts) < 50:
        heartbeats = load_heartbeats(live_db, quality=DataQualityReport())
        ids = sorted(heartbeats["heartbeat_id"])

        assert len(heartbeats) % ROWS_PER_TRANSACTION == 0
        assert ids == list(range(1, len(ids) + 1))
        counts.append(len(heartbeats))

    assert len(set(counts)) == 3
    assert counts == sorted(counts)


def test_live_database_check_counts_whole_transactions(live_db):
    result = CliRunner().invoke(main, ["check", "--db", str(live_db), "--json"])
    found = json.loads(result.stdout)

    assert result.exit_code == EXIT_OK, result.output
    assert found["heartbeats_loaded"] % ROWS_PER_TRANSACTION == 0
    assert found["heartbeats_left_out"] == {}


@pytest.mark.slow
def test_live_database_report_counts_whole_transactions(live_db, tmp_path):
    out = tmp_path / "reports"

    result = CliRunner().invoke(main, ["run", "--db", str(live_db), "--report",
                                       "fleet_overview", "--out", str(out), "--quiet"])
    (summary_path,) = out.glob("*/summary.json")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))

    assert result.exit_code == EXIT_OK, result.output
    assert summary["fleet_overview"]["heartbeats"] % ROWS_PER_TRANSACTION == 0
