"""The exploring API of `Fleet`: filters, device views, event logs, display and the cache.

Filters are checked against plain pandas filters of the loaded tables, event logs against
the simulator's ground truth, and the cache against uncached loads of the same file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_heartbeats
from pandas.testing import assert_frame_equal

from analysis import codes, load_fleet
from analysis.cache import cache_info, clear_cache, copy_fleet
from analysis.device import (
    boot_loop_episodes,
    describe_drilldown,
    drilldown_devices,
    event_log,
    events_before_boots,
    summarize_devices,
)
from analysis.errors import InvalidInputError
from analysis.sample import FleetConfig, simulate_fleet, write_database
from analysis.selection import UnknownDeviceError, UnknownFirmwareError, close_matches

# Small, but with boot loops, Wi-Fi drops and an OTA from 1.0.0 to 1.1.0. No malformed
# rows, so that every logged event the server received can be compared with the truth.
CONFIG = FleetConfig(devices=8, days=3, seed=11, brownout_loop_share=0.25,
                     camera_loop_share=0.25, malformed_rows=0)
WINDOW = ("2026-05-02 06:00", "2026-05-03 06:00")


@pytest.fixture(scope="module")
def simulated():
    return simulate_fleet(CONFIG)


@pytest.fixture(scope="module")
def fleet_db(simulated, tmp_path_factory) -> Path:
    return write_database(simulated, tmp_path_factory.mktemp("fleet") / "fleet.sqlite")


@pytest.fixture(scope="module")
def fleet(fleet_db):
    return load_fleet(fleet_db, cache=False)


@pytest.fixture
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def loop_device(fleet) -> str:
    return fleet.boots.loc[fleet.boots["is_boot_loop"], "device_id"].iloc[0]


# --- filters ---------------------------------------------------------------------------


def test_between_equals_plain_filter(fleet):
    start, end = (pd.Timestamp(value, tz="UTC") for value in WINDOW)
    narrowed = fleet.between(*WINDOW)

    for name, column in (("heartbeats", "received_at"), ("events", "event_time"),
                         ("boots", "boot_time")):
        frame = getattr(fleet, name)
        expected = frame[(frame[column] >= start) & (frame[column] < end)]
        assert_frame_equal(getattr(narrowed, name), expected.reset_index(drop=True))


def test_between_sets_window(fleet):
    narrowed = fleet.between(*WINDOW)

    assert narrowed.start == pd.Timestamp(WINDOW[0], tz="UTC")
    assert narrowed.end == pd.Timestamp(WINDOW[1], tz="UTC")


def test_between_keeps_inner_bound_of_nested_windows(fleet):
    nested = fleet.between("2026-05-01 12:00", None).between("2026-05-01", "2026-05-02")

    assert nested.start == pd.Timestamp("2026-05-01 12:00", tz="UTC")
    assert nested.end == pd.Timestamp("2026-05-02", tz="UTC")


def test_between_rejects_reversed_window(fleet):
    with pytest.raises(InvalidInputError, match="not before end"):
        fleet.between(WINDOW[1], WINDOW[0])


def test_between_rejects_text_that_is_no_time(fleet):
    with pytest.raises(InvalidInputError, match="invalid start 'yesterday'"):
        fleet.between("yesterday", None)


def test_last_ends_at_newest_heartbeat(fleet):
    newest = fleet.heartbeats["received_at"].max()
    day = fleet.last("1D")
    expected = fleet.heartbeats[(fleet.heartbeats["received_at"] >= newest - pd.Timedelta("1D"))]

    assert_frame_equal(day.heartbeats, expected.reset_index(drop=True))


def test_last_rejects_negative_span(fleet):
    with pytest.raises(InvalidInputError, match="must be positive"):
        fleet.last("-1D")


@pytest.mark.parametrize("versions", [("1.1.0",), ("1.0.0", "1.1.0"), (["1.0.0"],)])
def test_firmware_equals_plain_filter(fleet, versions):
    wanted = [v for item in versions for v in ([item] if isinstance(item, str) else item)]
    narrowed = fleet.firmware(*versions)
    heartbeats = fleet.heartbeats[fleet.heartbeats["firmware_version"].isin(wanted)]
    carried = heartbeats["heartbeat_id"]
    events = fleet.events[fleet.events["first_heartbeat_id"].isin(carried)]
    boots = fleet.boots[fleet.boots["firmware_version"].isin(wanted)]

    assert_frame_equal(narrowed.heartbeats, heartbeats.reset_index(drop=True))
    assert_frame_equal(narrowed.events, events.reset_index(drop=True))
    assert_frame_equal(narrowed.boots, boots.reset_index(drop=True))


def test_firmware_equals_load_with_firmware(fleet, fleet_db):
    loaded = load_fleet(fleet_db, firmware=["1.1.0"], cache=False)

    assert_frame_equal(fleet.firmware("1.1.0").boots, loaded.boots)


def test_firmware_unknown_version_lists_known(fleet):
    with pytest.raises(UnknownFirmwareError, match=r"'1\.1' not in this fleet; it has 1\.0\.0, "
                                                   r"1\.1\.0"):
        fleet.firmware("1.1")


def test_devices_equals_plain_filter(fleet):
    wanted = ["dc-0002", "dc-0005"]
    narrowed = fleet.devices(wanted)

    for name in ("heartbeats", "events", "boots"):
        frame = getattr(fleet, name)
        expected = frame[frame["device_id"].isin(wanted)].reset_index(drop=True)
        assert_frame_equal(getattr(narrowed, name), expected)


def test_filters_chain(fleet):
    chained = fleet.firmware("1.1.0").devices("dc-0002").between(*WINDOW)
    heartbeats = fleet.heartbeats
    start, end = (pd.Timestamp(value, tz="UTC") for value in WINDOW)
    expected = heartbeats[(heartbeats["firmware_version"] == "1.1.0")
                          & (heartbeats["device_id"] == "dc-0002")
                          & (heartbeats["received_at"] >= start)
                          & (heartbeats["received_at"] < end)]

    assert_frame_equal(chained.heartbeats, expected.reset_index(drop=True))


def test_filtered_fleet_quality_is_a_copy(fleet):
    narrowed = fleet.devices(["dc-0001"])
    narrowed.quality.add("heap_negative", [1])

    assert fleet.quality.count("heap_negative") == 0


# --- device views ----------------------------------------------------------------------


def test_device_view_holds_only_its_rows(fleet):
    view = fleet.device("dc-0003")

    for name in ("heartbeats", "events", "boots"):
        frame = getattr(fleet, name)
        expected = frame[frame["device_id"] == "dc-0003"].reset_index(drop=True)
        assert_frame_equal(getattr(view, name), expected)


def test_unknown_device_offers_close_matches(fleet):
    with pytest.raises(UnknownDeviceError, match=r"'dc-3' not found in this fleet; did you "
                                                 r"mean 'dc-0003'"):
        fleet.device("dc-3")


def test_unknown_device_without_match_names_listing(fleet):
    with pytest.raises(UnknownDeviceError, match="listed by fleet.device_ids"):
        fleet.device("zz-unrelated-gateway")


def test_devices_filter_rejects_unknown_id(fleet):
    with pytest.raises(UnknownDeviceError, match="'dc-0099'"):
        fleet.devices(["dc-0001", "dc-0099"])


def test_close_matches_ignore_case_and_leading_zeros():
    known = ["dc-0007", "dc-0070", "dc-0017"]

    assert close_matches("DC-7", known)[0] == "dc-0007"
    assert close_matches("nothing-alike", known) == []


@pytest.mark.parametrize("device_id", [f"dc-{n:04d}" for n in range(1, 9)])
def test_event_log_equals_truth_once_in_order(fleet, simulated, device_id):
    truth = simulated.truth_events
    seen = truth[(truth["device_id"] == device_id) & truth["observable"]]
    view = fleet.device(device_id)
    log = view.log()
    fields = ["tag", "d0", "d1", "ts", "up"]

    assert len(log) == len(seen)
    assert log["sequence"].tolist() == list(range(len(log)))
    assert_frame_equal(view.events[fields].astype("int64").reset_index(drop=True),
                       seen[fields].astype("int64").reset_index(drop=True))


def test_event_log_decodes_tag_and_detail(fleet):
    view = fleet.device(loop_device(fleet))
    log = view.log()
    events = view.events

    assert log["tag"].tolist() == events["tag_name"].tolist()
    assert log["detail"].tolist() == events["detail"].tolist()
    assert log["time_source"].tolist() == events["time_source"].tolist()
    assert str(log["time"].dtype) == "datetime64[ns, UTC]"


def test_log_text_has_one_line_per_event(fleet):
    view = fleet.device(loop_device(fleet))
    lines = view.log_text().splitlines()
    first = view.log().iloc[0]

    assert len(lines) == len(view.events)
    assert lines[0].split() == [first["time"].strftime("%Y-%m-%d"),
                                first["time"].strftime("%H:%M:%S"), first["time_source"],
                                first["tag"], *first["detail"].split()]


def test_log_text_limit_keeps_newest_lines(fleet):
    view = fleet.device(loop_device(fleet))
    full = view.log_text().splitlines()

    assert view.log_text(limit=3).splitlines() == full[-3:]


def test_log_text_marks_estimated_times(heartbeat_db):
    # The first event's ts is before 2020 (clock not set), so its time is estimated.
    db = heartbeat_db([{
        "id": 1, "device_id": "dev-E", "received_at": "2026-05-01 10:00:30", "uptime": 45,
        "firmware_version": "1.1.0", "reset_reason": 1,
        "recent_events": [{"t": 3, "d0": 201, "d1": 0, "ts": 12, "up": 12},
                          {"t": 2, "d0": 65466, "d1": 0, "ts": 1777629615, "up": 30}],
    }])
    lines = load_fleet(db, cache=False).device("dev-E").log_text().splitlines()

    assert lines[0].startswith("~2026-05-01 09:59:57  estimated_unsynced")
    assert lines[1].startswith(" 2026-05-01 10:00:15  ts")
    assert lines[1].endswith("RSSI -70 dBm")


def test_log_text_for_firmware_without_event_log(heartbeat_db):
    db = heartbeat_db([{"id": 1, "device_id": "dev-old", "received_at": "2026-05-01 10:00:00",
                        "uptime": 60, "firmware_version": "1.0.0"}])
    view = load_fleet(db, cache=False).device("dev-old")

    assert view.log().empty
    assert view.log_text() == "no events for device dev-old: its firmware sends no event log"


def test_event_log_of_several_devices_names_them(fleet):
    log = event_log(fleet.events)

    assert log["device_id"].tolist() == fleet.events["device_id"].tolist()


# --- reboots, loops and summaries --------------------------------------------------------


def reboot_rows() -> list[dict]:
    """dev-R: a boot, a connectivity-watchdog reboot (EVT_REBOOT 1), then a panic."""
    base = pd.Timestamp("2026-05-01 10:00:00")
    ts = int(pd.Timestamp("2026-05-01 10:00:00", tz="UTC").timestamp())
    first_boot = [{"t": 1, "d0": 1, "d1": 0, "ts": ts - 60, "up": 0},
                  {"t": 3, "d0": 201, "d1": 0, "ts": ts + 100, "up": 160},
                  {"t": 6, "d0": 1, "d1": 0, "ts": ts + 200, "up": 260},
                  {"t": 8, "d0": 1, "d1": 0, "ts": ts + 290, "up": 350}]
    second_boot = [*first_boot, {"t": 1, "d0": 3, "d1": 0, "ts": ts + 300, "up": 0}]
    third_boot = [*second_boot, {"t": 1, "d0": 4, "d1": 0, "ts": ts + 900, "up": 0}]

    def row(number, minutes, uptime, reset, events):
        return {"id": number, "device_id": "dev-R", "firmware_version": "1.1.0",
                "received_at": (base + pd.Timedelta(minutes=minutes)).isoformat(sep=" "),
                "uptime": uptime, "reset_reason": reset, "recent_events": events}

    return [row(1, 0, 60, 1, first_boot[:1]), row(2, 4, 300, 1, first_boot[:3]),
            row(3, 6, 60, 3, second_boot), row(4, 16, 60, 4, third_boot)]


def test_events_before_reboot_end_with_evt_reboot(heartbeat_db):
    view = load_fleet(heartbeat_db(reboot_rows()), cache=False).device("dev-R")
    before = view.events_before_reboots(count=3)
    first = before[before["cause"] == "connectivity_watchdog"]

    assert first["tag"].tolist() == ["EVT_WIFI_DOWN", "EVT_HEARTBEAT_MISS", "EVT_REBOOT"]
    assert first["position"].tolist() == [-3, -2, -1]
    assert first["detail"].iloc[-1] == "firmware reboot HEARTBEAT_MISS"


def test_events_before_panic_follow_previous_boot(heartbeat_db):
    view = load_fleet(heartbeat_db(reboot_rows()), cache=False).device("dev-R")
    before = view.events_before_reboots(count=2)
    panic = before[before["cause"] == "panic"]

    assert panic["tag"].tolist() == ["EVT_REBOOT", "EVT_BOOT"]
    assert panic["detail"].iloc[-1] == "reset ESP_RST_SW"


def test_events_before_boots_without_event_log_use_time(heartbeat_db):
    rows = [{"id": n, "device_id": "dev-old", "uptime": uptime, "firmware_version": "1.0.0",
             "received_at": f"2026-05-01 10:{minute:02d}:00"}
            for n, (minute, uptime) in enumerate([(0, 600), (5, 900), (10, 30)], start=1)]
    fleet = load_fleet(heartbeat_db(rows), cache=False)

    assert events_before_boots(fleet.boots, fleet.events).empty


def test_events_before_reboots_keeps_first_boot_of_loop(fleet):
    view = fleet.device(loop_device(fleet))
    before = view.events_before_reboots()
    loops = view.boot_loops()

    assert set(loops["start"]) <= set(before["boot_time"])
    assert before["boot_time"].nunique() <= view.summary()["unexpected_reboots"]
    assert not (set(before["boot_time"])
                & set(view.boots.loc[view.boots["is_boot_loop"], "boot_time"])
                - set(loops["start"]))


def brownout_loop_rows() -> list[dict]:
    """A brownout loop: dev-G sends four heartbeats 11 s apart, each reset 9, uptime 6-8 s."""
    base = pd.Timestamp("2026-05-01 10:00:00")
    return [{"id": n + 1, "device_id": "dev-G", "uptime": uptime, "reset_reason": 9,
             "firmware_version": "1.1.0", "heap_free": 150000, "heap_min_free": 140000,
             "received_at": (base + pd.Timedelta(seconds=11 * n)).isoformat(sep=" ")}
            for n, uptime in enumerate([6, 8, 7, 6])]


def test_boot_loop_episode_groups_loop_boots(heartbeat_db):
    fleet = load_fleet(heartbeat_db(brownout_loop_rows()), cache=False)
    episodes = boot_loop_episodes(fleet.boots)

    assert len(episodes) == 1
    assert episodes["boots"].iloc[0] == 4
    assert episodes["causes"].iloc[0] == "brownout (4)"
    assert episodes["start"].iloc[0] == pd.Timestamp("2026-05-01 09:59:54", tz="UTC")


def test_boot_loop_episodes_empty_without_loops(fleet):
    calm = fleet.boots[~fleet.boots["is_boot_loop"]]

    assert boot_loop_episodes(calm).empty


def test_device_summary_equals_groupby(fleet):
    summary = fleet.device_summary().set_index("device_id")
    boots = fleet.boots.groupby("device_id")
    down = fleet.events[fleet.events["tag"] == codes.EVT_WIFI_DOWN].groupby("device_id").size()

    assert summary["unexpected_reboots"].to_dict() == boots["is_unexpected"].sum().to_dict()
    assert summary["boots"].to_dict() == boots.size().to_dict()
    assert summary["wifi_down_events"].to_dict() == down.reindex(summary.index,
                                                                 fill_value=0).to_dict()
    assert summary["heartbeats"].sum() == len(fleet.heartbeats)


def test_device_summary_sorted_by_unexpected_reboots(fleet):
    counts = fleet.device_summary()["unexpected_reboots"].tolist()

    assert counts == sorted(counts, reverse=True)


def test_drilldown_devices_default_to_worst(fleet):
    summary = summarize_devices(fleet.heartbeats, fleet.events, fleet.boots)
    worst = summary.loc[summary["unexpected_reboots"] > 0, "device_id"].head(2).tolist()

    assert drilldown_devices(summary, [], limit=2) == worst
    assert drilldown_devices(summary, ["dc-0004", "dc-0099"]) == ["dc-0004"]


def test_describe_drilldown_empty_window():
    text = describe_drilldown([], [], "all heartbeats", devices_in_window=0)

    assert text == ("Drill-down of all heartbeats: no heartbeat matched. Widen the window with "
                    "--since and --until, or check the --device and --firmware options.")


def test_describe_drilldown_names_missing_device(fleet):
    views = [fleet.device("dc-0002")]
    text = describe_drilldown(views, ["dc-0002", "dc-0099"], "the window", devices_in_window=1)
    unexpected = int(views[0].boots["is_unexpected"].sum())

    assert text.startswith("Drill-down of the window. No data in the window for dc-0099.")
    assert f"- dc-0002: {len(views[0].boots)} boots, {unexpected} unexpected reboots" in text


@pytest.mark.parametrize("reason", [201, "201", "NO_AP_FOUND", "wifi_reason_no_ap_found"])
def test_wifi_down_events_by_code_or_name(fleet, reason):
    events = fleet.events
    expected = events[(events["tag"] == codes.EVT_WIFI_DOWN) & (events["d0"] == 201)]

    assert_frame_equal(fleet.wifi_down_events(reason), expected.reset_index(drop=True))


def test_wifi_down_events_by_family(fleet):
    events = fleet.events
    expected = events[(events["tag"] == codes.EVT_WIFI_DOWN)
                      & events["d0"].isin(codes.DISCONNECT_FAMILY_CODES["signal_loss"])]

    assert len(expected) > 0
    assert_frame_equal(fleet.wifi_down_events("signal_loss"), expected.reset_index(drop=True))


def test_wifi_down_events_rejects_unknown_reason(fleet):
    with pytest.raises(InvalidInputError, match="unknown disconnect reason 'NO_SUCH_REASON'"):
        fleet.wifi_down_events("NO_SUCH_REASON")


# --- display ---------------------------------------------------------------------------


def test_repr_html_shows_counts(fleet):
    page = fleet._repr_html_()
    unexpected = int(fleet.boots["is_unexpected"].sum())

    assert f"<td style=\"text-align:left\">{len(fleet.heartbeats):,}</td>" in page
    assert f"{unexpected:,} (" in page
    assert "1.0.0 (8 devices), 1.1.0 (8 devices)" in page


def test_repr_html_escapes_database_text(heartbeat_db):
    db = heartbeat_db([{"id": 1, "device_id": "<script>alert(1)</script>", "uptime": 10,
                        "received_at": "2026-05-01 10:00:00",
                        "firmware_version": "<img src=x>", "recent_events": "[{bad"}])
    fleet = load_fleet(db, cache=False)
    pages = [fleet._repr_html_(), fleet.device("<script>alert(1)</script>")._repr_html_()]

    for page in pages:
        assert "<script>" not in page
        assert "<img" not in page
    assert "&lt;img src=x&gt;" in pages[0]
    assert "Device &lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]


def test_repr_html_states_empty_window(fleet):
    page = fleet.between("2027-01-01", "2027-01-02")._repr_html_()

    assert "2027-01-01 00:00 UTC to before 2027-01-02 00:00 UTC" in page
    assert "<td style=\"text-align:left\">0</td>" in page


# --- the cache -------------------------------------------------------------------------


def test_second_load_is_served_from_cache(fleet_db, fresh_cache):
    first = load_fleet(fleet_db)
    second = load_fleet(fleet_db)

    assert cache_info().misses == 1
    assert cache_info().hits == 1
    assert_frame_equal(second.events, first.events)


def test_cached_load_equals_uncached_load(fleet_db, fleet, fresh_cache):
    load_fleet(fleet_db, start=WINDOW[0])
    cached = load_fleet(fleet_db, start=WINDOW[0])
    uncached = load_fleet(fleet_db, start=WINDOW[0], cache=False)

    assert cache_info().hits == 1
    for name in ("heartbeats", "events", "boots"):
        assert_frame_equal(getattr(cached, name), getattr(uncached, name))
    assert cached.quality.to_dict() == uncached.quality.to_dict()


def test_changing_returned_frames_leaves_cache_intact(fleet_db, fleet, fresh_cache):
    first = load_fleet(fleet_db)
    first.heartbeats.loc[0, "uptime_s"] = -1
    first.boots.loc[:, "cause"] = "changed"
    first.events["detail"] = "changed"
    first.quality.add("heap_negative", [1])
    second = load_fleet(fleet_db)

    assert cache_info().hits == 1
    assert_frame_equal(second.heartbeats, fleet.heartbeats)
    assert_frame_equal(second.boots, fleet.boots)
    assert_frame_equal(second.events, fleet.events)
    assert second.quality.count("heap_negative") == 0


def test_cache_key_ignores_device_order(fleet_db, fresh_cache):
    load_fleet(fleet_db, devices=["dc-0002", "dc-0001"])
    load_fleet(fleet_db, devices=["dc-0001", "dc-0002", "dc-0001"])

    assert cache_info().hits == 1


@pytest.mark.parametrize("other", [{"start": WINDOW[0]}, {"end": WINDOW[1]},
                                   {"devices": ["dc-0001"]}, {"table": "heartbeats_copy"}])
def test_cache_separates_query_arguments(fleet_db, tmp_path, fresh_cache, other):
    db = tmp_path / "copy.sqlite"
    db.write_bytes(fleet_db.read_bytes())
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE heartbeats_copy AS SELECT * FROM heartbeats")
    connection.close()
    load_fleet(db)
    load_fleet(db, **other)

    assert cache_info().hits == 0
    assert cache_info().misses == 2


def test_firmware_filter_reuses_cached_load(fleet_db, fresh_cache):
    load_fleet(fleet_db)
    narrowed = load_fleet(fleet_db, firmware=["1.1.0"])

    assert cache_info().hits == 1
    assert set(narrowed.heartbeats["firmware_version"]) == {"1.1.0"}


def test_cache_reloads_after_database_changes(tmp_path, fresh_cache):
    db = write_heartbeats(tmp_path / "growing.sqlite", brownout_loop_rows())
    before = load_fleet(db)
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO heartbeats (id, device_id, received_at, uptime) "
                           "VALUES (99, 'dev-new', '2026-05-01 11:00:00', 5)")
    connection.close()
    after = load_fleet(db)

    assert cache_info().misses == 2
    assert len(after.heartbeats) == len(before.heartbeats) + 1


def test_cache_reloads_after_wal_write(tmp_path, fresh_cache):
    db = write_heartbeats(tmp_path / "wal.sqlite", brownout_loop_rows())
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    load_fleet(db)
    main_file = (db.stat().st_size, db.stat().st_mtime_ns)
    writer.execute("INSERT INTO heartbeats (id, device_id, received_at, uptime) "
                   "VALUES (99, 'dev-new', '2026-05-01 11:00:00', 5)")
    writer.commit()
    after = load_fleet(db)
    unchanged = (db.stat().st_size, db.stat().st_mtime_ns) == main_file
    writer.close()

    assert unchanged, "the write reached the main file; this test needs it in the -wal file"
    assert cache_info().misses == 2
    assert "dev-new" in set(after.heartbeats["device_id"])


def test_cache_false_bypasses_cache(fleet_db, fresh_cache):
    load_fleet(fleet_db, cache=False)
    load_fleet(fleet_db, cache=False)

    assert cache_info().entries == 0
    assert cache_info().misses == 0


def test_clear_cache_forgets_loads(fleet_db, fresh_cache):
    load_fleet(fleet_db)
    clear_cache()
    load_fleet(fleet_db)

    assert cache_info().misses == 1
    assert cache_info().hits == 0


def test_missing_database_raises_loader_error(tmp_path, fresh_cache):
    from analysis.errors import DatabaseNotFoundError

    with pytest.raises(DatabaseNotFoundError, match="database not found"):
        load_fleet(tmp_path / "absent.sqlite")


def test_copy_fleet_shares_no_frames(fleet):
    copied = copy_fleet(fleet)
    copied.heartbeats.loc[0, "device_id"] = "changed"

    assert fleet.heartbeats.loc[0, "device_id"] != "changed"
    assert copied.quality is not fleet.quality
