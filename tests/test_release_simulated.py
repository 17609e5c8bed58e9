"""Release verdicts on simulated fleets whose truth is known.

Two kinds of simulation are used, to keep the suite fast:

- The false-verdict rate is checked on 100 seeds drawn directly from the statistical model
  of each metric: Poisson counts on exposure, binomial shares, normal per-boot heap values.
  Each seed compares as many metrics as a real comparison, so Holm's correction works as
  it does in a report.
- The full fleet simulator (`analysis.sample`) runs one fleet where the candidate halves the
  panic and watchdog rates and leaks heap, and four fleets where both versions behave the
  same. Only panics and watchdog resets end boots there, so the true ratio of unexpected
  reboots is exactly the crash-rate multiplier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import load_fleet
from analysis.release import BETTER, NO_CHANGE, WORSE, compare_release, compare_samples
from analysis.release_measures import QUANTILE, RATE, SHARE, Sample, core_metrics, disconnect_metric
from analysis.sample import FirmwareRelease, FleetConfig, simulate_fleet
from analysis.sample.writer import write_database

INTERVAL_S = 1800
NULL_SEEDS = 100


def model_samples(metrics, rng, *, exposure):
    """Draw one version's samples from the model, the same for every version."""
    samples = {}
    for metric in metrics:
        if metric.kind == RATE:
            samples[metric.key] = Sample(int(rng.poisson(0.02 * exposure)), exposure)
        elif metric.kind == SHARE:
            trials = int(exposure)
            samples[metric.key] = Sample(int(rng.binomial(trials, 0.97)), float(trials))
        else:
            values = rng.normal(150_000, 20_000, size=int(exposure // 40))
            samples[metric.key] = Sample(values.size, 0.0, values)
    return samples


def test_same_behaviour_no_verdict_in_95_of_100():
    metrics = core_metrics(interval_s=300) + [
        disconnect_metric(family) for family in ("ap_not_found", "signal_loss", "own_disconnect")
    ]
    no_change = pd.Series(0, index=[metric.key for metric in metrics])
    for seed in range(NULL_SEEDS):
        rng = np.random.default_rng(seed)
        baseline = model_samples(metrics, rng, exposure=2000.0)
        candidate = model_samples(metrics, rng, exposure=1500.0)
        table = compare_samples(metrics, baseline, candidate).set_index("metric")
        no_change += (table["verdict"] == NO_CHANGE).astype(int)

    for metric, count in no_change.items():
        assert count >= 95, f"{metric}: no detectable change in only {count} of {NULL_SEEDS}"


def test_model_covers_every_kind():
    kinds = {metric.kind for metric in core_metrics()}
    assert kinds == {RATE, SHARE, QUANTILE}


def crash_only_config(*, seed, multiplier=1.0, leak=0.0):
    """Twenty devices for 12 days; the candidate reaches all of them on day 4."""
    releases = (
        FirmwareRelease("1.1.0", has_diagnostics=True),
        FirmwareRelease("1.2.0", has_diagnostics=True, rollout_day=4, rollout_days=1,
                        crash_rate_multiplier=multiplier, leak_bytes_per_hour=leak),
    )
    return FleetConfig(
        devices=20, days=12, heartbeat_interval_s=INTERVAL_S, seed=seed, releases=releases,
        panics_per_device_day=0.6, watchdog_resets_per_device_day=0.3,
        fatal_config_per_device_day=0, power_cuts_per_device_day=0, camera_loop_share=0,
        brownout_loop_share=0, leaking_share=0, ap_outages_per_device_day=0,
        server_outages_per_day=0, silent_deaths_per_device_day=0, weak_signal_share=0,
        signal_losses_per_device_day=0, malformed_rows=0,
    )


def simulate_and_compare(config, path):
    simulated = simulate_fleet(config)
    fleet = load_fleet(write_database(simulated, path))
    return simulated, fleet, compare_release(fleet, interval_s=INTERVAL_S)


@pytest.fixture(scope="module")
def better_crashes_worse_heap(tmp_path_factory):
    # 500 bytes an hour takes more than 10 days to reach the heap floor, so the leak
    # adds no panic in the window and the true crash ratio stays 0.5.
    config = crash_only_config(seed=1, multiplier=0.5, leak=500.0)
    return simulate_and_compare(config, tmp_path_factory.mktemp("release") / "fleet.sqlite")


def metric_row(comparison, key):
    return comparison.metrics.set_index("metric").loc[key]


def test_halved_crash_rate_is_better(better_crashes_worse_heap):
    _, _, comparison = better_crashes_worse_heap
    row = metric_row(comparison, "unexpected_reboots")
    assert row["verdict"] == BETTER
    assert row["change_low"] <= 0.5 <= row["change_high"]


def test_leaking_candidate_heap_is_worse(better_crashes_worse_heap):
    _, _, comparison = better_crashes_worse_heap
    assert metric_row(comparison, "heap_min_free_median")["verdict"] == WORSE


def test_heap_change_contains_model_truth(better_crashes_worse_heap):
    simulated, fleet, comparison = better_crashes_worse_heap
    boots = fleet.boots
    ended = boots[boots["device_id"].eq(boots["device_id"].shift(-1))
                  & boots["last_heap_min_free"].notna()]
    base = simulated.truth_devices.set_index("device_id")["heap_base"]
    leak = ended["firmware_version"].map({"1.1.0": 0.0, "1.2.0": 500.0})
    # The noise-free heap level at each boot's end. The short dips below it (a few kB,
    # about the same in both versions) cancel in the difference of medians.
    level = ended["device_id"].map(base) - leak * ended["duration_s"] / 3600
    truth = (level[ended["firmware_version"] == "1.2.0"].median()
             - level[ended["firmware_version"] == "1.1.0"].median())
    row = metric_row(comparison, "heap_min_free_median")
    assert row["change_low"] <= truth <= row["change_high"]


def test_same_behaviour_full_simulator(tmp_path):
    # At a 5 % family-wise level a metric rarely gives a false verdict, so two false
    # verdicts of one metric in four seeds would happen by chance about 1 % of the time.
    false_verdicts: list[str] = []
    for seed in (1, 2, 3, 4):
        _, _, comparison = simulate_and_compare(crash_only_config(seed=seed),
                                                tmp_path / f"fleet_{seed}.sqlite")
        verdicts = comparison.metrics.set_index("metric")["verdict"]
        false_verdicts += [metric for metric, verdict in verdicts.items()
                           if verdict != NO_CHANGE]

    counts = pd.Series(false_verdicts, dtype=object).value_counts()
    assert (counts <= 1).all(), counts.to_dict()
