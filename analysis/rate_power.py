"""Power of the exact conditional test for two Poisson rates, and the exposure it needs.

`exposure_for_power` estimates how many device-hours would show a given change, from the
normal approximation of the log rate ratio. `conditional_test_power` computes the exact
power of `analysis.rate_tests.compare_poisson_rates`, to check that estimate.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analysis.errors import InvalidInputError


def exposure_for_power(
    baseline_rate: float,
    ratio: float,
    *,
    candidate_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Estimate the total exposure at which a rate ratio would be detected.

    Uses the normal approximation to the log rate ratio, whose variance is about
    1/μ_c + 1/μ_b for expected counts μ. With total exposure E split as s·E (candidate) and
    (1 − s)·E (baseline), the two-sided test at level `alpha` reaches `power` when
    E = (z_{1−α/2} + z_{power})² · (1/(r·s) + 1/(1 − s)) / (λ_b · ln(r)²). The exact
    conditional test is discrete, so its power at this exposure is close to `power`
    rather than equal (see `conditional_test_power`).

    Parameters
    ----------
    baseline_rate : float
        Events per unit of exposure on the baseline, > 0.
    ratio : float
        Rate ratio candidate / baseline to detect, > 0 and not 1.
    candidate_share : float
        Share of the exposure on the candidate, in (0, 1).
    alpha : float
        Two-sided significance level.
    power : float
        Probability of detecting the change, in (0, 1).

    Returns
    -------
    float
        Total exposure (both versions together), in the unit of `baseline_rate`.

    Examples
    --------
    >>> round(exposure_for_power(0.01, 0.5))
    9802
    """
    if not baseline_rate > 0 or not math.isfinite(baseline_rate):
        raise InvalidInputError(f"baseline_rate must be a positive number, got {baseline_rate}")
    if not ratio > 0 or ratio == 1 or not math.isfinite(ratio):
        raise InvalidInputError(f"ratio must be positive and not 1, got {ratio}")
    if not 0 < candidate_share < 1:
        raise InvalidInputError(f"candidate_share must lie in (0, 1), got {candidate_share}")

    z_sum = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    inverse_counts = 1 / (ratio * candidate_share) + 1 / (1 - candidate_share)
    return float(z_sum**2 * inverse_counts / (baseline_rate * math.log(ratio) ** 2))


def conditional_test_power(
    baseline_rate: float,
    ratio: float,
    exposure_candidate: float,
    exposure_baseline: float,
    *,
    alpha: float = 0.05,
) -> float:
    """Compute the exact power of `compare_poisson_rates` at level `alpha`.

    Sums, over the total count n (Poisson), the probability that the candidate's count
    falls where the two-sided binomial test rejects. Counts beyond 12 standard deviations
    above the mean are left out (their probability is below 1e-30).

    Returns
    -------
    float
        Probability that the test rejects "no change" when the true ratio is `ratio`.
    """
    for name, exposure in (("exposure_candidate", exposure_candidate),
                           ("exposure_baseline", exposure_baseline)):
        if not exposure > 0 or not math.isfinite(exposure):
            raise InvalidInputError(f"{name} must be a positive number, got {exposure}")
    mean_c = baseline_rate * ratio * exposure_candidate
    mean_b = baseline_rate * exposure_baseline
    mean_total = mean_c + mean_b
    null_share = exposure_candidate / (exposure_candidate + exposure_baseline)
    true_share = mean_c / mean_total

    power = 0.0
    largest = int(mean_total + 12 * math.sqrt(mean_total) + 10)
    for total in range(1, largest + 1):
        rejected = _rejection_region(total, null_share, alpha)
        counts = np.flatnonzero(rejected)
        reject_probability = stats.binom.pmf(counts, total, true_share).sum()
        power += stats.poisson.pmf(total, mean_total) * reject_probability
    return float(power)


def _rejection_region(total: int, null_share: float, alpha: float) -> np.ndarray:
    # The same two-sided rule as scipy.stats.binomtest: the p-value of k sums the null
    # probabilities no larger than that of k, with its relative tolerance of 1e-7.
    pmf = stats.binom.pmf(np.arange(total + 1), total, null_share)
    order = np.sort(pmf)
    cumulative = np.cumsum(order)
    position = np.searchsorted(order, pmf * (1 + 1e-7), side="right")
    p_values = cumulative[position - 1]
    return p_values <= alpha
