"""Field cases with bad data: times written three ways, text in INTEGER columns, odd lists."""

from __future__ import annotations

import pandas as pd

from analysis import DataQualityReport, expand_events, load_fleet, load_heartbeats


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def load(path):
    quality = DataQualityReport()
    heartbeats = load_heartbeats(path, quality=quality)
    events = expand_events(heartbeats, quality=quality)
    return heartbeats, events, quality


# F09: received_at as SQLite text without an offset, with +02:00, and with Z.
F09_ROWS = [
    {"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 10:00:00", "uptime": 100},
    {"id": 2, "device_id": "dev-A", "received_at": "2026-05-01T10:05:00+02:00", "uptime": 50},
    {"id": 3, "device_id": "dev-A", "received_at": "2026-05-01T10:05:00Z", "uptime": 400},
    {"id": 4, "device_id": "dev-A", "received_at": "01/05/2026 10:07", "uptime": 500},
]


def test_f09_times_load_as_utc(heartbeat_db):
    heartbeats, _, _ = load(heartbeat_db(F09_ROWS))
    by_id = heartbeats.set_index("heartbeat_id")["received_at"]

    assert by_id[1] == utc("2026-05-01 10:00:00")
    assert by_id[2] == utc("2026-05-01 08:05:00")
    assert by_id[3] == utc("2026-05-01 10:05:00")
    assert str(heartbeats["received_at"].dtype) == "datetime64[ns, UTC]"


def test_f09_offset_time_sorts_earliest(heartbeat_db):
    heartbeats, _, _ = load(heartbeat_db(F09_ROWS))

    assert heartbeats["heartbeat_id"].tolist() == [2, 1, 3]


def test_f09_unparsable_time_counted_with_id(heartbeat_db):
    heartbeats, _, quality = load(heartbeat_db(F09_ROWS))

    assert 4 not in set(heartbeats["heartbeat_id"])
    assert quality.count("received_at_unparsable") == 1
    assert quality.examples("received_at_unparsable") == [4]
    assert "01/05/2026 10:07" in quality.to_dict()["received_at_unparsable"]["detail"]


# F10: 'n/a' in an INTEGER column, and a NULL beside integers.
F10_ROWS = [
    {"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 10:00:00", "uptime": 100,
     "heap_free": 150000, "last_disconnect_code": None},
    {"id": 2, "device_id": "dev-A", "received_at": "2026-05-01 10:05:00", "uptime": 400,
     "heap_free": "n/a", "last_disconnect_code": 201},
    {"id": 3, "device_id": "dev-B", "received_at": "2026-05-01 10:00:00", "uptime": 100,
     "heap_free": 149000, "last_disconnect_code": 15},
]


def test_f10_disconnect_code_stays_integer(heartbeat_db):
    heartbeats, _, _ = load(heartbeat_db(F10_ROWS))
    codes = heartbeats["last_disconnect_code"]

    assert codes.dtype == "Int64"
    assert codes.isna().tolist() == [True, False, False]
    assert codes.dropna().tolist() == [201, 15]
    assert [str(code) for code in codes.dropna()] == ["201", "15"]
    assert codes.astype(str).tolist()[1:] == ["201", "15"]
    assert heartbeats["disconnect_reason_name"].tolist()[1:] == [
        "WIFI_REASON_NO_AP_FOUND", "WIFI_REASON_4WAY_HANDSHAKE_TIMEOUT"]


def test_f10_text_heap_value_is_missing_not_zero(heartbeat_db):
    heartbeats, _, _ = load(heartbeat_db(F10_ROWS))
    heap = heartbeats["heap_free"]

    assert heap.dtype == "Int64"
    assert heap.isna().tolist() == [False, True, False]
    assert heap.dropna().tolist() == [150000, 149000]
    assert (heap.fillna(-1) != 0).all()


def test_f10_text_heap_value_counted_with_id(heartbeat_db):
    _, _, quality = load(heartbeat_db(F10_ROWS))

    assert quality.count("integer_not_numeric") == 1
    assert quality.examples("integer_not_numeric") == [2]
    assert quality.to_dict()["integer_not_numeric"]["detail"] == "heap_free: 'n/a'"


def test_f10_fleet_keeps_integer_codes(heartbeat_db):
    fleet = load_fleet(heartbeat_db(F10_ROWS), cache=False)

    assert fleet.heartbeats["last_disconnect_code"].dtype == "Int64"
    assert fleet.quality.examples("integer_not_numeric") == [2]


# F11: ring buffers that are valid, empty, NULL, cut off, an object, and missing keys.
F11_LISTS = {
    10: '[{"t":3,"d0":15,"d1":0,"ts":1777629600,"up":30}]',
    11: "[]",
    12: None,
    13: '[{"t":3,"d0":15',
    14: '{"t":3,"d0":201}',
    15: '[{"t":3,"d0":201}]',
}
F11_ROWS = [
    {"id": heartbeat_id, "device_id": "dev-A",
     "received_at": f"2026-05-01 10:0{heartbeat_id - 10}:30", "uptime": 30 + 60 * n,
     "firmware_version": "1.1.0", "reset_reason": 1, "recent_events": text}
    for n, (heartbeat_id, text) in enumerate(F11_LISTS.items())
]


def test_f11_all_heartbeats_load(heartbeat_db):
    heartbeats, _, _ = load(heartbeat_db(F11_ROWS))

    assert heartbeats["heartbeat_id"].tolist() == [10, 11, 12, 13, 14, 15]


def test_f11_events_come_from_valid_list(heartbeat_db):
    _, events, _ = load(heartbeat_db(F11_ROWS))

    assert len(events) == 1
    assert events.loc[0, "first_heartbeat_id"] == 10
    assert events.loc[0, "tag_name"] == "EVT_WIFI_DOWN"
    assert events.loc[0, "reason_name"] == "WIFI_REASON_4WAY_HANDSHAKE_TIMEOUT"
    assert events.loc[0, "event_time"] == utc("2026-05-01 10:00:00")


def test_f11_bad_lists_counted_by_kind(heartbeat_db):
    _, _, quality = load(heartbeat_db(F11_ROWS))

    assert quality.count("recent_events_not_json") == 1
    assert quality.examples("recent_events_not_json") == [13]
    assert quality.count("recent_events_not_list") == 1
    assert quality.examples("recent_events_not_list") == [14]
    assert quality.count("event_missing_keys") == 1
    assert quality.examples("event_missing_keys") == [15]
