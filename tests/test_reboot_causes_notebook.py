"""The reboot_causes report: summary and plots in process, and the notebook run by the runner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from report_runs import run_single_report, shown_text

from analysis import load_fleet
from analysis.boot_episodes import detect_boot_loops, detect_power_problems, silent_devices
from analysis.exposure import device_hours
from analysis.notebook import to_json_value
from analysis.reboot_analysis import reboot_causes, reboot_survival
from analysis.reboot_report import (
    describe_reboots,
    plot_boot_timeline,
    plot_rates,
    plot_reboot_causes,
    plot_survival,
    reboot_headline,
)
from analysis.stability import fleet_stability

REPORT = "reboot_causes"
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def beat(heartbeat_id, device, when, uptime, reset, version="1.1.0"):
    return {"id": heartbeat_id, "device_id": device, "received_at": when, "uptime": uptime,
            "firmware_version": version, "reset_reason": reset}


# dev-G loops on brownouts and then stays silent for six hours while dev-H reports. dev-U
# reports an undefined reset reason once.
BROWNOUT_ROWS = [
    beat(1, "dev-G", "2026-05-01 10:00:00", 6, 9),
    beat(2, "dev-G", "2026-05-01 10:00:11", 7, 9),
    beat(3, "dev-G", "2026-05-01 10:00:22", 8, 9),
    beat(4, "dev-G", "2026-05-01 10:00:33", 6, 9),
    beat(5, "dev-U", "2026-05-01 12:00:00", 600, 1),
    beat(6, "dev-U", "2026-05-01 16:00:00", 30, 23),
] + [beat(10 + hour, "dev-H", f"2026-05-01 {10 + hour:02d}:00:33", 3600 * hour + 100, 1)
     for hour in range(7)]


def headline_of(fleet):
    return reboot_headline(fleet, loops=detect_boot_loops(fleet.boots),
                           problems=detect_power_problems(fleet.boots),
                           silent=silent_devices(fleet.heartbeats, as_of=fleet.end))


@pytest.fixture
def brownout_fleet(heartbeat_db):
    return load_fleet(heartbeat_db(BROWNOUT_ROWS))


def test_headline_names_loop_and_silence(brownout_fleet):
    figures = headline_of(brownout_fleet)

    assert figures["unexpected_reboots"] == 4
    assert figures["unexpected_by_cause"] == {"brownout": 3, "unknown": 1}
    assert figures["top_cause"] == "brownout"
    assert figures["top_cause_share_pct"] == pytest.approx(75.0)
    assert figures["boot_loops"] == 1
    assert figures["boot_loop_devices"] == ["dev-G"]
    assert figures["power_problem_devices"] == ["dev-G"]
    assert figures["silent_devices"] == ["dev-G"]
    assert figures["unrecognised_reset_reasons"] == 1


def test_summary_text_states_figures(brownout_fleet):
    text = describe_reboots(headline_of(brownout_fleet), "all heartbeats in the database")

    assert text.startswith("**2 of 3 devices** had unexpected reboots: **4**")
    assert "Brownouts caused 75 % of them, unknown reset reasons 25 %." in text
    assert "1 boot loop on 1 device (dev-G)." in text
    assert "1 device sent nothing in the last hour of the window (dev-G)." in text
    assert "Unrecognised codes: 1 heartbeat reported a reset reason outside" in text


def test_summary_without_unexpected_reboots(heartbeat_db):
    rows = [beat(1, "a", "2026-05-01 10:00:00", 100, 1),
            beat(2, "a", "2026-05-01 11:00:00", 3700, 1)]
    fleet = load_fleet(heartbeat_db(rows))

    text = describe_reboots(headline_of(fleet), "all heartbeats in the database")

    # With no event in 1 hour, the exact upper bound is ln(40) per hour.
    assert text.startswith("**No unexpected reboot** on 1 device in 1 device-hours")
    assert "95 % upper bound 3,688.88 per 1,000 device-hours" in text


def test_summary_of_empty_window(brownout_fleet, heartbeat_db):
    fleet = load_fleet(heartbeat_db(BROWNOUT_ROWS), start="2030-01-01")

    text = describe_reboots(headline_of(fleet), "window")

    assert text.startswith("**No heartbeats** in the window (window)")


def test_plots_have_titles_and_labels(brownout_fleet):
    boots = brownout_fleet.boots
    curves, _ = reboot_survival(boots)
    figures = [
        plot_reboot_causes(reboot_causes(boots)),
        plot_rates(fleet_stability(brownout_fleet, by="firmware_version"), "firmware_version"),
        plot_boot_timeline(boots, ["dev-G", "dev-U"]),
        plot_survival(curves),
    ]

    for figure in figures:
        assert isinstance(figure, Figure)
        axes = figure.axes[0]
        assert axes.get_title()
        assert axes.get_xlabel()
        assert axes.get_ylabel()


def test_plots_of_nothing_are_none(brownout_fleet):
    boots = brownout_fleet.boots.iloc[:0]

    assert plot_reboot_causes(reboot_causes(boots)) is None
    assert plot_boot_timeline(boots, []) is None
    assert plot_survival(reboot_survival(boots)[0]) is None


def run_report(db: Path, out_dir: Path, **options):
    """Run the report; return its outcome, its summary figures, its page and its outputs."""
    run = run_single_report(db, REPORT, out_dir, **options)
    return run.report, run.summary, run.page, shown_text(run.notebook, markdown_cells=False)


@pytest.fixture(scope="module")
def simulated_db(tmp_path_factory):
    from analysis.sample import simulate_fleet
    from analysis.sample.writer import write_database

    simulation = simulate_fleet(devices=10, days=4, seed=11, malformed_rows=0)
    db = write_database(simulation, tmp_path_factory.mktemp("sim") / "fleet.sqlite")
    return db, simulation


@pytest.fixture(scope="module")
def simulated_run(simulated_db, tmp_path_factory):
    db, _ = simulated_db
    return run_report(db, tmp_path_factory.mktemp("reports"))


@pytest.mark.slow
def test_notebook_succeeds_on_simulated_fleet(simulated_run):
    report, summary, _, _ = simulated_run

    assert report.succeeded, f"{report.error_name}: {report.error_message}"
    assert summary is not None


@pytest.mark.slow
def test_summary_equals_in_process_figures(simulated_run, simulated_db):
    db, _ = simulated_db
    _, summary, _, _ = simulated_run

    assert summary == to_json_value(headline_of(load_fleet(db)))


@pytest.mark.slow
def test_summary_counts_equal_truth(simulated_run, simulated_db):
    db, simulation = simulated_db
    _, summary, _, _ = simulated_run
    truth = simulation.truth_boots
    unexpected = truth["is_reboot"] & truth["observable"] & truth["cause_observable"] & (
        truth["cause_class"].isin(["crash", "recovery", "power"]))
    fleet = load_fleet(db)

    assert summary["unexpected_reboots"] == int(unexpected.sum())
    assert summary["devices"] == simulation.config.devices
    # Hours count only where heartbeats carry diagnostics, so reboots can be classified.
    with_diagnostics = fleet.heartbeats[fleet.heartbeats["has_diagnostics"]]
    classified = fleet.boots[fleet.boots["cause_class"] != "no_diagnostics"]
    assert summary["device_hours"] == pytest.approx(
        device_hours(with_diagnostics, classified)["hours"].sum(), abs=1e-9)


@pytest.mark.slow
def test_page_shows_plots_without_code(simulated_run):
    _, _, page, text = simulated_run

    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) >= 5
    assert "reboot_analysis." not in page
    assert "Traceback" not in page
    assert "per 1,000 device-hours" in text


@pytest.mark.slow
def test_empty_window_gives_statement(simulated_db, tmp_path):
    db, _ = simulated_db

    report, summary, _, text = run_report(db, tmp_path, start="2030-01-01")

    assert report.succeeded, f"{report.error_name}: {report.error_message}"
    assert summary["devices"] == 0
    assert summary["unexpected_reboots"] == 0
    assert "**No heartbeats** in the window" in text
