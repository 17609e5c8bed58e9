"""The figures a release comparison measures per firmware version, and how each compares.

`measure_versions` turns the fleet tables into one `Sample` per metric and version: an
event count and its exposure (rates), a count of successes and trials (shares), or the
values of a per-boot figure (quantiles). `Metric` formats a sample with its
interval and picks the test that compares two samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import codes, rate_tests
from analysis.boots import BOOT_LOOP_WINDOW, heartbeat_boot_numbers
from analysis.exposure import device_hours
from analysis.stability import (
    crash_free_devices,
    crash_free_hours,
    poisson_rate_interval,
    unexpected_reboot_rate,
)

RATE, SHARE, QUANTILE = "rate", "share", "quantile"
EXPOSURE_KEY = "exposure"
HOURS_PER_DAY = 24.0


@dataclass(frozen=True)
class Sample:
    """The measured figure of one version for one metric.

    Attributes
    ----------
    count : int
        Events (rates), successes (shares) or number of values (quantiles).
    exposure : float
        Exposure in the metric's unit (rates) or trials (shares); 0 for quantiles.
    values : ndarray or None
        The per-unit values of a quantile metric.
    """

    count: int = 0
    exposure: float = 0.0
    values: np.ndarray | None = None


@dataclass(frozen=True)
class Metric:
    """One compared figure: how it is shown, which way is better and which test applies.

    Attributes
    ----------
    key, label : str
        Identifier and the words a report shows.
    kind : {"rate", "share", "quantile"}
        Events per exposure, a share in percent, or a quantile of per-boot values.
    better_when : {"lower", "higher", "neither"}
        Which direction of change is an improvement.
    needs_diagnostics : bool
        True when firmware without diagnostics (v1.0.0) cannot report it.
    per : float
        Rates are shown per this much exposure (1000 for "per 1,000 device-hours").
    count_unit, exposure_unit : str
        Words for the counted things and the exposure, for the sample size.
    device_hours_per_unit : float
        Device-hours in one unit of exposure, to state the exposure a test would need.
    quantile : float
        The quantile of a quantile metric.
    """

    key: str
    label: str
    kind: str
    better_when: str
    needs_diagnostics: bool
    per: float = 1.0
    count_unit: str = "events"
    exposure_unit: str = "device-hours"
    device_hours_per_unit: float = 1.0
    quantile: float = 0.5

    def value_with_interval(self, sample: Sample, confidence: float) -> tuple[float, ...]:
        """Return the version's figure and its interval, in the unit the report shows."""
        if self.kind == RATE:
            if sample.exposure <= 0:
                return (np.nan, np.nan, np.nan)
            low, high = poisson_rate_interval(sample.count, sample.exposure / self.per,
                                              confidence=confidence)
            return (sample.count / sample.exposure * self.per, float(low), float(high))
        if self.kind == SHARE:
            if sample.exposure <= 0:
                return (np.nan, np.nan, np.nan)
            low, high = rate_tests.clopper_pearson_interval(
                sample.count, int(sample.exposure), confidence=confidence)
            return (100.0 * sample.count / sample.exposure, 100.0 * low, 100.0 * high)
        if sample.values is None or sample.values.size == 0:
            return (np.nan, np.nan, np.nan)
        low, high = rate_tests.quantile_interval(sample.values, self.quantile,
                                                 confidence=confidence)
        return (float(np.quantile(sample.values, self.quantile)), low, high)

    def insufficient(self, baseline: Sample, candidate: Sample) -> str:
        """Return why the two samples cannot be compared, or "" when they can."""
        if self.kind == QUANTILE:
            sizes = [0 if s.values is None else s.values.size for s in (baseline, candidate)]
            if min(sizes) < 2:
                return f"fewer than 2 {self.count_unit} with a value on a version ({sizes})"
            return ""
        if min(baseline.exposure, candidate.exposure) <= 0:
            return f"no {self.exposure_unit} observed on a version"
        return ""

    def compare(
        self, candidate: Sample, baseline: Sample, confidence: float
    ) -> rate_tests.Comparison:
        """Compare the candidate with the baseline with the test that suits the kind."""
        if self.kind == RATE:
            return rate_tests.compare_poisson_rates(
                candidate.count, candidate.exposure, baseline.count, baseline.exposure,
                confidence=confidence)
        if self.kind == SHARE:
            result = rate_tests.compare_proportions(
                candidate.count, int(candidate.exposure), baseline.count,
                int(baseline.exposure), confidence=confidence)
            # Shares are shown in percent, so their difference is in percentage points.
            return dataclasses.replace(result, estimate=100 * result.estimate,
                                       low=100 * result.low, high=100 * result.high)
        return rate_tests.bootstrap_quantile_difference(
            candidate.values, baseline.values, self.quantile, confidence=confidence)

    def describe_sizes(self, baseline: Sample, candidate: Sample) -> str:
        """Return the sample sizes behind the comparison, baseline first."""
        if self.kind == RATE:
            return (f"{baseline.count:,} vs {candidate.count:,} {self.count_unit} in "
                    f"{baseline.exposure:,.0f} vs {candidate.exposure:,.0f} "
                    f"{self.exposure_unit}")
        if self.kind == SHARE:
            return f"{int(baseline.exposure):,} vs {int(candidate.exposure):,} {self.count_unit}"
        return f"{baseline.count:,} vs {candidate.count:,} {self.count_unit}"


def core_metrics(*, interval_s: float = 300) -> list[Metric]:
    """Return the metrics every release comparison considers, in report order."""
    return [
        Metric("unexpected_reboots", "Unexpected reboots per 1,000 device-hours", RATE,
               "lower", True, per=1000.0, count_unit="reboots"),
        Metric("uptime_resets", "Reboots seen as uptime resets per 1,000 device-hours "
               "(firmware updates left out)", RATE, "lower", False, per=1000.0,
               count_unit="reboots"),
        Metric("crash_free_hours", "Crash-free hours (%)", SHARE, "higher", True,
               count_unit="observed hours"),
        Metric("crash_free_devices", "Crash-free devices (%)", SHARE, "higher", True,
               count_unit="devices"),
        Metric("boot_loops", "Boot loops per 1,000 device-hours", RATE, "lower", True,
               per=1000.0, count_unit="boot loops"),
        Metric("heartbeat_misses", "Missed heartbeats per 100 expected", RATE, "lower", False,
               per=100.0, count_unit="missed heartbeats", exposure_unit="expected heartbeats",
               device_hours_per_unit=interval_s / 3600.0),
        Metric("heap_min_free_median", "Median heap_min_free at the end of a boot (bytes)",
               QUANTILE, "higher", True, count_unit="ended boots", quantile=0.5),
        Metric("heap_min_free_p10", "10th percentile of heap_min_free at the end of a boot "
               "(bytes)", QUANTILE, "higher", True, count_unit="ended boots", quantile=0.1),
    ]


def disconnect_metric(family: str) -> Metric:
    """Return the metric "disconnects of one family per device-day"."""
    better = "neither" if family in codes.NON_FAILURE_FAMILIES else "lower"
    return Metric(f"disconnects_{family}", f"Disconnects per device-day: {family}", RATE,
                  better, True, count_unit="disconnects", exposure_unit="device-days",
                  device_hours_per_unit=HOURS_PER_DAY)


def release_metrics(
    baseline: dict[str, Sample], candidate: dict[str, Sample], *, interval_s: float = 300
) -> list[Metric]:
    """Return the core metrics and one disconnect metric per family seen on either side."""
    families = [
        family for family in codes.DISCONNECT_FAMILIES
        if any(side.get(f"disconnects_{family}", Sample()).count for side in (baseline,
                                                                                candidate))
    ]
    return core_metrics(interval_s=interval_s) + [disconnect_metric(f) for f in families]


def reports_diagnostics(heartbeats: pd.DataFrame, version: str) -> bool:
    """Return True when any heartbeat of `version` carries a diagnostic field."""
    rows = heartbeats[heartbeats["firmware_version"] == version]
    return bool(rows["has_diagnostics"].astype(bool).any())


def measure_versions(
    heartbeats: pd.DataFrame,
    boots: pd.DataFrame,
    disconnects: pd.DataFrame,
    versions: Iterable[str],
    *,
    interval_s: float = 300,
    gap_factor: float = 3,
) -> dict[str, dict[str, Sample]]:
    """Measure every metric of every version in `versions`.

    Parameters
    ----------
    heartbeats, boots : DataFrame
        ``Fleet.heartbeats`` and ``Fleet.boots``, or rows of them (one window of time).
    disconnects : DataFrame
        Counted rows of `analysis.disconnects.collect_disconnects`.
    versions : iterable of str
        The versions to measure.
    interval_s, gap_factor : float
        As for `analysis.exposure.device_hours`.

    Returns
    -------
    dict
        ``{version: {metric key: Sample}}``; the key ``"exposure"`` stores the devices
        (count) and device-hours (exposure) of the version.
    """
    hours = device_hours(heartbeats, boots, interval_s=interval_s, gap_factor=gap_factor,
                         by="firmware_version")
    unexpected = _by_version(unexpected_reboot_rate(boots, hours, by="firmware_version"))
    stable_hours = _by_version(crash_free_hours(heartbeats, boots, by="firmware_version",
                                                interval_s=interval_s, gap_factor=gap_factor))
    stable_devices = _by_version(crash_free_devices(heartbeats, boots, by="firmware_version"))
    hours_by_version = hours.groupby("firmware_version")["hours"].sum()
    devices_by_version = hours.groupby("firmware_version")["device_id"].nunique()
    missed = missed_heartbeats(heartbeats, interval_s=interval_s)
    missed_by_version = missed.groupby(heartbeats["firmware_version"].to_numpy()).sum()

    boot_counts = _boot_counts(boots)
    family_counts = disconnects.groupby(["firmware_version", "family"]).size()
    ended_heap = _ended_boot_heap(boots)

    measured = {}
    for version in versions:
        exposure = float(hours_by_version.get(version, 0.0))
        samples = {
            EXPOSURE_KEY: Sample(int(devices_by_version.get(version, 0)), exposure),
            "unexpected_reboots": Sample(_get(unexpected, version, "unexpected_reboots"),
                                         exposure),
            "uptime_resets": Sample(int(boot_counts["uptime_resets"].get(version, 0)),
                                    exposure),
            "boot_loops": Sample(int(boot_counts["boot_loops"].get(version, 0)), exposure),
            "crash_free_hours": Sample(_get(stable_hours, version, "crash_free_hours"),
                                       _get(stable_hours, version, "observed_hours")),
            "crash_free_devices": Sample(_get(stable_devices, version, "crash_free_devices"),
                                         _get(stable_devices, version, "devices")),
            "heartbeat_misses": Sample(int(missed_by_version.get(version, 0)),
                                       exposure * 3600.0 / interval_s),
        }
        values = ended_heap.get(version, np.array([], dtype=float))
        for key in ("heap_min_free_median", "heap_min_free_p10"):
            samples[key] = Sample(int(values.size), 0.0, values)
        for family in codes.DISCONNECT_FAMILIES:
            count = int(family_counts.get((version, family), 0))
            samples[f"disconnects_{family}"] = Sample(count, exposure / HOURS_PER_DAY)
        measured[version] = samples
    return measured


def missed_heartbeats(heartbeats: pd.DataFrame, *, interval_s: float = 300) -> pd.Series:
    """Count the heartbeats missed before each heartbeat, within one boot.

    A gap of g seconds inside one boot (uptime kept growing) contains round(g / interval) − 1
    missed heartbeats. A gap across a reboot is not counted: the device was off for part
    of it and owed no heartbeat then.

    Returns
    -------
    Series of int
        Aligned with `heartbeats`, which must be sorted by device and time.
    """
    boot = heartbeat_boot_numbers(heartbeats.reset_index(drop=True))
    same_boot = np.r_[False, boot[1:] == boot[:-1]]
    gap_s = heartbeats["received_at"].diff().dt.total_seconds().to_numpy()
    missed = np.rint(np.nan_to_num(gap_s, nan=0.0) / interval_s) - 1
    missed = np.where(same_boot & (missed > 0), missed, 0)
    return pd.Series(missed.astype(np.int64), index=heartbeats.index)


def boot_loop_starts(boots: pd.DataFrame) -> pd.Series:
    """Return True for the first boot of each boot loop (boots sorted by device and time).

    A loop boot continues the loop before it when the previous boot of the same device
    is also a loop boot and lies within `analysis.boots.BOOT_LOOP_WINDOW`.
    """
    in_loop = boots["is_boot_loop"].astype(bool)
    same_device = boots["device_id"].eq(boots["device_id"].shift())
    close = (boots["boot_time"] - boots["boot_time"].shift()) <= BOOT_LOOP_WINDOW
    continues = same_device & in_loop.shift(fill_value=False) & close.fillna(False)
    return in_loop & ~continues


def _boot_counts(boots: pd.DataFrame) -> dict[str, pd.Series]:
    version = boots["firmware_version"]
    # Heartbeats show a reboot as an uptime reset. Boots seen only as EVT_BOOT events need
    # the event log, which firmware v1.0.0 lacks, so this count leaves them out.
    seen_by_uptime = (boots["is_reboot"].astype(bool) & (boots["source"] != "event")
                      & (boots["cause"] != "ota_update"))
    return {
        "uptime_resets": boots[seen_by_uptime].groupby(version[seen_by_uptime]).size(),
        "boot_loops": boots[boot_loop_starts(boots)].groupby(version).size(),
    }


def _ended_boot_heap(boots: pd.DataFrame) -> dict[str, np.ndarray]:
    # A device's last boot is still running, so its low-water mark is not an end value.
    ended = boots["device_id"].eq(boots["device_id"].shift(-1))
    rows = boots[ended & boots["last_heap_min_free"].notna()]
    values = rows["last_heap_min_free"].astype("float64")
    return {str(version): group.to_numpy()
            for version, group in values.groupby(rows["firmware_version"])}


def _by_version(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("firmware_version")


def _get(table: pd.DataFrame, version: str, column: str) -> int:
    if version not in table.index:
        return 0
    return int(table.at[version, column])
