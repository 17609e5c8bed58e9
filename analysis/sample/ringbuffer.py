"""The firmware's event log and the ring-buffer snapshot each heartbeat carries.

The simulator keeps every event a device logs in one chronological list. The ring buffer
at any moment is the last `size` events since the most recent wipe (a power-on, or the
first boot of a firmware that keeps the log). So a heartbeat's ``recent_events`` is a
slice of that list, and the slices of all heartbeats are computed at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EVENT_FIELDS = ("tag", "d0", "d1", "ts", "up", "time", "boot")


@dataclass
class EventLog:
    """Events one device logged, oldest first, and the positions where the buffer was wiped.

    ``time`` is the true unix time of each event and ``boot`` the index of the boot that
    logged it. The firmware itself stores only tag, d0, d1, ts and up.
    """

    columns: dict[str, list[int]] = field(
        default_factory=lambda: {name: [] for name in EVENT_FIELDS}
    )
    wipe_times: list[int] = field(default_factory=list)
    wipe_positions: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.columns["tag"])

    def append(self, tag: int, d0: int, d1: int, ts: int, up: int, time: int, boot: int) -> None:
        """Add one event at the end of the log."""
        for name, value in zip(EVENT_FIELDS, (tag, d0, d1, ts, up, time, boot), strict=True):
            self.columns[name].append(int(value))

    def wipe(self, time: int) -> None:
        """Empty the ring buffer at `time`: later snapshots hold only later events."""
        self.wipe_times.append(int(time))
        self.wipe_positions.append(len(self))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the event columns as int64 arrays."""
        return {name: np.asarray(values, dtype=np.int64) for name, values in self.columns.items()}


def snapshot_bounds(
    log: EventLog, heartbeat_times: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per heartbeat, the slice ``[lo, hi)`` of the log its ring buffer contains.

    A heartbeat sent at time s contains the events logged at or before s, at most `size` of
    them, none from before the last wipe at or before s. Both bounds never decrease with s.
    """
    times = np.asarray(log.columns["time"], dtype=np.int64)
    hi = np.searchsorted(times, heartbeat_times, side="right")
    lo = hi - size
    if log.wipe_times:
        wipe_number = np.searchsorted(np.asarray(log.wipe_times), heartbeat_times, side="right")
        positions = np.asarray([0, *log.wipe_positions], dtype=np.int64)
        lo = np.maximum(lo, positions[wipe_number])
    return np.maximum(lo, 0), hi


def render_event(tag: int, d0: int, d1: int, ts: int, up: int) -> str:
    """Return one ring-buffer element as the firmware serialises it (compact JSON)."""
    return f'{{"t":{tag},"d0":{d0},"d1":{d1},"ts":{ts},"up":{up}}}'


def render_snapshots(events: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Return the ``recent_events`` JSON text of each ``[lo, hi)`` slice, as an object array.

    Consecutive heartbeats usually hold the same slice, so each run of equal slices is
    rendered once and its string shared.
    """
    texts = np.empty(len(lo), dtype=object)
    if len(lo) == 0:
        return texts
    fragments = [
        render_event(*row)
        for row in zip(
            events["tag"].tolist(), events["d0"].tolist(), events["d1"].tolist(),
            events["ts"].tolist(), events["up"].tolist(), strict=True,
        )
    ]
    is_new = np.ones(len(lo), dtype=bool)
    is_new[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    run_starts = np.flatnonzero(is_new)
    run_texts = [
        "[" + ",".join(fragments[lo[i]:hi[i]]) + "]" for i in run_starts.tolist()
    ]
    run_lengths = np.diff(np.append(run_starts, len(lo)))
    texts[:] = np.repeat(np.asarray(run_texts, dtype=object), run_lengths)
    return texts


def first_covering(
    lo: np.ndarray, hi: np.ndarray, event_count: int
) -> np.ndarray:
    """Return, per event, the position of the first snapshot that contains it, or -1.

    Requires `lo` and `hi` non-decreasing (snapshots of one device in time order). Then the
    first snapshot whose `hi` passes an event is the only candidate: every later one starts
    at the same `lo` or later.
    """
    positions = np.arange(event_count)
    candidate = np.searchsorted(hi, positions, side="right")
    found = candidate < len(hi)
    clipped = np.minimum(candidate, max(len(hi) - 1, 0))
    if len(hi):
        found &= lo[clipped] <= positions
    return np.where(found, candidate, -1)
