"""Fleet overview figures, checked against hand-counted heartbeat tables."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import overview


def heartbeats(rows: list[tuple[str, str, str | None, bool]]) -> pd.DataFrame:
    """Build a heartbeat table from (device_id, received_at, firmware, has_diagnostics)."""
    frame = pd.DataFrame(rows, columns=["device_id", "received_at", "firmware_version",
                                        "has_diagnostics"])
    frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
    return frame


FLEET = heartbeats([
    ("dc-1", "2026-05-01 10:00", "1.9.0", False),
    ("dc-1", "2026-05-01 11:00", "1.10.0", True),
    ("dc-1", "2026-05-01 12:00", "1.10.0", True),
    ("dc-2", "2026-05-01 10:30", "1.9.0", False),
    ("dc-3", "2026-05-01 11:30", None, False),
])
EMPTY = FLEET.iloc[0:0]


def test_count_reporting_by_hand():
    counts = overview.count_reporting(FLEET)

    assert counts["devices"] == 3
    assert counts["heartbeats"] == 5
    assert counts["first_heartbeat"] == pd.Timestamp("2026-05-01 10:00", tz="UTC")
    assert counts["last_heartbeat"] == pd.Timestamp("2026-05-01 12:00", tz="UTC")


def test_last_seen_marks_stale_devices():
    devices = overview.last_seen(FLEET)

    assert devices["device_id"].tolist() == ["dc-2", "dc-1", "dc-3"]
    assert devices["is_stale"].tolist() == [True, False, False]
    assert devices["silent_for"].tolist() == [pd.Timedelta(minutes=90), pd.Timedelta(0),
                                              pd.Timedelta(minutes=30)]
    assert devices["firmware_version"].iloc[1] == "1.10.0"
    assert devices["heartbeats"].tolist() == [1, 3, 1]


def test_last_seen_uses_given_window_end():
    devices = overview.last_seen(FLEET, end=pd.Timestamp("2026-05-01 13:30", tz="UTC"))

    assert devices.set_index("device_id")["is_stale"].to_dict() == {
        "dc-1": True, "dc-2": True, "dc-3": True,
    }


def test_stale_needs_more_than_an_hour():
    devices = overview.last_seen(FLEET, end=pd.Timestamp("2026-05-01 13:00", tz="UTC"))

    assert not devices.set_index("device_id").loc["dc-1", "is_stale"]


def test_stale_devices_longest_silent_first():
    end = pd.Timestamp("2026-05-01 13:30", tz="UTC")
    stale = overview.stale_devices(overview.last_seen(FLEET, end=end))

    assert stale["device_id"].tolist() == ["dc-2", "dc-3", "dc-1"]
    assert "is_stale" not in stale.columns


def test_firmware_mix_counts_per_hour_in_version_order():
    mix = overview.firmware_mix(FLEET)

    assert mix.columns.tolist() == ["1.9.0", "1.10.0", "unknown"]
    assert mix["1.9.0"].tolist() == [2, 0, 0]
    assert mix["1.10.0"].tolist() == [0, 1, 1]
    assert mix["unknown"].tolist() == [0, 1, 0]


def test_firmware_mix_by_day():
    mix = overview.firmware_mix(FLEET, freq="D")

    assert mix.loc[pd.Timestamp("2026-05-01", tz="UTC")].to_dict() == {
        "1.9.0": 2, "1.10.0": 2, "unknown": 1,
    }


def test_diagnostics_share_per_version():
    table = overview.diagnostics_share(FLEET).set_index("firmware_version")

    assert table.index.tolist() == ["1.9.0", "1.10.0", "unknown", "total"]
    assert table.loc["1.10.0", "share_with_diagnostics"] == 100.0
    assert table.loc["1.9.0", "share_with_diagnostics"] == 0.0
    assert table.loc["total", "heartbeats"] == 5
    assert table.loc["total", "with_diagnostics"] == 2
    assert table.loc["total", "share_with_diagnostics"] == 40.0
    assert table.loc["total", "devices"] == 3


def test_headline_figures_by_hand():
    figures = overview.headline_figures(FLEET)

    assert figures["stale_devices"] == 1
    assert figures["stale_device_ids"] == ["dc-2"]
    assert figures["firmware_versions"] == ["1.9.0", "1.10.0"]
    assert figures["share_with_diagnostics_pct"] == 40.0


def test_describe_headline_names_stale_device():
    text = overview.describe_headline(overview.headline_figures(FLEET), "all heartbeats")

    assert "**3 devices** sent **5 heartbeats**" in text
    assert "**1 device** sent no heartbeat in the last hour of the window: dc-2." in text


@pytest.mark.parametrize("function", [overview.last_seen, overview.firmware_mix,
                                      overview.diagnostics_share])
def test_empty_table_gives_empty_result(function):
    assert function(EMPTY).empty


def test_empty_table_headline():
    figures = overview.headline_figures(EMPTY)
    text = overview.describe_headline(figures, "heartbeats received from 2030-01-01 on")

    assert figures["devices"] == 0
    assert figures["share_with_diagnostics_pct"] is None
    assert text.startswith("**No heartbeats** in the window")


def test_plot_firmware_mix_stacks_shares():
    figure = overview.plot_firmware_mix(overview.firmware_mix(FLEET))
    (axes,) = figure.get_axes()

    assert axes.get_ylim() == (0.0, 100.0)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "1.9.0", "1.10.0", "unknown",
    ]


def test_plot_of_empty_mix_is_none():
    assert overview.plot_firmware_mix(overview.firmware_mix(EMPTY)) is None
