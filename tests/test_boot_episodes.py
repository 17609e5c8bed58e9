"""Boot loops, power problems and silent devices, on real SQLite heartbeat tables."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import load_fleet
from analysis.boot_episodes import (
    EPISODE_COLUMNS,
    SILENT_COLUMNS,
    count_labels,
    detect_boot_loops,
    detect_power_problems,
    silent_devices,
)
from analysis.errors import InvalidInputError


def beat(heartbeat_id, device, when, uptime, reset, version="1.1.0"):
    return {"id": heartbeat_id, "device_id": device, "received_at": when, "uptime": uptime,
            "firmware_version": version, "reset_reason": reset}


# Four heartbeats 11 s apart, each a new boot after a brownout, then six hours of
# silence while dev-H keeps reporting.
BROWNOUT_LOOP_ROWS = [
    beat(1, "dev-G", "2026-05-01 10:00:00", 6, 9),
    beat(2, "dev-G", "2026-05-01 10:00:11", 7, 9),
    beat(3, "dev-G", "2026-05-01 10:00:22", 8, 9),
    beat(4, "dev-G", "2026-05-01 10:00:33", 6, 9),
] + [beat(10 + hour, "dev-H", f"2026-05-01 {10 + hour:02d}:00:33", 3600 * hour + 100, 1)
     for hour in range(7)]


@pytest.fixture
def brownout_fleet(heartbeat_db):
    return load_fleet(heartbeat_db(BROWNOUT_LOOP_ROWS))


def test_brownout_burst_three_reboots(brownout_fleet):
    boots = brownout_fleet.boots[brownout_fleet.boots["device_id"] == "dev-G"]

    assert len(boots) == 4
    assert boots["is_reboot"].sum() == 3
    assert boots.loc[boots["is_reboot"], "cause"].tolist() == ["brownout"] * 3


def test_brownout_burst_one_loop(brownout_fleet):
    loops = detect_boot_loops(brownout_fleet.boots)

    assert len(loops) == 1
    loop = loops.iloc[0]
    assert loop["device_id"] == "dev-G"
    assert loop["boots"] == 4
    assert loop["reboots"] == 3
    assert loop["causes"] == "brownout ×4"
    assert loop["reset_reasons"] == "ESP_RST_BROWNOUT ×4"
    assert loop["start"] == pd.Timestamp("2026-05-01 09:59:54", tz="UTC")
    assert loop["end"] == pd.Timestamp("2026-05-01 10:00:27", tz="UTC")
    assert loop["max_uptime_s"] == 8.0


def test_brownout_burst_power_problem(brownout_fleet):
    problems = detect_power_problems(brownout_fleet.boots)

    assert problems["device_id"].tolist() == ["dev-G"]
    assert problems["boots"].tolist() == [4]


def test_brownout_device_listed_silent(brownout_fleet):
    silent = silent_devices(brownout_fleet.heartbeats)

    assert silent["device_id"].tolist() == ["dev-G"]
    assert silent["last_seen"].iloc[0] == pd.Timestamp("2026-05-01 10:00:33", tz="UTC")
    assert silent["silent_for"].iloc[0] == pd.Timedelta(hours=6)
    assert silent["last_reset_reason_name"].iloc[0] == "ESP_RST_BROWNOUT"


def test_silent_devices_as_of_window_end(brownout_fleet):
    silent = silent_devices(brownout_fleet.heartbeats, as_of="2026-05-01 17:30:33")

    assert silent["device_id"].tolist() == ["dev-G", "dev-H"]
    assert silent["silent_for"].tolist() == [pd.Timedelta(hours=7.5), pd.Timedelta(hours=1.5)]


def test_silent_threshold_is_exclusive(brownout_fleet):
    silent = silent_devices(brownout_fleet.heartbeats, after=pd.Timedelta(hours=6))

    assert silent.empty


def test_silent_devices_empty_heartbeats(brownout_fleet):
    silent = silent_devices(brownout_fleet.heartbeats.iloc[:0])

    assert silent.empty
    assert list(silent.columns) == list(SILENT_COLUMNS)


def test_boots_spread_over_eleven_minutes_no_loop(heartbeat_db):
    rows = [beat(1, "a", "2026-05-01 10:00:30", 30, 4),
            beat(2, "a", "2026-05-01 10:06:30", 30, 4),
            beat(3, "a", "2026-05-01 10:11:30", 30, 4)]
    fleet = load_fleet(heartbeat_db(rows))

    assert detect_boot_loops(fleet.boots).empty


def test_two_loops_far_apart_two_episodes(heartbeat_db):
    first = [beat(n, "a", f"2026-05-01 10:0{n}:30", 20, 4) for n in range(1, 4)]
    second = [beat(10 + n, "a", f"2026-05-01 14:0{n}:30", 20, 5) for n in range(1, 4)]
    fleet = load_fleet(heartbeat_db(first + second))

    loops = detect_boot_loops(fleet.boots)

    assert loops["boots"].tolist() == [3, 3]
    assert loops["causes"].tolist() == ["panic ×3", "watchdog ×3"]
    assert loops["reset_reasons"].tolist() == ["ESP_RST_PANIC ×3", "ESP_RST_INT_WDT ×3"]


def test_panic_loop_is_no_power_problem(heartbeat_db):
    rows = [beat(n, "a", f"2026-05-01 10:0{n}:30", 20, 4) for n in range(1, 5)]
    fleet = load_fleet(heartbeat_db(rows))

    assert len(detect_boot_loops(fleet.boots)) == 1
    assert detect_power_problems(fleet.boots).empty


def test_power_problem_uptime_limit(heartbeat_db):
    # Power-on boots every 3.5 minutes, each up for 200 s when it reports.
    rows = [beat(n, "a", f"2026-05-01 10:{3 * n + n // 2:02d}:{30 * (n % 2):02d}", 200, 1)
            for n in range(1, 5)]
    fleet = load_fleet(heartbeat_db(rows))

    assert len(detect_boot_loops(fleet.boots)) == 1
    assert detect_power_problems(fleet.boots).empty
    assert len(detect_power_problems(fleet.boots, max_uptime_s=300)) == 1


def test_no_boots_gives_empty_episodes(brownout_fleet):
    loops = detect_boot_loops(brownout_fleet.boots.iloc[:0])

    assert loops.empty
    assert list(loops.columns) == list(EPISODE_COLUMNS)


@pytest.mark.parametrize("options", [{"min_boots": 1},
                                     {"window": pd.Timedelta(0)}])
def test_invalid_episode_options_rejected(brownout_fleet, options):
    with pytest.raises(InvalidInputError, match="episode"):
        detect_boot_loops(brownout_fleet.boots, **options)


def test_count_labels_most_common_first():
    labels = count_labels(pd.Series(["panic", "brownout", None, "brownout"]))

    assert labels == "brownout ×2, panic ×1"


def test_loop_reset_reasons_not_reported(heartbeat_db):
    rows = [beat(n, "old", f"2026-05-01 10:0{n}:30", 20, None, version="1.0.0")
            for n in range(1, 4)]
    fleet = load_fleet(heartbeat_db(rows))

    loops = detect_boot_loops(fleet.boots)

    assert loops["causes"].tolist() == ["no_diagnostics ×3"]
    assert loops["reset_reasons"].tolist() == ["not reported ×3"]
