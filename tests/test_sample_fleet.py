"""Properties of the simulated fleet: determinism, schema, firmware behaviour, shapes, formats."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.cli.sample import command as sample_command
from analysis.errors import InvalidInputError
from analysis.sample import (
    FirmwareRelease,
    FleetConfig,
    default_sample_path,
    ensure_sample_database,
    simulate_fleet,
    write_database,
)
from analysis.sample import files as sample_files

DIAGNOSTICS = ("reset_reason", "heap_free", "heap_min_free", "last_disconnect_code",
               "recent_events")
# Every device on firmware with diagnostics from the start, so each scenario is logged.
DIAGNOSTIC_RELEASES = (
    FirmwareRelease("1.1.0", has_diagnostics=True),
    FirmwareRelease("1.2.0", has_diagnostics=True, rollout_day=2.0, rollout_days=1.0,
                    idf_version="5.2.2"),
)


@pytest.fixture(scope="module")
def small_fleet():
    return simulate_fleet(devices=10, days=3, seed=11)


@pytest.fixture(scope="module")
def busy_fleet():
    """Every scenario turned up, on firmware with diagnostics throughout."""
    return simulate_fleet(
        devices=12, days=5, seed=5, releases=DIAGNOSTIC_RELEASES, camera_loop_share=0.5,
        brownout_loop_share=0.5, leaking_share=0.3, ap_outages_per_device_day=1.0,
        panics_per_device_day=0.3, radio_cycling_share=0.2,
    )


def stored_rows(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def parsed_lists(heartbeats: pd.DataFrame) -> list[list[dict]]:
    lists = []
    for text in heartbeats["recent_events"].dropna():
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            lists.append(value)
    return lists


# --- determinism -----------------------------------------------------------------------

def test_same_seed_gives_same_fleet():
    first = simulate_fleet(devices=4, days=2, seed=3)
    second = simulate_fleet(devices=4, days=2, seed=3)
    pd.testing.assert_frame_equal(first.heartbeats, second.heartbeats)
    pd.testing.assert_frame_equal(first.truth_boots, second.truth_boots)
    pd.testing.assert_frame_equal(first.truth_events, second.truth_events)


def test_same_seed_writes_same_bytes(tmp_path):
    paths = [tmp_path / "a.sqlite", tmp_path / "b.sqlite"]
    for path in paths:
        write_database(simulate_fleet(devices=4, days=2, seed=3), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_other_seed_gives_other_fleet():
    first = simulate_fleet(devices=4, days=2, seed=3)
    second = simulate_fleet(devices=4, days=2, seed=4)
    assert not first.heartbeats["uptime"].equals(second.heartbeats["uptime"])


def test_device_keeps_its_history_when_fleet_grows():
    small = simulate_fleet(devices=2, days=2, seed=3, malformed_rows=0)
    large = simulate_fleet(devices=5, days=2, seed=3, malformed_rows=0)
    columns = ["device_id", "received_at", "uptime", "recent_events"]
    mine = large.heartbeats[large.heartbeats["device_id"].isin(["dc-0001", "dc-0002"])]
    assert mine[columns].reset_index(drop=True).equals(small.heartbeats[columns])


# --- heartbeat rows --------------------------------------------------------------------

def test_heartbeat_ids_follow_receive_time(small_fleet):
    heartbeats = small_fleet.heartbeats
    assert heartbeats["id"].tolist() == list(range(1, len(heartbeats) + 1))
    assert heartbeats["received_at"].is_monotonic_increasing


def test_heartbeats_every_interval_within_a_boot(small_fleet):
    heartbeats = small_fleet.heartbeats.sort_values(["device_id", "id"])
    boot_start = heartbeats["received_at"] - pd.to_timedelta(heartbeats["uptime"], unit="s")
    same_boot = (heartbeats["device_id"] == heartbeats["device_id"].shift()) & (
        boot_start == boot_start.shift()
    )
    steps = heartbeats["uptime"].diff()[same_boot]
    assert (steps % 300 == 0).all()
    assert (steps > 0).all()


def test_uptime_restarts_only_at_a_new_boot(small_fleet):
    heartbeats = small_fleet.heartbeats.sort_values(["device_id", "id"])
    same_device = heartbeats["device_id"] == heartbeats["device_id"].shift()
    elapsed = heartbeats["received_at"].diff().dt.total_seconds()
    uptime_step = heartbeats["uptime"].diff()
    # Either uptime grew by exactly the elapsed time (same boot), or the device rebooted
    # and uptime is shorter than the time since the previous heartbeat.
    same_boot = uptime_step == elapsed
    rebooted = heartbeats["uptime"] < elapsed
    assert (same_boot | rebooted)[same_device].all()


def test_boot_start_matches_truth(small_fleet):
    heartbeats = small_fleet.heartbeats
    starts = set(zip(
        heartbeats["device_id"],
        heartbeats["received_at"] - pd.to_timedelta(heartbeats["uptime"], unit="s"),
        strict=True,
    ))
    truth = small_fleet.truth_boots
    true_starts = set(zip(truth["device_id"], truth["boot_time"], strict=True))
    assert starts <= true_starts


def test_heap_min_free_is_low_water_mark(busy_fleet):
    heartbeats = busy_fleet.heartbeats.dropna(subset=["heap_min_free"]).copy()
    heartbeats["heap_free"] = pd.to_numeric(heartbeats["heap_free"], errors="coerce")
    heartbeats["boot"] = heartbeats["received_at"] - pd.to_timedelta(heartbeats["uptime"], "s")
    heartbeats = heartbeats.sort_values(["device_id", "id"])
    rises = heartbeats.groupby(["device_id", "boot"])["heap_min_free"].diff()
    assert (rises.dropna() <= 0).all()
    comparable = heartbeats["heap_free"].notna()
    assert (heartbeats.loc[comparable, "heap_min_free"]
            <= heartbeats.loc[comparable, "heap_free"]).all()


def test_heap_free_in_camera_board_range(small_fleet):
    heap = pd.to_numeric(small_fleet.heartbeats["heap_free"], errors="coerce").dropna()
    assert heap.median() > 150_000
    assert heap.max() < 260_000


def test_version_without_diagnostics_leaves_columns_null(small_fleet):
    heartbeats = small_fleet.heartbeats
    old = heartbeats[heartbeats["firmware_version"] == "1.0.0"]
    assert len(old) > 0
    for column in DIAGNOSTICS:
        assert old[column].isna().all(), column


def test_version_with_diagnostics_reports_reset_and_heap(small_fleet):
    heartbeats = small_fleet.heartbeats
    new = heartbeats[heartbeats["firmware_version"] == "1.1.0"]
    assert len(new) > 0
    assert new["reset_reason"].notna().all()
    assert new["heap_min_free"].notna().all()
    assert new["recent_events"].notna().all()


# --- ring buffer -----------------------------------------------------------------------

def test_ring_buffer_never_exceeds_its_size(busy_fleet):
    lengths = [len(items) for items in parsed_lists(busy_fleet.heartbeats)]
    assert max(lengths) == 16


def test_ring_buffer_size_follows_config():
    fleet = simulate_fleet(devices=3, days=3, seed=2, releases=DIAGNOSTIC_RELEASES,
                           ring_buffer_size=4, malformed_rows=0)
    assert max(len(items) for items in parsed_lists(fleet.heartbeats)) == 4


def test_ring_buffer_is_compact_json_of_integers(busy_fleet):
    text = busy_fleet.heartbeats["recent_events"].dropna().iloc[-1]
    assert " " not in text
    for item in json.loads(text):
        assert list(item) == ["t", "d0", "d1", "ts", "up"]
        assert all(isinstance(value, int) for value in item.values())


def test_boot_event_starts_uptime_at_zero(busy_fleet):
    events = busy_fleet.truth_events
    boots = events[events["tag"] == 1]
    assert (boots["up"] == 0).all()
    later = events.merge(boots[["device_id", "boot_number", "d0"]], on=["device_id",
                                                                         "boot_number"])
    assert (later["up"] >= 0).all()


def test_boot_event_carries_reset_reason(busy_fleet):
    events = busy_fleet.truth_events
    boot_events = events[events["tag"] == 1][["device_id", "boot_number", "d0"]]
    merged = boot_events.merge(busy_fleet.truth_boots, on=["device_id", "boot_number"])
    assert (merged["d0"] == merged["reset_reason"]).all()


def test_heartbeat_after_reboot_carries_previous_boot(busy_fleet):
    boots = busy_fleet.truth_boots
    events = busy_fleet.truth_events
    logged = boots[boots["reboot_reason"].notna() & boots["observable"]]
    assert len(logged) > 0
    for boot in logged.itertuples():
        reboot = events[(events["device_id"] == boot.device_id)
                        & (events["boot_number"] == boot.boot_number - 1)
                        & (events["tag"] == 8)]
        assert reboot["d0"].tolist() == [boot.reboot_reason]


def test_power_on_wipes_ring_buffer(busy_fleet):
    heartbeats = busy_fleet.heartbeats
    power_on = heartbeats[(heartbeats["reset_reason"] == 1) & (heartbeats["uptime"] < 300)]
    first_lists = [json.loads(text) for text in power_on["recent_events"]
                   if text.startswith("[") and text.endswith("]")]
    assert len(first_lists) > 0
    for items in first_lists:
        assert items[0]["t"] == 1
        assert items[0]["d0"] == 1


def test_clock_unsynced_after_power_on(busy_fleet):
    events = busy_fleet.truth_events
    power_on_boots = events[(events["tag"] == 1) & (events["d0"] == 1)]
    assert (power_on_boots["ts"] == 0).all()
    soft = events[(events["tag"] == 1) & (events["d0"] == 4)]
    assert (soft["ts"] > 1_700_000_000).any()


def test_camera_loop_repeats_identical_boot_events(busy_fleet):
    loop_boot = {"t": 1, "d0": 6, "d1": 0, "ts": 0, "up": 0}
    repeats = [items.count(loop_boot) for items in parsed_lists(busy_fleet.heartbeats)]
    assert max(repeats) >= 2


def test_camera_loop_boots_seen_only_as_events(busy_fleet):
    boots = busy_fleet.truth_boots
    hidden = boots[(boots["kind"] == "camera_fail") & boots["observable"]]
    assert len(hidden) > 0
    assert (hidden["heartbeats"] == 0).all()


def test_brownout_loop_reports_short_boots():
    fleet = simulate_fleet(devices=6, days=4, seed=8, releases=DIAGNOSTIC_RELEASES,
                           brownout_loop_share=1.0, malformed_rows=0)
    heartbeats = fleet.heartbeats
    brownouts = heartbeats[(heartbeats["reset_reason"] == 9) & (heartbeats["uptime"] <= 8)]
    assert len(brownouts) >= 3
    assert brownouts["uptime"].between(6, 8).all()
    gaps = brownouts.groupby("device_id")["received_at"].diff().dt.total_seconds().dropna()
    assert (gaps == 11).any()


def test_rssi_sent_as_uint16(busy_fleet):
    events = busy_fleet.truth_events
    rssi = events.loc[events["tag"] == 2, "d0"]
    dbm = rssi.where(rssi < 32768, rssi - 65536)
    assert rssi.between(0, 65535).all()
    assert dbm.between(-127, 0).all()
    assert (dbm < -30).mean() > 0.9


def test_ap_codes_follow_idf_version():
    fleet = simulate_fleet(devices=20, days=6, seed=4, releases=(
        FirmwareRelease("1.6.0", has_diagnostics=True, idf_version="5.1.4"),
        FirmwareRelease("1.7.0", has_diagnostics=True, rollout_day=3.0, idf_version="5.2.2"),
    ), ap_outages_per_device_day=1.0, malformed_rows=0)
    heartbeats = fleet.heartbeats
    old_codes = set(heartbeats.loc[heartbeats["firmware_version"] == "1.6.0",
                                   "last_disconnect_code"].dropna())
    new_codes = set(heartbeats.loc[heartbeats["firmware_version"] == "1.7.0",
                                   "last_disconnect_code"].dropna())
    assert old_codes.isdisjoint({210, 211, 212})
    assert 201 in old_codes
    assert 212 in new_codes


def test_heartbeat_miss_counts_consecutive(busy_fleet):
    events = busy_fleet.truth_events
    misses = events[events["tag"] == 6].sort_values(["device_id", "true_time"])
    assert len(misses) > 0
    assert misses["d0"].between(1, 4).all()
    watchdog = busy_fleet.truth_boots
    watchdog = watchdog[watchdog["cause"] == "connectivity_watchdog"]
    assert (watchdog["reboot_reason"] == 1).all()
    assert (watchdog["reset_reason"] == 3).all()


# --- truth -----------------------------------------------------------------------------

def test_first_boot_of_each_device_is_seen(small_fleet):
    first = small_fleet.truth_boots.groupby("device_id").head(1)
    assert first["observable"].all()
    assert not first["is_reboot"].any()


def test_truth_cause_follows_rule_table(busy_fleet):
    by_reboot_reason = {1: "connectivity_watchdog", 2: "factory_reset", 3: "ota_update",
                        4: "wifi_reprovision", 5: "fatal_config", 6: "fatal_camera"}
    by_reset_reason = {1: "power_on", 4: "panic", 5: "watchdog", 6: "watchdog",
                       7: "watchdog", 9: "brownout"}
    boots = busy_fleet.truth_boots
    previous_version = boots.groupby("device_id")["firmware_version"].shift()
    for boot, before in zip(boots.itertuples(), previous_version, strict=True):
        if pd.notna(boot.reboot_reason):
            expected = by_reboot_reason[boot.reboot_reason]
        elif pd.notna(before) and before != boot.firmware_version:
            expected = "ota_update"
        else:
            expected = by_reset_reason[boot.reset_reason]
        assert boot.cause == expected, boot


def test_truth_marks_malformed_rows(small_fleet):
    malformed = small_fleet.truth_malformed
    heartbeats = small_fleet.heartbeats.set_index("id")
    assert sorted(malformed["kind"]) == sorted(
        ["recent_events_cut_off", "recent_events_not_list", "event_missing_keys",
         "heap_free_text"])
    for row in malformed.itertuples():
        stored = heartbeats.loc[row.heartbeat_id]
        if row.kind == "recent_events_cut_off":
            with pytest.raises(json.JSONDecodeError):
                json.loads(stored["recent_events"])
        elif row.kind == "recent_events_not_list":
            assert isinstance(json.loads(stored["recent_events"]), dict)
        elif row.kind == "event_missing_keys":
            assert set(json.loads(stored["recent_events"])[-1]) == {"t", "d0"}
        else:
            assert stored["heap_free"] == "n/a"


def test_leaking_device_loses_heap_at_its_rate():
    fleet = simulate_fleet(devices=8, days=4, seed=9, releases=DIAGNOSTIC_RELEASES,
                           leaking_share=1.0, malformed_rows=0)
    device = fleet.truth_devices.iloc[0]
    heartbeats = fleet.heartbeats[fleet.heartbeats["device_id"] == device["device_id"]]
    start = heartbeats["received_at"] - pd.to_timedelta(heartbeats["uptime"], unit="s")
    longest = heartbeats[start == start.value_counts().idxmax()]
    leaking = longest[longest["uptime"] > device["leak_start_uptime_s"]]
    hours = leaking["uptime"].to_numpy() / 3600
    slope = np.polyfit(hours, leaking["heap_free"].astype(float).to_numpy(), 1)[0]
    assert slope == pytest.approx(-device["leak_bytes_per_hour"], rel=0.1)


def test_leak_ends_in_panic():
    fleet = simulate_fleet(devices=4, days=4, seed=9, releases=DIAGNOSTIC_RELEASES,
                           leaking_share=1.0, panics_per_device_day=0.0,
                           watchdog_resets_per_device_day=0.0, malformed_rows=0)
    boots = fleet.truth_boots
    assert (boots.loc[boots["reset_reason"] == 4, "cause"] == "panic").all()
    assert (boots["cause"] == "panic").sum() >= 4


def test_version_crash_multiplier_applies():
    releases = (
        FirmwareRelease("2.0.0", has_diagnostics=True),
        FirmwareRelease("2.1.0", has_diagnostics=True, crash_rate_multiplier=0.0,
                        rollout_share=0.5),
    )
    fleet = simulate_fleet(devices=20, days=6, seed=1, releases=releases,
                           panics_per_device_day=0.5, fatal_config_per_device_day=0.0,
                           leaking_share=0.0, malformed_rows=0)
    boots = fleet.truth_boots
    panics = boots[boots["cause"] == "panic"]
    assert (panics["firmware_version"] == "2.0.0").sum() > 10
    assert (panics["firmware_version"] == "2.1.0").sum() == 0


def test_version_leak_lowers_heap():
    releases = (
        FirmwareRelease("2.0.0", has_diagnostics=True),
        FirmwareRelease("2.1.0", has_diagnostics=True, leak_bytes_per_hour=2_000.0,
                        rollout_share=0.5),
    )
    fleet = simulate_fleet(devices=10, days=3, seed=1, releases=releases, leaking_share=0.0,
                           malformed_rows=0)
    heartbeats = fleet.heartbeats
    late = heartbeats[heartbeats["uptime"].between(20 * 3600, 21 * 3600)]
    heap = pd.to_numeric(late["heap_free"]).groupby(late["firmware_version"]).mean()
    assert heap["2.0.0"] - heap["2.1.0"] > 20_000


# --- config ----------------------------------------------------------------------------

def test_unknown_override_names_valid_settings():
    with pytest.raises(InvalidInputError, match="valid settings are"):
        simulate_fleet(device=3)


def test_naive_start_rejected():
    with pytest.raises(InvalidInputError, match="no time zone"):
        FleetConfig(start=datetime(2026, 5, 1))


def test_first_release_must_reach_every_device():
    with pytest.raises(InvalidInputError, match="rollout_day=0"):
        FleetConfig(releases=(FirmwareRelease("1.0.0", False, rollout_day=1.0),))


def test_default_rollout_follows_window_length():
    config = FleetConfig(days=10)
    assert config.releases[1].rollout_day == pytest.approx(4.0)


def test_start_sets_first_heartbeat():
    fleet = simulate_fleet(devices=2, days=1, start=datetime(2026, 6, 1, tzinfo=UTC))
    first = fleet.heartbeats["received_at"].min()
    assert pd.Timestamp("2026-06-01", tz="UTC") <= first < pd.Timestamp("2026-06-01 00:05",
                                                                         tz="UTC")


# --- database shapes and time formats --------------------------------------------------

def test_schema_has_columns_types_and_index(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite")
    columns = {row[1]: row[2] for row in stored_rows(path, "PRAGMA table_info(heartbeats)")}
    assert columns == {
        "id": "INTEGER", "device_id": "TEXT", "received_at": "TEXT", "uptime": "INTEGER",
        "firmware_version": "TEXT", "reset_reason": "INTEGER", "heap_free": "INTEGER",
        "heap_min_free": "INTEGER", "last_disconnect_code": "INTEGER", "recent_events": "TEXT",
    }
    indexed = stored_rows(path, "PRAGMA index_info(idx_heartbeats_device_time)")
    assert [row[2] for row in indexed] == ["device_id", "received_at"]


def test_per_heartbeat_stores_every_row(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite")
    assert stored_rows(path, "SELECT COUNT(*) FROM heartbeats")[0][0] == len(
        small_fleet.heartbeats)


def test_text_heap_free_stored_as_text(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite")
    rows = stored_rows(path, "SELECT typeof(heap_free) FROM heartbeats "
                             "WHERE typeof(heap_free) = 'text'")
    assert len(rows) == 1


def test_per_device_keeps_newest_row(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", shape="per_device")
    rows = stored_rows(path, "SELECT device_id, received_at, uptime FROM heartbeats")
    assert len(rows) == 10
    newest = small_fleet.heartbeats.groupby("device_id").tail(1)
    expected = {
        (row.device_id, row.received_at.strftime("%Y-%m-%d %H:%M:%S"), row.uptime)
        for row in newest.itertuples()
    }
    assert set(rows) == expected


def test_overwritten_rows_carry_newest_diagnostics(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", shape="overwritten")
    assert stored_rows(path, "SELECT COUNT(*) FROM heartbeats")[0][0] == len(
        small_fleet.heartbeats)
    distinct = stored_rows(
        path,
        "SELECT device_id, COUNT(DISTINCT coalesce(reset_reason, '') || '/' || "
        "coalesce(heap_free, '') || '/' || coalesce(recent_events, '')) FROM heartbeats "
        "GROUP BY device_id",
    )
    assert {count for _, count in distinct} == {1}
    newest = stored_rows(
        path,
        "SELECT h.device_id, h.heap_min_free FROM heartbeats h JOIN (SELECT device_id, "
        "MAX(id) AS id FROM heartbeats GROUP BY device_id) m ON h.id = m.id",
    )
    truth = small_fleet.heartbeats.groupby("device_id").tail(1)
    expected = {(row.device_id, None if pd.isna(row.heap_min_free) else row.heap_min_free)
                for row in truth.itertuples()}
    assert set(newest) == expected


def test_overwritten_matches_update_statement(tmp_path):
    fleet = simulate_fleet(devices=2, days=1, seed=6, releases=DIAGNOSTIC_RELEASES)
    reference = tmp_path / "reference.sqlite"
    write_database(fleet, reference)
    # Replay the server: each heartbeat's UPDATE overwrites every row of its device.
    connection = sqlite3.connect(reference)
    with connection:
        rows = connection.execute(
            "SELECT device_id, reset_reason, heap_free, heap_min_free, last_disconnect_code, "
            "recent_events FROM heartbeats ORDER BY id").fetchall()
        for device_id, *values in rows:
            connection.execute(
                "UPDATE heartbeats SET reset_reason=?, heap_free=?, heap_min_free=?, "
                "last_disconnect_code=?, recent_events=? WHERE device_id=?",
                (*values, device_id))
    connection.close()
    written = write_database(fleet, tmp_path / "overwritten.sqlite", shape="overwritten")
    query = "SELECT * FROM heartbeats ORDER BY id"
    assert stored_rows(written, query) == stored_rows(reference, query)


def test_pre_migration_table_lacks_diagnostics(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", has_diagnostic_columns=False)
    columns = [row[1] for row in stored_rows(path, "PRAGMA table_info(heartbeats)")]
    assert columns == ["id", "device_id", "received_at", "uptime", "firmware_version"]


def test_column_and_table_names_configurable(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", table="beats",
                          time_column="created_at", version_column="fw_version")
    columns = [row[1] for row in stored_rows(path, "PRAGMA table_info(beats)")]
    assert "created_at" in columns
    assert "fw_version" in columns


def test_unsafe_table_name_rejected(tmp_path, small_fleet):
    with pytest.raises(InvalidInputError, match="not a plain SQL identifier"):
        write_database(small_fleet, tmp_path / "fleet.sqlite", table="beats; DROP")


def parse_stored_time(value: str | int, time_format: str) -> datetime:
    if time_format == "unix":
        return datetime.fromtimestamp(value, UTC)
    instant = datetime.fromisoformat(value)
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


@pytest.mark.parametrize("time_format", ["iso", "iso_offset", "unix"])
def test_time_formats_keep_the_instant(tmp_path, small_fleet, time_format):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", time_format=time_format)
    stored = stored_rows(path, "SELECT received_at FROM heartbeats ORDER BY id")
    instants = [parse_stored_time(value, time_format) for (value,) in stored]
    assert instants == small_fleet.heartbeats["received_at"].dt.to_pydatetime().tolist()


def test_iso_text_has_no_offset(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite")
    first = stored_rows(path, "SELECT received_at FROM heartbeats LIMIT 1")[0][0]
    assert len(first) == 19
    assert first[10] == " "


def test_iso_offset_mixes_suffixes(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", time_format="iso_offset")
    stored = [value for (value,) in stored_rows(path, "SELECT received_at FROM heartbeats")]
    suffixes = {value[19:] for value in stored}
    assert suffixes == {"Z", "+00:00", "+02:00", "-05:00"}


def test_unix_time_column_is_integer(tmp_path, small_fleet):
    path = write_database(small_fleet, tmp_path / "fleet.sqlite", time_format="unix")
    kinds = stored_rows(path, "SELECT DISTINCT typeof(received_at) FROM heartbeats")
    assert kinds == [("integer",)]


def test_write_replaces_existing_file(tmp_path, small_fleet):
    path = tmp_path / "fleet.sqlite"
    path.write_text("not a database")
    write_database(small_fleet, path)
    assert stored_rows(path, "SELECT COUNT(*) FROM heartbeats")[0][0] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.sqlite"]


def test_write_into_missing_directory_rejected(tmp_path, small_fleet):
    with pytest.raises(InvalidInputError, match="does not exist"):
        write_database(small_fleet, tmp_path / "missing" / "fleet.sqlite")


# --- sample file and CLI ---------------------------------------------------------------

def test_default_sample_path_in_project_data():
    path = default_sample_path()
    assert path.name == "sample_fleet.sqlite"
    assert (path.parent.parent / "pyproject.toml").is_file()


def test_ensure_sample_keeps_existing_file(tmp_path):
    path = tmp_path / "sample.sqlite"
    path.write_bytes(b"kept")
    assert ensure_sample_database(path) == path
    assert path.read_bytes() == b"kept"


def test_ensure_sample_generates_missing_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sample_files, "SAMPLE_DEVICES", 2)
    monkeypatch.setattr(sample_files, "SAMPLE_DAYS", 1)
    path = tmp_path / "data" / "sample.sqlite"
    with caplog.at_level("INFO", logger="analysis"):
        ensure_sample_database(path)
    assert stored_rows(path, "SELECT COUNT(DISTINCT device_id) FROM heartbeats") == [(2,)]
    assert len([r for r in caplog.records if r.levelname == "INFO"]) == 1


def test_cli_writes_database_and_truth(tmp_path):
    path = tmp_path / "fleet.sqlite"
    result = CliRunner().invoke(sample_command, [
        str(path), "--devices", "3", "--days", "1", "--seed", "2", "--truth",
        str(tmp_path / "truth"), "--quiet",
    ])
    assert result.exit_code == 0, result.output
    assert stored_rows(path, "SELECT COUNT(DISTINCT device_id) FROM heartbeats") == [(3,)]
    truth = pd.read_csv(tmp_path / "truth" / "truth_boots.csv")
    assert set(truth["device_id"]) == {"dc-0001", "dc-0002", "dc-0003"}


def test_cli_refuses_to_overwrite(tmp_path):
    path = tmp_path / "fleet.sqlite"
    path.write_bytes(b"kept")
    result = CliRunner().invoke(sample_command, [str(path), "--devices", "1", "--days", "1"])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert path.read_bytes() == b"kept"


def test_cli_force_overwrites(tmp_path):
    path = tmp_path / "fleet.sqlite"
    path.write_bytes(b"old")
    result = CliRunner().invoke(sample_command, [str(path), "--devices", "1", "--days", "1",
                                                 "--force", "--time-format", "unix"])
    assert result.exit_code == 0, result.output
    assert stored_rows(path, "SELECT DISTINCT typeof(received_at) FROM heartbeats") == [
        ("integer",)]


def test_cli_help_ends_with_example():
    result = CliRunner().invoke(sample_command, ["--help"])
    description = result.output.split("Options:")[0].strip()
    last_paragraph = description.split("\n\n")[-1].strip()
    assert last_paragraph.startswith("Example: fleet-report sample")
