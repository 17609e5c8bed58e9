"""The run helpers give what pandas gives: Series.eq on neighbours, groupby first and last."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.row_runs import (
    first_valid_rows,
    last_valid_rows,
    run_max,
    value_changes,
    values_at,
)

SETTINGS = settings(max_examples=200, deadline=None)
# Few distinct values, so that neighbours are often equal and runs are long.
OBJECT_VALUE = st.one_of(st.none(), st.just(float("nan")), st.sampled_from(["a", "b", "A"]),
                         st.integers(min_value=0, max_value=2))
INT_VALUE = st.one_of(st.none(), st.integers(min_value=-2, max_value=2))


def changes_by_pandas(values: pd.Series) -> np.ndarray:
    changes = ~values.eq(values.shift()).fillna(False).to_numpy(dtype=bool)
    # Row 0 always starts a run. Series.eq would compare it with the fill value of shift.
    changes[:1] = True
    return changes


def runs_from(groups: list[int]) -> np.ndarray:
    """Return the first row of each run, for runs of the given lengths."""
    return np.cumsum([0, *groups[:-1]]).astype(np.int64)


@SETTINGS
@given(st.lists(OBJECT_VALUE, max_size=40))
def test_value_changes_object_like_pandas(values):
    series = pd.Series(values, dtype=object)

    changes = value_changes(series)

    np.testing.assert_array_equal(changes, changes_by_pandas(series))


@SETTINGS
@given(st.lists(INT_VALUE, max_size=40))
def test_value_changes_int64_like_pandas(values):
    series = pd.Series(values, dtype="Int64")

    changes = value_changes(series)

    np.testing.assert_array_equal(changes, changes_by_pandas(series))


def test_value_changes_none_equals_none():
    series = pd.Series(["a", None, None, float("nan"), float("nan"), "a"], dtype=object)

    changes = value_changes(series)

    assert changes.tolist() == [True, True, False, True, True, True]


@st.composite
def grouped_values(draw, value_strategy):
    lengths = draw(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8))
    values = draw(st.lists(value_strategy, min_size=sum(lengths), max_size=sum(lengths)))
    return lengths, values


def assert_picks_like_groupby(series: pd.Series, lengths: list[int]) -> None:
    starts = runs_from(lengths)
    group = np.repeat(np.arange(len(lengths)), lengths)
    grouped = series.groupby(group)
    index = pd.RangeIndex(len(lengths))

    first = values_at(series, first_valid_rows(series, starts), index)
    last = values_at(series, last_valid_rows(series, starts), index)

    pd.testing.assert_series_equal(first, grouped.first(), check_names=False,
                                   check_index_type=False)
    pd.testing.assert_series_equal(last, grouped.last(), check_names=False,
                                   check_index_type=False)
    # assert_series_equal takes None and NaN as equal; groupby gives None in object columns.
    assert [type(v) for v in first] == [type(v) for v in grouped.first()]
    assert [type(v) for v in last] == [type(v) for v in grouped.last()]


@SETTINGS
@given(grouped_values(st.one_of(st.none(), st.sampled_from(["1.0.0", "1.1.0"]))))
def test_first_and_last_object_like_groupby(case):
    lengths, values = case

    assert_picks_like_groupby(pd.Series(values, dtype=object), lengths)


@SETTINGS
@given(grouped_values(INT_VALUE))
def test_first_and_last_int64_like_groupby(case):
    lengths, values = case

    assert_picks_like_groupby(pd.Series(values, dtype="Int64"), lengths)


@SETTINGS
@given(grouped_values(st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))))
def test_first_and_last_datetime_like_groupby(case):
    lengths, values = case
    seconds = pd.array(values, dtype="Int64").astype("float64")

    assert_picks_like_groupby(pd.Series(pd.to_datetime(seconds, unit="s", utc=True)), lengths)


@SETTINGS
@given(grouped_values(st.one_of(st.none(), st.integers(min_value=-5, max_value=5))))
def test_run_max_like_groupby(case):
    lengths, values = case
    series = pd.Series(values, dtype="Int64")
    group = np.repeat(np.arange(len(lengths)), lengths)

    maxima = run_max(series.astype("float64").to_numpy(), runs_from(lengths))

    expected = series.groupby(group).max().astype("float64").to_numpy()
    np.testing.assert_array_equal(maxima, expected)


def test_group_without_value_gives_none():
    series = pd.Series([None, None, "x"], dtype=object)
    starts = np.array([0, 2])

    first = values_at(series, first_valid_rows(series, starts))

    assert first[0] is None
    assert first[1] == "x"


def test_no_runs_give_no_rows():
    series = pd.Series([], dtype="Int64")
    starts = np.zeros(0, dtype=np.int64)

    assert len(first_valid_rows(series, starts)) == 0
    assert len(last_valid_rows(series, starts)) == 0
