"""Boots from uptime resets and EVT_BOOT events, joined once, with the cause rule."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import load_fleet

START = pd.Timestamp("2026-05-01 10:00:00")


def event(tag, d0=0, d1=0, ts=0, up=0):
    return {"t": tag, "d0": d0, "d1": d1, "ts": ts, "up": up}


def row(i, seconds, uptime, *, device="dev-A", version="1.1.0", reset=1, events=None):
    return {
        "id": i, "device_id": device, "received_at": str(START + pd.Timedelta(seconds=seconds)),
        "uptime": uptime, "firmware_version": version, "reset_reason": reset,
        "recent_events": events,
    }


def test_ota_seen_only_as_version_change_then_panic(heartbeat_db):
    rows = [
        row(1, 0, 86000, device="dev-F", version="1.9.0", reset=1),
        row(2, 420, 45, device="dev-F", version="1.10.0", reset=3),
        row(3, 540, 60, device="dev-F", version="1.10.0", reset=4),
    ]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert boots["cause"].tolist() == ["power_on", "ota_update", "panic"]
    assert boots["cause_class"].tolist() == ["power_on", "planned", "crash"]
    assert boots["is_reboot"].tolist() == [False, True, True]
    assert boots["firmware_version"].tolist() == ["1.9.0", "1.10.0", "1.10.0"]
    assert boots["is_unexpected"].tolist() == [False, False, True]


def test_brownout_loop_four_boots_three_reboots(heartbeat_db):
    rows = [row(i + 1, 11 * i, uptime, device="dev-G", reset=9)
            for i, uptime in enumerate([6, 8, 7, 6])]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert len(boots) == 4
    assert int(boots["is_reboot"].sum()) == 3
    assert boots.loc[boots["is_reboot"], "cause"].tolist() == ["brownout"] * 3
    assert boots["is_boot_loop"].all()


def test_steady_heartbeats_are_one_boot(heartbeat_db):
    rows = [row(i + 1, 300 * i, 1000 + 300 * i) for i in range(20)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert len(boots) == 1
    assert boots.loc[0, "heartbeats"] == 20
    assert boots.loc[0, "duration_s"] == 1000 + 300 * 19


def test_gap_with_growing_uptime_is_not_a_reboot(heartbeat_db):
    rows = [row(1, 0, 1000), row(2, 6 * 3600, 1000 + 6 * 3600)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert len(boots) == 1


def test_gap_with_small_uptime_is_a_reboot(heartbeat_db):
    rows = [row(1, 0, 1000), row(2, 6 * 3600, 3600, reset=1)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert len(boots) == 2
    assert boots.loc[1, "boot_time"] == pd.Timestamp("2026-05-01 15:00:00", tz="UTC")


def test_camera_loop_between_heartbeats_counts_every_boot_once(heartbeat_db):
    first = [event(1, 1), event(2, 65469, up=10)]
    loop = [event(8, 6, up=600), event(1, 6), event(8, 6, up=3), event(1, 6),
            event(8, 6, up=3), event(1, 6), event(2, 65469, up=12)]
    rows = [
        row(1, 0, 30, events=first),
        row(2, 300, 330, events=first),
        # Three watchdog resets after camera failures; the third boot reaches Wi-Fi.
        row(3, 930, 20, reset=6, events=first + loop),
        row(4, 1230, 320, reset=6, events=first + loop),
    ]

    fleet = load_fleet(heartbeat_db(rows))
    boots = fleet.boots

    assert len(boots) == 4
    assert boots["cause"].tolist() == ["power_on", "fatal_camera", "fatal_camera",
                                       "fatal_camera"]
    assert boots["source"].tolist() == ["heartbeat+event", "event", "event", "heartbeat+event"]
    assert boots["heartbeats"].tolist() == [2, 0, 0, 2]
    assert boots["is_boot_loop"].tolist() == [False, True, True, True]
    assert (fleet.events["tag"] == 1).sum() == 4


def test_reboot_reason_wins_over_reset(heartbeat_db):
    first = [event(1, 1), event(6, 3, up=900), event(8, 1, up=901)]
    rows = [
        row(1, 0, 800, events=[event(1, 1)]),
        row(2, 930, 25, reset=3, events=first + [event(1, 3)]),
    ]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert boots["reboot_reason"].tolist()[1] == 1
    assert boots["cause"].tolist() == ["power_on", "connectivity_watchdog"]
    assert boots["cause_class"].tolist() == ["power_on", "recovery"]


def test_software_restart_without_reboot_event_is_unlogged(heartbeat_db):
    rows = [
        row(1, 0, 800, events=[event(1, 1)]),
        row(2, 930, 25, reset=3, events=[event(1, 1), event(1, 3)]),
    ]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert boots["cause"].tolist() == ["power_on", "software_restart_unlogged"]


@pytest.mark.parametrize(
    ("reset", "cause", "cause_class"),
    [(11, "external_reset", "planned"), (14, "brownout", "power"), (23, "unknown", "crash"),
     (5, "watchdog", "crash"), (8, "deep_sleep_wake", "planned"), (None, "no_diagnostics",
     "no_diagnostics")],
)
def test_reset_reason_causes(heartbeat_db, reset, cause, cause_class):
    rows = [row(1, 0, 800, reset=1), row(2, 930, 25, reset=reset)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert boots.loc[1, "cause"] == cause
    assert boots.loc[1, "cause_class"] == cause_class


def test_unknown_reset_reason_is_counted(heartbeat_db):
    rows = [row(1, 0, 800, reset=1), row(2, 930, 25, reset=23)]

    fleet = load_fleet(heartbeat_db(rows))

    assert fleet.boots.loc[1, "reset_reason_name"] == "UNKNOWN(23)"
    assert fleet.quality.count("unknown_reset_reason") == 1


def test_v100_devices_count_boots_from_uptime(heartbeat_db):
    rows = [row(1, 0, 800, version="1.0.0", reset=None),
            row(2, 930, 25, version="1.0.0", reset=None)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert boots["cause"].tolist() == ["no_diagnostics", "no_diagnostics"]
    assert boots["is_reboot"].tolist() == [False, True]


def test_boot_loop_needs_three_boots_in_ten_minutes(heartbeat_db):
    rows = [row(1, 0, 5, reset=4), row(2, 300, 5, reset=4), row(3, 901, 5, reset=4)]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert not boots["is_boot_loop"].any()


def test_boot_event_seen_late_joins_its_heartbeat_boot(heartbeat_db):
    synced = int(START.timestamp())
    rows = [
        row(1, 60, 60, reset=1, events='[{"t":1,"d0":1'),
        row(2, 1860, 60, reset=4, events=[event(1, 1, ts=synced), event(8, 6, ts=synced + 5,
                                                                       up=5),
                                          event(1, 4, ts=synced + 1800)]),
    ]

    boots = load_fleet(heartbeat_db(rows)).boots

    assert len(boots) == 2
    assert boots["source"].tolist() == ["heartbeat+event", "heartbeat+event"]
    assert boots["cause"].tolist() == ["power_on", "fatal_camera"]
