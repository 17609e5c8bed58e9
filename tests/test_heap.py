"""Heap figures: trends per boot, leak candidates, low-water alerts and distributions.

Every expected value is worked out by hand in the test (Theil-Sen medians of the pairwise
slopes, quantiles of a few readings) or read from the database with plain SQL.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import write_heartbeats
from scipy.stats import theilslopes

from analysis import load_fleet
from analysis.errors import InvalidInputError
from analysis.heap import (
    NO_LATER_BOOT,
    boot_endings,
    daily_heap_quantiles,
    find_leaks,
    heap_by_firmware,
    last_min_free_by_ending,
    leaking_devices,
    low_water_alerts,
    low_water_crash_p_value,
    low_water_outcomes,
)
from analysis.heap_plots import (
    plot_daily_heap,
    plot_device_heap,
    plot_heap_by_firmware,
    plot_leak_rates,
    plot_low_water_outcomes,
    worst_devices,
)
from analysis.heap_report import (
    HeapSettings,
    analyse_heap,
    describe_headline,
    headline_figures,
    leaking_boots,
    rounded,
)
from analysis.heap_trend import TrendSettings, fit_heap_trends, fit_trend
from analysis.notebook import to_json_value
from analysis.sample import FirmwareRelease, FleetConfig, simulate_fleet
from analysis.sample.writer import write_database

BOOT_START = pd.Timestamp("2026-05-01 00:00:00", tz="UTC")

# Field case F07: one boot of dev-L whose heap is flat for 3 h and then falls, then a panic.
F07_FIRST_BOOT = [
    # uptime s, heap_free, heap_min_free
    (3600, 247308, 240000),
    (7200, 246868, 240000),
    (10800, 246868, 240000),
    (14400, 230000, 228000),
    (18000, 212000, 210000),
    (21600, 195000, 193000),
    (43200, 80000, 77000),
]
F07_REBOOT = (30, 247000, 246000)
F07_REBOOT_AT = BOOT_START + pd.Timedelta(seconds=43200 + 600)


def heartbeat_row(row_id, device, received_at, uptime, heap_free, heap_min_free, *,
                  reset_reason=1, firmware="1.1.0"):
    return {"id": row_id, "device_id": device, "received_at": received_at.isoformat(),
            "uptime": uptime, "firmware_version": firmware, "reset_reason": reset_reason,
            "heap_free": heap_free, "heap_min_free": heap_min_free}


def f07_rows() -> list[dict]:
    rows = [heartbeat_row(i, "dev-L", BOOT_START + pd.Timedelta(seconds=uptime), uptime,
                          free, low)
            for i, (uptime, free, low) in enumerate(F07_FIRST_BOOT, start=1)]
    uptime, free, low = F07_REBOOT
    rows.append(heartbeat_row(8, "dev-L", F07_REBOOT_AT + pd.Timedelta(seconds=uptime), uptime,
                              free, low, reset_reason=4))
    return rows


def boot_rows(device, start, uptimes, heap_free, heap_min_free=None, *, first_id=1,
              reset_reason=1, firmware="1.1.0"):
    """Heartbeats of one boot that started at `start`, one per uptime."""
    low = heap_min_free if heap_min_free is not None else np.minimum.accumulate(heap_free)
    return [heartbeat_row(first_id + i, device, start + pd.Timedelta(seconds=int(up)), int(up),
                          int(free), int(floor), reset_reason=reset_reason, firmware=firmware)
            for i, (up, free, floor) in enumerate(zip(uptimes, heap_free, low, strict=True))]


@pytest.fixture(scope="module")
def module_db(tmp_path_factory):
    """Like `heartbeat_db`, for fixtures shared by the tests of this module."""
    directory = tmp_path_factory.mktemp("heap")
    counter = iter(range(1_000))
    return lambda rows: write_heartbeats(directory / f"heartbeats_{next(counter)}.sqlite", rows)


@pytest.fixture(scope="module")
def f07_fleet(module_db):
    return load_fleet(module_db(f07_rows()))


@pytest.fixture(scope="module")
def f07_report(f07_fleet):
    return analyse_heap(f07_fleet)


# --- F07: a leak that starts mid-boot ---------------------------------------------------


def test_f07_series_split_at_reboot(f07_report):
    trends = f07_report.trends

    assert len(trends) == 2
    assert trends["points"].tolist() == [7, 1]
    assert trends["last_uptime_h"].iloc[0] == 12.0
    assert trends["status"].tolist() == ["fitted", "too_few_points"]


def test_f07_flat_until_about_three_hours(f07_report):
    boot = f07_report.trends.iloc[0]
    first = f07_report.segments.iloc[0]

    assert boot["segments"] == 2
    # Where the two lines cross: (304562.5 - 247308) / (18375 - 220) h.
    assert boot["breakpoint_h"] == pytest.approx(57254.5 / 18155)
    # Theil-Sen of the first three readings: median of -440, -220 and 0 bytes per hour.
    assert first["slope"] == pytest.approx(-220.0)
    assert first["slope_low"] <= 0 <= first["slope_high"]


def test_f07_falls_about_18_7_kb_per_hour(f07_report):
    boot = f07_report.trends.iloc[0]
    second = f07_report.segments.iloc[1]
    hand_check = (230000 - 80000) / (43200 - 14400) * 3600

    # Median of the six pairwise slopes of the last four readings: -18750 and -18000.
    assert second["slope"] == pytest.approx(-18375.0)
    assert second["slope"] == pytest.approx(-hand_check, rel=0.03)
    assert boot["trend_slope"] == second["slope"]
    assert second["start_h"] == 4.0


def test_f07_boot_leaks_and_ends_in_panic(f07_report):
    boot = f07_report.trends.iloc[0]

    assert bool(boot["is_leak"])
    assert boot["leak_bytes_per_hour"] == pytest.approx(18375.0)
    assert boot["ended_by"] == "panic"


def test_f07_hours_to_floor_from_fitted_heap(f07_report):
    boot = f07_report.trends.iloc[0]
    fitted_at_12_h = 304562.5 - 18375.0 * 12

    assert boot["fitted_last_heap"] == pytest.approx(fitted_at_12_h)
    assert boot["hours_to_floor"] == pytest.approx((fitted_at_12_h - 20000) / 18375.0)


def test_f07_not_one_line_across_reboot(f07_fleet, f07_report):
    heartbeats = f07_fleet.heartbeats
    hours = (heartbeats["received_at"] - BOOT_START).dt.total_seconds() / 3600
    across = theilslopes(heartbeats["heap_free"].astype(float), hours)
    within = theilslopes([v for _, v, _ in F07_FIRST_BOOT],
                         [u / 3600 for u, _, _ in F07_FIRST_BOOT])

    assert f07_report.trends["line_slope"].iloc[0] == pytest.approx(within.slope)
    assert f07_report.trends["line_slope"].iloc[0] != pytest.approx(across.slope, rel=0.05)


def test_f07_device_listed_as_leaking(f07_report):
    devices = f07_report.leaking_devices

    assert devices["device_id"].tolist() == ["dev-L"]
    assert devices["leaking_boots"].iloc[0] == 1
    assert not devices["last_boot_leaking"].iloc[0]
    # The fresh boot is too short to fit, so its last reading is projected at the boot's rate.
    assert devices["hours_to_floor"].iloc[0] == pytest.approx((247000 - 20000) / 18375.0)


# --- fitting one boot -------------------------------------------------------------------


def every_five_minutes(hours: float) -> np.ndarray:
    return np.arange(300, hours * 3600 + 1, 300, dtype=float)


def test_one_outlier_cannot_swing_trend():
    uptime = every_five_minutes(6)
    heap = np.full(len(uptime), 200_000.0)
    heap[-1] = 20_000.0
    least_squares = np.polyfit(uptime / 3600, heap, 1)[0]

    trend = fit_trend(uptime, heap)

    assert least_squares < -1_000
    assert trend.current.slope == 0.0
    assert len(trend.segments) == 1


def test_steady_leak_not_split():
    rng = np.random.default_rng(7)
    uptime = every_five_minutes(10)
    heap = 220_000 - 5_000 * uptime / 3600 + rng.normal(0, 800, len(uptime))

    trend = fit_trend(uptime, heap)

    assert len(trend.segments) == 1
    assert trend.current.slope == pytest.approx(-5_000, rel=0.02)
    assert trend.current.slope_high < 0


def test_noise_alone_not_split():
    rng = np.random.default_rng(11)
    uptime = every_five_minutes(12)
    heap = 180_000 + rng.normal(0, 800, len(uptime))

    trend = fit_trend(uptime, heap)

    assert len(trend.segments) == 1
    assert abs(trend.current.slope) < 200


def test_leak_switched_on_mid_boot_split():
    rng = np.random.default_rng(3)
    uptime = every_five_minutes(12)
    leaking = np.maximum(uptime / 3600 - 6, 0)
    heap = 230_000 - 10_000 * leaking + rng.normal(0, 800, len(uptime))

    trend = fit_trend(uptime, heap)

    assert len(trend.segments) == 2
    assert trend.breakpoint_h == pytest.approx(6, abs=0.25)
    assert trend.segments[0].slope == pytest.approx(0, abs=300)
    assert trend.current.slope == pytest.approx(-10_000, rel=0.03)


def test_heap_that_levels_off_not_leaking():
    uptime = every_five_minutes(12)
    filling = np.minimum(uptime / 3600, 4)
    heap = 230_000 - 8_000 * filling
    trends = pd.DataFrame({"status": ["fitted"], "trend_slope": [0.0], "trend_slope_low": [0.0],
                           "trend_slope_high": [0.0], "fitted_last_heap": [198_000.0]})

    trend = fit_trend(uptime, heap)
    leaks = find_leaks(trends.assign(trend_slope=trend.current.slope,
                                     trend_slope_high=trend.current.slope_high))

    assert len(trend.segments) == 2
    assert trend.line.slope_high < 0
    assert trend.current.slope == 0.0
    assert not leaks["is_leak"].iloc[0]


def test_long_boot_thinned_keeps_count_and_slope():
    uptime = np.arange(60, 50 * 3600 + 1, 60, dtype=float)
    heap = 240_000 - 3_000 * uptime / 3600

    trend = fit_trend(uptime, heap)

    assert trend.line.points == len(uptime) == 3000
    assert trend.line.slope == pytest.approx(-3_000)


def test_trend_needs_minimum_points(heartbeat_db):
    rows = boot_rows("dc-1", BOOT_START, [600, 1200, 1800, 2400, 3000],
                     np.full(5, 200_000))

    trends = fit_heap_trends(load_fleet(heartbeat_db(rows)).heartbeats).boots

    assert trends["status"].tolist() == ["too_few_points"]
    assert trends["segments"].tolist() == [0]


def test_trend_needs_minimum_hours(heartbeat_db):
    rows = boot_rows("dc-1", BOOT_START, np.arange(600, 7201, 600), np.full(12, 200_000))

    trends = fit_heap_trends(load_fleet(heartbeat_db(rows)).heartbeats).boots

    assert trends["status"].tolist() == ["too_short"]


def test_fit_trend_rejects_too_few_readings():
    with pytest.raises(InvalidInputError, match="needs 6 readings"):
        fit_trend(np.array([600.0, 1200.0]), np.array([1.0, 2.0]))


def test_report_settings_reject_negative_floor():
    with pytest.raises(InvalidInputError, match="floor_bytes=-1"):
        HeapSettings(floor_bytes=-1)


def test_settings_reject_invalid_confidence():
    with pytest.raises(InvalidInputError, match="confidence=1.5"):
        TrendSettings(confidence=1.5)


def test_fit_rejects_unknown_column(f07_fleet):
    with pytest.raises(InvalidInputError, match="'uptime_s' is not a heap column"):
        fit_heap_trends(f07_fleet.heartbeats, column="uptime_s")


def test_negative_heap_left_out_of_fit(heartbeat_db):
    uptime = np.arange(1800, 8 * 3600 + 1, 1800)
    heap = 200_000 - 2_000 * uptime / 3600
    heap[3] = -5
    rows = boot_rows("dc-1", BOOT_START, uptime, heap, np.full(len(uptime), 100_000))

    trends = fit_heap_trends(load_fleet(heartbeat_db(rows)).heartbeats).boots

    assert trends["points"].iloc[0] == len(uptime) - 1
    assert trends["trend_slope"].iloc[0] == pytest.approx(-2_000)


def test_heap_min_free_fitted_on_request(f07_fleet):
    trends = fit_heap_trends(f07_fleet.heartbeats, column="heap_min_free").boots

    # heap_min_free of the last four readings: 228000, 210000, 193000, 77000 at 4, 5, 6, 12 h;
    # pairwise slopes -18000, -17500, -18875, -17000, -19000, -19333.3; median -18437.5.
    assert trends["trend_slope"].iloc[0] == pytest.approx(-18437.5)


# --- leak candidates --------------------------------------------------------------------


def trend_table(slopes, highs, fitted_last_heap, devices=None):
    count = len(slopes)
    return pd.DataFrame({
        "device_id": devices or [f"dc-{i}" for i in range(count)],
        "firmware_version": "1.1.0",
        "status": "fitted",
        "trend_slope": slopes,
        "trend_slope_high": highs,
        "fitted_last_heap": fitted_last_heap,
        "last_heap": fitted_last_heap,
    })


def test_rising_heap_not_a_leak():
    leaks = find_leaks(trend_table([5_000.0], [6_000.0], [150_000.0]))

    assert not leaks["is_leak"].iloc[0]
    assert np.isnan(leaks["hours_to_floor"].iloc[0])


def test_slow_significant_fall_not_a_leak():
    leaks = find_leaks(trend_table([-500.0], [-400.0], [150_000.0]))

    assert not leaks["is_leak"].iloc[0]


def test_fall_with_interval_over_zero_not_a_leak():
    leaks = find_leaks(trend_table([-5_000.0], [100.0], [150_000.0]))

    assert not leaks["is_leak"].iloc[0]


def test_heap_already_below_floor_has_no_time_left():
    leaks = find_leaks(trend_table([-5_000.0], [-4_000.0], [15_000.0]), floor_bytes=20_000)

    assert leaks["is_leak"].iloc[0]
    assert leaks["hours_to_floor"].iloc[0] == 0.0


def test_minimum_leak_rate_configurable():
    table = trend_table([-1_500.0], [-1_200.0], [150_000.0])

    assert find_leaks(table)["is_leak"].iloc[0]
    assert not find_leaks(table, min_leak_bytes_per_hour=2_000)["is_leak"].iloc[0]


def test_device_rate_is_median_of_leaking_boots():
    table = trend_table([-10_000.0, -14_000.0, -30_000.0, 100.0], [-9_000.0, -13_000.0,
                        -28_000.0, 500.0], [100_000.0, 120_000.0, 60_000.0, 180_000.0],
                        devices=["dc-1", "dc-1", "dc-1", "dc-1"])

    devices = leaking_devices(find_leaks(table), floor_bytes=20_000)

    assert devices["leaking_boots"].tolist() == [3]
    assert devices["fitted_boots"].tolist() == [4]
    assert devices["leak_bytes_per_hour"].iloc[0] == 14_000.0
    assert devices["max_leak_bytes_per_hour"].iloc[0] == 30_000.0
    # The latest boot is flat, so its last heap is projected at the median rate.
    assert devices["hours_to_floor"].iloc[0] == pytest.approx((180_000 - 20_000) / 14_000)


def test_no_leaks_give_empty_device_table():
    devices = leaking_devices(find_leaks(trend_table([0.0], [100.0], [150_000.0])))

    assert devices.empty
    assert "leak_bytes_per_hour" in devices.columns


# --- endings and low-water alerts -------------------------------------------------------


@pytest.fixture(scope="module")
def three_boot_fleet(module_db):
    """dc-1 boots at power-on, panics with a low heap, then gets an OTA to 1.2.0."""
    day = pd.Timedelta(days=1)
    uptime = np.arange(3600, 6 * 3600 + 1, 3600)
    rows = boot_rows("dc-1", BOOT_START, uptime, [200_000, 150_000, 100_000, 60_000, 35_000,
                     25_000], first_id=1)
    rows += boot_rows("dc-1", BOOT_START + day, uptime, np.full(6, 210_000), first_id=7,
                      reset_reason=4)
    rows += boot_rows("dc-1", BOOT_START + 2 * day, uptime, np.full(6, 215_000), first_id=13,
                      reset_reason=3, firmware="1.2.0")
    return load_fleet(module_db(rows))


def test_boot_ended_by_next_cause(three_boot_fleet):
    endings = boot_endings(three_boot_fleet.boots)

    assert endings["cause"].tolist() == ["power_on", "panic", "ota_update"]
    assert endings["ended_by"].tolist() == ["panic", "ota_update", NO_LATER_BOOT]
    assert endings["ended_in_crash"].tolist() == [True, False, False]


def test_low_water_alert_at_first_reading_below(three_boot_fleet):
    alerts = low_water_alerts(three_boot_fleet.heartbeats, low_water_bytes=40_000)

    assert len(alerts) == 1
    assert alerts["first_heartbeat_id"].iloc[0] == 1
    assert alerts["alert_uptime_h"].iloc[0] == 5.0
    assert alerts["first_alert_at"].iloc[0] == BOOT_START + pd.Timedelta(hours=5)
    assert alerts["readings_below"].iloc[0] == 2
    assert alerts["lowest_heap_min_free"].iloc[0] == 25_000


def test_low_water_alert_carries_ending(three_boot_fleet):
    report = analyse_heap(three_boot_fleet)

    assert report.alerts["ended_by"].tolist() == ["panic"]


def test_low_water_outcomes_count_ended_boots(three_boot_fleet):
    outcomes = low_water_outcomes(boot_endings(three_boot_fleet.boots))

    # Boot 1 ended in a panic at 25000 bytes; boot 2 in an OTA at 210000; boot 3 is running.
    assert outcomes.loc[True, "boots"] == 1
    assert outcomes.loc[True, "crash_endings"] == 1
    assert outcomes.loc[False, "boots"] == 1
    assert outcomes.loc[False, "crash_endings"] == 0
    assert outcomes.loc[False, "crash_share_pct"] == 0.0


def test_low_water_outcomes_from_plain_table():
    endings = pd.DataFrame({
        "ended_by": ["panic", "watchdog", "panic", "ota_update", "panic", "power_on",
                     "ota_update", NO_LATER_BOOT],
        "ended_in_crash": [True, True, True, False, True, False, False, False],
        "last_heap_min_free": [10_000, 30_000, 35_000, 20_000, 150_000, 160_000, 170_000,
                               5_000],
    })

    outcomes = low_water_outcomes(endings, low_water_bytes=40_000)

    assert outcomes["boots"].tolist() == [4, 3]
    assert outcomes["crash_endings"].tolist() == [3, 1]
    assert outcomes["other_endings"].tolist() == [1, 2]
    assert outcomes["crash_share_pct"].tolist() == [75.0, 33.3]


def test_fisher_p_value_by_hand():
    outcomes = pd.DataFrame({"boots": [3, 3], "crash_endings": [3, 0], "other_endings": [0, 3]},
                            index=pd.Index([True, False], name="below_low_water"))

    # Only one of the C(6, 3) = 20 equally likely tables puts all three crashes below.
    assert low_water_crash_p_value(outcomes) == pytest.approx(1 / 20)


def test_fisher_p_value_missing_without_boots():
    outcomes = pd.DataFrame({"boots": [0, 3], "crash_endings": [0, 1], "other_endings": [0, 2]},
                            index=pd.Index([True, False], name="below_low_water"))

    assert np.isnan(low_water_crash_p_value(outcomes))


def test_last_min_free_by_ending_crashes_first(three_boot_fleet):
    table = last_min_free_by_ending(boot_endings(three_boot_fleet.boots))

    assert table["ended_by"].tolist() == ["panic", "ota_update", NO_LATER_BOOT]
    assert table["values"].tolist() == [1, 1, 1]
    assert table["median"].tolist() == [25_000.0, 210_000.0, 215_000.0]


# --- distributions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_version_db(module_db):
    uptime = [3600, 7200, 10800, 14400]
    rows = boot_rows("dc-1", BOOT_START, uptime, [100_000, 110_000, 120_000, 130_000],
                     first_id=1, firmware="1.10.0")
    rows += boot_rows("dc-2", BOOT_START, uptime, [200_000, 210_000, 220_000, 250_000],
                      first_id=5, firmware="1.9.0")
    rows += boot_rows("dc-3", BOOT_START + pd.Timedelta(days=1), uptime,
                      [180_000, 170_000, 160_000, 150_000], first_id=9, firmware="1.9.0")
    return module_db(rows)


def test_firmware_versions_in_version_order(two_version_db):
    table = heap_by_firmware(load_fleet(two_version_db).heartbeats)

    assert table["firmware_version"].tolist() == ["1.9.0", "1.9.0", "1.10.0", "1.10.0"]
    assert table["measure"].tolist() == ["heap_free", "heap_min_free"] * 2


def test_firmware_distribution_equals_sql(two_version_db):
    table = heap_by_firmware(load_fleet(two_version_db).heartbeats)
    free = table[table["measure"] == "heap_free"].set_index("firmware_version")
    with sqlite3.connect(two_version_db) as connection:
        expected = connection.execute(
            "SELECT firmware_version, COUNT(heap_free), COUNT(DISTINCT device_id), "
            "MIN(heap_free), MAX(heap_free) FROM heartbeats GROUP BY firmware_version"
        ).fetchall()

    for version, readings, device_count, lowest, highest in expected:
        assert free.loc[version, "values"] == readings
        assert free.loc[version, "devices"] == device_count
        assert free.loc[version, "min"] == lowest
        assert free.loc[version, "max"] == highest


def test_firmware_median_by_hand(two_version_db):
    table = heap_by_firmware(load_fleet(two_version_db).heartbeats)
    free = table[table["measure"] == "heap_free"].set_index("firmware_version")

    # 1.9.0: 150, 160, 170, 180, 200, 210, 220, 250 kB; median (180 + 200) / 2.
    assert free.loc["1.9.0", "median"] == 190_000.0
    assert free.loc["1.10.0", "median"] == 115_000.0


def test_last_min_free_only_for_ended_boots(three_boot_fleet):
    table = heap_by_firmware(three_boot_fleet.heartbeats, three_boot_fleet.boots)
    last = table[table["measure"] == "last_heap_min_free"]

    # The 1.2.0 boot is still running, so only the two 1.1.0 boots count.
    assert last["firmware_version"].tolist() == ["1.1.0"]
    assert last["values"].tolist() == [2]
    assert last["min"].tolist() == [25_000.0]
    assert last["max"].tolist() == [210_000.0]


def test_daily_quantiles_by_hand(two_version_db):
    daily = daily_heap_quantiles(load_fleet(two_version_db).heartbeats)
    free = daily[daily["measure"] == "heap_free"].set_index("day")

    first_day, second_day = BOOT_START, BOOT_START + pd.Timedelta(days=1)
    assert free.index.tolist() == [first_day, second_day]
    # Day 1: 100, 110, 120, 130, 200, 210, 220, 250 kB.
    assert free.loc[first_day, "median"] == 165_000.0
    assert free.loc[first_day, "devices"] == 2
    assert free.loc[second_day, "median"] == 165_000.0
    assert free.loc[second_day, "values"] == 4


def test_rounded_leaves_times_alone(f07_report):
    table = rounded(f07_report.trends, 1)

    assert table["breakpoint_h"].iloc[0] == 3.2
    assert table["boot_time"].iloc[0] == BOOT_START


# --- report, summary and plots ------------------------------------------------------------


def test_headline_figures_of_f07(f07_report):
    figures = headline_figures(f07_report)

    assert figures["devices_with_heap"] == 1
    assert figures["boots_fitted"] == 1
    assert figures["leaking_device_ids"] == ["dev-L"]
    assert figures["fastest_leak_bytes_per_hour"] == 18375
    assert figures["median_last_heap_min_free_before_crash"] == 77000
    assert to_json_value(figures) == figures


def test_summary_names_leaking_device(f07_report):
    text = describe_headline(headline_figures(f07_report), "all heartbeats in the database")

    assert "**1 device**" in text
    assert "dev-L" in text
    assert "18,375 bytes per hour" in text
    assert "PSRAM" in text


def test_leaking_boots_table_fastest_first(f07_report):
    table = leaking_boots(f07_report)

    assert table["device_id"].tolist() == ["dev-L"]
    assert table["ended_by"].tolist() == ["panic"]
    assert table["breakpoint_h"].tolist() == [3.2]


def test_settings_reach_the_tables(f07_fleet):
    settings = HeapSettings(min_leak_bytes_per_hour=20_000, low_water_bytes=80_000)

    report = analyse_heap(f07_fleet, settings)

    assert not report.trends["is_leak"].any()
    assert report.leaking_devices.empty
    assert report.alerts["lowest_heap_min_free"].tolist() == [77_000]


def test_fleet_without_diagnostics_reports_empty(heartbeat_db):
    rows = [{"id": i, "device_id": "dc-1", "uptime": 600 * i, "firmware_version": "1.0.0",
             "received_at": (BOOT_START + pd.Timedelta(seconds=600 * i)).isoformat()}
            for i in range(1, 20)]
    fleet = load_fleet(heartbeat_db(rows))

    report = analyse_heap(fleet)
    figures = headline_figures(report)

    assert report.trends.empty
    assert report.by_firmware.empty
    assert report.daily.empty
    assert report.alerts.empty
    assert figures["devices_with_heap"] == 0
    assert figures["crash_share_below_low_water_pct"] is None
    assert describe_headline(figures, "all").startswith("**No heap readings**")
    assert plot_heap_by_firmware(report.by_firmware) is None
    assert plot_daily_heap(report.daily) is None
    assert plot_leak_rates(report) is None
    assert plot_low_water_outcomes(report) is None
    assert plot_device_heap(report, fleet.heartbeats, []) is None


def test_plots_have_titles_and_labels(f07_fleet, f07_report):
    devices = worst_devices(f07_report, f07_fleet.heartbeats)
    figures = [
        plot_heap_by_firmware(f07_report.by_firmware),
        plot_daily_heap(f07_report.daily),
        plot_leak_rates(f07_report),
        plot_device_heap(f07_report, f07_fleet.heartbeats, devices),
        plot_low_water_outcomes(f07_report),
    ]

    assert devices == ["dev-L"]
    for figure in figures:
        for axes in figure.axes:
            assert axes.get_title()
            assert axes.get_xlabel()
            assert axes.get_ylabel()


def test_device_chart_marks_reboot_cause(f07_fleet, f07_report):
    figure = plot_device_heap(f07_report, f07_fleet.heartbeats, ["dev-L"])
    labels = [text.get_text() for text in figure.axes[0].texts]

    assert labels == ["panic"]


# --- simulated fleet ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    config = FleetConfig(devices=12, days=4, leaking_share=0.34, seed=20260507,
                         releases=(FirmwareRelease("1.1.0", has_diagnostics=True),))
    simulation = simulate_fleet(config)
    path = write_database(simulation, tmp_path_factory.mktemp("sim") / "fleet.sqlite")
    return simulation, analyse_heap(load_fleet(path))


def test_simulated_leakers_found_within_ten_percent(simulated):
    simulation, report = simulated
    truth = simulation.truth_devices.set_index("device_id")
    leaking = truth.loc[truth["is_leaking"], "leak_bytes_per_hour"]
    found = report.leaking_devices.set_index("device_id")["leak_bytes_per_hour"]

    assert len(leaking) >= 2, "the seed should give at least two leaking devices"
    assert sorted(found.index) == sorted(leaking.index)
    for device, rate in leaking.items():
        assert found[device] == pytest.approx(rate, rel=0.10), device


def test_simulated_non_leakers_not_flagged(simulated):
    simulation, report = simulated
    truth = simulation.truth_devices.set_index("device_id")
    healthy = set(truth.index[~truth["is_leaking"]])
    flagged_boots = set(report.trends.loc[report.trends["is_leak"], "device_id"])

    assert healthy
    assert flagged_boots.isdisjoint(healthy)


def test_simulated_low_water_precedes_crashes(simulated):
    _, report = simulated

    assert report.outcomes.loc[True, "boots"] > 0
    assert (report.outcomes.loc[True, "crash_share_pct"]
            > report.outcomes.loc[False, "crash_share_pct"])
