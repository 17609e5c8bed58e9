"""Reboot cause tables, events before unexpected reboots and survival, against hand values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import codes, load_fleet
from analysis.errors import InvalidInputError
from analysis.reboot_analysis import (
    boot_lifetimes,
    common_sequences,
    events_before_reboots,
    join_labels,
    kaplan_meier,
    median_survival,
    reboot_causes,
    reboot_classes,
    reboot_survival,
    reboots_by_device,
    top_unexpected_devices,
)
from analysis.sample import simulate_fleet
from analysis.sample.writer import write_database


def beat(heartbeat_id, device, when, uptime, reset, version="1.1.0", events=None):
    return {"id": heartbeat_id, "device_id": device, "received_at": when, "uptime": uptime,
            "firmware_version": version, "reset_reason": reset, "recent_events": events}


def event(tag, d0=0, up=0, ts=0):
    return {"t": tag, "d0": d0, "d1": 0, "ts": ts, "up": up}


def reboot_pair(first_id, device, reset):
    """A device's first boot and then one reboot with reset reason `reset`."""
    return [beat(first_id, device, "2026-05-01 10:00:00", 600, 1),
            beat(first_id + 1, device, "2026-05-01 10:10:00", 30, reset)]


OTA_THEN_PANIC_ROWS = [
    beat(1, "dev-F", "2026-05-01 10:00:00", 86000, 1, version="1.9.0"),
    beat(2, "dev-F", "2026-05-01 10:07:00", 45, 3, version="1.10.0"),
    beat(3, "dev-F", "2026-05-01 10:09:00", 60, 4, version="1.10.0"),
]

# One boot loses Wi-Fi, misses three heartbeats and restarts itself (EVT_REBOOT 1). The
# heartbeat after the restart carries both boots' events.
WATCHDOG_EVENTS = [
    event(codes.EVT_BOOT, 1), event(codes.EVT_WIFI_UP, 65469, up=5),
    event(codes.EVT_WIFI_DOWN, 201, up=400), event(codes.EVT_HEARTBEAT_MISS, 1, up=700),
    event(codes.EVT_HEARTBEAT_MISS, 2, up=1000), event(codes.EVT_HEARTBEAT_MISS, 3, up=1300),
    event(codes.EVT_REBOOT, 1, up=1301), event(codes.EVT_BOOT, 3),
    event(codes.EVT_WIFI_UP, 65470, up=10),
]
WATCHDOG_ROWS = [
    beat(1, "dev-W", "2026-05-01 10:00:00", 60, 1, events=WATCHDOG_EVENTS[:2]),
    beat(2, "dev-W", "2026-05-01 10:30:00", 30, 3, events=WATCHDOG_EVENTS),
]


def test_newer_reset_codes_decoded(heartbeat_db):
    rows = reboot_pair(1, "usb", 11) + reboot_pair(3, "glitch", 14) + reboot_pair(5, "odd", 23)
    fleet = load_fleet(heartbeat_db(rows))

    causes = reboot_causes(fleet.boots).set_index("reset_reason_name")

    assert causes.loc["ESP_RST_USB", "cause"] == "external_reset"
    assert causes.loc["ESP_RST_USB", "cause_class"] == "planned"
    assert not causes.loc["ESP_RST_USB", "is_unexpected"]
    assert causes.loc["ESP_RST_PWR_GLITCH", "cause"] == "brownout"
    assert causes.loc["ESP_RST_PWR_GLITCH", "cause_class"] == "power"
    assert causes.loc["UNKNOWN(23)", "cause"] == "unknown"
    assert fleet.quality.count("unknown_reset_reason") == 1


def test_version_change_is_ota_then_panic(heartbeat_db):
    fleet = load_fleet(heartbeat_db(OTA_THEN_PANIC_ROWS))

    causes = reboot_causes(fleet.boots)

    assert causes["cause"].tolist() == ["panic", "ota_update"]
    assert causes["cause_class"].tolist() == ["crash", "planned"]
    ota = fleet.boots.index[fleet.boots["cause"] == "ota_update"][0]
    assert fleet.boots.loc[ota - 1, "firmware_version"] == "1.9.0"
    assert fleet.boots.loc[ota, "firmware_version"] == "1.10.0"
    assert fleet.boots.loc[ota, "first_heartbeat_id"] == 2
    panic = fleet.boots[fleet.boots["cause"] == "panic"]
    assert panic["firmware_version"].tolist() == ["1.10.0"]
    assert panic["first_heartbeat_id"].tolist() == [3]


def test_watchdog_resets_kept_apart(heartbeat_db):
    rows = reboot_pair(1, "a", 5) + reboot_pair(3, "b", 6) + reboot_pair(5, "c", 7)
    rows += reboot_pair(7, "d", 6)
    fleet = load_fleet(heartbeat_db(rows))

    causes = reboot_causes(fleet.boots)

    assert causes["cause"].tolist() == ["watchdog"] * 3
    assert causes["reset_reason_name"].tolist() == [
        "ESP_RST_TASK_WDT", "ESP_RST_INT_WDT", "ESP_RST_WDT"]
    assert causes["reboots"].tolist() == [2, 1, 1]
    assert causes["share_pct"].tolist() == pytest.approx([50.0, 25.0, 25.0])


def test_reboot_without_reset_reason_not_reported(heartbeat_db):
    rows = reboot_pair(1, "old", None)
    fleet = load_fleet(heartbeat_db(rows))

    causes = reboot_causes(fleet.boots)

    assert causes["cause"].tolist() == ["no_diagnostics"]
    assert causes["reset_reason_name"].tolist() == ["not reported"]


def test_reboot_classes_lists_every_class(heartbeat_db):
    fleet = load_fleet(heartbeat_db(reboot_pair(1, "a", 4) + reboot_pair(3, "b", 9)))

    classes = reboot_classes(fleet.boots)

    assert classes["cause_class"].tolist() == list(codes.CAUSE_CLASS_ORDER)
    assert classes["reboots"].tolist() == [1, 0, 1, 0, 0, 0]
    assert classes["is_unexpected"].tolist() == [True, True, True, False, False, False]


def test_top_devices_ordered_with_rate(heartbeat_db):
    rows = reboot_pair(1, "a", 4) + reboot_pair(3, "b", 4)
    rows += [beat(5, "b", "2026-05-01 10:20:00", 20, 9)]
    fleet = load_fleet(heartbeat_db(rows))
    hours = pd.DataFrame({"device_id": ["a", "b"], "hours": [10 / 60, 20 / 60]})

    top = top_unexpected_devices(fleet.boots, hours, top=5)

    assert top["device_id"].tolist() == ["b", "a"]
    assert top["unexpected_reboots"].tolist() == [2, 1]
    assert top["causes"].tolist() == ["panic ×1, brownout ×1", "panic ×1"]
    assert top["rate_per_1000h"].tolist() == pytest.approx([6000.0, 6000.0])


def test_events_before_connectivity_reboot(heartbeat_db):
    fleet = load_fleet(heartbeat_db(WATCHDOG_ROWS))

    before = events_before_reboots(fleet.events, fleet.boots, fleet.heartbeats, k=5)

    assert before["cause"].tolist() == ["connectivity_watchdog"]
    assert before["events"].tolist() == [5]
    assert before["sequence"].iloc[0] == (
        "EVT_WIFI_DOWN NO_AP_FOUND → EVT_HEARTBEAT_MISS ×3 → EVT_REBOOT HEARTBEAT_MISS")


def test_events_before_stop_at_previous_boot(heartbeat_db):
    fleet = load_fleet(heartbeat_db(WATCHDOG_ROWS))

    before = events_before_reboots(fleet.events, fleet.boots, fleet.heartbeats, k=50)

    assert before["sequence"].iloc[0] == (
        "EVT_BOOT POWERON → EVT_WIFI_UP → EVT_WIFI_DOWN NO_AP_FOUND → EVT_HEARTBEAT_MISS ×3"
        " → EVT_REBOOT HEARTBEAT_MISS")


def test_events_before_by_time_without_boot_event(heartbeat_db):
    # The reboot's heartbeat carries no ring buffer, so the events timed before it count.
    first_events = [event(codes.EVT_BOOT, 1),
                    event(codes.EVT_WIFI_DOWN, 201, up=100, ts=1777629700)]
    rows = [beat(1, "a", "2026-05-01 10:00:00", 600, 1, events=first_events),
            beat(2, "a", "2026-05-01 10:30:00", 30, 4)]
    fleet = load_fleet(heartbeat_db(rows))

    before = events_before_reboots(fleet.events, fleet.boots, fleet.heartbeats)

    assert before["cause"].tolist() == ["panic"]
    assert before["sequence"].tolist() == ["EVT_BOOT POWERON → EVT_WIFI_DOWN NO_AP_FOUND"]


def test_events_before_reboot_without_events(heartbeat_db):
    fleet = load_fleet(heartbeat_db(reboot_pair(1, "a", 4)))

    before = events_before_reboots(fleet.events, fleet.boots, fleet.heartbeats)

    assert before["events"].tolist() == [0]
    assert before["sequence"].tolist() == [""]
    assert common_sequences(before)["sequence"].tolist() == ["(no events)"]


def test_events_before_rejects_zero_k(heartbeat_db):
    fleet = load_fleet(heartbeat_db(WATCHDOG_ROWS))

    with pytest.raises(InvalidInputError, match="k=0"):
        events_before_reboots(fleet.events, fleet.boots, fleet.heartbeats, k=0)


def test_common_sequences_counted():
    before = pd.DataFrame({
        "device_id": ["a", "b", "a", "c"],
        "cause": ["panic", "panic", "watchdog", "panic"],
        "sequence": ["X → Y", "X → Y", "Z", "X → Y"],
    })

    table = common_sequences(before)

    assert table["sequence"].tolist() == ["X → Y", "Z"]
    assert table["reboots"].tolist() == [3, 1]
    assert table["devices"].tolist() == [3, 1]
    assert table["causes"].tolist() == ["panic ×3", "watchdog ×1"]
    assert table["share_pct"].tolist() == pytest.approx([75.0, 25.0])


def test_join_labels_merges_runs():
    assert join_labels(pd.Series(["A", "A", "B", "A"])) == "A ×2 → B → A"
    assert join_labels(pd.Series([], dtype=object)) == ""


def test_kaplan_meier_hand_calculation():
    durations = pd.Series([1.0, 2.0, 2.0, 3.0, 4.0])
    observed = pd.Series([True, True, False, True, False])

    curve = kaplan_meier(durations, observed)

    # S(1) = 4/5, S(2) = 4/5 * 3/4, S(3) = 0.6 * 1/2, and the censored 4 leaves S unchanged.
    assert curve["time"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert curve["at_risk"].tolist() == [5, 4, 2, 1]
    assert curve["events"].tolist() == [1, 1, 1, 0]
    assert curve["censored"].tolist() == [0, 1, 0, 1]
    assert curve["survival"].tolist() == pytest.approx([0.8, 0.6, 0.3, 0.3], abs=1e-12)
    assert median_survival(curve) == 3.0


def test_median_survival_never_reached():
    curve = kaplan_meier(pd.Series([1.0, 2.0, 3.0]), pd.Series([True, False, False]))

    assert math.isnan(median_survival(curve))


def test_boot_lifetimes_censor_planned_and_last(heartbeat_db):
    fleet = load_fleet(heartbeat_db(OTA_THEN_PANIC_ROWS))

    lifetimes = boot_lifetimes(fleet.boots)

    # Boots start at 2026-04-30 10:06:40, 2026-05-01 10:06:15 and 10:08:00, and the last
    # one was seen until 10:09:00.
    assert lifetimes["hours"].tolist() == pytest.approx(
        [86375 / 3600, 105 / 3600, 60 / 3600], abs=1e-12)
    assert lifetimes["is_unexpected_end"].tolist() == [False, True, False]


def test_reboot_survival_per_version(heartbeat_db):
    fleet = load_fleet(heartbeat_db(OTA_THEN_PANIC_ROWS))

    curves, summary = reboot_survival(fleet.boots)

    assert summary["firmware_version"].tolist() == ["1.9.0", "1.10.0"]
    assert summary["boots"].tolist() == [1, 2]
    assert summary["unexpected_ends"].tolist() == [0, 1]
    assert summary["median_hours"].iloc[1] == pytest.approx(105 / 3600, abs=1e-12)
    assert math.isnan(summary["median_hours"].iloc[0])
    newer = curves[curves["firmware_version"] == "1.10.0"]
    assert newer["survival"].tolist() == pytest.approx([1.0, 0.0])


def test_reboot_survival_empty(heartbeat_db):
    fleet = load_fleet(heartbeat_db(OTA_THEN_PANIC_ROWS))

    curves, summary = reboot_survival(fleet.boots.iloc[:0])

    assert curves.empty
    assert summary.empty


def test_causes_match_simulated_truth(tmp_path):
    simulated = simulate_fleet(devices=12, days=4, seed=11, malformed_rows=0)
    fleet = load_fleet(write_database(simulated, tmp_path / "fleet.sqlite"))
    truth = simulated.truth_boots
    seen = truth[truth["is_reboot"] & truth["observable"] & truth["cause_observable"]]
    expected = seen.groupby(["device_id", "cause"]).size().unstack(fill_value=0)

    found = reboots_by_device(fleet.boots)

    expected, found = expected.align(found, fill_value=0)
    assert found.sum().sum() > 20
    pd.testing.assert_frame_equal(found, expected, check_dtype=False, check_names=False)
