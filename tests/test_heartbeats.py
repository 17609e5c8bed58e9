"""Loading heartbeats: types, schema discovery, filters in SQL, and read-only access."""

from __future__ import annotations

import hashlib
import sqlite3
import warnings

import pandas as pd
import pytest

from analysis import DataQualityReport, DataQualityWarning, load_heartbeats
from analysis.errors import (
    DatabaseNotFoundError,
    MissingColumnError,
    NotSQLiteError,
    TableNotFoundError,
    UnsupportedDatabaseError,
)

ROWS = [
    {"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 10:00:00", "uptime": 100,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 150000,
     "heap_min_free": 140000, "last_disconnect_code": 201, "recent_events": []},
    {"id": 2, "device_id": "dev-A", "received_at": "2026-05-01 10:05:00", "uptime": 400,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 149000,
     "heap_min_free": 139000, "last_disconnect_code": None, "recent_events": []},
    {"id": 3, "device_id": "dev-B", "received_at": "2026-05-02 10:00:00", "uptime": 50,
     "firmware_version": "1.0.0"},
    {"id": 4, "device_id": "dev-C", "received_at": "2026-05-03 10:00:00", "uptime": 60,
     "firmware_version": "1.0.0"},
]


def load(path, **options):
    return load_heartbeats(path, quality=DataQualityReport(), **options)


def test_columns_are_typed(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS))

    assert str(heartbeats["received_at"].dtype) == "datetime64[ns, UTC]"
    for column in ("heartbeat_id", "uptime_s", "reset_reason", "heap_free", "heap_min_free",
                   "last_disconnect_code"):
        assert heartbeats[column].dtype == "Int64", column


def test_v100_rows_load_with_missing_diagnostics(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS)).set_index("heartbeat_id")

    assert heartbeats.loc[3, "reset_reason"] is pd.NA
    assert not heartbeats.loc[3, "has_diagnostics"]
    assert heartbeats.loc[1, "has_diagnostics"]


def test_decoded_names_beside_codes(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS)).set_index("heartbeat_id")

    assert heartbeats.loc[1, "reset_reason_name"] == "ESP_RST_POWERON"
    assert heartbeats.loc[1, "disconnect_reason_name"] == "WIFI_REASON_NO_AP_FOUND"
    assert heartbeats.loc[1, "disconnect_family"] == "ap_not_found"


def test_time_filter_matches_plain_sql(heartbeat_db):
    path = heartbeat_db(ROWS)
    with sqlite3.connect(path) as connection:
        expected = [r[0] for r in connection.execute(
            "SELECT id FROM heartbeats WHERE received_at >= '2026-05-01 10:05:00' "
            "AND received_at < '2026-05-03' ORDER BY id")]

    heartbeats = load(path, start="2026-05-01 10:05:00", end="2026-05-03")

    assert sorted(heartbeats["heartbeat_id"].tolist()) == expected


def test_start_bound_is_inclusive_and_end_exclusive(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS), start="2026-05-01T10:00:00Z",
                      end="2026-05-01T10:05:00Z")

    assert heartbeats["heartbeat_id"].tolist() == [1]


def test_device_filter(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS), devices=["dev-B", "dev-C"])

    assert heartbeats["heartbeat_id"].tolist() == [3, 4]


@pytest.mark.parametrize(
    ("rename", "options"),
    [
        ({"received_at": "created_at", "firmware_version": "fw_version"}, {}),
        ({"received_at": "timestamp"}, {}),
        ({"received_at": "server_time", "uptime": "up_seconds"},
         {"columns": {"received_at": "server_time", "uptime_s": "up_seconds"}}),
    ],
)
def test_column_aliases_and_mapping(heartbeat_db, rename, options):
    heartbeats = load(heartbeat_db(ROWS, rename=rename), **options)

    assert heartbeats["uptime_s"].tolist() == [100, 400, 50, 60]
    assert heartbeats["firmware_version"].tolist() == ["1.1.0", "1.1.0", "1.0.0", "1.0.0"]


def test_unix_seconds_times(heartbeat_db):
    rows = [dict(ROWS[0], received_at=1777629600), dict(ROWS[1], received_at="1777629900")]

    heartbeats = load(heartbeat_db(rows))

    assert heartbeats["received_at"].tolist() == [
        pd.Timestamp("2026-05-01 10:00:00", tz="UTC"),
        pd.Timestamp("2026-05-01 10:05:00", tz="UTC"),
    ]


def test_pre_migration_database_loads_with_warning(heartbeat_db):
    base = ("id", "device_id", "received_at", "uptime", "firmware_version")
    path = heartbeat_db([{k: r.get(k) for k in base} for r in ROWS], columns=base)
    quality = DataQualityReport()

    with pytest.warns(DataQualityWarning, match="before the diagnostics migration"):
        heartbeats = load_heartbeats(path, quality=quality)

    assert len(heartbeats) == 4
    assert heartbeats["recent_events"].isna().all()
    assert heartbeats["heap_free"].isna().all()
    assert quality.count("diagnostic_columns_missing") == 1


def test_other_table_name(heartbeat_db):
    heartbeats = load(heartbeat_db(ROWS, table="device_heartbeats"), table="device_heartbeats")

    assert len(heartbeats) == 4


def test_table_name_is_never_pasted_into_sql(heartbeat_db):
    path = heartbeat_db(ROWS)

    with pytest.raises(TableNotFoundError, match="not found"):
        load(path, table="heartbeats; DROP TABLE heartbeats; --")

    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM heartbeats").fetchone() == (4,)


def test_missing_time_column_names_the_fix(heartbeat_db):
    path = heartbeat_db(ROWS, rename={"received_at": "when_seen"})

    with pytest.raises(MissingColumnError, match="columns="):
        load(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DatabaseNotFoundError, match="not found"):
        load(tmp_path / "absent.sqlite")


def test_not_sqlite_raises(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("this is not a database\n")

    with pytest.raises(NotSQLiteError, match="not a SQLite database"):
        load(path)


def test_other_engine_url_rejected():
    with pytest.raises(UnsupportedDatabaseError, match="SQLite"):
        load("postgresql://user:secret@localhost/fleet")


def test_sqlalchemy_url_accepted(heartbeat_db):
    path = heartbeat_db(ROWS)

    heartbeats = load(f"sqlite:///{path}")

    assert len(heartbeats) == 4


def test_database_file_unchanged_after_load(heartbeat_db):
    path = heartbeat_db(ROWS)
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)

    load(path)

    after = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    assert after == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_quality_problems_warn_without_report(heartbeat_db):
    path = heartbeat_db([dict(ROWS[0], heap_free="n/a")])

    with pytest.warns(DataQualityWarning, match="integer_not_numeric"):
        load_heartbeats(path)


def test_clean_data_loads_without_warning(heartbeat_db):
    path = heartbeat_db(ROWS)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_heartbeats(path)
