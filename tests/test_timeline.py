"""The device timeline figure, checked through its matplotlib artists (gid and label)."""

from __future__ import annotations

import math

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from analysis import codes, load_fleet
from analysis.boots import heartbeat_boot_numbers
from analysis.sample import FleetConfig, simulate_fleet, write_database
from analysis.timeline import GAP_COLORS, heartbeat_gaps, plot_timeline, zoom_window

CONFIG = FleetConfig(devices=8, days=3, seed=11, brownout_loop_share=0.25,
                     camera_loop_share=0.25, malformed_rows=0)
BASE = pd.Timestamp("2026-05-01 10:00:00")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    db = write_database(simulate_fleet(CONFIG), tmp_path_factory.mktemp("fleet") / "f.sqlite")
    return load_fleet(db, cache=False)


def artists(ax, gid: str) -> list:
    return [artist for artist in ax.get_children() if artist.get_gid() == gid]


def event_axis(figure):
    return figure.axes[3]


def whole_history(view) -> dict:
    """Return a window that contains every boot, also one that started before the data."""
    return {"start": view.boots["boot_time"].min(),
            "end": view.heartbeats["received_at"].max() + pd.Timedelta(minutes=1)}


def loop_view(fleet):
    device = fleet.boots.loc[fleet.boots["is_boot_loop"], "device_id"].iloc[0]
    return fleet.device(device)


def busiest_wifi_view(fleet):
    down = fleet.events[fleet.events["tag"] == codes.EVT_WIFI_DOWN]
    return fleet.device(down["device_id"].value_counts().index[0])


def test_one_boot_marker_per_boot(fleet):
    view = loop_view(fleet)
    figure = plot_timeline(view, **whole_history(view))
    markers = artists(event_axis(figure), "boot")

    assert len(markers) == len(view.boots)
    assert [marker.get_label() for marker in markers] == view.boots["cause"].tolist()


def test_boot_markers_coloured_by_cause_class(fleet):
    view = loop_view(fleet)
    figure = plot_timeline(view, **whole_history(view))
    colors = [marker.get_color() for marker in artists(event_axis(figure), "boot")]
    expected = [{"crash": "tab:red", "recovery": "tab:orange", "power": "tab:purple",
                 "power_on": "tab:brown", "planned": "tab:green",
                 "no_diagnostics": "tab:gray"}[name] for name in view.boots["cause_class"]]

    assert colors == expected


def test_default_window_marks_boots_inside_it(fleet):
    view = loop_view(fleet)
    first, last = view.heartbeats["received_at"].min(), view.heartbeats["received_at"].max()
    inside = view.boots[(view.boots["boot_time"] >= first) & (view.boots["boot_time"] <= last)]
    figure = view.timeline()

    assert len(artists(event_axis(figure), "boot")) == len(inside)


def test_one_labelled_marker_per_wifi_down(fleet):
    view = busiest_wifi_view(fleet)
    down = view.events[view.events["tag"] == codes.EVT_WIFI_DOWN]
    figure = plot_timeline(view, **whole_history(view))
    markers = artists(event_axis(figure), "wifi_down")
    expected = [name.removeprefix("WIFI_REASON_") for name in down["reason_name"]]

    assert len(markers) == len(down) > 0
    assert [marker.get_label() for marker in markers] == expected


def test_wifi_down_markers_at_event_times(fleet):
    view = busiest_wifi_view(fleet)
    down = view.events[view.events["tag"] == codes.EVT_WIFI_DOWN]
    figure = plot_timeline(view, **whole_history(view))
    drawn = [mdates.date2num(marker.get_xdata()[0])
             for marker in artists(event_axis(figure), "wifi_down")]
    expected = mdates.date2num(down["event_time"].dt.tz_localize(None).to_numpy())

    assert np.allclose(drawn, expected)


def test_reboot_reason_markers_name_reason(heartbeat_db):
    ts = int(pd.Timestamp(BASE, tz="UTC").timestamp())
    before = [{"t": 1, "d0": 1, "d1": 0, "ts": ts, "up": 0},
              {"t": 8, "d0": 6, "d1": 0, "ts": ts + 250, "up": 250}]
    after = [*before, {"t": 1, "d0": 3, "d1": 0, "ts": ts + 260, "up": 0}]
    rows = [{"id": 1, "device_id": "dev-C", "received_at": str(BASE + pd.Timedelta(seconds=240)),
             "uptime": 240, "reset_reason": 1, "recent_events": before[:1]},
            {"id": 2, "device_id": "dev-C", "received_at": str(BASE + pd.Timedelta(seconds=300)),
             "uptime": 40, "reset_reason": 3, "recent_events": after}]
    view = load_fleet(heartbeat_db(rows), cache=False).device("dev-C")
    figure = view.timeline(**whole_history(view))
    (marker,) = artists(event_axis(figure), "reboot_reason")
    boots = artists(event_axis(figure), "boot")

    assert marker.get_label() == "FATAL_CAMERA"
    assert [boot.get_label() for boot in boots] == ["power_on", "fatal_camera"]


@pytest.mark.parametrize(("gid", "tag"), [("http_fail", codes.EVT_HTTP_FAIL),
                                          ("heartbeat_miss", codes.EVT_HEARTBEAT_MISS)])
def test_scatter_marks_each_event(fleet, gid, tag):
    device = fleet.events.loc[fleet.events["tag"] == tag, "device_id"].iloc[0]
    view = fleet.device(device)
    figure = plot_timeline(view, **whole_history(view))
    (points,) = artists(event_axis(figure), gid)

    assert len(points.get_offsets()) == int((view.events["tag"] == tag).sum())


def test_text_labels_drawn_when_few(fleet):
    view = loop_view(fleet)
    figure = plot_timeline(view, **whole_history(view))

    assert artists(event_axis(figure), "boot_text")
    assert "legend" not in figure.get_suptitle()


def test_text_labels_left_out_when_many(fleet):
    view = loop_view(fleet)
    figure = plot_timeline(view, max_labels=0, **whole_history(view))

    assert artists(event_axis(figure), "boot_text") == []
    assert len(artists(event_axis(figure), "boot")) == len(view.boots)
    assert "causes and reasons in the legend" in figure.get_suptitle()


def test_boot_loop_annotated_with_count(fleet):
    view = loop_view(fleet)
    loop = view.boot_loops().iloc[0]
    figure = plot_timeline(view, **whole_history(view))
    texts = [artist.get_text() for artist in artists(event_axis(figure), "boot_loop")]

    assert f"boot loop: {loop['boots']} boots in" in texts[0]


def test_zoom_on_boot_loop_shows_its_boots(fleet):
    view = loop_view(fleet)
    loop = view.boot_loops().iloc[0]
    low, high = zoom_window(loop["start"], loop["end"])
    figure = view.timeline(start=low, end=high)
    boots = view.boots[(view.boots["boot_time"] >= low) & (view.boots["boot_time"] <= high)]
    event_only = boots[boots["heartbeats"] == 0]

    assert len(artists(event_axis(figure), "boot")) == len(boots) >= loop["boots"]
    assert len(artists(figure.axes[0], "uptime_from_events")) == len(event_only)
    assert figure.axes[0].get_ylabel() == "uptime (s)"


def test_around_sets_window(fleet):
    view = loop_view(fleet)
    centre = view.boot_loops()["start"].iloc[0]
    figure = view.timeline(around=centre, span="2min")
    expected = mdates.date2num([(centre - pd.Timedelta("1min")).tz_localize(None),
                                (centre + pd.Timedelta("1min")).tz_localize(None)])

    assert np.allclose(event_axis(figure).get_xlim(), expected)


def test_axes_carry_titles_and_units(fleet):
    figure = loop_view(fleet).timeline()
    uptime, heap, rssi, events = figure.axes

    assert uptime.get_ylabel() == "uptime (d)"
    assert heap.get_ylabel() == "heap (KiB)"
    assert rssi.get_ylabel() == "RSSI (dBm)"
    assert events.get_xlabel() == "time (UTC)"
    assert figure.get_suptitle().startswith(f"Device {loop_view(fleet).device_id}: ")


def test_heap_lines_break_at_each_boot(fleet):
    view = loop_view(fleet)
    figure = view.timeline()
    (line,) = artists(figure.axes[1], "heap_min_free")
    boot_numbers = heartbeat_boot_numbers(view.heartbeats)
    boot_changes = np.count_nonzero(np.diff(boot_numbers) != 0)

    missing = int(view.heartbeats["heap_min_free"].isna().sum())

    assert len(line.get_ydata()) == len(view.heartbeats) + boot_changes
    assert int(np.isnan(line.get_ydata()).sum()) == missing + boot_changes


def test_rssi_points_are_valid_wifi_up(fleet):
    view = busiest_wifi_view(fleet)
    up = view.events[(view.events["tag"] == codes.EVT_WIFI_UP) & view.events["rssi_valid"]]
    figure = plot_timeline(view, **whole_history(view))
    (points,) = artists(figure.axes[2], "rssi")

    assert points.get_offsets()[:, 1].tolist() == up["rssi_dbm"].astype(float).tolist()


# --- heartbeat gaps --------------------------------------------------------------------


def gap_rows() -> list[dict]:
    """dev-H: 5-minute heartbeats, a 2 h gap while uptime kept growing, then a 2 h gap
    across a power cut (uptime restarts)."""
    rows, uptime, minutes = [], 600, 0
    plan = [(12, 5)] + [(1, 120)] + [(12, 5)] + [(1, 120)] + [(12, 5)]
    for count, step in plan:
        for _ in range(count):
            minutes += step
            uptime += step * 60
            if step == 120 and len(rows) > 20:
                uptime = 60
            rows.append({"id": len(rows) + 1, "device_id": "dev-H", "uptime": uptime,
                         "firmware_version": "1.0.0",
                         "received_at": (BASE + pd.Timedelta(minutes=minutes)).isoformat(sep=" ")})
    return rows


def test_heartbeat_gaps_tell_alive_from_off(heartbeat_db):
    fleet = load_fleet(heartbeat_db(gap_rows()), cache=False)
    gaps = heartbeat_gaps(fleet.heartbeats)

    assert gaps["kind"].tolist() == ["alive", "off"]
    assert (gaps["end"] - gaps["start"]).tolist() == [pd.Timedelta(hours=2)] * 2


def test_gaps_shaded_on_every_panel(heartbeat_db):
    view = load_fleet(heartbeat_db(gap_rows()), cache=False).device("dev-H")
    figure = view.timeline()
    alive_color = GAP_COLORS["alive"][0]

    for ax in figure.axes:
        spans = artists(ax, "gap")
        assert len(spans) == 2
    first = artists(figure.axes[0], "gap")[0]
    assert first.get_facecolor()[:3] == pytest.approx(to_rgb(alive_color))


def test_no_gap_in_regular_heartbeats(heartbeat_db):
    fleet = load_fleet(heartbeat_db(gap_rows()[:12]), cache=False)

    assert heartbeat_gaps(fleet.heartbeats).empty


def test_device_without_diagnostics_draws_notes(heartbeat_db):
    view = load_fleet(heartbeat_db(gap_rows()), cache=False).device("dev-H")
    figure = view.timeline()
    notes = [text.get_text() for ax in figure.axes for text in ax.texts]

    assert "no heap figures (firmware without diagnostics)" in notes
    assert "no EVT_WIFI_UP with an RSSI in this window" in notes


def test_empty_window_draws_without_error(fleet):
    figure = loop_view(fleet).timeline(start="2027-01-01", end="2027-01-02")
    notes = [text.get_text() for ax in figure.axes for text in ax.texts]

    assert "no uptime in this window" in notes
    assert artists(event_axis(figure), "boot") == []


def test_zoom_window_leaves_margin():
    low, high = zoom_window(pd.Timestamp("2026-05-06 08:00:00Z"),
                            pd.Timestamp("2026-05-06 08:10:00Z"))

    assert low == pd.Timestamp("2026-05-06 07:57:30Z")
    assert high == pd.Timestamp("2026-05-06 08:15:00Z")
    assert math.isclose((high - low).total_seconds(), 17.5 * 60)
