"""Release comparison on small hand-built fleets, checked against hand counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from analysis import load_fleet
from analysis.cli import main
from analysis.errors import InvalidInputError
from analysis.rate_power import exposure_for_power
from analysis.release import (
    BETTER,
    NO_CHANGE,
    NOT_COMPARED,
    WORSE,
    choose_versions,
    compare_release,
    compare_samples,
    database_versions,
    fleet_versions,
    relabelling_notes,
)
from analysis.release_measures import (
    Metric,
    Sample,
    boot_loop_starts,
    disconnect_metric,
    missed_heartbeats,
)
from analysis.release_report import describe_release, verdict_table
from analysis.release_within import compare_within_devices, upgrade_windows
from analysis.versions import sort_versions, version_key

START = datetime(2026, 5, 1, tzinfo=UTC)


def boot_rows(device, version, start, count, *, interval_s=300, first_uptime=60,
              skip=(), reset_reason=None, heap_min_free=None):
    """Heartbeats of one boot, `interval_s` apart; indices in `skip` were never stored."""
    rows = []
    for index in range(count):
        if index in skip:
            continue
        received = start + timedelta(seconds=index * interval_s)
        rows.append({
            "device_id": device, "received_at": received.strftime("%Y-%m-%d %H:%M:%S"),
            "uptime": first_uptime + index * interval_s, "firmware_version": version,
            "reset_reason": reset_reason, "heap_free": None if heap_min_free is None else
            heap_min_free + 1000, "heap_min_free": heap_min_free,
        })
    return rows


def numbered(rows):
    return [{**row, "id": number} for number, row in enumerate(rows, start=1)]


# Version ordering


@pytest.mark.parametrize(("versions", "expected"), [
    (["1.10.0", "1.9.0", "1.1.0"], ["1.1.0", "1.9.0", "1.10.0"]),
    (["1.3.0", "1.3.0rc1", "v1.2.0"], ["v1.2.0", "1.3.0rc1", "1.3.0"]),
    (["unknown", "1.2.0-dirty", "1.2.1", "1.2.0"], ["1.2.0", "1.2.0-dirty", "1.2.1", "unknown"]),
    (["build10", "build9"], ["build9", "build10"]),
])
def test_sort_versions_as_versions(versions, expected):
    assert sort_versions(versions) == expected


def test_version_key_missing_sorts_last():
    assert sort_versions([None, "1.0.0", np.nan, pd.NA])[0] == "1.0.0"
    assert version_key(None) > version_key("zzz")


def test_sort_versions_newest_first():
    assert sort_versions(["1.9.0", "1.10.0"], reverse=True) == ["1.10.0", "1.9.0"]


# Choosing the versions


def test_choose_versions_defaults_to_two_newest():
    assert choose_versions(["1.10.0", "1.2.0", "1.9.0"]) == ("1.9.0", "1.10.0")


def test_choose_versions_default_baseline_below_candidate():
    assert choose_versions(["1.0.0", "1.1.0", "1.2.0"], candidate="1.1.0") == ("1.2.0", "1.1.0")


def test_choose_versions_missing_candidate_lists_versions():
    with pytest.raises(InvalidInputError, match=r"'2\.0\.0' not found.*1\.0\.0, 1\.1\.0"):
        choose_versions(["1.1.0", "1.0.0"], candidate="2.0.0")


def test_choose_versions_needs_two_versions():
    with pytest.raises(InvalidInputError, match="two different versions"):
        choose_versions(["1.0.0"])


def test_database_versions_reads_distinct_versions(heartbeat_db):
    rows = (boot_rows("a", "1.10.0", START, 2) + boot_rows("b", "1.9.0", START, 2)
            + [{"device_id": "c", "received_at": "2026-05-01 00:00:00", "uptime": 5}])
    assert database_versions(heartbeat_db(numbered(rows))) == ["1.9.0", "1.10.0"]


def test_fleet_versions_ignores_missing():
    frame = pd.DataFrame({"firmware_version": ["1.10.0", None, "1.9.0", "1.9.0"]})
    assert fleet_versions(frame) == ["1.9.0", "1.10.0"]


# Measuring a fleet


def test_missed_heartbeats_inside_one_boot(heartbeat_db):
    rows = boot_rows("a", "1.0.0", START, 12, skip={3, 4, 8})
    fleet = load_fleet(heartbeat_db(numbered(rows)))
    assert missed_heartbeats(fleet.heartbeats).tolist() == [0, 0, 0, 2, 0, 0, 1, 0, 0]


def test_missed_heartbeats_not_counted_across_reboot(heartbeat_db):
    first = boot_rows("a", "1.0.0", START, 4)
    second = boot_rows("a", "1.0.0", START + timedelta(hours=3), 4, first_uptime=30)
    fleet = load_fleet(heartbeat_db(numbered(first + second)))
    assert int(missed_heartbeats(fleet.heartbeats).sum()) == 0


def test_boot_loop_counted_once():
    times = pd.to_datetime(["2026-05-01 00:00", "2026-05-01 00:02", "2026-05-01 00:04",
                            "2026-05-01 05:00"], utc=True)
    boots = pd.DataFrame({"device_id": "a", "boot_time": times,
                          "is_boot_loop": [True, True, True, False]})
    assert boot_loop_starts(boots).tolist() == [True, False, False, False]


def old_and_new_fleet(heartbeat_db):
    """dev-a: v1.0.0 with two uptime resets; dev-b: v1.1.0 with one panic; 1 day each."""
    day = 288
    rows = (boot_rows("a", "1.0.0", START, 100)
            + boot_rows("a", "1.0.0", START + timedelta(seconds=100 * 300), 100, first_uptime=20)
            + boot_rows("a", "1.0.0", START + timedelta(seconds=200 * 300), day - 200,
                        first_uptime=20, skip={50})
            + boot_rows("b", "1.1.0", START, 150, reset_reason=1, heap_min_free=150000)
            + boot_rows("b", "1.1.0", START + timedelta(seconds=150 * 300), day - 150,
                        first_uptime=20, reset_reason=4, heap_min_free=140000))
    return load_fleet(heartbeat_db(numbered(rows)))


def metric_row(comparison, key):
    rows = comparison.metrics[comparison.metrics["metric"] == key]
    return rows.iloc[0]


def test_diagnostic_metrics_not_compared_against_v100(heartbeat_db):
    comparison = compare_release(old_and_new_fleet(heartbeat_db), "1.0.0", "1.1.0")
    for key in ("unexpected_reboots", "crash_free_hours", "heap_min_free_median"):
        row = metric_row(comparison, key)
        assert row["verdict"] == NOT_COMPARED
        assert "no diagnostics" in row["reason"]
    assert any("1.0.0 sends no diagnostics" in note for note in comparison.notes)


def test_uptime_resets_counted_on_both_versions(heartbeat_db):
    comparison = compare_release(old_and_new_fleet(heartbeat_db), "1.0.0", "1.1.0")
    row = metric_row(comparison, "uptime_resets")
    assert row["verdict"] != NOT_COMPARED
    assert row["baseline_n"] == 2
    assert row["candidate_n"] == 1


def test_heartbeat_misses_counted_by_hand(heartbeat_db):
    comparison = compare_release(old_and_new_fleet(heartbeat_db), "1.0.0", "1.1.0")
    row = metric_row(comparison, "heartbeat_misses")
    assert row["baseline_n"] == 1
    assert row["candidate_n"] == 0
    exposure = metric_row(comparison, "uptime_resets")["baseline_exposure"]
    # Expected heartbeats are the device-hours in 300-second heartbeat intervals.
    assert row["baseline_exposure"] == pytest.approx(exposure * 12, rel=1e-9)


def test_rate_interval_is_exact_poisson(heartbeat_db):
    comparison = compare_release(old_and_new_fleet(heartbeat_db), "1.0.0", "1.1.0")
    row = metric_row(comparison, "uptime_resets")
    thousands = row["baseline_exposure"] / 1000
    assert row["baseline_value"] == pytest.approx(2 / thousands, rel=1e-9)
    assert row["baseline_low"] == pytest.approx(stats.chi2.ppf(0.025, 4) / 2 / thousands,
                                                rel=1e-9)
    assert row["baseline_high"] == pytest.approx(stats.chi2.ppf(0.975, 6) / 2 / thousands,
                                                 rel=1e-9)


# Verdicts


RATE_METRIC = Metric("crashes", "Crashes per 1,000 device-hours", "rate", "lower", False,
                     per=1000.0)
SHARE_METRIC = Metric("stable", "Stable hours (%)", "share", "higher", False)


def test_significant_drop_in_crashes_is_better():
    table = compare_samples([RATE_METRIC], {"crashes": Sample(60, 10_000.0)},
                            {"crashes": Sample(20, 10_000.0)})
    assert table.loc[0, "verdict"] == BETTER


def test_significant_drop_in_share_is_worse():
    table = compare_samples([SHARE_METRIC], {"stable": Sample(980, 1000.0)},
                            {"stable": Sample(900, 1000.0)})
    assert table.loc[0, "verdict"] == WORSE
    assert table.loc[0, "change"] == pytest.approx(-8.0, abs=1e-9)


def test_non_failure_family_reports_direction_only():
    metric = disconnect_metric("own_disconnect")
    table = compare_samples([metric], {metric.key: Sample(10, 100.0)},
                            {metric.key: Sample(60, 100.0)})
    assert table.loc[0, "verdict"] == "higher"


def test_verdict_uses_holm_adjusted_p_values():
    # Each alone would pass at 0.05 (p about 0.03), but not after Holm across three.
    metrics = [Metric(f"m{i}", f"m{i}", "rate", "lower", False) for i in range(3)]
    samples_b = {m.key: Sample(30, 1000.0) for m in metrics}
    samples_c = {m.key: Sample(15, 1000.0) for m in metrics}
    table = compare_samples(metrics, samples_b, samples_c)
    assert (table["p_value"] < 0.05).all()
    assert (table["verdict"] == NO_CHANGE).all()


def test_device_hours_needed_by_hand():
    table = compare_samples([RATE_METRIC], {"crashes": Sample(10, 1000.0)},
                            {"crashes": Sample(9, 1000.0)})
    # Ratio 0.9 is closer to 1 than 1/1.25, so the power calculation uses a ratio of 0.8.
    expected = exposure_for_power(10 / 1000.0, 0.8, candidate_share=0.5)
    assert table.loc[0, "device_hours_needed"] == pytest.approx(expected, rel=1e-9)


def test_ap_not_found_relabelling_is_no_change():
    metric = disconnect_metric("ap_not_found")
    table = compare_samples([metric], {metric.key: Sample(40, 100.0)},
                            {metric.key: Sample(40, 100.0)})
    assert table.loc[0, "verdict"] == NO_CHANGE
    assert table.loc[0, "change"] == pytest.approx(1.0)


def test_ap_not_found_relabelling_note():
    codes = [201] * 40 + [201] * 5 + [212] * 32 + [211] * 3
    versions = ["1.6.0"] * 40 + ["1.7.0"] * 40
    disconnects = pd.DataFrame({"firmware_version": versions, "code": codes})
    samples = {version: {"disconnects_ap_not_found": Sample(40, 100.0)}
               for version in ("1.6.0", "1.7.0")}
    notes = relabelling_notes(disconnects, samples, "1.6.0", "1.7.0")
    assert len(notes) == 1
    assert "relabelling" in notes[0]
    assert "fell from 0.40 to 0.05" in notes[0]


def test_no_relabelling_note_when_201_steady():
    disconnects = pd.DataFrame({"firmware_version": ["1.6.0", "1.7.0"], "code": [201, 201]})
    samples = {version: {"disconnects_ap_not_found": Sample(1, 100.0)}
               for version in ("1.6.0", "1.7.0")}
    assert relabelling_notes(disconnects, samples, "1.6.0", "1.7.0") == []


def test_verdict_table_and_summary_words():
    table = compare_samples([RATE_METRIC], {"crashes": Sample(60, 10_000.0)},
                            {"crashes": Sample(20, 10_000.0)})
    shown = verdict_table(table)
    assert shown.loc[0, "Verdict"] == BETTER
    assert shown.loc[0, "Change (95 % CI)"].startswith("×0.333")
    assert shown.loc[0, "n (baseline vs candidate)"] == (
        "60 vs 20 events in 10,000 vs 10,000 device-hours")

    class Comparison:
        baseline, candidate, metrics, notes = "1.0", "1.1", table, []

    assert "1 better" in describe_release(Comparison())


# Within-device windows


def test_upgrade_windows_same_days_each_side(heartbeat_db):
    rows = (boot_rows("a", "1.0.0", START + timedelta(hours=6), 12 * 24 * 3)
            + boot_rows("a", "1.1.0", START + timedelta(days=3, hours=12), 12 * 24 * 5,
                        first_uptime=30))
    fleet = load_fleet(heartbeat_db(numbered(rows)))
    windows = upgrade_windows(fleet.heartbeats, "1.0.0", "1.1.0")
    day = pd.Timestamp("2026-05-04", tz="UTC")
    assert windows["days"].tolist() == [3]
    assert windows.loc[0, "before_start"] == day - pd.Timedelta(days=3)
    assert windows.loc[0, "before_end"] == day
    assert windows.loc[0, "after_start"] == day + pd.Timedelta(days=1)
    assert windows.loc[0, "after_end"] == day + pd.Timedelta(days=4)


def test_upgrade_windows_skip_device_without_whole_day(heartbeat_db):
    rows = (boot_rows("a", "1.0.0", START + timedelta(hours=6), 12)
            + boot_rows("a", "1.1.0", START + timedelta(hours=8), 12, first_uptime=30))
    fleet = load_fleet(heartbeat_db(numbered(rows)))
    assert upgrade_windows(fleet.heartbeats, "1.0.0", "1.1.0").empty


def test_within_devices_without_upgrades(heartbeat_db):
    rows = (boot_rows("a", "1.0.0", START, 12 * 24 * 3)
            + boot_rows("b", "1.1.0", START, 12 * 24 * 3))
    within = compare_within_devices(load_fleet(heartbeat_db(numbered(rows))), "1.0.0", "1.1.0")
    assert within.windows.empty
    assert (within.metrics["baseline_n"] == 0).all()
    assert within.control_devices == 0


# Command line


def test_cli_missing_candidate_exits_2(heartbeat_db):
    db = heartbeat_db(numbered(boot_rows("a", "1.0.0", START, 3)
                               + boot_rows("b", "1.1.0", START, 3)))
    result = CliRunner().invoke(main, ["release", "--db", str(db), "--candidate", "9.9.9"])
    assert result.exit_code == 2
    assert "'9.9.9' not found" in result.output
    assert "1.0.0, 1.1.0" in result.output


def test_cli_single_version_exits_2(heartbeat_db):
    db = heartbeat_db(numbered(boot_rows("a", "1.0.0", START, 3)))
    result = CliRunner().invoke(main, ["release", "--db", str(db)])
    assert result.exit_code == 2
    assert "versions present: 1.0.0" in result.output


def test_cli_help_ends_in_example():
    result = CliRunner().invoke(main, ["release", "-h"])
    assert result.exit_code == 0
    assert "Example: fleet-report release --baseline" in result.output
