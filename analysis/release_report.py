"""Words, tables and plots of the release impact report, built from `compare_release`.

Every function accepts a comparison with no compared metric, or an empty rollout, and
then returns a statement or None instead of raising, so the notebook stays thin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.errors import InvalidInputError
from analysis.release import (
    ALPHA,
    BETTER,
    NO_CHANGE,
    NOT_COMPARED,
    WORSE,
    ReleaseComparison,
    compare_release,
    count_verdicts,
)
from analysis.release_within import WithinDeviceComparison, compare_within_devices
from analysis.versions import sort_versions

# Colours of the two versions in every plot: baseline grey, candidate blue.
BASELINE_COLOUR = "#7f7f7f"
CANDIDATE_COLOUR = "#1f77b4"


@dataclass(frozen=True)
class ReleaseReport:
    """Everything the release impact notebook shows.

    Attributes
    ----------
    comparison : ReleaseComparison or None
        None when the window does not hold two versions to compare.
    within : WithinDeviceComparison or None
        The upgraded devices against themselves; None with `comparison`.
    rollout : DataFrame
        Devices per version per day, from `rollout_by_day`.
    statement : str
        Why nothing was compared, or "" when `comparison` is set.
    """

    comparison: ReleaseComparison | None
    within: WithinDeviceComparison | None
    rollout: pd.DataFrame
    statement: str = ""


def build_release_report(
    fleet: object, baseline: str = "", candidate: str = "", **options: object
) -> ReleaseReport:
    """Compare the versions of `fleet`, or state why they cannot be compared.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`.
    baseline, candidate : str
        As for `analysis.release.compare_release`; empty picks the two newest versions.
    **options
        ``interval_s``, ``gap_factor`` and ``alpha``, passed to both comparisons.

    Returns
    -------
    ReleaseReport
        With a statement instead of a comparison when the window has no heartbeats, fewer
        than two versions, or lacks a requested version.
    """
    rollout = rollout_by_day(fleet.heartbeats)
    if fleet.heartbeats.empty:
        return ReleaseReport(None, None, rollout, "No heartbeats in the window, so no "
                                                  "firmware versions to compare.")
    try:
        comparison = compare_release(fleet, baseline, candidate, **options)
    except InvalidInputError as err:
        return ReleaseReport(None, None, rollout, f"No comparison: {err}.")
    within = compare_within_devices(fleet, comparison.baseline, comparison.candidate,
                                    **options)
    return ReleaseReport(comparison, within, rollout)


def multiple_testing_note(comparison: ReleaseComparison, alpha: float = ALPHA) -> str:
    """Return the sentence on Holm's correction for the metrics this comparison tested."""
    tested = int(comparison.metrics["p_value"].notna().sum())
    return (f"The {tested} p-values are adjusted with Holm's step-down method, so the chance "
            f"that any of the {tested} verdicts says better or worse when nothing changed "
            f"stays at or below {100 * alpha:g} %. A verdict needs an adjusted p-value below "
            f"{alpha:g}. The 95 % intervals are per metric and not adjusted, so an interval "
            "that just excludes no change can still carry the verdict no detectable change.")


def rollout_by_day(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Count the devices that sent a heartbeat on each version per UTC day.

    Returns
    -------
    DataFrame
        Index: UTC day; one column per firmware version, oldest first; zeros where a
        version sent nothing that day.
    """
    rows = heartbeats[heartbeats["firmware_version"].notna()]
    if rows.empty:
        return pd.DataFrame()
    day = rows["received_at"].dt.floor("D").rename("day")
    table = rows.groupby([day, rows["firmware_version"]])["device_id"].nunique().unstack(
        fill_value=0)
    return table[sort_versions(table.columns)]


def verdict_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Format the comparison as the report's verdict table, one row per metric.

    Returns
    -------
    DataFrame
        ``Metric, Baseline, Candidate, Change (95 % CI), p (Holm), Verdict, n`` as text;
        a metric that was not compared shows the reason in the Verdict column.
    """
    rows = []
    for row in metrics.itertuples(index=False):
        verdict = row.verdict if row.verdict != NOT_COMPARED else f"not compared: {row.reason}"
        rows.append({
            "Metric": row.label,
            "Baseline": _value_text(row.kind, row.baseline_value, row.baseline_low,
                                    row.baseline_high),
            "Candidate": _value_text(row.kind, row.candidate_value, row.candidate_low,
                                     row.candidate_high),
            "Change (95 % CI)": _change_text(row),
            "p (Holm)": _p_text(row.p_holm),
            "Verdict": verdict,
            "n (baseline vs candidate)": row.sample_size if isinstance(row.sample_size,
                                                                       str) else "",
        })
    return pd.DataFrame(rows)


def power_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """List the rates without a detectable change and the device-hours a verdict needs."""
    rows = metrics[metrics["device_hours_needed"].notna()]
    return pd.DataFrame({
        "Metric": rows["label"],
        "Device-hours observed": (rows["baseline_exposure"] + rows["candidate_exposure"])
        .map(lambda hours: f"{hours:,.0f}"),
        "Device-hours needed (80 % power)": rows["device_hours_needed"].map(
            lambda hours: f"{hours:,.0f}"),
    }).reset_index(drop=True)


def describe_release(comparison: object) -> str:
    """Return the report's opening summary in words, built from the verdicts."""
    counts = count_verdicts(comparison.metrics)
    compared = counts[BETTER] + counts[WORSE] + counts[NO_CHANGE]
    opening = (f"Firmware {comparison.candidate} compared with {comparison.baseline}: "
               f"{compared} metrics compared, {counts[BETTER]} better, {counts[WORSE]} worse, "
               f"{counts[NO_CHANGE]} without a detectable change.")
    if compared == 0:
        return opening + " No metric had data on both versions."

    sentences = [opening]
    for verdict in (WORSE, BETTER):
        rows = comparison.metrics[comparison.metrics["verdict"] == verdict]
        if not rows.empty:
            listing = "; ".join(f"{row.label} {_change_text(row)}"
                                for row in rows.itertuples(index=False))
            sentences.append(f"{verdict.capitalize()}: {listing}.")
    return " ".join(sentences + list(comparison.notes))


def release_summary(comparison: object, within: object | None = None) -> dict[str, object]:
    """Return the headline figures for ``summary_path``: versions, verdicts and changes."""
    figures: dict[str, object] = {
        "baseline": comparison.baseline,
        "candidate": comparison.candidate,
        "verdicts": count_verdicts(comparison.metrics),
    }
    for row in comparison.metrics.itertuples(index=False):
        figures[row.metric] = {
            "verdict": row.verdict, "baseline": row.baseline_value,
            "candidate": row.candidate_value, "change": row.change,
            "change_low": row.change_low, "change_high": row.change_high,
            "change_kind": row.change_kind, "p_holm": row.p_holm,
        }
    if within is not None:
        figures["upgraded_devices_compared"] = len(within.windows)
    return figures


def plot_metric(row: object, baseline: str, candidate: str) -> Figure | None:
    """Plot one metric of both versions with its confidence intervals.

    Returns None for a metric without a value on either version.
    """
    values = np.array([row.baseline_value, row.candidate_value], dtype=float)
    if np.isnan(values).all():
        return None
    lows = np.array([row.baseline_low, row.candidate_low], dtype=float)
    highs = np.array([row.baseline_high, row.candidate_high], dtype=float)

    figure = Figure(figsize=(5.5, 3.2), layout="constrained")
    axes = figure.add_subplot()
    for position, colour in enumerate((BASELINE_COLOUR, CANDIDATE_COLOUR)):
        # An unbounded side of an interval (too few values) is drawn without a whisker.
        below = 0.0 if np.isnan(lows[position]) else values[position] - lows[position]
        above = 0.0 if np.isnan(highs[position]) else highs[position] - values[position]
        axes.errorbar([position], [values[position]], yerr=[[below], [above]], fmt="o",
                      color=colour, capsize=6, markersize=7)
    axes.set_xticks([0, 1], [f"{baseline}\n(baseline)", f"{candidate}\n(candidate)"])
    axes.set_xlim(-0.6, 1.6)
    axes.set_xlabel("firmware version")
    axes.set_ylabel(row.label)
    axes.set_title(f"{row.label}\nverdict: {row.verdict}", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    return figure


def plot_rollout(rollout: pd.DataFrame) -> Figure | None:
    """Plot the devices per firmware version per day; None when there is nothing to plot."""
    if rollout.empty:
        return None
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    axes = figure.add_subplot()
    days = rollout.index.tz_localize(None) if rollout.index.tz is not None else rollout.index
    for version in rollout.columns:
        axes.plot(days, rollout[version].to_numpy(), marker="o", markersize=3,
                  label=str(version))
    axes.set_title("Rollout: devices per firmware version per day")
    axes.set_xlabel("day (UTC)")
    axes.set_ylabel("devices reporting")
    axes.legend(title="firmware version")
    axes.grid(alpha=0.3)
    return figure


def within_device_table(within: object) -> pd.DataFrame:
    """Format the within-device comparison with the devices that stayed beside it."""
    rows = []
    for row in within.metrics.itertuples(index=False):
        verdict = row.verdict if row.verdict != NOT_COMPARED else f"not compared: {row.reason}"
        rows.append({
            "Metric": row.label,
            "Upgraded before": _number(row.baseline_value),
            "Upgraded after": _number(row.candidate_value),
            "Change (95 % CI)": _change_text(row),
            "Verdict": verdict,
            "Stayed: before → after": (f"{_number(row.control_before)} → "
                                       f"{_number(row.control_after)}"),
            "Stayed: change (95 % CI)": _ratio_text(row.control_change, row.control_low,
                                                    row.control_high),
            "Difference in differences (95 % CI)": _ratio_text(row.did, row.did_low,
                                                               row.did_high),
            "n (before vs after)": row.sample_size if isinstance(row.sample_size, str) else "",
        })
    return pd.DataFrame(rows)


def _value_text(kind: str, value: float, low: float, high: float) -> str:
    if _missing(value):
        return ""
    interval = f" ({_number(low)} to {_number(high)})"
    if kind == "share":
        return f"{value:.1f} %{interval}"
    return f"{_number(value)}{interval}"


def _change_text(row: object) -> str:
    if row.verdict == NOT_COMPARED or _missing(row.change):
        return ""
    if row.change_kind == "ratio":
        return _ratio_text(row.change, row.change_low, row.change_high)
    if row.kind == "quantile":
        return (f"{row.change:+,.0f} bytes ({row.change_low:+,.0f} to "
                f"{row.change_high:+,.0f})")
    return f"{row.change:+,.1f} pts ({row.change_low:+,.1f} to {row.change_high:+,.1f})"


def _ratio_text(ratio: float, low: float, high: float) -> str:
    if _missing(ratio):
        return ""
    return f"×{_number(ratio)} ({_number(low)} to {_number(high)})"


def _p_text(p_value: float) -> str:
    if _missing(p_value):
        return ""
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _number(value: float) -> str:
    if _missing(value):
        return "–"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)
