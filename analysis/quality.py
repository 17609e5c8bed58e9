"""The data-quality report: every anomaly the loader met, counted by kind with examples.

Nothing the loader skips, repairs or doubts disappears silently: each is recorded here
under a check name, with the number of occurrences and a few heartbeat ids to look at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EXAMPLES_PER_CHECK = 5

# Check name -> what it means, in the words a report shows.
CHECK_DESCRIPTIONS: dict[str, str] = {
    "diagnostic_columns_missing": "table has no diagnostic columns (taken before migration 005)",
    "history_one_row_per_device": "table keeps one row per device, so there is no history",
    "history_overwritten": "diagnostics of earlier rows were overwritten with the newest values",
    "received_at_unparsable": "received_at could not be parsed as a time",
    "received_at_future": "received_at lies in the future",
    "integer_not_numeric": "non-numeric value in an INTEGER column, loaded as missing",
    "uptime_negative": "uptime below zero, loaded as missing",
    "uptime_impossible": "uptime longer than any ESP32 has existed, loaded as missing",
    "uptime_backwards_without_boot": "uptime fell although the ring buffer shows no new boot",
    "heap_negative": "heap value below zero, loaded as missing",
    "heap_impossible": "heap value above any ESP32's memory, loaded as missing",
    "heap_min_above_heap_free": "heap_min_free is above heap_free",
    "duplicate_heartbeat": "more than one heartbeat of a device at the same time",
    "heartbeat_out_of_order": "heartbeat id order disagrees with received_at order",
    "heartbeat_id_repeated": "more than one heartbeat with the same id",
    "heartbeat_id_not_integer": "heartbeat id that is not an integer, loaded as missing",
    "device_id_whitespace": "device id with leading or trailing whitespace",
    "device_id_case_variant": "device ids that differ only in letter case",
    "device_id_missing": "heartbeat without a device id, left out",
    "unknown_reset_reason": "reset reason outside the ESP-IDF table",
    "unknown_disconnect_code": "disconnect reason outside the ESP-IDF table",
    "recent_events_not_json": "recent_events is not valid JSON",
    "recent_events_not_list": "recent_events is JSON but not a list",
    "recent_events_oversized": "recent_events holds more elements than the ring buffer",
    "event_not_object": "ring-buffer element is not a JSON object",
    "event_missing_keys": "ring-buffer element lacks one of t, d0, d1, ts, up (element skipped)",
    "event_non_integer": "ring-buffer element has a non-integer field (element skipped)",
    "event_unknown_tag": "event tag outside the firmware's table",
    "event_unknown_reboot_reason": "EVT_REBOOT reason outside the firmware's table",
    "event_time_unsynced": "event ts before 2020 (clock not set), time estimated from uptime",
    "event_time_invalid": "event ts after the heartbeat that carried it, time estimated",
    "event_time_out_of_range": "estimated event time outside 1900-2200, left missing",
    "rssi_sentinel": "EVT_WIFI_UP RSSI is a sentinel (0 or -127), excluded from RSSI figures",
    "rssi_impossible": "EVT_WIFI_UP RSSI outside -127..0 dBm",
    "events_possibly_lost": "ring buffer may have overflowed between two heartbeats",
    "boot_event_repeated": "EVT_BOOT repeated within one boot that heartbeats show, counted once",
    "boot_event_inside_boot": "EVT_BOOT inside a boot that heartbeats watched, not used as a boot",
}


@dataclass
class QualityCheck:
    """One kind of anomaly: its count and a few heartbeat ids that show it."""

    check: str
    count: int = 0
    examples: list[int] = field(default_factory=list)
    detail: str = ""


class DataQualityReport:
    """Counts of data anomalies by kind, with example heartbeat ids.

    Examples
    --------
    >>> report = DataQualityReport()
    >>> report.add("recent_events_not_json", [13])
    >>> report.count("recent_events_not_json")
    1
    """

    def __init__(self) -> None:
        self._checks: dict[str, QualityCheck] = {}

    def add(
        self,
        check: str,
        heartbeat_ids: Iterable[int] | np.ndarray | pd.Series = (),
        *,
        count: int | None = None,
        detail: str = "",
    ) -> None:
        """Record occurrences of `check`.

        Parameters
        ----------
        check : str
            Check name, a key of `CHECK_DESCRIPTIONS`.
        heartbeat_ids : iterable of int
            Heartbeats that show the anomaly; the first few are kept as examples.
        count : int, optional
            Number of occurrences, when it differs from the number of ids (for example
            several bad elements in one heartbeat). Defaults to the number of ids.
        detail : str, optional
            Extra text for the report, such as the column or the offending values.
        """
        ids = [int(i) for i in pd.Series(heartbeat_ids, dtype="object").dropna()]
        occurrences = len(ids) if count is None else int(count)
        if occurrences == 0:
            return

        entry = self._checks.setdefault(check, QualityCheck(check))
        entry.count += occurrences
        for heartbeat_id in ids:
            if len(entry.examples) >= EXAMPLES_PER_CHECK:
                break
            if heartbeat_id not in entry.examples:
                entry.examples.append(heartbeat_id)
        if detail and detail not in entry.detail:
            entry.detail = f"{entry.detail}; {detail}" if entry.detail else detail

    def count(self, check: str) -> int:
        """Return how often `check` occurred (0 when never)."""
        entry = self._checks.get(check)
        return entry.count if entry else 0

    def examples(self, check: str) -> list[int]:
        """Return up to five heartbeat ids that show `check`."""
        entry = self._checks.get(check)
        return list(entry.examples) if entry else []

    def merge(self, other: DataQualityReport) -> None:
        """Add the counts and examples of `other` to this report."""
        for entry in other._checks.values():
            self.add(entry.check, entry.examples, count=entry.count, detail=entry.detail)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per check that occurred: check, description, count, examples, detail."""
        rows = [
            {
                "check": entry.check,
                "description": CHECK_DESCRIPTIONS.get(entry.check, entry.check),
                "count": entry.count,
                "example_heartbeat_ids": ", ".join(str(i) for i in entry.examples),
                "detail": entry.detail,
            }
            for entry in self._checks.values()
        ]
        columns = ["check", "description", "count", "example_heartbeat_ids", "detail"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, dict]:
        """Return ``{check: {"count": n, "examples": [...], "detail": str}}`` for JSON output."""
        return {
            entry.check: {"count": entry.count, "examples": entry.examples, "detail": entry.detail}
            for entry in self._checks.values()
        }

    def __len__(self) -> int:
        return len(self._checks)

    def __bool__(self) -> bool:
        return bool(self._checks)

    def __repr__(self) -> str:
        summary = ", ".join(f"{e.check}={e.count}" for e in self._checks.values())
        return f"DataQualityReport({summary})"

    def _repr_html_(self) -> str:
        if not self._checks:
            return "<p>No data-quality problems found.</p>"
        return self.to_frame().to_html(index=False, escape=True)
