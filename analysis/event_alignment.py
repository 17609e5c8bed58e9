"""Count each ring-buffer event once by aligning consecutive lists of a device.

The firmware's ring buffer is sent whole with every heartbeat, so heartbeat n+1 usually
repeats most of heartbeat n's list: the oldest events drop off the front and new ones are
appended. The overlap between two consecutive lists of a device is the longest suffix of
the previous list that equals a prefix of the current one; the events after it are new.
Equal-looking events inside one list (a boot loop writes ``{t:1, d0:6, ts:0, up:0}`` again
and again) are never merged, because only positions in the alignment are matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Odd 64-bit multipliers for the event fingerprint (from the splitmix64 finaliser).
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93,
     0xA0761D6478BD642F],
    dtype=np.uint64,
)


@dataclass
class Alignment:
    """Result of aligning every heartbeat's list with the previous list of its device.

    Attributes
    ----------
    overlap : ndarray of int
        Per heartbeat, how many leading events repeat the previous list.
    previous : ndarray of int
        Per heartbeat, the row of the previous list of the same device, or -1.
    root : ndarray of int
        Per parsed event, the index of the parsed event where it first appeared.
    is_new : ndarray of bool
        Per parsed event, True where this is the first appearance.
    """

    overlap: np.ndarray
    previous: np.ndarray
    root: np.ndarray
    is_new: np.ndarray


def fingerprint(values: np.ndarray) -> np.ndarray:
    """Hash each event's five fields into one uint64 for fast equality tests.

    NOTE: two different events share a fingerprint with probability about 2**-64 per
    comparison; such a collision would merge them in the alignment.
    """
    with np.errstate(over="ignore"):
        mixed = values.astype(np.uint64) * _MIX
        acc = np.zeros(len(values), dtype=np.uint64)
        for column in range(values.shape[1]):
            acc = (acc ^ mixed[:, column]) * _MIX[(column + 1) % len(_MIX)]
            acc ^= acc >> np.uint64(31)
    return acc


def align_lists(
    row: np.ndarray,
    values: np.ndarray,
    device_codes: np.ndarray,
    has_list: np.ndarray,
    max_overlap: np.ndarray | None = None,
    has_bad_element: np.ndarray | None = None,
    keys: np.ndarray | None = None,
) -> Alignment:
    """Align each heartbeat's events with the previous list of the same device.

    Parameters
    ----------
    row : ndarray of int
        Per parsed event, its heartbeat's row (rows sorted by device, then time).
    values : ndarray of int64, shape (n_events, 5)
        Parsed event fields.
    device_codes : ndarray of int
        Per heartbeat, an integer code of its device.
    has_list : ndarray of bool
        Per heartbeat, True when it carried a parseable list. Heartbeats without one are
        skipped, so the next list aligns with the last list that was read.
    max_overlap : ndarray of int, optional
        Per heartbeat, the longest overlap allowed. A heartbeat that starts a new boot
        cannot repeat its own boot's EVT_BOOT, so a wiped buffer that happens to look like
        the previous one is still read as new events.
    has_bad_element : ndarray of bool, optional
        Per heartbeat, True when an element of its list was skipped. Such a list has a hole
        and cannot be aligned, so the lists around it are aligned with each other, and its
        events count as new only where the clean lists before and after it lack them.
    keys : ndarray of uint64, optional
        `fingerprint` of `values`, when the caller has it already.

    Returns
    -------
    Alignment
    """
    n_rows = len(has_list)
    lengths = np.bincount(row, minlength=n_rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    dirty = np.zeros(n_rows, dtype=bool) if has_bad_element is None else has_list & has_bad_element
    clean = has_list & ~dirty
    previous = _previous_list_rows(device_codes, clean)

    if keys is None:
        keys = fingerprint(values) if len(values) else np.zeros(0, dtype=np.uint64)
    limit = lengths if max_overlap is None else np.minimum(lengths, max_overlap)
    overlap = _overlaps(keys, offsets, lengths, limit, previous)
    root, is_new = _first_appearances(row, offsets, lengths, previous, overlap)
    clean_rows = np.flatnonzero(clean)
    for dirty_row in np.flatnonzero(dirty):
        _mark_known_in_neighbours(dirty_row, keys, offsets, lengths, device_codes, clean_rows,
                                  is_new)
    return Alignment(overlap=overlap, previous=previous, root=root, is_new=is_new)


def _mark_known_in_neighbours(
    dirty_row: int,
    keys: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    device_codes: np.ndarray,
    clean_rows: np.ndarray,
    is_new: np.ndarray,
) -> None:
    """Mark events of a list with a hole as repeats where a clean neighbour carries them.

    Each event of the nearest clean list before and after (same device) can account for one
    equal event of the dirty list. The rest were seen only here, so they stay new.
    """
    known: dict[int, int] = {}
    for neighbour in _clean_neighbours(dirty_row, device_codes, clean_rows):
        counts: dict[int, int] = {}
        for key in keys[offsets[neighbour]:offsets[neighbour] + lengths[neighbour]].tolist():
            counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            known[key] = max(known.get(key, 0), count)

    start = offsets[dirty_row]
    for index, key in enumerate(keys[start:start + lengths[dirty_row]].tolist()):
        if known.get(key, 0) > 0:
            known[key] -= 1
            is_new[start + index] = False


def _clean_neighbours(row: int, device_codes: np.ndarray, clean_rows: np.ndarray) -> list[int]:
    index = int(np.searchsorted(clean_rows, row))
    candidates = []
    if index > 0:
        candidates.append(int(clean_rows[index - 1]))
    if index < len(clean_rows):
        candidates.append(int(clean_rows[index]))
    return [c for c in candidates if device_codes[c] == device_codes[row]]


def _previous_list_rows(device_codes: np.ndarray, has_list: np.ndarray) -> np.ndarray:
    rows_with_list = np.flatnonzero(has_list)
    previous = np.full(len(has_list), -1, dtype=np.int64)
    if len(rows_with_list) < 2:
        return previous
    same_device = device_codes[rows_with_list[1:]] == device_codes[rows_with_list[:-1]]
    previous[rows_with_list[1:][same_device]] = rows_with_list[:-1][same_device]
    return previous


def _overlaps(
    keys: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    current_limit: np.ndarray,
    previous: np.ndarray,
) -> np.ndarray:
    overlap = np.zeros(len(lengths), dtype=np.int64)
    has_previous = previous >= 0
    prev_len = np.where(has_previous, lengths[np.maximum(previous, 0)], 0)
    limit = np.minimum(prev_len, current_limit)
    unresolved = has_previous & (limit > 0)
    if not unresolved.any():
        return overlap

    # Try the longest candidate overlap first, so each row stops at its maximal overlap.
    for size in range(int(limit.max()), 0, -1):
        candidates = np.flatnonzero(unresolved & (limit >= size))
        if len(candidates) == 0:
            continue
        steps = np.arange(size)
        prev_start = offsets[previous[candidates]] + prev_len[candidates] - size
        earlier = keys[prev_start[:, None] + steps]
        current = keys[offsets[candidates][:, None] + steps]
        matched = candidates[(earlier == current).all(axis=1)]
        overlap[matched] = size
        unresolved[matched] = False
    return overlap


def _first_appearances(
    row: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    previous: np.ndarray,
    overlap: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    position = np.arange(len(row)) - offsets[row]
    row_overlap = overlap[row]
    is_new = position >= row_overlap

    # A repeated event points at the same event in the previous list. Pointer jumping
    # follows the chains to the first appearance in O(log chain length) passes.
    parent = np.arange(len(row))
    repeated = ~is_new
    prev_rows = previous[row[repeated]]
    parent[repeated] = (
        offsets[prev_rows] + lengths[prev_rows] - row_overlap[repeated] + position[repeated]
    )
    while True:
        grandparent = parent[parent]
        if np.array_equal(grandparent, parent):
            return parent, is_new
        parent = grandparent
