"""The two heartbeat readers: the fast ADBC reader and the exact sqlite3 reader agree.

The fast reader is used whenever it can be; the exact reader takes over when it fails. Both
must give the same frame and the same data-quality report, also for cells of the wrong type
and when the fast reader splits a table across connections.
"""

from __future__ import annotations

import logging
import sqlite3

import pandas as pd
import pytest

from analysis import (
    DataQualityReport,
    DataQualityWarning,
    derive_boots,
    expand_events,
    heartbeat_read_adbc,
    load_heartbeats,
)

# Columns without a declared type keep each value's own type, as a hand-made table may.
UNTYPED_TABLE = ("CREATE TABLE heartbeats (id INTEGER PRIMARY KEY, device_id, received_at, "
                 "uptime, firmware_version, reset_reason, heap_free, heap_min_free, "
                 "last_disconnect_code, recent_events)")
ODD_ROWS = [
    (1, "dev-A", "2026-05-01 10:00:00", 100, "1.1.0", 1, 150000, 140000, 201, "[]"),
    # A whole real is that integer. A fraction, text and a blob are not integers.
    (2, "dev-A", "2026-05-01 10:05:00", 400.0, "1.1.0", 1.5, "n/a", b"\x00\xff", None, "[]"),
    # Unix seconds as an integer and as text.
    (3, "dev-B", 1777629600, 50, "1.0.0", None, None, None, None, None),
    (4, "dev-B", "1777629900", 350, "1.0.0", None, None, None, None, None),
    # A time that cannot be read, stored as text and as a blob.
    (5, "dev-B", "yesterday", 60, "1.0.0", None, None, None, None, None),
    (6, "dev-C", b"\x01", 60, "1.0.0", None, None, None, None, None),
    # A real too large for a 64-bit integer.
    (7, "dev-C", "2026-05-01 10:00:00", 9.3e18, "1.0.0", None, None, None, None, None),
]


def write_untyped(path, rows):
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(UNTYPED_TABLE)
        connection.executemany(f"INSERT INTO heartbeats VALUES ({', '.join('?' * 10)})", rows)
    connection.close()
    return path


@pytest.fixture
def odd_db(tmp_path):
    return write_untyped(tmp_path / "odd.sqlite", ODD_ROWS)


def load_with(path, *, fast: bool, monkeypatch, **options):
    if not fast:
        monkeypatch.setattr(heartbeat_read_adbc, "adbc_sqlite", None)
    quality = DataQualityReport()
    heartbeats = load_heartbeats(path, quality=quality, **options)
    monkeypatch.undo()
    return heartbeats, quality.to_dict()


def test_readers_give_equal_frames(odd_db, monkeypatch):
    fast, _ = load_with(odd_db, fast=True, monkeypatch=monkeypatch)
    exact, _ = load_with(odd_db, fast=False, monkeypatch=monkeypatch)

    pd.testing.assert_frame_equal(fast, exact)


def test_readers_give_equal_quality_reports(odd_db, monkeypatch):
    _, fast = load_with(odd_db, fast=True, monkeypatch=monkeypatch)
    _, exact = load_with(odd_db, fast=False, monkeypatch=monkeypatch)

    assert fast == exact


@pytest.mark.parametrize("fast", [True, False])
def test_whole_real_is_read_as_integer(odd_db, monkeypatch, fast):
    heartbeats, _ = load_with(odd_db, fast=fast, monkeypatch=monkeypatch)

    assert heartbeats.set_index("heartbeat_id").loc[2, "uptime_s"] == 400


@pytest.mark.parametrize("fast", [True, False])
def test_bad_integer_cells_are_missing(odd_db, monkeypatch, fast):
    heartbeats, _ = load_with(odd_db, fast=fast, monkeypatch=monkeypatch)
    by_id = heartbeats.set_index("heartbeat_id")

    assert by_id.loc[2, "reset_reason"] is pd.NA
    assert by_id.loc[2, "heap_free"] is pd.NA
    assert by_id.loc[2, "heap_min_free"] is pd.NA
    assert by_id.loc[7, "uptime_s"] is pd.NA


@pytest.mark.parametrize("fast", [True, False])
def test_bad_integer_cells_counted_with_text(odd_db, monkeypatch, fast):
    _, quality = load_with(odd_db, fast=fast, monkeypatch=monkeypatch)

    # One each in reset_reason, heap_free, heap_min_free (row 2) and uptime (row 7).
    assert quality["integer_not_numeric"]["count"] == 4
    assert sorted(quality["integer_not_numeric"]["examples"]) == [2, 7]
    assert "heap_free: 'n/a'" in quality["integer_not_numeric"]["detail"]
    assert "heap_min_free: \"X'00FF'\"" in quality["integer_not_numeric"]["detail"]


@pytest.mark.parametrize("fast", [True, False])
def test_unreadable_times_counted_with_text(odd_db, monkeypatch, fast):
    heartbeats, quality = load_with(odd_db, fast=fast, monkeypatch=monkeypatch)

    assert sorted(heartbeats["heartbeat_id"]) == [1, 2, 3, 4, 7]
    assert quality["received_at_unparsable"]["examples"] == [5, 6]
    assert "'yesterday'" in quality["received_at_unparsable"]["detail"]
    assert "\"X'01'\"" in quality["received_at_unparsable"]["detail"]


def test_unix_seconds_integer_and_text(odd_db, monkeypatch):
    heartbeats, _ = load_with(odd_db, fast=True, monkeypatch=monkeypatch)
    by_id = heartbeats.set_index("heartbeat_id")

    assert by_id.loc[3, "received_at"] == pd.Timestamp("2026-05-01 10:00:00", tz="UTC")
    assert by_id.loc[4, "received_at"] == pd.Timestamp("2026-05-01 10:05:00", tz="UTC")


def sample_rows(count):
    return [(i, f"dev-{i % 3}", f"2026-05-01 {i // 60:02d}:{i % 60:02d}:00", i * 10, "1.1.0",
             3, 150000 - i, 140000, 201, '[{"t":1,"d0":3,"d1":0,"ts":0,"up":0}]')
            for i in range(1, count + 1)]


@pytest.fixture
def wide_db(tmp_path):
    odd = (41, "dev-1", "2026-05-01 12:00:00", "n/a", None, None, None, None, None, None)
    return write_untyped(tmp_path / "wide.sqlite", sample_rows(40) + [odd])


def test_split_read_equals_single_read(wide_db, monkeypatch):
    single, single_quality = load_with(wide_db, fast=True, monkeypatch=monkeypatch)
    monkeypatch.setattr(heartbeat_read_adbc, "PART_ROWS", 10)

    split, split_quality = load_with(wide_db, fast=True, monkeypatch=monkeypatch)

    pd.testing.assert_frame_equal(split, single)
    assert split_quality == single_quality


def test_split_read_keeps_the_window(wide_db, monkeypatch):
    monkeypatch.setattr(heartbeat_read_adbc, "PART_ROWS", 10)

    heartbeats, _ = load_with(wide_db, fast=True, monkeypatch=monkeypatch,
                              start="2026-05-01 00:10", end="2026-05-01 00:20")

    assert heartbeats["heartbeat_id"].tolist() == sorted(range(10, 20), key=lambda i: i % 3)


def test_clean_table_uses_fast_reader(wide_db, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="analysis.heartbeat_read_adbc"):
        load_with(wide_db, fast=True, monkeypatch=monkeypatch)

    assert not [r for r in caplog.records if "fast reader failed" in r.getMessage()]


def test_invalid_utf8_uses_exact_reader(tmp_path, monkeypatch, caplog):
    path = tmp_path / "utf8.sqlite"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(UNTYPED_TABLE)
        connection.execute("INSERT INTO heartbeats (id, device_id, received_at) "
                           "VALUES (1, CAST(? AS TEXT), '2026-05-01 10:00:00')", (b"dev-\xff",))
    connection.close()

    with caplog.at_level(logging.INFO, logger="analysis.heartbeat_read_adbc"):
        heartbeats, _ = load_with(path, fast=True, monkeypatch=monkeypatch)

    assert heartbeats["device_id"].tolist() == ["dev-\ufffd"]
    assert [r for r in caplog.records if "fast reader failed" in r.getMessage()]


def write_with_id_column(path, ids):
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE heartbeats (seq, device_id TEXT, received_at TEXT, "
                           "uptime INTEGER)")
        connection.executemany("INSERT INTO heartbeats VALUES (?, ?, ?, ?)", [
            (ids[0], "dev-A", "2026-05-01 10:00:00", 100),
            (ids[1], "dev-A", "2026-05-01 10:05:00", 400),
            (ids[2], "dev-A", "2026-05-01 10:10:00", 30),
        ])
    connection.close()
    return path


def load_with_id_column(path, quality):
    # The table predates the diagnostics, which warns.
    with pytest.warns(DataQualityWarning, match="diagnostics migration"):
        return load_heartbeats(path, columns={"heartbeat_id": "seq"}, quality=quality)


def test_repeated_ids_counted(tmp_path):
    path = write_with_id_column(tmp_path / "seq.sqlite", [1, 1, 2])
    quality = DataQualityReport()

    heartbeats = load_with_id_column(path, quality)
    boots = derive_boots(heartbeats, expand_events(heartbeats, quality=quality))

    assert quality.count("heartbeat_id_repeated") == 2
    assert len(boots) == 2


def test_text_ids_counted_as_missing(tmp_path):
    path = write_with_id_column(tmp_path / "uid.sqlite", ["a", "b", "c"])
    quality = DataQualityReport()

    heartbeats = load_with_id_column(path, quality)
    boots = derive_boots(heartbeats, expand_events(heartbeats, quality=quality))

    assert quality.count("heartbeat_id_not_integer") == 3
    assert quality.count("heartbeat_id_repeated") == 0
    assert heartbeats["heartbeat_id"].isna().all()
    assert len(boots) == 2
