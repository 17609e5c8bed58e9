"""Per-device transforms: one device's rows alone give that device's events and boots."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from analysis import DataQualityReport, derive_boots, expand_events, load_heartbeats
from analysis.sample import simulate_fleet, write_database


@pytest.fixture(scope="module")
def heartbeats(tmp_path_factory) -> pd.DataFrame:
    path = write_database(simulate_fleet(devices=6, days=3, seed=11),
                          tmp_path_factory.mktemp("partition") / "fleet.sqlite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_heartbeats(path, quality=DataQualityReport())


def per_device(heartbeats: pd.DataFrame, build) -> pd.DataFrame:
    parts = [build(rows.reset_index(drop=True))
             for _, rows in heartbeats.groupby("device_id", sort=True)]
    return pd.concat(parts, ignore_index=True)


def test_events_by_device_equal_whole_fleet(heartbeats):
    whole = expand_events(heartbeats, quality=DataQualityReport())

    parts = per_device(heartbeats, lambda rows: expand_events(rows, quality=DataQualityReport()))

    pd.testing.assert_frame_equal(parts, whole.reset_index(drop=True))


def test_boots_by_device_equal_whole_fleet(heartbeats):
    def boots_of(rows):
        events = expand_events(rows, quality=DataQualityReport())
        return derive_boots(rows, events, quality=DataQualityReport())

    whole = boots_of(heartbeats)

    parts = per_device(heartbeats, boots_of)

    pd.testing.assert_frame_equal(parts, whole.reset_index(drop=True))
