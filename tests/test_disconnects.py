"""Disconnect counts, version comparison, outages, RSSI and HTTP failures on real SQLite files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import write_heartbeats

from analysis import codes, load_fleet
from analysis.disconnect_report import build_report, describe_headline, headline_figures
from analysis.disconnect_versions import compare_versions, count_by_version, pivot_by_version
from analysis.disconnects import (
    SOURCE_EVENT,
    SOURCE_HEARTBEAT,
    code_changes,
    collect_disconnects,
    count_by_code,
    count_by_device_day,
    device_days,
    rank_devices,
    silent_death_share,
    weekly_pattern,
)
from analysis.errors import InvalidInputError
from analysis.outages import (
    heartbeat_miss_runs,
    http_failures,
    miss_runs_by_device,
    outage_durations,
    wifi_outages,
)
from analysis.rssi import (
    assign_bands,
    band_labels,
    connections,
    excluded_readings,
    link_failures_by_band,
    rssi_by_device,
    rssi_readings,
)

START = pd.Timestamp("2026-05-01 00:00:00", tz="UTC")
RING_BUFFER = 16


def heartbeat(row_id, device, received_at, uptime, version="1.1.0", code=None, events=None):
    """Return one heartbeat row with diagnostics (reset reason 1, plausible heap)."""
    return {
        "id": row_id, "device_id": device,
        "received_at": pd.Timestamp(received_at).strftime("%Y-%m-%d %H:%M:%S"),
        "uptime": uptime, "firmware_version": version, "reset_reason": 1,
        "heap_free": 200_000, "heap_min_free": 190_000, "last_disconnect_code": code,
        "recent_events": events if events is not None else [],
    }


def event(tag, d0, boot_start, up, d1=0):
    """Return a ring-buffer element logged `up` seconds after a boot at `boot_start`."""
    ts = int(pd.Timestamp(boot_start).timestamp()) + up
    return {"t": tag, "d0": d0, "d1": d1, "ts": ts, "up": up}


def one_boot_rows(device, boot_start, logged, *, until_s, first_id, interval_s=300,
                  version="1.1.0"):
    """Heartbeats of one boot, each carrying the newest 16 events logged before it.

    `logged` is a list of ``(up, tag, d0)`` or ``(up, tag, d0, d1)``, sorted by ``up``.
    """
    elements = [event(item[1], item[2], boot_start, item[0], *item[3:]) for item in logged]
    rows = []
    for number, uptime in enumerate(range(interval_s, until_s + 1, interval_s)):
        carried = [e for e in elements if e["up"] <= uptime][-RING_BUFFER:]
        rows.append(heartbeat(first_id + number, device,
                              pd.Timestamp(boot_start) + pd.Timedelta(seconds=uptime), uptime,
                              version=version, events=carried))
    return rows


def relabelling_rows():
    """Five devices: 1.6.0 reports 201 forty times, then 1.7.0 201 x5, 212 x32, 211 x3.

    Each heartbeat is a new boot (uptime 60 s, one day apart), so each report counts, and
    both versions have 40 device-days.
    """
    rows = []
    reports = [("1.6.0", [201] * 40, 0), ("1.7.0", [201] * 5 + [212] * 32 + [211] * 3, 8)]
    for version, reported, first_day in reports:
        for number, code in enumerate(reported):
            received = START + pd.Timedelta(days=first_day + number // 5, hours=number % 5)
            rows.append(heartbeat(len(rows) + 1, f"dev-{number % 5}", received, 60,
                                  version=version, code=code, events=None))
    for row in rows:
        row["recent_events"] = None
    return rows


@pytest.fixture(scope="module")
def relabelled_fleet(tmp_path_factory):
    path = tmp_path_factory.mktemp("relabelling") / "fleet.sqlite"
    return load_fleet(write_heartbeats(path, relabelling_rows()))


def disconnect_table(fleet):
    return collect_disconnects(fleet.heartbeats, fleet.events)


# --- one family, new labels ------------------------------------------------------------------


def test_relabelled_codes_keep_own_names(relabelled_fleet):
    table = count_by_code(disconnect_table(relabelled_fleet)).set_index("code")

    assert table.loc[201, "reason_name"] == "WIFI_REASON_NO_AP_FOUND"
    assert table.loc[212, "reason_name"] == "WIFI_REASON_NO_AP_FOUND_IN_RSSI_THRESHOLD"
    assert table.loc[211, "reason_name"] == "WIFI_REASON_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD"
    assert table.loc[201, "disconnects"] == 45
    assert table.loc[212, "disconnects"] == 32
    assert table.loc[211, "disconnects"] == 3


def test_relabelled_family_counts_equal(relabelled_fleet):
    by_version = count_by_version(disconnect_table(relabelled_fleet),
                                  relabelled_fleet.heartbeats)
    counts = pivot_by_version(by_version, "disconnects")

    assert list(counts.columns) == ["1.6.0", "1.7.0"]
    assert counts.loc["ap_not_found", "1.6.0"] == 40
    assert counts.loc["ap_not_found", "1.7.0"] == 40


def test_comparison_flags_relabelling_without_change(relabelled_fleet):
    comparison = compare_versions(disconnect_table(relabelled_fleet), relabelled_fleet.heartbeats)
    row = comparison.set_index("family").loc["ap_not_found"]

    assert len(comparison) == 1
    assert row["change"] == "no change"
    assert bool(row["is_relabelled"])
    assert row["p_value"] == pytest.approx(1.0)
    # Both versions cover 40 device-days, so a rate is the count divided by 40.
    assert row["falling_codes"] == (
        "WIFI_REASON_NO_AP_FOUND (201): 40 -> 5 (1 -> 0.125 per device-day)")
    assert row["rising_codes"] == (
        "WIFI_REASON_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD (211): 0 -> 3 (0 -> 0.075 per device-day); "
        "WIFI_REASON_NO_AP_FOUND_IN_RSSI_THRESHOLD (212): 0 -> 32 (0 -> 0.8 per device-day)")


def test_summary_calls_relabelling_no_fix(relabelled_fleet):
    report = build_report(relabelled_fleet)
    figures = headline_figures(report)
    text = describe_headline(report, figures, "all heartbeats")

    assert figures["relabelled_families"] == ["ap_not_found 1.6.0->1.7.0"]
    assert figures["changed_families"] == []
    assert "fix" not in text.lower()
    assert "improve" not in text.lower()
    assert "relabelled" in text
    assert "**ap_not_found** from 1.6.0 to 1.7.0" in text
    assert "40 against 40" in text
    assert "shows no change" in text


# --- renamed reason codes ---------------------------------------------------------------------


def test_renamed_codes_decoded_by_number(heartbeat_db):
    rows = [
        heartbeat(1, "dev-A", START, 60, version="1.1.0", code=4),
        heartbeat(2, "dev-B", START + pd.Timedelta(hours=1), 60, version="1.2.0", code=4),
        heartbeat(3, "dev-B", START + pd.Timedelta(days=1), 60, version="1.2.0", code=6),
        heartbeat(4, "dev-B", START + pd.Timedelta(days=2), 60, version="1.2.0", code=7),
    ]
    fleet = load_fleet(heartbeat_db(rows))
    table = count_by_code(disconnect_table(fleet)).set_index("code")

    assert sorted(table.index) == [4, 6, 7]
    assert table.loc[4, "disconnects"] == 2
    assert table.loc[4, "reason_name"] == "WIFI_REASON_DISASSOC_DUE_TO_INACTIVITY"
    assert table.loc[4, "former_name"] == "WIFI_REASON_ASSOC_EXPIRE"
    assert table.loc[6, "reason_name"] == "WIFI_REASON_CLASS2_FRAME_FROM_NONAUTH_STA"
    assert table.loc[6, "former_name"] == "WIFI_REASON_NOT_AUTHED"
    assert table.loc[7, "reason_name"] == "WIFI_REASON_CLASS3_FRAME_FROM_NONASSOC_STA"
    assert table.loc[7, "former_name"] == "WIFI_REASON_NOT_ASSOCED"
    assert (table["family"] == "ap_side").all()


# --- the device disconnected itself ----------------------------------------------------------


@pytest.fixture(scope="module")
def own_disconnect_fleet(tmp_path_factory):
    """dev-M disconnects with reason 8 every minute for two hours, dev-N three 200s and one 8."""
    radio_off = [(60 * minute, codes.EVT_WIFI_DOWN, 8) for minute in range(1, 121)]
    week = 7 * 86_400
    dev_n = [(86_400, codes.EVT_WIFI_DOWN, 200), (2 * 86_400, codes.EVT_WIFI_DOWN, 200),
             (3 * 86_400, codes.EVT_WIFI_DOWN, 8), (5 * 86_400, codes.EVT_WIFI_DOWN, 200)]
    rows = one_boot_rows("dev-M", START, radio_off, until_s=7200, first_id=1, interval_s=60)
    rows += one_boot_rows("dev-N", START, dev_n, until_s=week, first_id=1000,
                          interval_s=3600)
    path = tmp_path_factory.mktemp("own_disconnect") / "fleet.sqlite"
    return load_fleet(write_heartbeats(path, rows))


def test_reason_8_is_own_disconnect(own_disconnect_fleet):
    table = disconnect_table(own_disconnect_fleet)
    own = table[table["device_id"] == "dev-M"]

    assert len(own) == 120
    assert (own["family"] == "own_disconnect").all()
    assert not own["is_link_failure"].any()


def test_radio_cycling_device_not_ranked_worst(own_disconnect_fleet):
    fleet = own_disconnect_fleet
    per_day = count_by_device_day(disconnect_table(fleet), fleet.heartbeats)
    ranking = rank_devices(per_day)

    assert ranking["device_id"].tolist() == ["dev-N"]
    assert ranking.loc[0, "link_failures"] == 3
    assert ranking.loc[0, "own_disconnects"] == 1


def test_beacon_timeouts_count_as_signal_loss(own_disconnect_fleet):
    table = disconnect_table(own_disconnect_fleet)
    dev_n = table[table["device_id"] == "dev-N"]

    assert (dev_n["family"] == "signal_loss").sum() == 3
    assert (dev_n["family"] == "own_disconnect").sum() == 1


def test_summary_names_link_failure_device_worst(own_disconnect_fleet):
    report = build_report(own_disconnect_fleet)
    figures = headline_figures(report)
    text = describe_headline(report, figures, "all heartbeats")

    assert figures["worst_devices"] == ["dev-N"]
    assert figures["link_failures"] == 3
    assert figures["own_disconnects"] == 121
    assert "Most link failures: dev-N." in text
    assert "121 disconnects the devices made themselves" in text


# --- counting rule for last_disconnect_code -------------------------------------------------


def test_column_code_counts_changes_within_boot(heartbeat_db):
    reported = [201, 201, None, 201, 200, 200, 201]
    rows = [heartbeat(i + 1, "dev-A", START + pd.Timedelta(minutes=5 * i), 300 * (i + 1),
                      code=code, events=None) for i, code in enumerate(reported)]
    fleet = load_fleet(heartbeat_db(rows))
    counted = code_changes(fleet.heartbeats)

    assert counted["heartbeat_id"].tolist() == [1, 5, 7]
    assert counted["last_disconnect_code"].tolist() == [201, 200, 201]


def test_column_code_counts_again_in_new_boot(heartbeat_db):
    rows = [
        heartbeat(1, "dev-A", START, 300, code=201, events=None),
        heartbeat(2, "dev-A", START + pd.Timedelta(minutes=5), 600, code=201, events=None),
        # Uptime restarted: a new boot, where the same code is a new disconnect.
        heartbeat(3, "dev-A", START + pd.Timedelta(minutes=10), 40, code=201, events=None),
    ]
    fleet = load_fleet(heartbeat_db(rows))

    assert code_changes(fleet.heartbeats)["heartbeat_id"].tolist() == [1, 3]


def test_column_code_missing_for_v100_counts_nothing(heartbeat_db):
    rows = [{"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 00:05:00",
             "uptime": 300, "firmware_version": "1.0.0"}]
    fleet = load_fleet(heartbeat_db(rows))
    table = disconnect_table(fleet)

    assert table.empty
    assert list(table.columns)[:3] == ["device_id", "time", "firmware_version"]


def test_device_with_events_counted_from_events_only(heartbeat_db):
    logged = [(100, codes.EVT_WIFI_DOWN, 200), (160, codes.EVT_WIFI_UP, 65469)]
    rows = one_boot_rows("dev-A", START, logged, until_s=900, first_id=1)
    for row in rows[1:]:
        row["last_disconnect_code"] = 200
    fleet = load_fleet(heartbeat_db(rows))
    table = disconnect_table(fleet)
    by_source = table.groupby("source")["is_counted"].agg(["size", "sum"])

    assert by_source.loc[SOURCE_EVENT, "size"] == 1
    assert by_source.loc[SOURCE_EVENT, "sum"] == 1
    assert by_source.loc[SOURCE_HEARTBEAT, "size"] == 1
    assert by_source.loc[SOURCE_HEARTBEAT, "sum"] == 0


def test_event_before_ota_reboot_keeps_old_version(heartbeat_db):
    boot_1 = START
    boot_2 = START + pd.Timedelta(seconds=1000)
    first_boot = [event(codes.EVT_BOOT, 1, boot_1, 0), event(codes.EVT_WIFI_UP, 65469, boot_1, 3)]
    carried = first_boot + [event(codes.EVT_WIFI_DOWN, 201, boot_1, 700),
                            event(codes.EVT_REBOOT, 3, boot_1, 990),
                            event(codes.EVT_BOOT, 3, boot_2, 0),
                            event(codes.EVT_WIFI_UP, 65469, boot_2, 3)]
    rows = [
        heartbeat(1, "dev-A", boot_1 + pd.Timedelta(seconds=300), 300, version="1.6.0",
                  events=first_boot),
        heartbeat(2, "dev-A", boot_2 + pd.Timedelta(seconds=10), 10, version="1.7.0",
                  events=carried),
    ]
    fleet = load_fleet(heartbeat_db(rows))
    table = disconnect_table(fleet)

    assert table["code"].tolist() == [201]
    assert table["firmware_version"].tolist() == ["1.6.0"]


# --- rates, patterns and shares -------------------------------------------------------------


def test_device_days_count_diagnostic_dates_only(heartbeat_db):
    rows = [
        heartbeat(1, "dev-A", "2026-05-01 10:00:00", 60, code=None, events=None),
        heartbeat(2, "dev-A", "2026-05-01 23:00:00", 46_860, code=None, events=None),
        heartbeat(3, "dev-A", "2026-05-02 01:00:00", 54_060, code=None, events=None),
        {"id": 4, "device_id": "dev-B", "received_at": "2026-05-01 10:00:00", "uptime": 60,
         "firmware_version": "1.0.0"},
    ]
    fleet = load_fleet(heartbeat_db(rows))

    assert len(device_days(fleet.heartbeats)) == 2
    assert len(device_days(fleet.heartbeats, by_version=True)) == 2


def test_count_by_version_orders_versions_as_versions(heartbeat_db):
    rows = [
        heartbeat(1, "dev-A", START, 60, version="1.10.0", code=200, events=None),
        heartbeat(2, "dev-B", START, 60, version="1.9.0", code=200, events=None),
        heartbeat(3, "dev-B", START + pd.Timedelta(days=1), 60, version="1.9.0", code=200,
                  events=None),
    ]
    fleet = load_fleet(heartbeat_db(rows))
    by_version = count_by_version(disconnect_table(fleet), fleet.heartbeats)
    signal = by_version[by_version["family"] == "signal_loss"].set_index("firmware_version")

    assert list(dict.fromkeys(by_version["firmware_version"])) == ["1.9.0", "1.10.0"]
    assert signal.loc["1.9.0", "disconnects"] == 2
    assert signal.loc["1.9.0", "device_days"] == 2
    assert signal.loc["1.9.0", "per_device_day"] == pytest.approx(1.0)
    assert signal.loc["1.10.0", "per_device_day"] == pytest.approx(1.0)


def test_family_that_fell_reported_as_fewer(heartbeat_db):
    rows = []
    for version, count, first_day in (("1.0.1", 40, 0), ("1.0.2", 5, 8)):
        for number in range(40):
            code = 200 if number < count else None
            received = START + pd.Timedelta(days=first_day + number // 5, hours=number % 5)
            rows.append(heartbeat(len(rows) + 1, f"dev-{number % 5}", received, 60,
                                  version=version, code=code, events=None))
    fleet = load_fleet(heartbeat_db(rows))
    comparison = compare_versions(disconnect_table(fleet), fleet.heartbeats)
    report = build_report(fleet)
    text = describe_headline(report, headline_figures(report), "all heartbeats")

    assert comparison["family"].tolist() == ["signal_loss"]
    assert comparison.loc[0, "change"] == "fewer"
    assert not comparison.loc[0, "is_relabelled"]
    assert comparison.loc[0, "rate_ratio"] == pytest.approx(5 / 40)
    assert "**signal_loss** from 1.0.1 to 1.0.2: fewer disconnects (40 against 5" in text


def test_weekly_pattern_places_disconnect_in_utc_hour(heartbeat_db):
    # 2026-05-04 is a Monday, and the event is logged at 10:20:00 UTC.
    boot = pd.Timestamp("2026-05-04 10:00:00", tz="UTC")
    rows = one_boot_rows("dev-A", boot, [(1200, codes.EVT_WIFI_DOWN, 200)], until_s=1800,
                         first_id=1)
    fleet = load_fleet(heartbeat_db(rows))
    pattern = weekly_pattern(disconnect_table(fleet))

    assert pattern.shape == (7, 24)
    assert pattern.loc["Monday", 10] == 1
    assert int(pattern.to_numpy().sum()) == 1


def test_silent_death_share_is_percent_of_counted(heartbeat_db):
    logged = [(100, codes.EVT_WIFI_DOWN, 255), (200, codes.EVT_WIFI_DOWN, 200),
              (300, codes.EVT_WIFI_DOWN, 8), (400, codes.EVT_WIFI_DOWN, 201)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=600,
                                                  first_id=1)))

    assert silent_death_share(disconnect_table(fleet)) == pytest.approx(25.0)


def test_device_day_counts_keep_day_without_heartbeat(heartbeat_db):
    # The boot starts at 23:50 and the disconnect at 23:51 is first carried after midnight.
    boot = pd.Timestamp("2026-05-01 23:50:00", tz="UTC")
    rows = one_boot_rows("dev-A", boot, [(60, codes.EVT_WIFI_DOWN, 200)], until_s=1800,
                         first_id=1, interval_s=1200)
    fleet = load_fleet(heartbeat_db(rows))
    per_day = count_by_device_day(disconnect_table(fleet), fleet.heartbeats)

    assert per_day["day"].dt.strftime("%Y-%m-%d").tolist() == ["2026-05-01", "2026-05-02"]
    assert per_day["link_failures"].tolist() == [1, 0]


def test_device_day_counts_include_quiet_days(heartbeat_db):
    logged = [(3600, codes.EVT_WIFI_DOWN, 200), (3700, codes.EVT_WIFI_DOWN, 8)]
    rows = one_boot_rows("dev-A", START, logged, until_s=2 * 86_400, first_id=1,
                         interval_s=3600)
    fleet = load_fleet(heartbeat_db(rows))
    per_day = count_by_device_day(disconnect_table(fleet), fleet.heartbeats)

    assert per_day["link_failures"].tolist() == [1, 0, 0]
    assert per_day["own_disconnects"].tolist() == [1, 0, 0]


# --- outages and missed heartbeats ----------------------------------------------------------


def test_consecutive_downs_form_one_outage(heartbeat_db):
    logged = [(100, codes.EVT_WIFI_DOWN, 200), (110, codes.EVT_WIFI_DOWN, 201),
              (170, codes.EVT_WIFI_UP, 65469)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=600,
                                                  first_id=1)))
    outages = wifi_outages(fleet.events)

    assert len(outages) == 1
    assert outages.loc[0, "duration_s"] == pytest.approx(70.0)
    assert outages.loc[0, "down_events"] == 2
    assert outages.loc[0, "family"] == "signal_loss"
    assert not outages.loc[0, "is_open"]


def test_outage_without_up_is_open(heartbeat_db):
    rows = one_boot_rows("dev-A", START, [(100, codes.EVT_WIFI_DOWN, 200)], until_s=600,
                         first_id=1)
    rows += one_boot_rows("dev-B", START, [(50, codes.EVT_WIFI_UP, 65469)], until_s=600,
                          first_id=100)
    outages = wifi_outages(load_fleet(heartbeat_db(rows)).events)

    assert outages["device_id"].tolist() == ["dev-A"]
    assert bool(outages.loc[0, "is_open"])
    assert math.isnan(outages.loc[0, "duration_s"])


def test_reboot_during_outage_counted(heartbeat_db):
    boot_2 = START + pd.Timedelta(seconds=500)
    carried = [event(codes.EVT_BOOT, 1, START, 0), event(codes.EVT_WIFI_UP, 65469, START, 3),
               event(codes.EVT_WIFI_DOWN, 201, START, 200),
               event(codes.EVT_REBOOT, 1, START, 490),
               event(codes.EVT_BOOT, 3, boot_2, 0), event(codes.EVT_WIFI_UP, 65469, boot_2, 5)]
    rows = [heartbeat(1, "dev-A", boot_2 + pd.Timedelta(seconds=10), 10, events=carried)]
    outages = wifi_outages(load_fleet(heartbeat_db(rows)).events)

    assert outages.loc[0, "boots_during"] == 1
    assert outages.loc[0, "duration_s"] == pytest.approx(305.0)


def test_outage_durations_per_family(heartbeat_db):
    logged = [(100, codes.EVT_WIFI_DOWN, 200), (160, codes.EVT_WIFI_UP, 65469),
              (400, codes.EVT_WIFI_DOWN, 200), (580, codes.EVT_WIFI_UP, 65469),
              (700, codes.EVT_WIFI_DOWN, 201), (1300, codes.EVT_WIFI_UP, 65469)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=1500,
                                                  first_id=1)))
    summary = outage_durations(wifi_outages(fleet.events)).set_index("family")

    assert summary.index.tolist() == ["ap_not_found", "signal_loss"]
    assert summary.loc["signal_loss", "outages"] == 2
    assert summary.loc["signal_loss", "median_min"] == pytest.approx(2.0)
    assert summary.loc["signal_loss", "max_min"] == pytest.approx(3.0)
    assert summary.loc["ap_not_found", "total_hours"] == pytest.approx(10 / 60)


def test_miss_runs_split_where_count_restarts(heartbeat_db):
    logged = [(300, codes.EVT_HEARTBEAT_MISS, 1), (600, codes.EVT_HEARTBEAT_MISS, 2),
              (900, codes.EVT_HEARTBEAT_MISS, 3), (1000, codes.EVT_HTTP_OK, 7),
              (2000, codes.EVT_HEARTBEAT_MISS, 1), (2300, codes.EVT_HEARTBEAT_MISS, 2)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=2400,
                                                  first_id=1)))
    runs = heartbeat_miss_runs(fleet.events)
    per_device = miss_runs_by_device(runs)

    assert runs["max_consecutive"].tolist() == [3, 2]
    assert runs["events"].tolist() == [3, 2]
    assert per_device.loc[0, "runs"] == 2
    assert per_device.loc[0, "max_consecutive"] == 3


# --- HTTP failures and RSSI -----------------------------------------------------------------


def test_http_failures_split_by_class_and_errno(heartbeat_db):
    logged = [(100, codes.EVT_HTTP_FAIL, 7, 404), (200, codes.EVT_HTTP_FAIL, 7, 503),
              (300, codes.EVT_HTTP_FAIL, 7, 503), (400, codes.EVT_HTTP_FAIL, 7, 500),
              (500, codes.EVT_HTTP_FAIL, 7, 302), (600, codes.EVT_HTTP_FAIL, 7, 11)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=900,
                                                  first_id=1)))
    table = http_failures(fleet.events)

    assert table["class"].tolist() == ["4xx", "5xx", "5xx", "other status", "errno"]
    assert table["value"].tolist() == [404, 503, 500, 302, 11]
    assert table["failures"].tolist() == [1, 2, 1, 1, 1]


def test_rssi_sentinels_excluded_and_counted(heartbeat_db):
    logged = [(10, codes.EVT_WIFI_UP, 0), (20, codes.EVT_WIFI_UP, (-127) & 0xFFFF),
              (30, codes.EVT_WIFI_UP, (-70) & 0xFFFF)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=300,
                                                  first_id=1)))
    readings = rssi_readings(fleet.events)
    devices = rssi_by_device(readings)

    assert excluded_readings(readings) == {"sentinel": 2, "impossible": 0}
    assert devices.loc[0, "readings"] == 1
    assert devices.loc[0, "median_dbm"] == pytest.approx(-70.0)


def test_weak_signal_is_median_strictly_below_threshold(heartbeat_db):
    weak = [(10 * i, codes.EVT_WIFI_UP, dbm & 0xFFFF) for i, dbm in enumerate([-82, -80, -60], 1)]
    edge = [(10 * i, codes.EVT_WIFI_UP, dbm & 0xFFFF) for i, dbm in enumerate([-75, -75], 1)]
    rows = one_boot_rows("dev-W", START, weak, until_s=300, first_id=1)
    rows += one_boot_rows("dev-E", START, edge, until_s=300, first_id=100)
    table = rssi_by_device(rssi_readings(load_fleet(heartbeat_db(rows)).events),
                           weak_below_dbm=-75).set_index("device_id")

    assert table.loc["dev-W", "median_dbm"] == pytest.approx(-80.0)
    assert bool(table.loc["dev-W", "is_weak"])
    assert not bool(table.loc["dev-E", "is_weak"])


def test_band_edges_belong_to_lower_band():
    bands = assign_bands(pd.Series([-80, -79, -60, -59, -95]))

    assert bands.astype(str).tolist() == ["<= -80 dBm", "-79 to -70 dBm", "-69 to -60 dBm",
                                          "-59 to -1 dBm", "<= -80 dBm"]


def test_band_edges_must_increase():
    with pytest.raises(InvalidInputError, match="must be increasing"):
        band_labels((-60, -70))


def test_connections_ended_by_and_rate_per_band(heartbeat_db):
    logged = [(10, codes.EVT_WIFI_UP, (-85) & 0xFFFF), (3610, codes.EVT_WIFI_DOWN, 200),
              (3620, codes.EVT_WIFI_UP, (-65) & 0xFFFF), (7220, codes.EVT_WIFI_DOWN, 8),
              (7230, codes.EVT_WIFI_UP, (-84) & 0xFFFF)]
    fleet = load_fleet(heartbeat_db(one_boot_rows("dev-A", START, logged, until_s=7500,
                                                  first_id=1)))
    table = connections(fleet.events)
    bands = link_failures_by_band(table).set_index("band")

    assert table["ended_by"].tolist() == ["link_failure", "own_disconnect", "still_connected"]
    assert table["duration_s"].iloc[:2].tolist() == [3600.0, 3600.0]
    assert bands.loc["<= -80 dBm", "connections"] == 2
    assert bands.loc["<= -80 dBm", "link_failures"] == 1
    assert bands.loc["<= -80 dBm", "link_failure_pct"] == pytest.approx(50.0)
    assert bands.loc["<= -80 dBm", "link_failures_per_day"] == pytest.approx(24.0)
    assert bands.loc["-69 to -60 dBm", "link_failures"] == 0
    assert bands.loc["-79 to -70 dBm", "connections"] == 0


# --- empty inputs ---------------------------------------------------------------------------


def test_fleet_without_diagnostics_gives_statement(heartbeat_db):
    rows = [{"id": 1, "device_id": "dev-A", "received_at": "2026-05-01 00:05:00",
             "uptime": 300, "firmware_version": "1.0.0"}]
    report = build_report(load_fleet(heartbeat_db(rows)))
    figures = headline_figures(report)

    assert figures["disconnects"] == 0
    assert figures["link_failures_per_device_day"] is None
    assert report.by_version.empty
    assert report.comparison.empty
    assert report.ranking.empty
    assert "carries diagnostics" in describe_headline(report, figures, "all heartbeats")


def test_empty_window_gives_statement(heartbeat_db):
    db = heartbeat_db(relabelling_rows())
    report = build_report(load_fleet(db, start="2030-01-01"))
    figures = headline_figures(report)
    text = describe_headline(report, figures, "heartbeats received from 2030-01-01 00:00 UTC on")

    assert figures["disconnects"] == 0
    assert text.startswith("**No heartbeats** in the window")


# --- a simulated fleet against its ground truth ---------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from analysis.sample import simulate_fleet, write_database

    simulation = simulate_fleet(devices=12, days=6, seed=3)
    path = write_database(simulation, tmp_path_factory.mktemp("sim") / "fleet.sqlite")
    return simulation, load_fleet(path)


def test_simulated_counts_per_family_match_truth(simulated):
    simulation, fleet = simulated
    truth = simulation.truth_events
    observable = truth[(truth["tag"] == codes.EVT_WIFI_DOWN) & truth["observable"]]
    expected = codes.disconnect_family(observable["d0"]).value_counts().sort_index()

    table = disconnect_table(fleet)
    counted = table[table["is_counted"]]
    actual = counted["family"].value_counts().sort_index()

    assert len(expected) > 2
    pd.testing.assert_series_equal(actual, expected, check_names=False)


def test_simulated_counts_per_device_match_truth(simulated):
    simulation, fleet = simulated
    truth = simulation.truth_events
    observable = truth[(truth["tag"] == codes.EVT_WIFI_DOWN) & truth["observable"]]
    expected = observable.groupby("device_id").size().sort_index()

    table = disconnect_table(fleet)
    actual = table[table["is_counted"]].groupby("device_id").size().sort_index()

    pd.testing.assert_series_equal(actual, expected, check_names=False)


def test_simulated_link_failures_add_up(simulated):
    _, fleet = simulated
    report = build_report(fleet)
    figures = headline_figures(report)
    ranked = rank_devices(report.per_day, top=None)

    assert figures["link_failures"] + figures["own_disconnects"] + figures["roaming"] == (
        figures["disconnects"])
    assert int(ranked["link_failures"].sum()) == figures["link_failures"]
    assert int(np.asarray(report.pattern).sum()) == figures["link_failures"]
