"""Firmware release impact: did the candidate version make the fleet better or worse?

`compare_release` measures the baseline and the candidate version on the same fleet, by
exposure (device-hours), and compares each metric with the test that suits it (see
`analysis.rate_tests`). A verdict is "better" or "worse" only when the p-value, adjusted
with Holm's method across every compared metric, is below `ALPHA`.

Only metrics that both versions report are compared. Firmware v1.0.0 sends no diagnostics,
so against it only the figures found from heartbeats alone are compared: reboots seen as
uptime resets and missed heartbeats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analysis import rate_power, rate_tests
from analysis.database import database_label, discover_schema, open_database, retry_while_locked
from analysis.disconnects import collect_disconnects, counted
from analysis.errors import InvalidInputError, MissingColumnError
from analysis.release_measures import (
    Metric,
    Sample,
    measure_versions,
    release_metrics,
    reports_diagnostics,
)
from analysis.stability import poisson_rate_interval
from analysis.versions import sort_versions

logger = logging.getLogger(__name__)

ALPHA = 0.05
BETTER, WORSE, NO_CHANGE, NOT_COMPARED = "better", "worse", "no detectable change", "not compared"
HIGHER, LOWER = "higher", "lower"
# Smallest change the power calculation uses when the observed ratio is closer to 1.
MIN_EFFECT_RATIO = 1.25
POWER = 0.8
AP_NOT_FOUND_OLD = (201,)
AP_NOT_FOUND_SPLIT = (210, 211, 212)

COMPARISON_COLUMNS = (
    "metric", "label", "kind", "better_when", "baseline_value", "baseline_low",
    "baseline_high", "candidate_value", "candidate_low", "candidate_high", "change",
    "change_low", "change_high", "change_kind", "p_value", "p_holm", "verdict",
    "baseline_n", "candidate_n", "baseline_exposure", "candidate_exposure", "sample_size",
    "device_hours_needed", "test", "reason",
)


@dataclass(frozen=True)
class ReleaseComparison:
    """The comparison of a candidate firmware version with a baseline version.

    Attributes
    ----------
    baseline, candidate : str
        The two versions.
    metrics : DataFrame
        One row per metric, columns `COMPARISON_COLUMNS`; rows with verdict
        "not compared" carry the reason.
    notes : list of str
        Limits and warnings in words (relabelled disconnect codes, missing diagnostics).
    versions : list of str
        Every version in the fleet, oldest first.
    """

    baseline: str
    candidate: str
    metrics: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)

    @property
    def compared(self) -> pd.DataFrame:
        """The metric rows that were compared (verdict other than "not compared")."""
        return self.metrics[self.metrics["verdict"] != NOT_COMPARED]


def fleet_versions(heartbeats: pd.DataFrame) -> list[str]:
    """Return the firmware versions in `heartbeats`, oldest first.

    Examples
    --------
    >>> fleet_versions(pd.DataFrame({"firmware_version": ["1.10.0", "1.9.0", None]}))
    ['1.9.0', '1.10.0']
    """
    versions = heartbeats["firmware_version"].dropna().astype(str).unique()
    return sort_versions(versions)


def database_versions(db: str | Path, *, table: str = "heartbeats") -> list[str]:
    """Return the firmware versions stored in a heartbeat database, oldest first.

    Reads only the distinct values of the version column, so a command can check the
    versions it was given before it loads the whole table.

    Raises
    ------
    MissingColumnError
        If the table has no firmware version column.
    """
    label = database_label(db)
    engine = open_database(db)
    try:
        schema = discover_schema(engine, table, database=label)
        column = schema.columns.get("firmware_version")
        if column is None:
            raise MissingColumnError(
                f"table {schema.table!r} has no firmware version column, so versions cannot "
                "be compared; map it with columns={'firmware_version': '<column>'}",
                table=schema.table, column="firmware_version")
        statement = (sa.select(sa.column(column)).select_from(sa.table(schema.table))
                     .where(sa.column(column).is_not(None)).distinct())

        def read() -> list[str]:
            with engine.connect() as connection:
                return [str(value) for (value,) in connection.execute(statement)]

        return sort_versions(set(retry_while_locked(read, database=label)))
    finally:
        engine.dispose()


def choose_versions(
    versions: Iterable[str], baseline: str = "", candidate: str = ""
) -> tuple[str, str]:
    """Return the (baseline, candidate) pair, defaulting to the two newest versions.

    Parameters
    ----------
    versions : iterable of str
        The versions present, in any order.
    baseline, candidate : str
        Requested versions; empty picks the newest version as candidate and the newest
        older one as baseline.

    Raises
    ------
    InvalidInputError
        If a requested version is not present, both are the same, or fewer than two
        versions exist. The message lists the versions present.
    """
    present = sort_versions(set(versions))
    listing = ", ".join(present) or "none"
    for name, version in (("baseline", baseline), ("candidate", candidate)):
        if version and version not in present:
            raise InvalidInputError(
                f"{name} version {version!r} not found; versions present: {listing}"
            )

    candidate = candidate or (present[-1] if present else "")
    older = [version for version in present if version != candidate]
    baseline = baseline or (older[-1] if older else "")
    if not baseline or not candidate or baseline == candidate:
        raise InvalidInputError(
            f"a release comparison needs two different versions, got baseline {baseline!r} "
            f"and candidate {candidate!r}; versions present: {listing}"
        )
    return baseline, candidate


def compare_release(
    fleet: object,
    baseline: str = "",
    candidate: str = "",
    *,
    interval_s: float = 300,
    gap_factor: float = 3,
    alpha: float = ALPHA,
    confidence: float = rate_tests.CONFIDENCE,
) -> ReleaseComparison:
    """Compare a candidate firmware version with a baseline on one fleet.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`, with both versions in it.
    baseline, candidate : str
        The versions; empty picks the two newest (see `choose_versions`).
    interval_s, gap_factor : float
        Heartbeat interval of the firmware (s) and the gap rule of device-hours (see
        `analysis.exposure.device_hours`).
    alpha : float
        Family-wise error rate: a metric gets a verdict when its Holm-adjusted p-value is
        below `alpha`.
    confidence : float
        Coverage of every interval shown (not adjusted for multiple testing).

    Returns
    -------
    ReleaseComparison

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> result = compare_release(load_fleet(ensure_sample_database()), "1.0.0", "1.1.0")
    >>> result.metrics.loc[result.metrics["metric"] == "heap_min_free_median", "verdict"].item()
    'not compared'
    """
    versions = fleet_versions(fleet.heartbeats)
    baseline, candidate = choose_versions(versions, baseline, candidate)
    options = {"interval_s": interval_s, "gap_factor": gap_factor}
    disconnects = counted(collect_disconnects(fleet.heartbeats, fleet.events))
    samples = measure_versions(fleet.heartbeats, fleet.boots, disconnects,
                               (baseline, candidate), **options)
    has_diagnostics = {version: reports_diagnostics(fleet.heartbeats, version)
                       for version in (baseline, candidate)}

    metrics = release_metrics(samples[baseline], samples[candidate], interval_s=interval_s)
    table = compare_samples(metrics, samples[baseline], samples[candidate],
                            has_diagnostics=has_diagnostics[baseline]
                            and has_diagnostics[candidate],
                            alpha=alpha, confidence=confidence)
    notes = _diagnostics_notes(baseline, candidate, has_diagnostics)
    notes += relabelling_notes(disconnects, samples, baseline, candidate)
    if fleet.quality.count("history_overwritten") or fleet.quality.count(
            "history_one_row_per_device"):
        notes.append("The table lost diagnostic history (rows overwritten or one row per "
                     "device), so diagnostic figures per version may be wrong.")
    logger.info("compared firmware %s with %s on %d metrics", candidate, baseline,
                int((table["verdict"] != NOT_COMPARED).sum()))
    return ReleaseComparison(baseline, candidate, table, notes, versions)


def compare_samples(
    metrics: Iterable[Metric],
    baseline: dict[str, Sample],
    candidate: dict[str, Sample],
    *,
    has_diagnostics: bool = True,
    alpha: float = ALPHA,
    confidence: float = rate_tests.CONFIDENCE,
) -> pd.DataFrame:
    """Compare measured samples metric by metric and give each metric its verdict.

    Parameters
    ----------
    metrics : iterable of Metric
        What to compare; see `analysis.release_measures.release_metrics`.
    baseline, candidate : dict of str to Sample
        Measured samples by metric key (from `measure_versions`).
    has_diagnostics : bool
        Whether both sides report diagnostics; when False, metrics that need them are
        listed as not compared.
    alpha, confidence : float
        As for `compare_release`.

    Returns
    -------
    DataFrame
        Columns `COMPARISON_COLUMNS`, one row per metric, in the order of `metrics`.
    """
    rows = [_compare_metric(metric, baseline.get(metric.key), candidate.get(metric.key),
                            has_diagnostics, confidence) for metric in metrics]
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    table["p_holm"] = rate_tests.holm_adjust(table["p_value"].astype(float).to_numpy())
    table["verdict"] = [
        _verdict(row, alpha) for row in table.itertuples(index=False)
    ]
    table["device_hours_needed"] = [
        _device_hours_needed(metric, row, alpha)
        for metric, row in zip(metrics, table.itertuples(index=False), strict=True)
    ] if len(table) else []
    return table


def _compare_metric(
    metric: Metric,
    baseline: Sample | None,
    candidate: Sample | None,
    has_diagnostics: bool,
    confidence: float,
) -> dict[str, object]:
    row: dict[str, object] = {
        "metric": metric.key, "label": metric.label, "kind": metric.kind,
        "better_when": metric.better_when, "p_value": np.nan, "verdict": NOT_COMPARED,
        "reason": "", "test": "",
    }
    reason = _reason_not_compared(metric, baseline, candidate, has_diagnostics)
    if baseline is not None and candidate is not None:
        row.update(_side_values(metric, baseline, "baseline", confidence))
        row.update(_side_values(metric, candidate, "candidate", confidence))
        row["sample_size"] = metric.describe_sizes(baseline, candidate)
    if reason:
        row["reason"] = reason
        return row

    comparison = metric.compare(candidate, baseline, confidence)
    row.update({
        "change": comparison.estimate, "change_low": comparison.low,
        "change_high": comparison.high, "change_kind": comparison.kind,
        "p_value": comparison.p_value, "test": comparison.test,
    })
    return row


def _reason_not_compared(
    metric: Metric, baseline: Sample | None, candidate: Sample | None, has_diagnostics: bool
) -> str:
    if metric.needs_diagnostics and not has_diagnostics:
        return ("a version sends no diagnostics (firmware v1.0.0 reports no reset reason, "
                "heap, disconnect reason or event log)")
    if baseline is None or candidate is None:
        return "not measured on both versions"
    return metric.insufficient(baseline, candidate)


def _side_values(metric: Metric, sample: Sample, side: str, confidence: float) -> dict:
    value, low, high = metric.value_with_interval(sample, confidence)
    return {f"{side}_value": value, f"{side}_low": low, f"{side}_high": high,
            f"{side}_n": sample.count, f"{side}_exposure": sample.exposure}


def _verdict(row: object, alpha: float) -> str:
    if row.reason:
        return NOT_COMPARED
    if not row.p_holm < alpha:
        return NO_CHANGE
    went_down = row.change < 1 if row.change_kind == "ratio" else row.change < 0
    if row.better_when == LOWER:
        return BETTER if went_down else WORSE
    if row.better_when == HIGHER:
        return WORSE if went_down else BETTER
    return LOWER if went_down else HIGHER


def _device_hours_needed(metric: Metric, row: object, alpha: float) -> float:
    """Device-hours (both versions together) that would detect the change, for rates.

    The effect asked for is the observed ratio, or `MIN_EFFECT_RATIO` (either way) when
    the observed ratio is closer to 1 or undefined. The baseline rate is the observed one,
    or the pooled rate where the baseline saw no event.
    """
    if row.kind != "rate" or row.verdict != NO_CHANGE:
        return np.nan
    ratio = row.change if np.isfinite(row.change) and row.change > 0 else 1.0
    if abs(np.log(ratio)) < np.log(MIN_EFFECT_RATIO):
        ratio = 1 / MIN_EFFECT_RATIO if ratio < 1 else MIN_EFFECT_RATIO

    total_exposure = row.baseline_exposure + row.candidate_exposure
    rate = row.baseline_n / row.baseline_exposure
    if rate <= 0:
        rate = (row.baseline_n + row.candidate_n) / total_exposure
    if rate <= 0:
        # No event on either side: assume the rate at the pooled 95 % upper bound.
        rate = float(poisson_rate_interval(0, total_exposure)[1])
    share = row.candidate_exposure / total_exposure
    needed = rate_power.exposure_for_power(rate, ratio, candidate_share=share, alpha=alpha,
                                           power=POWER)
    return needed * metric.device_hours_per_unit


def _diagnostics_notes(
    baseline: str, candidate: str, has_diagnostics: dict[str, bool]
) -> list[str]:
    lacking = [version for version in (baseline, candidate) if not has_diagnostics[version]]
    if not lacking:
        return []
    names = " and ".join(lacking)
    return [
        f"Firmware {names} sends no diagnostics, so unexpected reboots, crash-free hours and "
        "devices, boot loops, disconnects by family and heap are not compared: the reboot "
        "cause, heap and disconnect reason are unknown there. The comparison uses reboots "
        "seen as uptime resets and heartbeat gaps, which both versions show."
    ]


def relabelling_notes(
    disconnects: pd.DataFrame,
    samples: dict[str, dict[str, Sample]],
    baseline: str,
    candidate: str,
) -> list[str]:
    """Explain a drop of NO_AP_FOUND (201) matched by a rise of 210-212 as a relabelling.

    ESP-IDF v5.2 reports some cases that older releases reported as 201 as 210, 211 or
    212, so such a shift is no fix. Rates are per device-day of each version.
    """
    days = {version: samples[version]["disconnects_ap_not_found"].exposure
            if "disconnects_ap_not_found" in samples[version] else 0.0
            for version in (baseline, candidate)}
    if not all(days.values()):
        return []

    def rate(version: str, wanted: tuple[int, ...]) -> float:
        rows = disconnects[(disconnects["firmware_version"] == version)
                           & disconnects["code"].isin(wanted)]
        return len(rows) / days[version]

    old = {version: rate(version, AP_NOT_FOUND_OLD) for version in days}
    split = {version: rate(version, AP_NOT_FOUND_SPLIT) for version in days}
    if not (old[candidate] < old[baseline] and split[candidate] > split[baseline]):
        return []
    return [
        f"NO_AP_FOUND (201) fell from {old[baseline]:.2f} to {old[candidate]:.2f} per "
        f"device-day while 210-212 (NO_AP_FOUND_W_COMPATIBLE_SECURITY, "
        f"NO_AP_FOUND_IN_AUTHMODE_THRESHOLD, NO_AP_FOUND_IN_RSSI_THRESHOLD) rose from "
        f"{split[baseline]:.2f} to {split[candidate]:.2f}. This is a relabelling: ESP-IDF "
        "v5.2 reports some 201 cases under the new codes. The family ap_not_found is "
        "compared as a whole."
    ]


def count_verdicts(metrics: pd.DataFrame) -> dict[str, int]:
    """Count the metrics per verdict, every verdict present as a key."""
    counts = metrics["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0))
            for verdict in (BETTER, WORSE, NO_CHANGE, NOT_COMPARED)}

