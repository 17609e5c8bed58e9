"""Data-quality checks on loaded heartbeats.

Each check records its anomaly in the data-quality report with example heartbeat ids. Only
impossible values are changed (a negative or impossibly large uptime or heap value becomes
missing); everything else stays as stored so that the report and the analysis see the same
rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import codes
from analysis.quality import DataQualityReport
from analysis.row_runs import value_changes

# A heartbeat more than this far ahead of the wall clock is in the future, not clock skew.
FUTURE_TOLERANCE = pd.Timedelta(minutes=5)
# No ESP32 can have run this long: the chip was released in 2016.
MAX_UPTIME_S = 20 * 365 * 86400
# More than any ESP32 module carries (at most 32 MiB of PSRAM beside under 1 MiB of
# internal RAM), so a larger heap value is a corrupt field, not a reading.
MAX_HEAP_BYTES = 64 * 1024 * 1024


def check_heartbeats(
    heartbeats: pd.DataFrame,
    report: DataQualityReport,
    *,
    now: pd.Timestamp | None = None,
) -> None:
    """Record anomalies of `heartbeats` in `report`, setting impossible values to missing.

    Parameters
    ----------
    heartbeats : DataFrame
        As built by `load_heartbeats`, sorted by device and time.
    report : DataQualityReport
        Receives one entry per kind of anomaly found.
    now : Timestamp, optional
        Reference for "in the future"; the current UTC time by default.
    """
    ids = heartbeats["heartbeat_id"]
    now = now if now is not None else pd.Timestamp.now(tz="UTC")

    report.add("received_at_future", ids[heartbeats["received_at"] > now + FUTURE_TOLERANCE])
    negative_uptime = (heartbeats["uptime_s"] < 0).fillna(False)
    report.add("uptime_negative", ids[negative_uptime])
    impossible_uptime = (heartbeats["uptime_s"] > MAX_UPTIME_S).fillna(False)
    report.add("uptime_impossible", ids[impossible_uptime],
               detail=f"above {MAX_UPTIME_S} s (20 years)")
    heartbeats.loc[negative_uptime | impossible_uptime, "uptime_s"] = pd.NA

    _check_heap(heartbeats, report)
    _check_codes(heartbeats, report)
    # Both checks below need to know where the device id changes, so it is compared once.
    device_changes = value_changes(heartbeats["device_id"])
    _check_order(heartbeats, report, device_changes)
    _check_device_ids(heartbeats, report, device_changes)


def _check_heap(heartbeats: pd.DataFrame, report: DataQualityReport) -> None:
    ids = heartbeats["heartbeat_id"]
    negative = (heartbeats["heap_free"] < 0) | (heartbeats["heap_min_free"] < 0)
    report.add("heap_negative", ids[negative.fillna(False)])
    too_large = (heartbeats["heap_free"] > MAX_HEAP_BYTES) | (
        heartbeats["heap_min_free"] > MAX_HEAP_BYTES
    )
    report.add("heap_impossible", ids[too_large.fillna(False)],
               detail=f"above {MAX_HEAP_BYTES} bytes (64 MiB)")

    # Compared before the impossible values are cleared, so that a pair is still judged.
    above = heartbeats["heap_min_free"] > heartbeats["heap_free"]
    report.add("heap_min_above_heap_free", ids[above.fillna(False)])
    for column in ("heap_free", "heap_min_free"):
        value = heartbeats[column]
        impossible = ((value < 0) | (value > MAX_HEAP_BYTES)).fillna(False)
        heartbeats.loc[impossible, column] = pd.NA


def _check_codes(heartbeats: pd.DataFrame, report: DataQualityReport) -> None:
    ids = heartbeats["heartbeat_id"]
    unknown_reset = ~codes.is_known(heartbeats["reset_reason"], codes.RESET_REASONS)
    if unknown_reset.any():
        values = sorted(heartbeats.loc[unknown_reset, "reset_reason"].unique().tolist())
        report.add("unknown_reset_reason", ids[unknown_reset],
                   detail=f"unrecognised codes {values}")

    disconnect_table = {**codes.WIFI_REASONS, codes.SILENT_DEATH: codes.WIFI_SILENT_DEATH_NAME}
    unknown_disconnect = ~codes.is_known(heartbeats["last_disconnect_code"], disconnect_table)
    if unknown_disconnect.any():
        codes_seen = heartbeats.loc[unknown_disconnect, "last_disconnect_code"]
        values = sorted(codes_seen.unique().tolist())
        report.add("unknown_disconnect_code", ids[unknown_disconnect],
                   detail=f"unrecognised codes {values}")


def _check_order(
    heartbeats: pd.DataFrame, report: DataQualityReport, device_changes: np.ndarray
) -> None:
    ids = heartbeats["heartbeat_id"]
    same_device = ~device_changes
    received = heartbeats["received_at"].to_numpy(dtype="datetime64[ns]")
    same_time = np.zeros(len(received), dtype=bool)
    # numpy finds NaT unequal to NaT, as pandas does.
    same_time[1:] = received[1:] == received[:-1]
    report.add("duplicate_heartbeat", ids[same_device & same_time])
    # Events and boots point at heartbeats by id; with a repeated id they use its first row.
    repeated = ids.duplicated(keep=False) & ids.notna()
    report.add("heartbeat_id_repeated", ids[repeated.to_numpy(dtype=bool)],
               detail="an id column that is not unique; map a unique one with "
               "columns={'heartbeat_id': '<column>'}")

    # Rows are sorted by time, so an id lower than its predecessor's was stored out of order.
    id_went_back = heartbeats["heartbeat_id"] < heartbeats["heartbeat_id"].shift()
    report.add("heartbeat_out_of_order",
               ids[same_device & id_went_back.fillna(False).to_numpy(dtype=bool)])


def _check_device_ids(
    heartbeats: pd.DataFrame, report: DataQualityReport, device_changes: np.ndarray
) -> None:
    ids = heartbeats["heartbeat_id"]
    # The string work runs on the distinct ids, then maps back to rows by code. Factorizing
    # one value per run of equal ids costs far less than factorizing every row.
    run_starts = np.flatnonzero(device_changes)
    run_codes, distinct = pd.factorize(heartbeats["device_id"].iloc[run_starts],
                                       use_na_sentinel=True)
    device_code = np.repeat(run_codes, np.diff(np.r_[run_starts, len(heartbeats)]))
    distinct = pd.Series(distinct, dtype=object).astype(str)
    stripped = distinct.str.strip()
    is_missing = (device_code < 0) | (stripped == "").to_numpy()[device_code]
    report.add("device_id_missing", ids[is_missing])

    stray = (distinct != stripped).to_numpy()
    if stray.any():
        report.add("device_id_whitespace", ids[~is_missing & stray[device_code]],
                   detail=f"ids such as {sorted(distinct[stray].tolist())[:3]!r}")

    folded = stripped.str.lower()
    is_variant = (folded.duplicated(keep=False) & (stripped != "")).to_numpy()
    if is_variant.any():
        report.add("device_id_case_variant", ids[~is_missing & is_variant[device_code]],
                   detail=f"ids such as {sorted(distinct[is_variant].tolist())[:4]!r}")
