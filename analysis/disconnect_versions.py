"""Disconnects per firmware version, compared family by family.

ESP-IDF v5.2 split the old NO_AP_FOUND (201) into 201 and 210-212, so a firmware built
with it reports fewer 201s for the same events. Versions are therefore compared by
disconnect family, with rates per device-day, and a shift between codes of one family is
reported as a relabelling, never as an improvement. Two rates are compared with the exact
conditional binomial test, and the p-values of the families of one pair of versions are
adjusted with Holm's method.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.disconnects import counted, device_days, is_link_failure
from analysis.rate_tests import compare_poisson_rates, holm_adjust
from analysis.versions import version_key

SIGNIFICANCE = 0.05
NO_CHANGE, FEWER, MORE = "no change", "fewer", "more"

COMPARISON_COLUMNS = (
    "baseline", "candidate", "family", "baseline_disconnects", "candidate_disconnects",
    "baseline_per_day", "candidate_per_day", "rate_ratio", "p_value", "change",
    "is_relabelled", "falling_codes", "rising_codes",
)


def count_by_version(disconnects: pd.DataFrame, heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Count disconnects per firmware version and family, with rates per device-day.

    Parameters
    ----------
    disconnects : DataFrame
        From `analysis.disconnects.collect_disconnects`. Only counted rows are used.
    heartbeats : DataFrame
        The heartbeats they came from, for the device-days of each version.

    Returns
    -------
    DataFrame
        ``firmware_version, family, disconnects, device_days, per_device_day``: every
        family of `analysis.codes.DISCONNECT_FAMILIES` for every version with diagnostic
        heartbeats, versions in version order (1.10.0 after 1.9.0).
    """
    columns = ["firmware_version", "family", "disconnects", "device_days", "per_device_day"]
    exposure = _device_days_by_version(heartbeats)
    if exposure.empty:
        return pd.DataFrame(columns=columns)

    grid = pd.MultiIndex.from_product([list(exposure.index), codes.DISCONNECT_FAMILIES],
                                      names=["firmware_version", "family"])
    rows = counted(disconnects)
    counts = rows.groupby(["firmware_version", "family"]).size().reindex(grid, fill_value=0)
    table = counts.rename("disconnects").reset_index()
    table["device_days"] = table["firmware_version"].map(exposure).astype(np.int64)
    table["per_device_day"] = table["disconnects"] / table["device_days"]
    return table[columns]


def pivot_by_version(by_version: pd.DataFrame, value: str = "per_device_day") -> pd.DataFrame:
    """Return `count_by_version` output as one row per family and one column per version.

    A last ``link failures`` row adds up every family except own_disconnect and roaming.
    """
    if by_version.empty:
        return pd.DataFrame()
    versions = list(dict.fromkeys(by_version["firmware_version"]))
    table = by_version.pivot(index="family", columns="firmware_version", values=value)
    table = table.reindex(index=list(codes.DISCONNECT_FAMILIES), columns=versions)
    failures = is_link_failure(table.index.to_series()).to_numpy()
    table.loc["link failures"] = table.loc[failures].sum()
    table.columns.name = None
    return table


def compare_versions(
    disconnects: pd.DataFrame, heartbeats: pd.DataFrame, *, alpha: float = SIGNIFICANCE
) -> pd.DataFrame:
    """Compare each firmware version with the previous one, family by family.

    A family's change is ``fewer`` or ``more`` when its rate per device-day differs at
    level `alpha` after Holm's adjustment over the families of the pair, else ``no
    change``. A family is relabelled when one of its codes fell and another rose, each at
    level `alpha` (unadjusted), as when 201 gives way to 210-212.

    Parameters
    ----------
    disconnects : DataFrame
        From `analysis.disconnects.collect_disconnects`.
    heartbeats : DataFrame
        The heartbeats they came from.
    alpha : float
        Significance level.

    Returns
    -------
    DataFrame
        Columns `COMPARISON_COLUMNS`, one row per pair of consecutive versions (in version
        order, among versions with diagnostic heartbeats) and family seen in either.
        ``p_value`` is Holm-adjusted and ``rate_ratio`` is candidate over baseline.
        ``falling_codes`` and ``rising_codes`` list the codes whose rate per device-day
        fell or rose, as ``NAME (code): count -> count (rate -> rate per device-day)``
        joined by ``"; "``.
    """
    exposure = _device_days_by_version(heartbeats)
    rows = counted(disconnects)
    by_code = rows.groupby(["firmware_version", "code"]).size()
    versions = list(exposure.index)

    frames = []
    for baseline, candidate in zip(versions[:-1], versions[1:], strict=True):
        pair = _compare_pair(by_code, exposure, baseline, candidate, alpha)
        if not pair.empty:
            frames.append(pair)
    if not frames:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COMPARISON_COLUMNS)]


def _device_days_by_version(heartbeats: pd.DataFrame) -> pd.Series:
    days = device_days(heartbeats, by_version=True).dropna(subset=["firmware_version"])
    exposure = days.groupby("firmware_version").size()
    return exposure.reindex(sorted(exposure.index, key=version_key))


def _compare_pair(
    by_code: pd.Series, exposure: pd.Series, baseline: str, candidate: str, alpha: float
) -> pd.DataFrame:
    before = _version_codes(by_code, baseline)
    after = _version_codes(by_code, candidate)
    code_counts = pd.DataFrame({"before": before, "after": after}).fillna(0).astype(np.int64)
    if code_counts.empty:
        return pd.DataFrame()
    code_counts["family"] = codes.disconnect_family(pd.Series(code_counts.index)).to_numpy()
    exposures = (float(exposure[baseline]), float(exposure[candidate]))

    rows = []
    for family in codes.DISCONNECT_FAMILIES:
        members = code_counts[code_counts["family"] == family]
        if members.empty:
            continue
        rows.append(_family_row(members, exposures, alpha, family))

    table = pd.DataFrame(rows)
    table["p_value"] = holm_adjust(table["p_value"].to_numpy())
    table["change"] = np.where(table["p_value"] >= alpha, NO_CHANGE,
                               np.where(table["rate_ratio"] < 1, FEWER, MORE))
    table.insert(0, "baseline", baseline)
    table.insert(1, "candidate", candidate)
    return table


def _version_codes(by_code: pd.Series, version: str) -> pd.Series:
    if version not in by_code.index.get_level_values(0):
        return pd.Series(dtype=np.int64)
    return by_code.xs(version, level="firmware_version")


def _family_row(members: pd.DataFrame, exposures: tuple[float, float], alpha: float,
                family: str) -> dict:
    before_days, after_days = exposures
    total_before = int(members["before"].sum())
    total_after = int(members["after"].sum())
    family_test = compare_poisson_rates(total_after, after_days, total_before, before_days)

    falling, rising = [], []
    for code, counts in members.iterrows():
        test = compare_poisson_rates(int(counts["after"]), after_days, int(counts["before"]),
                                     before_days)
        after_rate = counts["after"] / after_days
        before_rate = counts["before"] / before_days
        moved = (f"{_code_name(code)}: {counts['before']} -> {counts['after']} "
                 f"({before_rate:.3g} -> {after_rate:.3g} per device-day)")
        if after_rate < before_rate:
            falling.append((test.p_value < alpha, moved))
        elif after_rate > before_rate:
            rising.append((test.p_value < alpha, moved))

    return {
        "family": family,
        "baseline_disconnects": total_before,
        "candidate_disconnects": total_after,
        "baseline_per_day": total_before / before_days,
        "candidate_per_day": total_after / after_days,
        "rate_ratio": family_test.estimate,
        "p_value": family_test.p_value,
        "is_relabelled": any(sig for sig, _ in falling) and any(sig for sig, _ in rising),
        "falling_codes": "; ".join(text for _, text in falling),
        "rising_codes": "; ".join(text for _, text in rising),
    }


def _code_name(code: int) -> str:
    name = codes.decode_disconnect_reason([code]).iloc[0]
    return f"{name} ({code})"


def describe_comparison(comparison: pd.DataFrame) -> list[str]:
    """Return one Markdown sentence per family that changed or was relabelled.

    A relabelled family whose rate did not change is described as a relabelling, never as
    fewer disconnects of its old code.
    """
    sentences = []
    for row in comparison.itertuples(index=False):
        pair = f"from {row.baseline} to {row.candidate}"
        figures = (f"{row.baseline_disconnects} against {row.candidate_disconnects}, "
                   f"{row.baseline_per_day:.3g} and {row.candidate_per_day:.3g} per device-day")
        codes_moved = f"Codes that fell: {row.falling_codes}. Codes that rose: {row.rising_codes}."
        if row.is_relabelled and row.change == NO_CHANGE:
            sentences.append(
                f"**{row.family}** {pair}: its reason codes were relabelled, and the family "
                f"shows no change ({figures}). {codes_moved}"
            )
        elif row.is_relabelled:
            sentences.append(
                f"**{row.family}** {pair}: {row.change} disconnects ({figures}), and part of "
                f"the shift between its reason codes is a relabelling. {codes_moved}"
            )
        elif row.change != NO_CHANGE:
            sentences.append(f"**{row.family}** {pair}: {row.change} disconnects ({figures}).")
    return sentences


def plot_family_rates(by_version: pd.DataFrame) -> Figure | None:
    """Plot disconnects per device-day by family, one bar per firmware version.

    Families without a disconnect in any version are left out. Returns None when nothing
    remains.
    """
    table = pivot_by_version(by_version).drop(index="link failures", errors="ignore")
    table = table[(table.fillna(0) > 0).any(axis=1)]
    if table.empty:
        return None

    figure = Figure(figsize=(10, 4.5), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(table.index))
    width = 0.8 / len(table.columns)
    for number, version in enumerate(table.columns):
        axes.bar(positions + number * width, table[version].fillna(0), width, label=version)
    axes.set_xticks(positions + 0.4 - width / 2, table.index, rotation=30, ha="right")
    axes.set_title("Disconnects per device-day by family and firmware version")
    axes.set_xlabel("disconnect family")
    axes.set_ylabel("disconnects per device-day")
    axes.legend(title="firmware")
    return figure
