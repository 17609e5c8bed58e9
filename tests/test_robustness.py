"""Bad databases and bad values: each gets its own error or its own data-quality count."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_heartbeats

from analysis import DataQualityReport, expand_events, load_heartbeats
from analysis.cli import EXIT_BAD_INPUT, EXIT_OK, main
from analysis.errors import DatabaseLockedError, InvalidInputError, NotSQLiteError
from analysis.heartbeats import HEARTBEAT_COLUMNS
from analysis.quality import CHECK_DESCRIPTIONS

T0 = 1777629600  # 2026-05-01 10:00:00 UTC


def event(tag, d0=0, d1=0, ts=T0, up=10):
    return {"t": tag, "d0": d0, "d1": d1, "ts": ts, "up": up}


def heartbeat(heartbeat_id, device, **values):
    row = {"id": heartbeat_id, "device_id": device, "received_at": "2026-05-01 10:05:00",
           "uptime": 300, "firmware_version": "1.1.0", "reset_reason": 1,
           "heap_free": 150000, "heap_min_free": 140000, "last_disconnect_code": 201,
           "recent_events": [event(1, d0=1, up=0)]}
    row.update(values)
    return row


def check(arguments, env=None):
    return CliRunner().invoke(main, ["check", *arguments], env=env)


# ---------------------------------------------------------------- unreadable databases


def corrupt_copy(tmp_path: Path, *, keep_bytes: int) -> Path:
    """Write a real database, then overwrite everything after `keep_bytes` with garbage."""
    path = tmp_path / "corrupt.sqlite"
    rows = [heartbeat(n, f"dev-{n % 7}", recent_events=[event(4)] * 10) for n in range(1, 400)]
    write_heartbeats(path, rows)
    size = path.stat().st_size
    garbage = bytes((n * 151 + 7) % 256 for n in range(size - keep_bytes))
    with path.open("r+b") as handle:
        handle.seek(keep_bytes)
        handle.write(garbage)
    return path


def test_missing_file_exits_2(tmp_path):
    result = check(["--db", str(tmp_path / "absent.sqlite")])

    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.startswith("error: database not found:")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_not_sqlite_file_exits_2(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("device_id,received_at\ndev-A,2026-05-01\n")

    result = check(["--db", str(path)])

    assert result.exit_code == EXIT_BAD_INPUT
    assert "is not a SQLite database (no SQLite header)" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("keep_bytes", [100, 4096], ids=["schema_page", "table_pages"])
def test_corrupt_database_exits_2(tmp_path, keep_bytes):
    # 100 keeps only the file header; 4096 keeps the whole first page with the schema, so
    # the table is found and its pages fail to read.
    result = check(["--db", str(corrupt_copy(tmp_path, keep_bytes=keep_bytes))])

    assert result.exit_code == EXIT_BAD_INPUT
    assert "the file is corrupt or not a SQLite database" in result.stderr
    assert "'PRAGMA integrity_check'" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_missing_table_exits_2(heartbeat_db):
    path = heartbeat_db([heartbeat(1, "dev-A")], table="beats")

    result = check(["--db", str(path)])

    assert result.exit_code == EXIT_BAD_INPUT
    assert "table 'heartbeats' not found" in result.stderr
    assert "(tables: beats)" in result.stderr
    assert "--table" in result.stderr


@pytest.mark.parametrize("column", ["device_id", "received_at"])
def test_missing_required_column_exits_2(heartbeat_db, column):
    kept = [c for c in ("id", "device_id", "received_at", "uptime") if c != column]
    path = heartbeat_db([heartbeat(1, "dev-A")], columns=kept)

    result = check(["--db", str(path)])

    assert result.exit_code == EXIT_BAD_INPUT
    assert f"table 'heartbeats' has no {column} column" in result.stderr
    assert f"columns={{'{column}': '<column>'}}" in result.stderr
    assert result.stderr.count("\n") == 1


def test_locked_database_exits_2(heartbeat_db):
    path = heartbeat_db([heartbeat(1, "dev-A")])
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        result = check(["--db", str(path)], env={"DOORCOUNTER_LOCK_TIMEOUT_S": "0.2"})
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert result.exit_code == EXIT_BAD_INPUT
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "is locked" in error_lines[0]
    assert ".backup" in error_lines[0]


# ---------------------------------------------------------------- a writer holds the lock


@pytest.fixture
def locked_db(heartbeat_db):
    """A database whose write lock another connection holds (rollback-journal mode)."""
    path = heartbeat_db([heartbeat(1, "dev-A"), heartbeat(2, "dev-B")])
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    yield path, writer
    if writer.in_transaction:
        writer.execute("ROLLBACK")
    writer.close()


def test_lock_retries_then_raises(locked_db, caplog):
    path, _ = locked_db

    with (caplog.at_level(logging.WARNING, logger="analysis.database"),
          pytest.raises(DatabaseLockedError) as raised):
        load_heartbeats(path, quality=DataQualityReport(), lock_timeout_s=0.3)

    message = str(raised.value)
    assert f"{path} is locked" in message
    assert "retry later" in message
    assert ".backup copy.sqlite" in message
    retries = [record.getMessage() for record in caplog.records]
    assert len(retries) >= 2
    assert "(attempt 1); retrying in 0.05 s" in retries[0]
    assert "(attempt 2); retrying in 0.10 s" in retries[1]


def test_lock_released_during_retries(locked_db, caplog):
    path, writer = locked_db
    # The writer commits a third heartbeat while the loader is waiting.
    release = threading.Timer(0.3, lambda: (
        writer.execute("INSERT INTO heartbeats (id, device_id, received_at, uptime) "
                       "VALUES (3, 'dev-C', '2026-05-01 10:06:00', 10)"),
        writer.execute("COMMIT"),
    ))

    with caplog.at_level(logging.WARNING, logger="analysis.database"):
        release.start()
        heartbeats = load_heartbeats(path, quality=DataQualityReport(), lock_timeout_s=60)
    release.join()

    assert heartbeats["heartbeat_id"].tolist() == [1, 2, 3]
    assert any("is locked" in record.getMessage() for record in caplog.records)


def test_lock_timeout_from_environment(locked_db, monkeypatch):
    path, _ = locked_db
    monkeypatch.setenv("DOORCOUNTER_LOCK_TIMEOUT_S", "0")

    with pytest.raises(DatabaseLockedError, match=r"for 0\.0 s \(1 reads tried\)"):
        load_heartbeats(path, quality=DataQualityReport())


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_invalid_lock_timeout_rejected(heartbeat_db, monkeypatch, value):
    path = heartbeat_db([heartbeat(1, "dev-A")])
    monkeypatch.setenv("DOORCOUNTER_LOCK_TIMEOUT_S", value)

    with pytest.raises(InvalidInputError, match="DOORCOUNTER_LOCK_TIMEOUT_S"):
        load_heartbeats(path, quality=DataQualityReport())


def test_reader_never_writes(heartbeat_db):
    path = heartbeat_db([heartbeat(1, "dev-A")])
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    load_heartbeats(path, quality=DataQualityReport())

    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(os.listdir(path.parent)) == [path.name]


def test_corrupt_pages_raise_not_sqlite(tmp_path):
    with pytest.raises(NotSQLiteError, match="malformed"):
        load_heartbeats(corrupt_copy(tmp_path, keep_bytes=4096), quality=DataQualityReport())


# ---------------------------------------------------------------- every odd value counted

ODD_ROWS = [
    heartbeat(1, "dev-ok"),
    heartbeat(2, "dev-02", recent_events='[{"t":1,'),
    heartbeat(3, "dev-03", recent_events='{"t":1,"d0":1}'),
    heartbeat(4, "dev-04", recent_events=[{"t": 1, "d0": 1}]),
    heartbeat(5, "dev-05", recent_events=[event(1, d0="1")]),
    heartbeat(6, "dev-06", recent_events=[event(4, up=n) for n in range(17)]),
    heartbeat(7, "dev-07", recent_events=[event(42)]),
    heartbeat(8, "dev-08", reset_reason=23),
    heartbeat(9, "dev-09", last_disconnect_code=99),
    heartbeat(10, "dev-10", recent_events=[event(2, d0=0)]),
    heartbeat(11, "dev-11", recent_events=[event(2, d0=100)]),
    heartbeat(12, "dev-12", heap_free=-5),
    heartbeat(13, "dev-13", heap_min_free=2**40, heap_free=2**41),
    heartbeat(14, "dev-14", heap_free=1000, heap_min_free=2000),
    heartbeat(15, "dev-15", recent_events=[event(3, d0=201, ts=12, up=12)]),
    heartbeat(16, "dev-16", recent_events=[event(3, d0=201, ts=T0 + 86400)]),
    heartbeat(17, "dev-17", received_at="2099-01-01 00:00:00"),
    heartbeat(18, "dev-18", received_at="yesterday"),
    heartbeat(19, "dev-19"),
    heartbeat(20, "dev-19"),
    heartbeat(21, "dev-21", received_at="2026-05-01 10:10:00", uptime=600),
    heartbeat(22, "dev-21", received_at="2026-05-01 10:06:00", uptime=360),
    heartbeat(23, "dev-23", uptime=9000, recent_events=[event(4, up=8990)]),
    heartbeat(24, "dev-23", received_at="2026-05-01 10:10:00", uptime=400,
              recent_events=[event(4, up=8990), event(4, up=9290)]),
    heartbeat(25, " dev-25"),
    heartbeat(26, "DEV-ok"),
    heartbeat(27, "dev-27", heap_free="n/a"),
    heartbeat(28, "dev-28", uptime=-1),
    heartbeat(29, "dev-29", uptime=2**62),
    heartbeat(30, None),
    heartbeat(31, "   "),
    heartbeat(32, "dev-32", recent_events=[event(3, ts=0, up=2**62)]),
]
EXPECTED_CHECKS = {
    "recent_events_not_json": [2],
    "recent_events_not_list": [3],
    "event_missing_keys": [4],
    "event_non_integer": [5],
    "recent_events_oversized": [6],
    "event_unknown_tag": [7],
    "unknown_reset_reason": [8],
    "unknown_disconnect_code": [9],
    "rssi_sentinel": [10],
    "rssi_impossible": [11],
    "heap_negative": [12],
    "heap_impossible": [13],
    "heap_min_above_heap_free": [12, 14],
    "event_time_unsynced": [15, 32],
    "event_time_invalid": [16],
    "received_at_future": [17],
    "received_at_unparsable": [18],
    "duplicate_heartbeat": [20],
    "heartbeat_out_of_order": [21],
    "uptime_backwards_without_boot": [24],
    "device_id_whitespace": [25],
    "device_id_case_variant": [1, 26],
    "integer_not_numeric": [27],
    "uptime_negative": [28],
    "uptime_impossible": [29],
    "device_id_missing": [30, 31],
    "event_time_out_of_range": [32],
}


@pytest.fixture(scope="module")
def odd_fleet(tmp_path_factory):
    path = write_heartbeats(tmp_path_factory.mktemp("odd") / "odd.sqlite", ODD_ROWS)
    quality = DataQualityReport()
    heartbeats = load_heartbeats(path, quality=quality)
    events = expand_events(heartbeats, quality=quality)
    return path, heartbeats, events, quality


@pytest.mark.parametrize(("check_name", "ids"), sorted(EXPECTED_CHECKS.items()))
def test_odd_value_counted_with_ids(odd_fleet, check_name, ids):
    _, _, _, quality = odd_fleet

    assert quality.count(check_name) == len(ids)
    assert sorted(quality.examples(check_name)) == ids


def test_odd_values_have_descriptions(odd_fleet):
    _, _, _, quality = odd_fleet

    assert set(quality.to_dict()) <= set(CHECK_DESCRIPTIONS)


def test_odd_rows_loaded_or_counted(odd_fleet):
    _, heartbeats, _, quality = odd_fleet

    left_out = {18, 30, 31}
    assert sorted(heartbeats["heartbeat_id"]) == sorted(
        {row["id"] for row in ODD_ROWS} - left_out)
    assert quality.count("received_at_unparsable") + quality.count("device_id_missing") == 3


def test_impossible_values_load_as_missing(odd_fleet):
    _, heartbeats, _, _ = odd_fleet
    by_id = heartbeats.set_index("heartbeat_id")

    assert by_id.loc[12, "heap_free"] is pd.NA
    assert by_id.loc[13, "heap_free"] is pd.NA
    assert by_id.loc[13, "heap_min_free"] is pd.NA
    assert by_id.loc[14, "heap_free"] == 1000
    assert by_id.loc[28, "uptime_s"] is pd.NA
    assert by_id.loc[29, "uptime_s"] is pd.NA


def test_valid_events_kept_beside_bad_ones(odd_fleet):
    _, _, events, _ = odd_fleet

    # The bad element of heartbeat 5 is skipped; the EVT_BOOT of heartbeat 1 stays.
    assert "dev-05" not in set(events["device_id"])
    assert (events["device_id"] == "dev-ok").sum() == 1
    assert events.loc[events["device_id"] == "dev-06", "tag"].tolist() == [4] * 17


def test_reboot_with_boot_event_not_counted_as_backwards(heartbeat_db):
    rows = [
        heartbeat(1, "dev-A", uptime=9000, recent_events=[event(4, up=8990)]),
        heartbeat(2, "dev-A", received_at="2026-05-01 10:10:00", uptime=200,
                  recent_events=[event(4, up=8990), event(1, d0=4, up=0),
                                 event(2, d0=65469, up=5)]),
    ]
    quality = DataQualityReport()

    expand_events(load_heartbeats(heartbeat_db(rows), quality=quality), quality=quality)

    assert quality.count("uptime_backwards_without_boot") == 0


def test_boot_older_than_uptime_counted_as_backwards(heartbeat_db):
    # Uptime 200, but the list's current boot has an event at up=5000: one boot continues.
    rows = [
        heartbeat(1, "dev-A", uptime=4000, recent_events=[event(1, up=0), event(4, up=3990)]),
        heartbeat(2, "dev-A", received_at="2026-05-01 10:20:00", uptime=200,
                  recent_events=[event(1, up=0), event(4, up=3990), event(4, up=5000)]),
    ]
    quality = DataQualityReport()

    expand_events(load_heartbeats(heartbeat_db(rows), quality=quality), quality=quality)

    assert quality.examples("uptime_backwards_without_boot") == [2]


def test_invalid_utf8_text_loads(tmp_path):
    path = tmp_path / "utf8.sqlite"
    write_heartbeats(path, [heartbeat(1, "dev-A")])
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("INSERT INTO heartbeats (id, device_id, received_at, uptime, "
                           "recent_events) VALUES (2, CAST(? AS TEXT), '2026-05-01 10:06:00', "
                           "5, CAST(? AS TEXT))", (b"dev-\xff", b"[\xfe]"))
    connection.close()
    quality = DataQualityReport()

    heartbeats = load_heartbeats(path, quality=quality)
    expand_events(heartbeats, quality=quality)

    assert heartbeats["device_id"].tolist() == ["dev-A", "dev-\ufffd"]
    assert quality.examples("recent_events_not_json") == [2]


# ---------------------------------------------------------------- fleet-report check output


def test_check_prints_schema_history_and_quality(odd_fleet):
    path, _, _, _ = odd_fleet

    result = check(["--db", str(path)])

    assert result.exit_code == EXIT_OK
    assert f"database  {path} (opened read-only)" in result.stdout
    assert ("table     heartbeats: 32 rows stored, 29 heartbeats loaded, 3 left out "
            "(received_at_unparsable 1, device_id_missing 2)") in result.stdout
    assert "heartbeat_id=id, device_id=device_id, received_at=received_at" in result.stdout
    assert "missing   none" in result.stdout
    assert "history   sound: each heartbeat keeps its own diagnostics" in result.stdout
    assert "uptime_backwards_without_boot" in result.stdout


def test_check_json_for_machines(odd_fleet):
    path, _, _, _ = odd_fleet

    result = check(["--db", str(path), "--json"])
    found = json.loads(result.stdout)

    assert result.exit_code == EXIT_OK
    assert found["rows_stored"] == 32
    assert found["heartbeats_loaded"] == 29
    assert found["heartbeats_left_out"] == {"received_at_unparsable": 1,
                                            "device_id_missing": 2}
    assert found["history"] == {"shape": "sound", "detail": ""}
    assert found["quality"]["integer_not_numeric"]["examples"] == [27]
    assert found["quality"]["integer_not_numeric"]["detail"] == "heap_free: 'n/a'"
    assert set(HEARTBEAT_COLUMNS) >= set(found["columns"])


def test_check_names_missing_diagnostic_columns(heartbeat_db):
    path = heartbeat_db([heartbeat(1, "dev-A")],
                        columns=["id", "device_id", "received_at", "uptime"])

    result = check(["--db", str(path)])

    assert result.exit_code == EXIT_OK
    assert ("missing   firmware_version, reset_reason, heap_free, heap_min_free, "
            "last_disconnect_code, recent_events") in result.stdout
    assert "diagnostic_columns_missing" in result.stdout
