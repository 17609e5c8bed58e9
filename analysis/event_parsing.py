"""Parse the ``recent_events`` JSON of many heartbeats into flat integer arrays.

Malformed content never aborts: a heartbeat whose text is not JSON or not a list
contributes no events, an element that is not an object, lacks a key or contains a
non-integer is skipped, and each problem is counted by kind with example heartbeat ids.
An element is used only when all five fields ``t, d0, d1, ts, up`` are integers, because a
partial event cannot be told apart from a different event when lists are aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd

from analysis.event_alignment import fingerprint
from analysis.event_parsing_arrow import parse_with_arrow
from analysis.quality import DataQualityReport

EVENT_FIELDS = ("t", "d0", "d1", "ts", "up")
RING_BUFFER_SIZE = 16
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class ParsedEvents:
    """Events of many heartbeats as flat arrays, in list order within each heartbeat.

    ``row`` is the position of the carrying heartbeat in the input, and ``values`` has one
    column per field of `EVENT_FIELDS`. ``has_list[i]`` is True when heartbeat i carried a
    parseable JSON list (possibly empty). ``has_bad_element[i]`` is True when some element
    of that list was skipped.
    """

    row: np.ndarray
    values: np.ndarray
    has_list: np.ndarray
    has_bad_element: np.ndarray | None = None
    keys: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.has_bad_element is None:
            self.has_bad_element = np.zeros(len(self.has_list), dtype=bool)

    @property
    def lengths(self) -> np.ndarray:
        """Number of valid events per heartbeat."""
        return np.bincount(self.row, minlength=len(self.has_list))


def parse_event_lists(
    texts: np.ndarray | list,
    heartbeat_ids: np.ndarray | list,
    report: DataQualityReport,
    *,
    keep_rows: np.ndarray | None = None,
    run_of_row: np.ndarray | None = None,
) -> ParsedEvents:
    """Parse each heartbeat's ``recent_events`` text.

    A text equal to the one just before it is parsed once: between two heartbeats with no
    new event the firmware sends the same list again, so most rows of a quiet fleet repeat.

    Parameters
    ----------
    texts : array of str or None
        One ``recent_events`` value per heartbeat; None (v1.0.0) means no list.
    heartbeat_ids : array of int
        Ids used as examples in the data-quality report.
    report : DataQualityReport
        Receives counts of not-JSON, not-a-list, oversized lists and bad elements, per
        heartbeat of `texts`.
    keep_rows : ndarray of int, optional
        Return the events of these rows only, numbered 0, 1, ... in this order; by default
        every row. Every row is still checked and counted in `report`.
    run_of_row : ndarray of int, optional
        ``runs_of_equal_text(texts)``, when the caller has computed it already.

    Returns
    -------
    ParsedEvents
    """
    ids = np.asarray(heartbeat_ids)
    texts = np.asarray(texts, dtype=object)
    if run_of_row is None:
        run_of_row = runs_of_equal_text(texts)
    is_run_start = np.r_[True, run_of_row[1:] != run_of_row[:-1]] if len(texts) else []
    distinct = texts[np.flatnonzero(is_run_start)]

    parsed, problems = _parse_distinct(distinct)
    _report_problems(problems, run_of_row, ids, report)
    # Fingerprints are computed on the distinct lists, before repeats are expanded.
    parsed.keys = fingerprint(parsed.values) if len(parsed.values) else np.zeros(0, np.uint64)
    selected = run_of_row if keep_rows is None else run_of_row[np.asarray(keep_rows)]
    return _expand_runs(parsed, selected)


def _parse_distinct(texts: np.ndarray) -> tuple[ParsedEvents, dict[str, list[int]]]:
    fast_rows, slow_rows = _split_rows(texts)
    fast = parse_with_arrow(texts, fast_rows)

    collector = _Collector(len(texts))
    for position in np.sort(np.concatenate([slow_rows, fast.rejected_rows])):
        collector.parse(int(position), texts[position])
    collector.has_list[fast.parsed_rows] = True
    oversized = fast.parsed_rows[fast.lengths > RING_BUFFER_SIZE]
    collector.problems["recent_events_oversized"].extend(oversized.tolist())
    return _merge(fast.row, fast.values, collector.result()), collector.problems


def runs_of_equal_text(texts: np.ndarray) -> np.ndarray:
    """Number runs of consecutive equal texts: one integer per row, rising from 0.

    Only values of type str are texts. Consecutive missing values (None, NaN, pd.NA) form
    one run as well, because none of them carries a list. Any other value is a run of its
    own.
    """
    if len(texts) == 0:
        return np.zeros(0, dtype=np.int64)
    kinds = _types_of(texts)
    is_text = np.equal(kinds, str)
    is_missing = np.equal(kinds, type(None))
    comparable = texts
    if not (is_text | is_missing).all():
        is_missing = pd.isna(texts)
        # Other values compare as "" here, and the is_text test keeps them apart from "".
        comparable = np.where(is_text, texts, "")
    can_repeat = is_text | is_missing
    repeats = (comparable[1:] == comparable[:-1]) & (is_text[1:] == is_text[:-1])
    repeats &= can_repeat[1:] & can_repeat[:-1]
    return np.cumsum(np.r_[True, ~repeats]) - 1


def _types_of(values: np.ndarray) -> np.ndarray:
    # map(type) loops in C: on a million texts it took half the time of a generator.
    return np.fromiter(map(type, values), dtype=object, count=len(values))


def _report_problems(
    problems: dict[str, list[int]], run_of_row: np.ndarray, ids: np.ndarray,
    report: DataQualityReport,
) -> None:
    # Counts are per heartbeat row: a bad text sent twice is two bad heartbeats.
    run_sizes = np.bincount(run_of_row)
    for check, positions in problems.items():
        if not positions:
            continue
        per_run = np.bincount(np.asarray(positions), minlength=len(run_sizes))
        rows = np.flatnonzero(per_run[run_of_row] > 0)
        report.add(check, ids[rows], count=int((per_run * run_sizes).sum()))


def _expand_runs(parsed: ParsedEvents, run_of_row: np.ndarray) -> ParsedEvents:
    lengths = np.bincount(parsed.row, minlength=len(parsed.has_list))
    offsets = np.cumsum(lengths) - lengths
    row_lengths = lengths[run_of_row]
    total = int(row_lengths.sum())
    row = np.repeat(np.arange(len(run_of_row)), row_lengths)
    position = np.arange(total) - np.repeat(np.cumsum(row_lengths) - row_lengths, row_lengths)
    source = np.repeat(offsets[run_of_row], row_lengths) + position
    return ParsedEvents(
        row=row,
        values=parsed.values[source],
        has_list=parsed.has_list[run_of_row],
        has_bad_element=parsed.has_bad_element[run_of_row],
        keys=None if parsed.keys is None else parsed.keys[source],
    )


def parse_event_lists_exactly(
    texts: np.ndarray | list, heartbeat_ids: np.ndarray | list, report: DataQualityReport
) -> ParsedEvents:
    """Parse every heartbeat row by row with orjson; the reference for the fast path.

    Same parameters and result as `parse_event_lists`, several times slower.
    """
    ids = np.asarray(heartbeat_ids)
    collector = _Collector(len(ids))
    missing = pd.isna(np.asarray(texts, dtype=object))
    for position, text in enumerate(texts):
        if missing[position]:
            continue
        collector.parse(position, text)
    collector.report_to(report, ids)
    return collector.result()


def _split_rows(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into those the Arrow reader can try and those that need the exact parser.

    Rows without a value are in neither. A text with a line break would split its
    newline-delimited JSON line, so it goes to the exact parser. So does a text that does
    not start with "[" and end with "]": it is rarely a list, and one bad line makes Arrow
    reject its whole block, which then has to be split and parsed again.
    """
    is_text = np.equal(_types_of(texts), str)
    is_missing = pd.isna(texts)
    is_plain_list = np.zeros(len(texts), dtype=bool)
    if is_text.any():
        text_rows = np.flatnonzero(is_text)
        is_plain_list[text_rows] = np.fromiter(
            (t[:1] == "[" and t[-1:] == "]" and "\n" not in t and "\r" not in t
             for t in texts[text_rows]),
            dtype=bool, count=len(text_rows),
        )
    return np.flatnonzero(is_plain_list), np.flatnonzero(~is_plain_list & ~is_missing)


def _merge(row: np.ndarray, values: np.ndarray, exact: ParsedEvents) -> ParsedEvents:
    if len(exact.row) == 0:
        return ParsedEvents(row=row, values=values, has_list=exact.has_list,
                            has_bad_element=exact.has_bad_element)
    all_rows = np.concatenate([row, exact.row])
    all_values = np.concatenate([values, exact.values])
    # A row comes wholly from one parser, so a stable sort by row keeps each list's order.
    order = np.argsort(all_rows, kind="stable")
    return ParsedEvents(row=all_rows[order], values=all_values[order], has_list=exact.has_list,
                        has_bad_element=exact.has_bad_element)


class _Collector:
    """Accumulates parsed events and the problems met, row by row."""

    def __init__(self, size: int) -> None:
        self.rows: list[int] = []
        self.flat: list[int] = []
        self.has_list = np.zeros(size, dtype=bool)
        self.has_bad_element = np.zeros(size, dtype=bool)
        self.problems: dict[str, list[int]] = {
            "recent_events_not_json": [],
            "recent_events_not_list": [],
            "recent_events_oversized": [],
            "event_not_object": [],
            "event_missing_keys": [],
            "event_non_integer": [],
        }

    def parse(self, position: int, text: object) -> None:
        try:
            value = orjson.loads(text)
        except (orjson.JSONDecodeError, TypeError):
            self.problems["recent_events_not_json"].append(position)
            return
        if not isinstance(value, list):
            self.problems["recent_events_not_list"].append(position)
            return

        self.has_list[position] = True
        if len(value) > RING_BUFFER_SIZE:
            self.problems["recent_events_oversized"].append(position)
        for element in value:
            self._add_element(position, element)

    def _add_element(self, position: int, element: object) -> None:
        if not isinstance(element, dict):
            self._skip(position, "event_not_object")
            return
        try:
            fields = (element["t"], element["d0"], element["d1"], element["ts"], element["up"])
        except KeyError:
            self._skip(position, "event_missing_keys")
            return
        # bool is a subclass of int, and JSON true is not a number here.
        if not all(type(v) is int and INT64_MIN <= v <= INT64_MAX for v in fields):
            self._skip(position, "event_non_integer")
            return
        self.rows.append(position)
        self.flat.extend(fields)

    def _skip(self, position: int, check: str) -> None:
        self.problems[check].append(position)
        self.has_bad_element[position] = True

    def report_to(self, report: DataQualityReport, ids: np.ndarray) -> None:
        for check, positions in self.problems.items():
            if positions:
                report.add(check, ids[np.unique(positions)], count=len(positions))

    def result(self) -> ParsedEvents:
        values = np.asarray(self.flat, dtype=np.int64).reshape(-1, len(EVENT_FIELDS))
        return ParsedEvents(
            row=np.asarray(self.rows, dtype=np.int64),
            values=values,
            has_list=self.has_list,
            has_bad_element=self.has_bad_element,
        )
