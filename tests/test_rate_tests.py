"""The release statistics against hand calculations and scipy, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.errors import InvalidInputError
from analysis.rate_power import conditional_test_power, exposure_for_power
from analysis.rate_tests import (
    bootstrap_quantile_difference,
    clopper_pearson_interval,
    compare_poisson_rates,
    compare_proportions,
    compare_rate_ratios,
    holm_adjust,
    quantile_interval,
)

TOLERANCE = 1e-9


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (10, 10), (17, 250)])
def test_clopper_pearson_matches_scipy(successes, trials):
    expected = stats.binomtest(successes, trials).proportion_ci(0.95, method="exact")
    low, high = clopper_pearson_interval(successes, trials)
    assert low == pytest.approx(expected.low, abs=TOLERANCE)
    assert high == pytest.approx(expected.high, abs=TOLERANCE)


def test_clopper_pearson_zero_successes_by_hand():
    # With no success, the upper bound solves (1 - p)^n = alpha / 2.
    low, high = clopper_pearson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=TOLERANCE)


def test_rate_ratio_p_value_matches_binomtest():
    result = compare_poisson_rates(7, 1200.0, 19, 1500.0)
    expected = stats.binomtest(7, 26, 1200.0 / 2700.0).pvalue
    assert result.p_value == pytest.approx(expected, abs=TOLERANCE)


def test_rate_ratio_p_value_by_hand():
    # Two-sided "minimum likelihood" rule: add the null probabilities of every candidate
    # count that is no more likely than the one observed.
    count_c, total, share = 4, 15, 0.5
    pmf = stats.binom.pmf(np.arange(total + 1), total, share)
    expected = pmf[pmf <= pmf[count_c] * (1 + 1e-7)].sum()
    result = compare_poisson_rates(count_c, 100.0, total - count_c, 100.0)
    assert result.p_value == pytest.approx(expected, abs=TOLERANCE)


def test_rate_ratio_estimate_and_interval_by_hand():
    count_c, exposure_c, count_b, exposure_b = 12, 800.0, 30, 1000.0
    result = compare_poisson_rates(count_c, exposure_c, count_b, exposure_b)
    total = count_c + count_b
    low_share = stats.beta.ppf(0.025, count_c, total - count_c + 1)
    high_share = stats.beta.ppf(0.975, count_c + 1, total - count_c)
    scale = exposure_b / exposure_c

    assert result.estimate == pytest.approx((12 / 800) / (30 / 1000), abs=TOLERANCE)
    assert result.low == pytest.approx(low_share / (1 - low_share) * scale, abs=TOLERANCE)
    assert result.high == pytest.approx(high_share / (1 - high_share) * scale, abs=TOLERANCE)
    assert result.kind == "ratio"


def test_rate_ratio_zero_candidate_events():
    result = compare_poisson_rates(0, 100.0, 8, 100.0)
    assert result.estimate == 0.0
    assert result.low == 0.0
    assert result.high == pytest.approx((1 - 0.025 ** (1 / 8)) / 0.025 ** (1 / 8),
                                        abs=TOLERANCE)


def test_rate_ratio_zero_baseline_events():
    result = compare_poisson_rates(5, 100.0, 0, 100.0)
    assert math.isinf(result.estimate)
    assert math.isinf(result.high)


def test_rate_ratio_no_events_at_all():
    result = compare_poisson_rates(0, 100.0, 0, 250.0)
    assert math.isnan(result.estimate)
    assert result.p_value == 1.0


def test_rate_ratio_rejects_zero_exposure():
    with pytest.raises(InvalidInputError, match="exposure_baseline"):
        compare_poisson_rates(1, 10.0, 1, 0.0)


def test_proportions_fisher_matches_scipy():
    result = compare_proportions(45, 50, 30, 48)
    expected = stats.fisher_exact([[45, 5], [30, 18]]).pvalue
    assert result.p_value == pytest.approx(expected, abs=TOLERANCE)


def test_proportions_newcombe_interval_by_hand():
    z = stats.norm.ppf(0.975)

    def wilson(k, n):
        share = k / n
        centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * math.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
        return centre - half, centre + half

    low_c, high_c = wilson(45, 50)
    low_b, high_b = wilson(30, 48)
    difference = 45 / 50 - 30 / 48
    result = compare_proportions(45, 50, 30, 48)
    assert result.estimate == pytest.approx(difference, abs=TOLERANCE)
    assert result.low == pytest.approx(
        difference - math.sqrt((45 / 50 - low_c) ** 2 + (high_b - 30 / 48) ** 2), abs=TOLERANCE)
    assert result.high == pytest.approx(
        difference + math.sqrt((high_c - 45 / 50) ** 2 + (30 / 48 - low_b) ** 2), abs=TOLERANCE)


def test_holm_adjust_by_hand():
    # Sorted: 0.01 (x3), 0.03 (x2), 0.04 (x1); each step keeps the running maximum.
    adjusted = holm_adjust([0.04, 0.01, 0.03])
    assert adjusted.tolist() == pytest.approx([0.06, 0.03, 0.06], abs=TOLERANCE)


def test_holm_adjust_keeps_untested_metrics_missing():
    adjusted = holm_adjust([0.02, np.nan, 0.5])
    assert adjusted[0] == pytest.approx(0.04, abs=TOLERANCE)
    assert np.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.5, abs=TOLERANCE)


def test_holm_adjust_caps_at_one():
    assert holm_adjust([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_quantile_interval_ranks_by_hand():
    # For n = 100 and the median, P(40 <= B <= 60) >= 0.95 with B ~ Binomial(100, 0.5).
    low, high = quantile_interval(np.arange(1, 101), 0.5)
    assert (low, high) == (40.0, 61.0)
    assert stats.binom.cdf(60, 100, 0.5) - stats.binom.cdf(39, 100, 0.5) >= 0.95


def test_quantile_interval_too_few_values():
    low, high = quantile_interval([1.0, 2.0, 3.0], 0.5)
    assert np.isnan(low)
    assert np.isnan(high)


def test_bootstrap_repeats_with_same_seed():
    rng = np.random.default_rng(1)
    candidate, baseline = rng.normal(100, 10, 60), rng.normal(100, 10, 70)
    first = bootstrap_quantile_difference(candidate, baseline, 0.5)
    second = bootstrap_quantile_difference(candidate, baseline, 0.5)
    assert first == second


def test_bootstrap_estimate_is_quantile_difference():
    candidate, baseline = np.arange(50.0), np.arange(50.0) + 20
    result = bootstrap_quantile_difference(candidate, baseline, 0.1)
    assert result.estimate == pytest.approx(
        np.quantile(candidate, 0.1) - np.quantile(baseline, 0.1), abs=TOLERANCE)


def test_bootstrap_detects_clear_shift():
    rng = np.random.default_rng(2)
    result = bootstrap_quantile_difference(rng.normal(80, 5, 80), rng.normal(100, 5, 80), 0.5)
    assert result.high < 0
    assert result.p_value < 0.01


def test_bootstrap_rejects_single_value():
    with pytest.raises(InvalidInputError, match="at least 2"):
        bootstrap_quantile_difference([1.0], [1.0, 2.0], 0.5)


def test_ratio_of_rate_ratios_by_hand():
    counts, exposures = (30, 40, 50, 45), (100.0, 120.0, 300.0, 280.0)
    result = compare_rate_ratios(counts, exposures)
    log_ratio = math.log((30 / 100) / (40 / 120)) - math.log((50 / 300) / (45 / 280))
    error = math.sqrt(1 / 30 + 1 / 40 + 1 / 50 + 1 / 45)
    z = stats.norm.ppf(0.975)
    assert result.estimate == pytest.approx(math.exp(log_ratio), abs=TOLERANCE)
    assert result.low == pytest.approx(math.exp(log_ratio - z * error), abs=TOLERANCE)
    assert result.high == pytest.approx(math.exp(log_ratio + z * error), abs=TOLERANCE)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(log_ratio) / error),
                                           abs=TOLERANCE)


def test_ratio_of_rate_ratios_undefined_with_zero():
    result = compare_rate_ratios((0, 4, 5, 6), (1.0, 1.0, 1.0, 1.0))
    assert math.isnan(result.estimate)


def test_exposure_for_power_formula_by_hand():
    z_sum = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    expected = z_sum**2 * (1 / (0.5 * 0.4) + 1 / 0.6) / (0.002 * math.log(0.5) ** 2)
    assert exposure_for_power(0.002, 0.5, candidate_share=0.4) == pytest.approx(
        expected, rel=TOLERANCE)


@pytest.mark.parametrize(("ratio", "share"), [(0.5, 0.5), (1.5, 0.3), (2.0, 0.6)])
def test_exposure_for_power_gives_about_eighty_percent(ratio, share):
    exposure = exposure_for_power(0.01, ratio, candidate_share=share)
    power = conditional_test_power(0.01, ratio, exposure * share, exposure * (1 - share))
    # The exact test is discrete and a little conservative, so its power lies just under.
    assert 0.74 <= power <= 0.86


def test_exposure_for_power_rejects_no_change():
    with pytest.raises(InvalidInputError, match="ratio"):
        exposure_for_power(0.01, 1.0)
