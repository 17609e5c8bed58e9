"""The analysis against the simulator's ground truth, on fleets written to real SQLite files.

Every event the server could see must come out of `load_fleet` exactly once, and every
boot the server could see with the cause the firmware really had.
"""

from __future__ import annotations

import warnings
from collections import Counter

import pandas as pd
import pytest

from analysis import HistoryOverwrittenWarning, load_fleet
from analysis.sample import FirmwareRelease, simulate_fleet, write_database

# v1.0.0 at the start, OTA to 1.1.0 on day 1 and to 1.2.0 (ESP-IDF 5.2) on day 3, so the
# fleet shows boots without diagnostics, both kinds of OTA and both AP-not-found labellings.
RELEASES = (
    FirmwareRelease("1.0.0", has_diagnostics=False),
    FirmwareRelease("1.1.0", has_diagnostics=True, rollout_day=1.0, rollout_days=0.5),
    FirmwareRelease("1.2.0", has_diagnostics=True, rollout_day=3.0, rollout_days=1.0,
                    idf_version="5.2.2"),
)
BUSY_SCENARIOS = {
    "camera_loop_share": 0.3, "brownout_loop_share": 0.3, "leaking_share": 0.3,
    "radio_cycling_share": 0.1, "ap_outages_per_device_day": 0.5,
    "panics_per_device_day": 0.2, "watchdog_resets_per_device_day": 0.1,
    "power_cuts_per_device_day": 0.1, "factory_resets_per_device_day": 0.05,
    "reprovisions_per_device_day": 0.05, "fatal_config_per_device_day": 0.05,
    "server_outages_per_day": 0.5,
}
EVENT_KEY = ["device_id", "tag", "d0", "d1", "ts", "up"]


def load_quietly(path):
    # The analysis warns about the data-quality problems the simulator puts in on purpose.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_fleet(path)


@pytest.fixture(scope="module", params=[1, 2, 3])
def simulated(request, tmp_path_factory):
    """A busy fleet with malformed rows, its SQLite file loaded by the analysis, three seeds."""
    fleet = simulate_fleet(devices=12, days=6, seed=request.param, releases=RELEASES,
                           malformed_rows=8, **BUSY_SCENARIOS)
    path = write_database(fleet, tmp_path_factory.mktemp("truth") / "fleet.sqlite")
    return fleet, load_quietly(path)


def event_counts(events: pd.DataFrame) -> Counter:
    rows = events[EVENT_KEY].astype({"tag": "int64", "d0": "int64", "d1": "int64",
                                      "ts": "int64", "up": "int64"})
    return Counter(map(tuple, rows.itertuples(index=False)))


def test_every_observable_event_found_once(simulated):
    fleet, analysed = simulated
    truth = fleet.truth_events[fleet.truth_events["observable"]]
    assert event_counts(analysed.events) == event_counts(truth)


def test_events_attributed_to_first_heartbeat(simulated):
    fleet, analysed = simulated
    truth = fleet.truth_events[fleet.truth_events["observable"]]
    key = [*EVENT_KEY, "first_heartbeat_id"]
    found = Counter(map(tuple, analysed.events[key].astype({"first_heartbeat_id": "int64"})
                        .itertuples(index=False)))
    expected = Counter(map(tuple, truth[key].astype({"first_heartbeat_id": "int64"})
                           .itertuples(index=False)))
    assert found == expected


def test_fleet_shows_hard_cases(simulated):
    fleet, _ = simulated
    boots = fleet.truth_boots
    events = fleet.truth_events
    assert (boots["heartbeats"] == 0).sum() > 0
    assert events.duplicated(EVENT_KEY).any()
    assert {"ota_update", "no_diagnostics", "panic"} <= set(boots["cause"])


def test_observable_boots_have_observable_causes(simulated):
    # The comparison by cause below is exact only when this holds for the chosen seeds.
    boots = simulated[0].truth_boots
    assert boots.loc[boots["observable"], "cause_observable"].all()


def test_every_observable_boot_found(simulated):
    fleet, analysed = simulated
    truth = fleet.truth_boots[fleet.truth_boots["observable"]]
    found = analysed.boots.groupby("device_id").size()
    expected = truth.groupby("device_id").size()
    assert found.to_dict() == expected.to_dict()


def test_boot_causes_match_truth(simulated):
    fleet, analysed = simulated
    truth = fleet.truth_boots[fleet.truth_boots["observable"]]
    found = analysed.boots.groupby(["device_id", "cause"]).size()
    expected = truth.groupby(["device_id", "cause"]).size()
    assert found.to_dict() == expected.to_dict()


def test_reboot_causes_match_truth(simulated):
    fleet, analysed = simulated
    truth = fleet.truth_boots[fleet.truth_boots["observable"] & fleet.truth_boots["is_reboot"]]
    reboots = analysed.boots[analysed.boots["is_reboot"].astype(bool)]
    found = reboots.groupby(["device_id", "cause"]).size()
    expected = truth.groupby(["device_id", "cause"]).size()
    assert found.to_dict() == expected.to_dict()


def test_reporting_boot_times_match_truth(simulated):
    # A boot seen only as an EVT_BOOT event has an estimated start, so only boots that sent
    # heartbeats are held to the exact second.
    fleet, analysed = simulated
    truth = fleet.truth_boots[fleet.truth_boots["heartbeats"] > 0]
    reporting = analysed.boots[analysed.boots["heartbeats"] > 0]
    found = set(zip(reporting["device_id"], reporting["boot_time"], strict=True))
    expected = set(zip(truth["device_id"], truth["boot_time"], strict=True))
    assert found == expected


@pytest.mark.parametrize("options", [
    {"time_format": "iso_offset"},
    {"time_format": "unix"},
    {"time_column": "created_at", "version_column": "fw_version"},
], ids=["iso_offset", "unix", "aliases"])
def test_table_variants_give_same_boots(tmp_path, options):
    fleet = simulate_fleet(devices=6, days=3, seed=4, releases=RELEASES, malformed_rows=0,
                           **BUSY_SCENARIOS)
    plain = load_quietly(write_database(fleet, tmp_path / "plain.sqlite"))
    variant = load_quietly(write_database(fleet, tmp_path / "variant.sqlite", **options))
    columns = ["device_id", "boot_time", "cause", "is_reboot"]
    pd.testing.assert_frame_equal(variant.boots[columns], plain.boots[columns])


def test_default_fleet_events_found_once(tmp_path):
    fleet = simulate_fleet(devices=8, days=10)
    assert "event_missing_keys" in set(fleet.truth_malformed["kind"])
    analysed = load_quietly(write_database(fleet, tmp_path / "fleet.sqlite"))
    truth = fleet.truth_events[fleet.truth_events["observable"]]
    assert event_counts(analysed.events) == event_counts(truth)


@pytest.fixture(scope="module")
def shape_fleet():
    # Enough devices for the analysis to judge a one-row-per-device table.
    return simulate_fleet(devices=30, days=2, seed=3, malformed_rows=0)


def test_per_heartbeat_shape_not_flagged(tmp_path, shape_fleet):
    path = write_database(shape_fleet, tmp_path / "fleet.sqlite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_fleet(path)
    assert not [w for w in caught if issubclass(w.category, HistoryOverwrittenWarning)]


@pytest.mark.parametrize("shape, check", [
    ("overwritten", "history_overwritten"),
    ("per_device", "history_one_row_per_device"),
])
def test_lost_history_shape_detected(tmp_path, shape_fleet, shape, check):
    path = write_database(shape_fleet, tmp_path / "fleet.sqlite", shape=shape)
    with pytest.warns(HistoryOverwrittenWarning):
        analysed = load_fleet(path)
    assert analysed.quality.count(check) > 0


def test_overwritten_rows_not_counted_as_bad_json(tmp_path, shape_fleet):
    path = write_database(shape_fleet, tmp_path / "fleet.sqlite", shape="overwritten")
    analysed = load_quietly(path)
    assert analysed.quality.count("recent_events_not_json") == 0
