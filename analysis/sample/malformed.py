"""Damage a few heartbeat rows the way real databases show it, and record which.

Kinds, used in turn: ``recent_events_cut_off`` (JSON cut short), ``recent_events_not_list``
(one object instead of a list), ``event_missing_keys`` (the newest element keeps only
``t`` and ``d0``) and ``heap_free_text`` (``'n/a'`` in the INTEGER column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.sample.assemble import HeartbeatIndex

MALFORMED_KINDS = (
    "recent_events_cut_off", "recent_events_not_list", "event_missing_keys", "heap_free_text",
)
# Kinds after which a heartbeat's ring buffer cannot be read at all.
UNREADABLE_KINDS = frozenset({"recent_events_cut_off", "recent_events_not_list"})


def damage_rows(
    heartbeats: pd.DataFrame, index: HeartbeatIndex, count: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Damage `count` heartbeats of firmware with diagnostics in place; return what was done.

    Only heartbeats whose ring buffer contains at least one event are picked. Returns one row
    per damaged heartbeat: ``heartbeat_id, device_id, kind``.
    """
    candidates = np.flatnonzero(index.has_diagnostics & (index.hi > index.lo))
    count = min(count, len(candidates))
    rows = np.sort(rng.choice(candidates, size=count, replace=False)) if count else []
    records = []
    for number, row in enumerate(rows):
        kind = MALFORMED_KINDS[number % len(MALFORMED_KINDS)]
        _damage(heartbeats, int(row), kind, rng)
        records.append({
            "heartbeat_id": int(heartbeats.at[row, "id"]),
            "device_id": str(heartbeats.at[row, "device_id"]),
            "kind": kind,
        })
    return pd.DataFrame(records, columns=["heartbeat_id", "device_id", "kind"])


def _damage(heartbeats: pd.DataFrame, row: int, kind: str, rng: np.random.Generator) -> None:
    text = heartbeats.at[row, "recent_events"]
    newest_start = text.rfind("{")
    if kind == "recent_events_cut_off":
        cut = int(rng.integers(max(len(text) // 3, 2), len(text) - 1))
        heartbeats.at[row, "recent_events"] = text[:cut]
    elif kind == "recent_events_not_list":
        heartbeats.at[row, "recent_events"] = text[newest_start:-1]
    elif kind == "event_missing_keys":
        newest = text[newest_start:-1]
        short = newest[: newest.index(',"d1"')] + "}"
        heartbeats.at[row, "recent_events"] = text[:newest_start] + short + "]"
    else:
        heartbeats.at[row, "heap_free"] = "n/a"
