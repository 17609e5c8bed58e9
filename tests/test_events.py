"""Expanding ring buffers: each event once, boot loops kept, times and decoding."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import DataQualityReport, expand_events, load_heartbeats

START = pd.Timestamp("2026-05-01 10:00:00")
SYNCED = 1777629600  # 2026-05-01 10:00:00 UTC


def event(tag, d0=0, d1=0, ts=0, up=0):
    return {"t": tag, "d0": d0, "d1": d1, "ts": ts, "up": up}


def heartbeat(i, lst, *, device="dev-A", minutes=None, uptime=None, boot_minutes=0):
    minutes = 5 * i if minutes is None else minutes
    received = START + pd.Timedelta(minutes=minutes)
    return {
        "id": i + 1, "device_id": device, "received_at": str(received),
        "uptime": uptime if uptime is not None else (minutes - boot_minutes) * 60 + 30,
        "firmware_version": "1.1.0", "reset_reason": 1, "recent_events": lst,
    }


def expand(path):
    quality = DataQualityReport()
    heartbeats = load_heartbeats(path, quality=quality)
    return expand_events(heartbeats, quality=quality), quality


def test_event_repeated_in_twelve_heartbeats_counts_once(heartbeat_db):
    down = event(3, 201, ts=SYNCED + 20, up=20)
    rows = [heartbeat(i, [down]) for i in range(12)]

    events, _ = expand(heartbeat_db(rows))

    assert len(events) == 1
    assert events.loc[0, "heartbeat_count"] == 12
    assert events.loc[0, "first_heartbeat_id"] == 1


def test_sliding_full_buffer_counts_each_event_once(heartbeat_db):
    logged = [event(4, 7, 50 + n, ts=SYNCED + 60 * n, up=60 * n) for n in range(40)]
    rows = [heartbeat(i, logged[max(0, i + 4 - 16): i + 4]) for i in range(37)]

    events, quality = expand(heartbeat_db(rows))

    assert events["d1"].tolist() == [50 + n for n in range(40)]
    assert quality.count("events_possibly_lost") == 0


def test_boot_loop_duplicates_inside_one_list_are_kept(heartbeat_db):
    loop = [event(1, 6), event(8, 6, up=3)] * 3
    rows = [heartbeat(0, loop), heartbeat(1, loop), heartbeat(2, loop + [event(2, 65469)])]

    events, _ = expand(heartbeat_db(rows))

    assert (events["tag"] == 1).sum() == 3
    assert (events["tag"] == 8).sum() == 3
    assert (events["tag"] == 2).sum() == 1


def test_same_boot_loop_a_week_later_counts_again(heartbeat_db):
    loop = [event(1, 6), event(8, 6, up=3)] * 3
    later = loop + loop
    rows = [
        heartbeat(0, loop),
        heartbeat(1, loop),
        heartbeat(2, later, minutes=7 * 24 * 60, uptime=30),
        heartbeat(3, later, minutes=7 * 24 * 60 + 5, uptime=330),
    ]

    events, _ = expand(heartbeat_db(rows))

    assert (events["tag"] == 1).sum() == 6
    assert events.groupby("first_heartbeat_id").size().to_dict() == {1: 6, 3: 6}


def test_power_on_wipe_starts_a_new_list(heartbeat_db):
    before = [event(1, 1), event(2, 65469, up=5)]
    after = [event(1, 1), event(2, 65469, up=5)]
    rows = [heartbeat(0, before), heartbeat(1, before),
            heartbeat(2, after, minutes=600, uptime=40)]

    events, _ = expand(heartbeat_db(rows))

    # The wiped buffer repeats the same-looking events, yet they are a new boot's events.
    assert len(events) == 4
    assert events["first_heartbeat_id"].tolist() == [1, 1, 3, 3]


def test_malformed_list_between_is_skipped_for_alignment(heartbeat_db):
    first = [event(3, 201, ts=SYNCED + 1, up=1)]
    second = first + [event(2, 65469, ts=SYNCED + 9, up=9)]
    rows = [heartbeat(0, first), heartbeat(1, '[{"t":3'), heartbeat(2, second)]

    events, quality = expand(heartbeat_db(rows))

    assert events["tag"].tolist() == [3, 2]
    assert quality.count("recent_events_not_json") == 1
    assert quality.examples("recent_events_not_json") == [2]


def test_overflow_between_heartbeats_is_counted(heartbeat_db):
    first = [event(4, 1, n, ts=SYNCED + n, up=n) for n in range(16)]
    second = [event(4, 1, n, ts=SYNCED + n, up=n) for n in range(100, 116)]
    rows = [heartbeat(0, first), heartbeat(1, second)]

    events, quality = expand(heartbeat_db(rows))

    assert len(events) == 32
    assert quality.count("events_possibly_lost") == 1
    assert quality.examples("events_possibly_lost") == [2]


def test_clock_cases_times_and_sources(heartbeat_db):
    # A heartbeat received at 10:00:30 with uptime 45 carries three events.
    lst = [event(3, 201, ts=12, up=12), event(2, 65466, ts=1777629615, up=30),
           event(3, 200, ts=2085978496, up=40)]
    row = {"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 10:00:30", "uptime": 45,
           "firmware_version": "1.1.0", "reset_reason": 1, "recent_events": lst}

    events, quality = expand(heartbeat_db([row]))

    assert events["event_time"].tolist() == [
        pd.Timestamp("2026-05-01 09:59:57", tz="UTC"),
        pd.Timestamp("2026-05-01 10:00:15", tz="UTC"),
        pd.Timestamp("2026-05-01 10:00:25", tz="UTC"),
    ]
    assert events["time_source"].tolist() == ["estimated_unsynced", "ts", "estimated_invalid"]
    assert events.loc[1, "rssi_dbm"] == -70
    assert quality.count("event_time_unsynced") == 1
    assert quality.count("event_time_invalid") == 1


def test_events_of_previous_boot_placed_before_current_boot(heartbeat_db):
    # Previous boot ran 100 s and logged EVT_REBOOT; this boot started 30 s before sending.
    lst = [event(1, 1), event(8, 3, up=100), event(1, 3), event(2, 65469, up=20)]
    row = heartbeat(0, lst, uptime=30)

    events, _ = expand(heartbeat_db([row]))

    current_start = pd.Timestamp("2026-05-01 09:59:30", tz="UTC")
    assert events["boot_offset"].tolist() == [1, 1, 0, 0]
    assert events.loc[2, "event_time"] == current_start
    assert events.loc[1, "event_time"] == current_start
    assert events.loc[0, "event_time"] == current_start - pd.Timedelta(seconds=100)


@pytest.mark.parametrize(
    ("lst", "column", "expected"),
    [
        ([event(5, 0x1234, 503)], "http_status", 503),
        ([event(5, 0x1234, 104)], "errno", 104),
        ([event(3, 4)], "reason_name", "WIFI_REASON_DISASSOC_DUE_TO_INACTIVITY"),
        ([event(3, 8)], "disconnect_family", "own_disconnect"),
        ([event(8, 6)], "reason_name", "FATAL_CAMERA"),
        ([event(1, 9)], "reason_name", "ESP_RST_BROWNOUT"),
    ],
)
def test_decoded_fields(heartbeat_db, lst, column, expected):
    events, _ = expand(heartbeat_db([heartbeat(0, lst)]))

    assert events.loc[0, column] == expected


def test_detail_reads_like_a_log_line(heartbeat_db):
    lst = [event(3, 201), event(5, 0xABCD, 503), event(6, 3), event(8, 1)]

    events, _ = expand(heartbeat_db([heartbeat(0, lst)]))

    assert events["detail"].tolist() == [
        "reason WIFI_REASON_NO_AP_FOUND (201)",
        "path 0x0000abcd, HTTP 503",
        "3 consecutive missed heartbeats",
        "firmware reboot HEARTBEAT_MISS",
    ]


def test_unknown_tag_and_rssi_sentinel_counted(heartbeat_db):
    lst = [event(42, 1), event(2, 0), event(2, 65409)]

    events, quality = expand(heartbeat_db([heartbeat(0, lst)]))

    assert events.loc[0, "tag_name"] == "UNKNOWN(42)"
    assert quality.count("event_unknown_tag") == 1
    assert quality.count("rssi_sentinel") == 2
    assert not events["rssi_valid"].any()


def test_bad_elements_skipped_and_counted_valid_ones_kept(heartbeat_db):
    lst = [event(3, 15, ts=SYNCED, up=30), {"t": 3, "d0": 201}, {"t": "x", "d0": 1, "d1": 0,
           "ts": 0, "up": 0}, 7, {"t": True, "d0": 1, "d1": 0, "ts": 0, "up": 0}]

    events, quality = expand(heartbeat_db([heartbeat(0, lst)]))

    assert events["d0"].tolist() == [15]
    assert quality.count("event_missing_keys") == 1
    assert quality.count("event_non_integer") == 2
    assert quality.count("event_not_object") == 1


def test_no_events_gives_empty_typed_table(heartbeat_db):
    rows = [{"id": 1, "device_id": "dev-A", "received_at": "2026-05-01", "uptime": 5}]

    events, _ = expand(heartbeat_db(rows))

    assert events.empty
    assert "event_time" in events.columns


def test_list_with_a_hole_does_not_repeat_events(heartbeat_db):
    logged = [event(4, 7, n, ts=SYNCED + n, up=n) for n in range(6)]
    holed = logged[:3] + [{"t": 4, "d0": 7}] + logged[4:5]
    rows = [heartbeat(0, logged[:4]), heartbeat(1, holed), heartbeat(2, logged[:6])]

    events, quality = expand(heartbeat_db(rows))

    assert events["d1"].tolist() == [0, 1, 2, 3, 4, 5]
    assert quality.count("event_missing_keys") == 1


def test_list_with_a_hole_alone_keeps_valid_events(heartbeat_db):
    lst = [event(3, 15, ts=SYNCED, up=30), {"t": 3, "d0": 201}, event(2, 65469, up=31)]

    events, _ = expand(heartbeat_db([heartbeat(0, lst)]))

    assert events["tag"].tolist() == [3, 2]
