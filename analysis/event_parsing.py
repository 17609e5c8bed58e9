"""Parse the ``recent_events`` JSON of many heartbeats into flat integer arrays.

Malformed content never aborts: a heartbeat whose text is not JSON or not a list
contributes no events, an element that is not an object, lacks a key or holds a
non-integer is skipped, and each problem is counted by kind with example heartbeat ids.
An element is used only when all five fields ``t, d0, d1, ts, up`` are integers, because a
partial event cannot be told apart from a different event when lists are aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from analysis.quality import DataQualityReport

EVENT_FIELDS = ("t", "d0", "d1", "ts", "up")
RING_BUFFER_SIZE = 16
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class ParsedEvents:
    """Events of many heartbeats as flat arrays, in list order within each heartbeat.

    ``row`` is the position of the carrying heartbeat in the input; ``values`` has one
    column per field of `EVENT_FIELDS`; ``has_list[i]`` is True when heartbeat i held a
    parseable JSON list (possibly empty).
    """

    row: np.ndarray
    values: np.ndarray
    has_list: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Number of valid events per heartbeat."""
        return np.bincount(self.row, minlength=len(self.has_list))


def parse_event_lists(
    texts: np.ndarray | list,
    heartbeat_ids: np.ndarray | list,
    report: DataQualityReport,
) -> ParsedEvents:
    """Parse each heartbeat's ``recent_events`` text.

    Parameters
    ----------
    texts : array of str or None
        One ``recent_events`` value per heartbeat; None (v1.0.0) means no list.
    heartbeat_ids : array of int
        Ids used as examples in the data-quality report.
    report : DataQualityReport
        Receives counts of not-JSON, not-a-list, oversized lists and bad elements.

    Returns
    -------
    ParsedEvents
    """
    ids = np.asarray(heartbeat_ids)
    collector = _Collector(len(ids))
    for position, text in enumerate(texts):
        if text is None or (isinstance(text, float) and text != text):
            continue
        collector.parse(position, text)
    collector.report_to(report, ids)
    return collector.result()


class _Collector:
    """Accumulates parsed events and the problems met, row by row."""

    def __init__(self, size: int) -> None:
        self.rows: list[int] = []
        self.flat: list[int] = []
        self.has_list = np.zeros(size, dtype=bool)
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
            self.problems["event_not_object"].append(position)
            return
        try:
            fields = (element["t"], element["d0"], element["d1"], element["ts"], element["up"])
        except KeyError:
            self.problems["event_missing_keys"].append(position)
            return
        # bool is a subclass of int, and JSON true is not a number here.
        if not all(type(v) is int and INT64_MIN <= v <= INT64_MAX for v in fields):
            self.problems["event_non_integer"].append(position)
            return
        self.rows.append(position)
        self.flat.extend(fields)

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
        )
