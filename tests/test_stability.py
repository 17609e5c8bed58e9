"""Device-hours, unexpected reboot rates and crash-free shares, checked by hand and by SQL."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import load_fleet
from analysis.errors import InvalidInputError
from analysis.stability import (
    crash_free_devices,
    crash_free_hours,
    device_hours,
    exposure_intervals,
    fleet_stability,
    poisson_rate_interval,
    stability_headline,
    unexpected_reboot_rate,
)

DAY = datetime(2026, 5, 1)


def beat(device, minute, uptime, *, version="1.1.0", reset=1, day=DAY):
    """One heartbeat row `minute` minutes after midnight of `day`."""
    when = day + timedelta(minutes=minute)
    return {"device_id": device, "received_at": when.strftime("%Y-%m-%d %H:%M:%S"),
            "uptime": uptime, "firmware_version": version, "reset_reason": reset}


def numbered(rows):
    return [{"id": n, **row} for n, row in enumerate(rows, start=1)]


def regular(device, first_minute, count, *, uptime0, version="1.1.0", reset=1, step=5):
    """`count` heartbeats every `step` minutes of one boot that began `uptime0` s earlier."""
    return [beat(device, first_minute + step * i, uptime0 + 60 * step * i, version=version,
                 reset=reset) for i in range(count)]


OTA_THEN_PANIC_ROWS = [
    {"id": 1, "device_id": "dev-F", "received_at": "2026-05-01 10:00:00", "uptime": 86000,
     "firmware_version": "1.9.0", "reset_reason": 1},
    {"id": 2, "device_id": "dev-F", "received_at": "2026-05-01 10:07:00", "uptime": 45,
     "firmware_version": "1.10.0", "reset_reason": 3},
    {"id": 3, "device_id": "dev-F", "received_at": "2026-05-01 10:09:00", "uptime": 60,
     "firmware_version": "1.10.0", "reset_reason": 4},
]


@pytest.fixture
def ota_fleet(heartbeat_db):
    return load_fleet(heartbeat_db(OTA_THEN_PANIC_ROWS))


def test_gap_with_reboot_loses_off_time(heartbeat_db):
    # 10:05 -> 11:00 is 55 min, longer than 3 x 5 min, and the device booted at 10:50.
    rows = numbered([beat("a", 600, 3600), beat("a", 605, 3900),
                     beat("a", 660, 600, reset=4), beat("a", 665, 900, reset=4)])
    fleet = load_fleet(heartbeat_db(rows))

    hours = device_hours(fleet.heartbeats, fleet.boots)

    assert hours["hours"].iloc[0] == pytest.approx((5 + 10 + 5) / 60, abs=1e-12)
    assert hours["off_hours"].iloc[0] == pytest.approx(45 / 60, abs=1e-12)
    assert hours["heartbeats"].iloc[0] == 4


def test_gap_with_growing_uptime_counts(heartbeat_db):
    rows = numbered([beat("a", 600, 3600), beat("a", 720, 3600 + 7200)])
    fleet = load_fleet(heartbeat_db(rows))

    hours = device_hours(fleet.heartbeats, fleet.boots)

    assert hours["hours"].iloc[0] == pytest.approx(2.0, abs=1e-12)
    assert hours["off_hours"].iloc[0] == 0.0


def test_short_gap_with_reboot_counts(heartbeat_db):
    # 10 min is within 3 heartbeat intervals, so the whole gap counts.
    rows = numbered([beat("a", 600, 3600), beat("a", 610, 60, reset=4)])
    fleet = load_fleet(heartbeat_db(rows))

    hours = device_hours(fleet.heartbeats, fleet.boots)

    assert hours["hours"].iloc[0] == pytest.approx(10 / 60, abs=1e-12)


def test_gap_factor_option_changes_threshold(heartbeat_db):
    rows = numbered([beat("a", 600, 3600), beat("a", 610, 60, reset=4)])
    fleet = load_fleet(heartbeat_db(rows))

    hours = device_hours(fleet.heartbeats, fleet.boots, interval_s=60, gap_factor=3)

    # 10 min > 3 min, so only the minute since the boot at 10:09 counts.
    assert hours["hours"].iloc[0] == pytest.approx(1 / 60, abs=1e-12)


def test_off_gap_ends_at_first_boot_inside_it(heartbeat_db):
    rows = numbered([beat("a", 600, 3600), beat("a", 660, 600, reset=4)])
    fleet = load_fleet(heartbeat_db(rows))
    # A boot seen only as an EVT_BOOT event at 10:20, before the heartbeat boot at 10:50.
    event_boot = pd.DataFrame({"device_id": ["a"],
                               "boot_time": [pd.Timestamp("2026-05-01 10:20", tz="UTC")]})
    boots = pd.concat([fleet.boots[["device_id", "boot_time"]], event_boot],
                      ignore_index=True)

    without = exposure_intervals(fleet.heartbeats)
    with_boots = exposure_intervals(fleet.heartbeats, boots)

    assert without["counted_s"].iloc[0] == 10 * 60
    assert with_boots["counted_s"].iloc[0] == 40 * 60
    assert with_boots["off_s"].iloc[0] == 20 * 60


def test_single_heartbeat_device_has_zero_hours(heartbeat_db):
    fleet = load_fleet(heartbeat_db(numbered([beat("solo", 600, 100)])))

    hours = device_hours(fleet.heartbeats, fleet.boots)

    assert hours["device_id"].tolist() == ["solo"]
    assert hours["hours"].iloc[0] == 0.0


def test_version_split_charges_starting_heartbeat(ota_fleet):
    hours = device_hours(ota_fleet.heartbeats, ota_fleet.boots, by="firmware_version")

    assert hours["firmware_version"].tolist() == ["1.9.0", "1.10.0"]
    assert hours["hours"].tolist() == pytest.approx([7 / 60, 2 / 60], abs=1e-12)


def test_week_split_cuts_at_monday(heartbeat_db):
    sunday = datetime(2026, 5, 3)
    rows = numbered([beat("a", 23 * 60, 3600, day=sunday),
                     beat("a", 25 * 60, 3600 + 7200, day=sunday)])
    fleet = load_fleet(heartbeat_db(rows))

    hours = device_hours(fleet.heartbeats, fleet.boots, by="week")

    assert hours["week"].tolist() == ["2026-W18", "2026-W19"]
    assert hours["hours"].tolist() == pytest.approx([1.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 37, 250])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_poisson_interval_matches_chi_square(count, confidence):
    exposure = 3.7
    alpha = 1 - confidence

    low, high = poisson_rate_interval(count, exposure, confidence=confidence)

    expected_low = stats.chi2.ppf(alpha / 2, 2 * count) / 2 if count else 0.0
    expected_high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    assert float(low) == pytest.approx(expected_low / exposure, abs=1e-9)
    assert float(high) == pytest.approx(expected_high / exposure, abs=1e-9)


def test_poisson_interval_hand_values():
    # For k = 0 the upper bound solves exp(-x) = 0.025, so x = ln 40. For k = 1 the lower
    # bound solves 1 - exp(-x) = 0.025, so x = -ln 0.975.
    _, high_zero = poisson_rate_interval(0, 1.0)
    low_one, _ = poisson_rate_interval(1, 1.0)

    assert float(high_zero) == pytest.approx(math.log(40), abs=1e-9)
    assert float(low_one) == pytest.approx(-math.log(0.975), abs=1e-9)


def test_poisson_interval_zero_exposure_is_nan():
    low, high = poisson_rate_interval(3, 0.0)

    assert np.isnan(low)
    assert np.isnan(high)


def test_poisson_interval_rejects_bad_confidence():
    with pytest.raises(InvalidInputError, match="confidence"):
        poisson_rate_interval(1, 1.0, confidence=95)


def test_rate_per_version_after_ota(ota_fleet):
    hours = device_hours(ota_fleet.heartbeats, ota_fleet.boots, by="firmware_version")

    rate = unexpected_reboot_rate(ota_fleet.boots, hours, by="firmware_version")

    new = rate.set_index("firmware_version").loc["1.10.0"]
    old = rate.set_index("firmware_version").loc["1.9.0"]
    assert new["unexpected_reboots"] == 1
    assert new["rate_per_1000h"] == pytest.approx(1 / (2 / 60) * 1000, abs=1e-6)
    assert old["unexpected_reboots"] == 0
    assert old["rate_per_1000h"] == 0.0


def test_rate_with_number_of_hours():
    boots = pd.DataFrame({"is_unexpected": [True, True, False], "device_id": ["a"] * 3,
                          "boot_time": pd.to_datetime(["2026-05-01"] * 3, utc=True),
                          "firmware_version": ["1.0"] * 3})

    rate = unexpected_reboot_rate(boots, 500.0)

    assert rate["unexpected_reboots"].iloc[0] == 2
    assert rate["rate_per_1000h"].iloc[0] == pytest.approx(4.0, abs=1e-12)
    assert rate["rate_low"].iloc[0] == pytest.approx(stats.chi2.ppf(0.025, 4) / 2 / 0.5,
                                                     abs=1e-9)


def test_rate_by_version_needs_split_hours():
    boots = pd.DataFrame({"is_unexpected": [True], "firmware_version": ["1.0"]})

    with pytest.raises(InvalidInputError, match="device_hours"):
        unexpected_reboot_rate(boots, 10.0, by="firmware_version")


def test_unknown_grouping_is_rejected(ota_fleet):
    with pytest.raises(InvalidInputError, match="by='device'"):
        fleet_stability(ota_fleet, by="device")


def _two_device_rows():
    # Device a reports 10:00-12:55 every 5 min and panics at 11:30. Device b reports 10:00-10:55.
    rows = regular("a", 600, 18, uptime0=3600)
    rows += [beat("a", 690 + 5 * i, 10 + 300 * i, reset=4) for i in range(18)]
    rows += regular("b", 600, 12, uptime0=100)
    return numbered(rows)


def test_crash_free_hours_counts_buckets(heartbeat_db):
    fleet = load_fleet(heartbeat_db(_two_device_rows()))

    table = crash_free_hours(fleet.heartbeats, fleet.boots)

    # a touches hours 10, 11 and 12 and crashed in 11, while b touches hour 10 only.
    assert table["observed_hours"].iloc[0] == 4
    assert table["crash_free_hours"].iloc[0] == 3
    assert table["crash_free_hours_pct"].iloc[0] == pytest.approx(75.0, abs=1e-12)


def test_crash_free_devices_counts_devices(heartbeat_db):
    fleet = load_fleet(heartbeat_db(_two_device_rows()))

    table = crash_free_devices(fleet.heartbeats, fleet.boots)

    assert table["devices"].iloc[0] == 2
    assert table["crash_free_devices"].iloc[0] == 1
    assert table["crash_free_devices_pct"].iloc[0] == pytest.approx(50.0, abs=1e-12)


def test_ota_hour_counts_for_both_versions(ota_fleet):
    table = crash_free_hours(ota_fleet.heartbeats, ota_fleet.boots, by="firmware_version")

    assert table["firmware_version"].tolist() == ["1.9.0", "1.10.0"]
    assert table["observed_hours"].tolist() == [1, 1]
    assert table["crash_free_hours"].tolist() == [1, 0]


def test_fleet_stability_headline(heartbeat_db):
    fleet = load_fleet(heartbeat_db(_two_device_rows()))

    headline = stability_headline(fleet)

    # a: the reboot falls in 11:25 -> 11:30, a short gap, so all of 10:00-12:55 counts.
    hours = (175 + 55) / 60
    assert headline["devices"] == 2
    assert headline["device_hours"] == pytest.approx(hours, abs=1e-12)
    assert headline["unexpected_reboots"] == 1
    assert headline["rate_per_1000h"] == pytest.approx(1000 / hours, abs=1e-9)
    assert headline["crash_free_devices_pct"] == pytest.approx(50.0)


def test_power_on_reboots_kept_apart(heartbeat_db):
    rows = numbered(regular("a", 600, 3, uptime0=100) + regular("a", 700, 3, uptime0=30))
    fleet = load_fleet(heartbeat_db(rows))

    table = fleet_stability(fleet)

    assert table["power_on_reboots"].iloc[0] == 1
    assert table["unexpected_reboots"].iloc[0] == 0


def test_brownouts_are_unexpected(heartbeat_db):
    rows = numbered(regular("a", 600, 3, uptime0=100)
                    + regular("a", 700, 3, uptime0=30, reset=9))
    fleet = load_fleet(heartbeat_db(rows))

    assert fleet_stability(fleet)["unexpected_reboots"].iloc[0] == 1


def test_empty_window_gives_one_row(heartbeat_db):
    fleet = load_fleet(heartbeat_db(_two_device_rows()), start="2030-01-01")

    table = fleet_stability(fleet)

    assert len(table) == 1
    assert table["devices"].iloc[0] == 0
    assert table["device_hours"].iloc[0] == 0.0
    assert np.isnan(table["rate_per_1000h"].iloc[0])
    assert np.isnan(table["crash_free_hours_pct"].iloc[0])


def test_empty_window_by_version_is_empty(heartbeat_db):
    fleet = load_fleet(heartbeat_db(_two_device_rows()), start="2030-01-01")

    assert fleet_stability(fleet, by="firmware_version").empty


def test_stability_matches_plain_sql(heartbeat_db, tmp_path):
    rows = []
    rows += regular("a", 0, 40, uptime0=50)
    rows += regular("a", 202, 30, uptime0=20, reset=6)      # watchdog, 2 min gap
    rows += regular("b", 10, 60, uptime0=500)
    rows += regular("b", 312, 20, uptime0=15, reset=1)      # power_on, not unexpected
    rows += regular("c", 30, 50, uptime0=800)
    rows += regular("c", 283, 10, uptime0=10, reset=9)      # brownout
    rows += regular("c", 336, 10, uptime0=5, reset=4)       # panic
    path = heartbeat_db(numbered(rows))

    fleet = load_fleet(path)
    by_version = fleet_stability(fleet)

    connection = sqlite3.connect(path)
    hours = connection.execute(
        "SELECT SUM(span) FROM (SELECT (julianday(MAX(received_at)) - "
        "julianday(MIN(received_at))) * 24 AS span FROM heartbeats GROUP BY device_id)"
    ).fetchone()[0]
    reboots = connection.execute(
        "SELECT COUNT(*) FROM (SELECT reset_reason, uptime, LAG(uptime) OVER "
        "(PARTITION BY device_id ORDER BY received_at) AS previous FROM heartbeats) "
        "WHERE uptime < previous AND reset_reason IN (0, 3, 4, 5, 6, 7, 9, 13, 14, 15)"
    ).fetchone()[0]
    connection.close()

    assert reboots == 3
    assert by_version["device_hours"].iloc[0] == pytest.approx(hours, abs=1e-6)
    assert by_version["unexpected_reboots"].iloc[0] == reboots
    assert by_version["rate_per_1000h"].iloc[0] == pytest.approx(reboots / hours * 1000,
                                                                 rel=1e-6)


def test_versions_without_diagnostics_left_out(heartbeat_db):
    from analysis import load_fleet

    rows = [
        {"id": i + 1, "device_id": "dev-A", "received_at": f"2026-05-01 {i:02d}:00:00",
         "uptime": 3600 * i + 60, "firmware_version": "1.0.0"} for i in range(6)
    ] + [
        {"id": 10 + i, "device_id": "dev-B", "received_at": f"2026-05-01 {i:02d}:00:00",
         "uptime": 3600 * i + 60, "firmware_version": "1.1.0", "reset_reason": 1,
         "heap_free": 150000} for i in range(6)
    ]
    fleet = load_fleet(heartbeat_db(rows), cache=False)

    table = fleet_stability(fleet, by="firmware_version")

    assert table["firmware_version"].tolist() == ["1.1.0"]
    assert fleet_stability(fleet)["devices"].iloc[0] == 1
    assert fleet_stability(fleet, diagnostics_only=False)["devices"].iloc[0] == 2
