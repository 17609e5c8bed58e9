"""The fast Arrow parser and the exact row-by-row parser agree on every input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.event_parsing import (
    parse_event_lists,
    parse_event_lists_exactly,
    runs_of_equal_text,
)
from analysis.quality import DataQualityReport

GOOD = '[{"t":3,"d0":201,"d1":0,"ts":1777629600,"up":30},{"t":2,"d0":65469,"d1":0,"ts":5,"up":9}]'
ODD_TEXTS = [
    None,
    pd.NA,
    float("nan"),
    "[]",
    '[{"t":3,"d0":15',
    '{"t":3,"d0":201}',
    '[{"t":3,"d0":201}]',
    '[{"t":1.5,"d0":1,"d1":0,"ts":0,"up":0}]',
    '[{"t":true,"d0":1,"d1":0,"ts":0,"up":0}]',
    '[{"t":null,"d0":1,"d1":0,"ts":0,"up":0}]',
    '[{"t":"3","d0":1,"d1":0,"ts":0,"up":0}]',
    '[{"t":3,"d0":1,"d1":0,"ts":0,"up":0,"extra":1}]',
    '[{"t":99999999999999999999,"d0":1,"d1":0,"ts":0,"up":0}]',
    '[{"t":1,"d0":1,"d1":0,"ts":0,"up":0}], "x": 1',
    '[7, {"t":1,"d0":1,"d1":0,"ts":0,"up":0}]',
    '[\n{"t":1,"d0":1,"d1":0,"ts":0,"up":0}\n]',
    ' [{"t":1,"d0":1,"d1":0,"ts":0,"up":0}] ',
    "",
    "null",
    '"[]"',
    '[{"t":1,"d0":1,"d1":0,"ts":0,"up":0}]' * 2,
    json.dumps([{"t": 4, "d0": 1, "d1": n, "ts": n, "up": n} for n in range(20)]),
]


def parse_both(texts):
    ids = np.arange(1, len(texts) + 1)
    fast_report, exact_report = DataQualityReport(), DataQualityReport()
    fast = parse_event_lists(np.array(texts, dtype=object), ids, fast_report)
    exact = parse_event_lists_exactly(texts, ids, exact_report)
    return fast, exact, fast_report, exact_report


def test_fast_and_exact_parsers_agree_on_odd_texts():
    texts = [GOOD] * 700 + ODD_TEXTS * 3 + [GOOD] * 700

    fast, exact, fast_report, exact_report = parse_both(texts)

    np.testing.assert_array_equal(fast.row, exact.row)
    np.testing.assert_array_equal(fast.values, exact.values)
    np.testing.assert_array_equal(fast.has_list, exact.has_list)
    assert fast_report.to_dict() == exact_report.to_dict()


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_each_odd_text_alone(text):
    fast, exact, fast_report, exact_report = parse_both([GOOD, text, GOOD])

    np.testing.assert_array_equal(fast.row, exact.row)
    np.testing.assert_array_equal(fast.values, exact.values)
    assert fast_report.to_dict() == exact_report.to_dict()


def test_valid_elements_beside_invalid_ones_are_kept():
    text = '[{"t":3,"d0":15,"d1":0,"ts":1,"up":2},{"t":3},{"t":2,"d0":1,"d1":0,"ts":3,"up":4}]'

    fast, _, report, _ = parse_both([text])

    assert fast.values[:, 0].tolist() == [3, 2]
    assert report.count("event_missing_keys") == 1


def test_runs_join_equal_texts_and_missing():
    texts = np.array(["a", "a", None, None, float("nan"), pd.NA, "a", "", None],
                     dtype=object)

    runs = runs_of_equal_text(texts)

    assert runs.tolist() == [0, 0, 1, 1, 1, 1, 2, 3, 4]


def test_runs_join_none_without_other_missing():
    texts = np.array([None, None, "a", None], dtype=object)

    runs = runs_of_equal_text(texts)

    assert runs.tolist() == [0, 0, 1, 2]


def test_runs_keep_str_subclass_apart():
    texts = np.array(["a", np.str_("a"), np.str_("a"), 7, 7], dtype=object)

    runs = runs_of_equal_text(texts)

    assert runs.tolist() == [0, 1, 2, 3, 4]
