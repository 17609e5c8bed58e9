"""Statistics for comparing two firmware versions: exact intervals, tests and Holm's method.

Rates (events per exposure) are compared with the exact conditional test for two Poisson
rates: given the total count n, the candidate's count is Binomial(n, p) with
p = E_c·r / (E_c·r + E_b), where E is the exposure and r the rate ratio. The test of r = 1
is a binomial test of p = E_c / (E_c + E_b), and the interval for r maps the
Clopper–Pearson interval of p through r = p / (1 − p) · E_b / E_c.

Shares (crash-free hours, crash-free devices) are compared by their difference with
Newcombe's hybrid score interval and Fisher's exact test. Quantiles (heap low-water marks)
are compared with a percentile bootstrap under a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.errors import InvalidInputError

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20260501
# Resamples drawn per block, so memory stays near 200 × sample size values.
_BOOTSTRAP_BLOCK = 200


@dataclass(frozen=True)
class Comparison:
    """The change from baseline to candidate in one metric.

    Attributes
    ----------
    estimate : float
        Rate ratio (candidate / baseline) for rates; candidate minus baseline otherwise.
        NaN when the data define no change (no events in either version).
    low, high : float
        The confidence interval of `estimate`; ``high`` is ``inf`` when the baseline saw
        no event.
    p_value : float
        Two-sided p-value of "no change", before any correction for multiple testing.
    kind : str
        ``"ratio"`` or ``"difference"``: what `estimate` is.
    test : str
        The test and interval method, for the report.
    """

    estimate: float
    low: float
    high: float
    p_value: float
    kind: str
    test: str


def compare_rate_ratios(
    counts: tuple[int, int, int, int],
    exposures: tuple[float, float, float, float],
    *,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Compare the change of one group's rate with the change of another's (difference in
    differences on the log scale).

    The estimate is (a/E_a ÷ b/E_b) ÷ (c/E_c ÷ d/E_d) for counts (a, b, c, d): group 1
    after and before, group 2 after and before. The interval and p-value use the normal
    approximation of its logarithm, whose variance is about 1/a + 1/b + 1/c + 1/d, so they
    are approximate and undefined (NaN) when a count is 0.

    Examples
    --------
    >>> result = compare_rate_ratios((10, 20, 20, 20), (100.0, 100.0, 100.0, 100.0))
    >>> round(result.estimate, 3), round(result.p_value, 3)
    (0.5, 0.166)
    """
    _check_confidence(confidence)
    for count in counts:
        _check_counts(count)
    for exposure in exposures:
        _check_exposure(exposure, "exposure")
    test = "ratio of rate ratios; Wald interval and test on its logarithm (approximate)"
    if min(counts) == 0:
        return Comparison(math.nan, math.nan, math.nan, math.nan, "ratio", test)

    rates = [count / exposure for count, exposure in zip(counts, exposures, strict=True)]
    log_ratio = math.log(rates[0] / rates[1]) - math.log(rates[2] / rates[3])
    standard_error = math.sqrt(sum(1.0 / count for count in counts))
    z = stats.norm.ppf(0.5 + confidence / 2)
    p_value = 2 * stats.norm.sf(abs(log_ratio) / standard_error)
    return Comparison(math.exp(log_ratio), math.exp(log_ratio - z * standard_error),
                      math.exp(log_ratio + z * standard_error), float(p_value), "ratio", test)


def clopper_pearson_interval(
    successes: int, trials: int, *, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Return the exact (Clopper–Pearson) interval of a binomial proportion.

    Parameters
    ----------
    successes, trials : int
        Observed successes out of `trials` (``0 <= successes <= trials``).
    confidence : float
        Coverage of the interval, for example 0.95.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(0, 1)`` when `trials` is 0.

    Examples
    --------
    >>> low, high = clopper_pearson_interval(0, 10)
    >>> round(low, 6), round(high, 4)
    (0.0, 0.3085)
    """
    _check_counts(successes, trials)
    _check_confidence(confidence)
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    high = 1.0 if successes == trials else stats.beta.ppf(
        1 - alpha / 2, successes + 1, trials - successes
    )
    return float(low), float(high)


def compare_poisson_rates(
    count_candidate: int,
    exposure_candidate: float,
    count_baseline: int,
    exposure_baseline: float,
    *,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Compare two Poisson rates with the exact conditional binomial test.

    Parameters
    ----------
    count_candidate, count_baseline : int
        Events seen on each version.
    exposure_candidate, exposure_baseline : float
        Exposure of each version (device-hours, device-days, expected heartbeats), > 0.
    confidence : float
        Coverage of the interval for the rate ratio.

    Returns
    -------
    Comparison
        Rate ratio candidate / baseline, its exact interval and the two-sided p-value of
        ``scipy.stats.binomtest`` (the "minimum likelihood" two-sided rule).

    Examples
    --------
    >>> result = compare_poisson_rates(10, 1000.0, 20, 1000.0)
    >>> result.estimate, round(result.p_value, 4)
    (0.5, 0.0987)
    """
    _check_counts(count_candidate)
    _check_counts(count_baseline)
    _check_exposure(exposure_candidate, "exposure_candidate")
    _check_exposure(exposure_baseline, "exposure_baseline")
    test = "exact conditional binomial test; Clopper–Pearson interval for the rate ratio"

    total = count_candidate + count_baseline
    if total == 0:
        return Comparison(math.nan, 0.0, math.inf, 1.0, "ratio", test)

    null_share = exposure_candidate / (exposure_candidate + exposure_baseline)
    p_value = stats.binomtest(count_candidate, total, null_share).pvalue
    low_share, high_share = clopper_pearson_interval(count_candidate, total,
                                                     confidence=confidence)
    scale = exposure_baseline / exposure_candidate
    return Comparison(
        estimate=_rate_ratio(count_candidate, exposure_candidate, count_baseline,
                             exposure_baseline),
        low=_share_to_ratio(low_share, scale),
        high=_share_to_ratio(high_share, scale),
        p_value=float(p_value),
        kind="ratio",
        test=test,
    )


def compare_proportions(
    successes_candidate: int,
    trials_candidate: int,
    successes_baseline: int,
    trials_baseline: int,
    *,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Compare two proportions by their difference, candidate minus baseline.

    The interval is Newcombe's hybrid score interval (his method 10, built from the two
    Wilson intervals) and the p-value is Fisher's exact test on the 2×2 table.

    Parameters
    ----------
    successes_candidate, trials_candidate, successes_baseline, trials_baseline : int
        Counts of each version; both trial counts must be positive.
    confidence : float
        Coverage of the interval.

    Returns
    -------
    Comparison
        Difference of the two proportions (as fractions, not percent).

    Examples
    --------
    >>> result = compare_proportions(9, 10, 5, 10)
    >>> round(result.estimate, 2), round(result.p_value, 4)
    (0.4, 0.1409)
    """
    for successes, trials in ((successes_candidate, trials_candidate),
                              (successes_baseline, trials_baseline)):
        _check_counts(successes, trials)
        if trials == 0:
            raise InvalidInputError("compare_proportions needs at least one trial per version")
    _check_confidence(confidence)

    share_c = successes_candidate / trials_candidate
    share_b = successes_baseline / trials_baseline
    low_c, high_c = _wilson_interval(successes_candidate, trials_candidate, confidence)
    low_b, high_b = _wilson_interval(successes_baseline, trials_baseline, confidence)
    difference = share_c - share_b
    low = difference - math.hypot(share_c - low_c, high_b - share_b)
    high = difference + math.hypot(high_c - share_c, share_b - low_b)

    table = [[successes_candidate, trials_candidate - successes_candidate],
             [successes_baseline, trials_baseline - successes_baseline]]
    p_value = stats.fisher_exact(table).pvalue
    return Comparison(difference, low, high, float(p_value), "difference",
                      "Fisher's exact test; Newcombe hybrid score interval")


def bootstrap_quantile_difference(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    quantile: float,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Compare a quantile of two samples with a percentile bootstrap.

    Each resample draws both samples again with replacement, independently. The interval
    is the percentile interval of the resampled differences, and the p-value is twice the
    smaller share of resampled differences on either side of zero, counting the observed
    sample as one resample so that it is never 0.

    Parameters
    ----------
    candidate, baseline : sequence of float
        Values per unit (for example the last ``heap_min_free`` of each boot); each
        sample needs at least two values.
    quantile : float
        The quantile compared, in 0..1 (0.5 is the median).
    confidence : float
        Coverage of the interval.
    resamples : int
        Number of bootstrap resamples.
    seed : int
        Seed of the random generator, so that the same data give the same result.

    Returns
    -------
    Comparison
        Quantile of `candidate` minus quantile of `baseline`.
    """
    candidate_values = _as_sample(candidate, "candidate")
    baseline_values = _as_sample(baseline, "baseline")
    if not 0 <= quantile <= 1:
        raise InvalidInputError(f"quantile must lie in 0..1, got {quantile}")
    _check_confidence(confidence)

    observed = float(np.quantile(candidate_values, quantile)
                     - np.quantile(baseline_values, quantile))
    rng = np.random.default_rng(seed)
    differences = (_resampled_quantiles(candidate_values, quantile, resamples, rng)
                   - _resampled_quantiles(baseline_values, quantile, resamples, rng))

    alpha = 1.0 - confidence
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    below = (1 + np.count_nonzero(differences <= 0)) / (resamples + 1)
    above = (1 + np.count_nonzero(differences >= 0)) / (resamples + 1)
    p_value = float(min(1.0, 2 * min(below, above)))
    return Comparison(observed, float(low), float(high), p_value, "difference",
                      f"percentile bootstrap, {resamples} resamples, seed {seed}")


def quantile_interval(
    values: Sequence[float] | np.ndarray, quantile: float, *, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Return a distribution-free confidence interval of a quantile from order statistics.

    With n sorted values x_(1) <= ... <= x_(n), the number of values below the true
    quantile q is Binomial(n, q), so [x_(j), x_(k)] with j and k from its quantiles covers
    it with at least the requested confidence.

    Returns
    -------
    tuple of float
        ``(low, high)``. A bound is NaN when the sample is too small to give it at this
        confidence, which for the median at 95 % means fewer than 6 values.

    Examples
    --------
    >>> quantile_interval(range(1, 101), 0.5)
    (40.0, 61.0)
    """
    _check_confidence(confidence)
    sample = np.sort(np.asarray(values, dtype=float))
    sample = sample[~np.isnan(sample)]
    size = sample.size
    alpha = 1.0 - confidence
    lower_rank = int(stats.binom.ppf(alpha / 2, size, quantile))
    upper_rank = int(stats.binom.ppf(1 - alpha / 2, size, quantile)) + 1
    low = sample[lower_rank - 1] if 1 <= lower_rank <= size else np.nan
    high = sample[upper_rank - 1] if 1 <= upper_rank <= size else np.nan
    return float(low), float(high)


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Adjust p-values for multiple testing with Holm's step-down method.

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values; NaN marks a metric that was not tested and stays NaN.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order: the k-th smallest of m p-values becomes
        the largest of (m − j + 1)·p_(j) over j ≤ k, capped at 1.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.06, 0.06]
    """
    raw = np.asarray(p_values, dtype=float)
    adjusted = np.full(raw.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(raw))
    if tested.size == 0:
        return adjusted

    order = tested[np.argsort(raw[tested], kind="stable")]
    multipliers = np.arange(tested.size, 0, -1)
    stepped = np.maximum.accumulate(raw[order] * multipliers)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _rate_ratio(count_c: int, exposure_c: float, count_b: int, exposure_b: float) -> float:
    if count_b == 0:
        return math.inf
    return (count_c / exposure_c) / (count_b / exposure_b)


def _share_to_ratio(share: float, scale: float) -> float:
    if share >= 1.0:
        return math.inf
    return share / (1.0 - share) * scale


def _wilson_interval(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    interval = stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def _resampled_quantiles(
    values: np.ndarray, quantile: float, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    results = np.empty(resamples)
    for start in range(0, resamples, _BOOTSTRAP_BLOCK):
        size = min(_BOOTSTRAP_BLOCK, resamples - start)
        drawn = values[rng.integers(0, values.size, size=(size, values.size))]
        results[start:start + size] = np.quantile(drawn, quantile, axis=1)
    return results


def _as_sample(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    sample = np.asarray(values, dtype=float)
    sample = sample[~np.isnan(sample)]
    if sample.size < 2:
        raise InvalidInputError(
            f"{name} has {sample.size} value(s); a bootstrap needs at least 2 per version"
        )
    return sample


def _check_counts(count: int, trials: int | None = None) -> None:
    if count < 0 or int(count) != count:
        raise InvalidInputError(f"a count must be a whole number >= 0, got {count}")
    if trials is not None and not count <= trials:
        raise InvalidInputError(f"successes ({count}) must not exceed trials ({trials})")


def _check_exposure(exposure: float, name: str) -> None:
    if not exposure > 0 or not math.isfinite(exposure):
        raise InvalidInputError(f"{name} must be a positive number, got {exposure}")


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must lie in (0, 1), got {confidence}")
