"""Lost history: tables with one row per device, and diagnostics overwritten by UPDATE."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import DataQualityReport, HistoryOverwrittenWarning, load_fleet, load_heartbeats
from analysis.history import (
    ONE_ROW_PER_DEVICE,
    OVERWRITTEN,
    SOUND,
    detect_lost_history,
    history_notice,
    lost_history_shape,
)
from analysis.sample import FleetConfig, simulate_fleet, write_database

# 2026-05-01 10:00:00 UTC
T0 = 1777629600


def event(tag, d0=0, ts=0, up=0):
    return {"t": tag, "d0": d0, "d1": 0, "ts": ts, "up": up}


# The newest heartbeat's list, at 11:00 with uptime 600: the device rebooted at 10:50.
NEWEST_LIST = [
    event(1, d0=1, ts=T0, up=0),
    event(2, d0=65469, ts=T0 + 5, up=5),
    event(8, d0=3, ts=T0 + 2990, up=2990),
    event(1, d0=3, ts=T0 + 3000, up=0),
    event(2, d0=65470, ts=T0 + 3005, up=5),
]


def overwritten_rows(device="dev-A", first_id=1):
    """Four heartbeats whose diagnostics all equal the newest one's, as the UPDATE leaves them."""
    times = ["2026-05-01 10:00:30", "2026-05-01 10:20:00", "2026-05-01 10:40:00",
             "2026-05-01 11:00:00"]
    uptimes = [30, 1200, 2400, 600]
    return [
        {"id": first_id + n, "device_id": device, "received_at": time, "uptime": uptime,
         "firmware_version": "1.1.0", "reset_reason": 3, "heap_free": 151000,
         "heap_min_free": 140000, "last_disconnect_code": 201, "recent_events": NEWEST_LIST}
        for n, (time, uptime) in enumerate(zip(times, uptimes, strict=True))
    ]


def one_row_per_device(devices=12):
    return [
        {"id": n + 1, "device_id": f"dev-{n:02d}", "received_at": "2026-05-01 11:00:00",
         "uptime": 5000 + n, "firmware_version": "1.1.0", "reset_reason": 1,
         "heap_free": 150000, "heap_min_free": 140000, "recent_events": NEWEST_LIST}
        for n in range(devices)
    ]


def load(path):
    return load_heartbeats(path, quality=DataQualityReport())


@pytest.fixture(scope="module")
def simulated():
    return simulate_fleet(FleetConfig(devices=12, days=1.0))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("per_heartbeat", SOUND), ("per_device", ONE_ROW_PER_DEVICE),
     ("overwritten", OVERWRITTEN)],
)
def test_simulated_table_shapes_detected(simulated, tmp_path, shape, expected):
    path = write_database(simulated, tmp_path / f"{shape}.sqlite", shape=shape)

    verdict = detect_lost_history(load(path))

    assert verdict.shape == expected


def test_overwritten_rows_detected(heartbeat_db):
    verdict = detect_lost_history(load(heartbeat_db(overwritten_rows())))

    assert verdict.shape == OVERWRITTEN
    assert verdict.devices == ("dev-A",)
    assert sorted(verdict.stale_heartbeat_ids.tolist()) == [1, 2, 3]


def test_overwritten_fleet_warns_and_records(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning, match="UPDATE"):
        fleet = load_fleet(heartbeat_db(overwritten_rows()))

    assert fleet.quality.count("history_overwritten") == 3
    assert fleet.quality.examples("history_overwritten") == [1, 2, 3]
    assert lost_history_shape(fleet.quality) == OVERWRITTEN


def test_overwritten_older_rows_lose_diagnostics(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning):
        fleet = load_fleet(heartbeat_db(overwritten_rows()))
    heartbeats = fleet.heartbeats.set_index("heartbeat_id")

    for column in ("reset_reason", "heap_free", "heap_min_free", "last_disconnect_code",
                   "recent_events", "reset_reason_name", "disconnect_family"):
        assert heartbeats.loc[[1, 2, 3], column].isna().all(), column
        assert heartbeats.loc[4, column] is not pd.NA, column
    assert not heartbeats.loc[[1, 2, 3], "has_diagnostics"].any()
    assert heartbeats.loc[4, "heap_free"] == 151000
    assert heartbeats["uptime_s"].tolist() == [30, 1200, 2400, 600]


def test_overwritten_events_from_newest_list(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning):
        fleet = load_fleet(heartbeat_db(overwritten_rows()))

    assert len(fleet.events) == len(NEWEST_LIST)
    assert set(fleet.events["first_heartbeat_id"]) == {4}
    assert fleet.quality.count("event_time_invalid") == 0


def test_overwritten_boots_from_uptime(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning):
        fleet = load_fleet(heartbeat_db(overwritten_rows()))
    boots = fleet.boots

    # Uptime falls from 2400 to 600 between 10:40 and 11:00: two boots, 10:00 and 10:50.
    assert boots["boot_time"].tolist() == [pd.Timestamp("2026-05-01 10:00:00", tz="UTC"),
                                           pd.Timestamp("2026-05-01 10:50:00", tz="UTC")]
    assert boots.loc[1, "cause"] == "ota_update"
    # The heartbeat column is flat, so the first boot's reset reason comes only from the
    # EVT_BOOT that the newest ring buffer still carries.
    assert boots.loc[0, "reset_reason"] == 1
    assert boots["source"].tolist() == ["heartbeat+event", "heartbeat+event"]


def test_one_row_per_device_detected(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning, match="one row per device"):
        fleet = load_fleet(heartbeat_db(one_row_per_device(12)))

    assert fleet.quality.count("history_one_row_per_device") == 12
    assert lost_history_shape(fleet.quality) == ONE_ROW_PER_DEVICE
    assert fleet.heartbeats["heap_free"].notna().all()


def test_few_single_rows_stay_sound(heartbeat_db):
    verdict = detect_lost_history(load(heartbeat_db(one_row_per_device(3))))

    assert verdict.shape == SOUND


def test_idle_device_repeating_list_stays_sound(heartbeat_db):
    # An idle device may send the same list and heap value again, but its events all
    # precede the heartbeats that carry them.
    rows = overwritten_rows()
    for row in rows:
        row["received_at"] = row["received_at"].replace("2026-05-01", "2026-05-02")
        row["uptime"] += 90000

    verdict = detect_lost_history(load(heartbeat_db(rows)))

    assert verdict.shape == SOUND
    assert verdict.judged_devices == 1


def test_unsynced_clock_overwrite_found_by_uptime(heartbeat_db):
    # Clock never set: ts equals up. The newest boot's last event was logged at up=590,
    # which the row sent at uptime 30 cannot carry.
    unsynced = [event(1, d0=1), event(2, d0=65469, ts=5, up=5), event(8, d0=3, ts=2990,
                up=2990), event(1, d0=3), event(6, d0=1, ts=590, up=590)]
    rows = overwritten_rows()
    for row in rows:
        row["recent_events"] = json.dumps(unsynced)

    verdict = detect_lost_history(load(heartbeat_db(rows)))

    assert verdict.shape == OVERWRITTEN


def test_repeated_reset_reason_without_events_stays_sound(heartbeat_db):
    rows = [{"id": n, "device_id": "dev-G", "received_at": f"2026-05-01 10:00:{11 * n:02d}",
             "uptime": 6 + n % 3, "firmware_version": "1.1.0", "reset_reason": 9}
            for n in range(1, 5)]

    verdict = detect_lost_history(load(heartbeat_db(rows)))

    assert verdict.shape == SOUND


def test_v100_rows_stay_sound(heartbeat_db):
    rows = [{"id": n, "device_id": "dev-B", "received_at": f"2026-05-01 10:0{n}:00",
             "uptime": 60 * n, "firmware_version": "1.0.0"} for n in range(1, 6)]

    fleet = load_fleet(heartbeat_db(rows))

    assert lost_history_shape(fleet.quality) == SOUND
    assert history_notice(fleet) is None


def test_history_notice_names_the_fix(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning):
        fleet = load_fleet(heartbeat_db(overwritten_rows()))

    notice = history_notice(fleet)

    assert notice is not None
    assert "History overwritten" in notice
    assert "insert one row per heartbeat" in notice


def test_one_row_notice_says_history_missing(heartbeat_db):
    with pytest.warns(HistoryOverwrittenWarning):
        fleet = load_fleet(heartbeat_db(one_row_per_device(10)))

    assert history_notice(fleet).startswith("**History missing:**")

