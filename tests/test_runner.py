"""The report runner: real papermill runs on real SQLite files, checked against plain SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbformat.v4 import new_code_cell, new_notebook

from analysis.errors import DatabaseNotFoundError, InvalidInputError, TableNotFoundError
from analysis.fleet import load_fleet
from analysis.notebook import (
    format_duration,
    open_report_fleet,
    parse_list,
    to_json_value,
    write_summary,
)
from analysis.runner.catalog import UnknownReportError, discover_reports, select_reports
from analysis.runner.execute import check_parameters
from analysis.runner.html import write_run_index
from analysis.runner.kernel import KernelUnavailableError, ensure_kernel
from analysis.runner.run import run_reports
from analysis.runner.source import check_database, fingerprint_database, resolve_database
from analysis.runner.window import parse_since, parse_window
from analysis.sample import simulate_fleet, write_database
from analysis.stability import stability_headline

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SEED = 20260501
# A device id with markup, to show that text from the database is escaped in every page.
MARKUP_DEVICE = "<b>dc-markup</b>"


def write_small_fleet(path: Path) -> Path:
    """Write a simulated fleet (10 devices, 3 days) plus one hand-written device.

    The extra device has markup in its id, to show that text from the database is escaped
    in every page, and stops after an hour, so it is stale at the end of the window.
    """
    write_database(simulate_fleet(devices=10, days=3, seed=SEED), path)
    with sqlite3.connect(path) as connection:
        (first,) = connection.execute("SELECT min(received_at) FROM heartbeats").fetchone()
        start = pd.Timestamp(first)
        connection.executemany(
            "INSERT INTO heartbeats (device_id, received_at, uptime, firmware_version) "
            "VALUES (?, ?, ?, '1.0.0')",
            [(MARKUP_DEVICE, (start + pd.Timedelta(minutes=5 * step)).isoformat(sep=" "),
              600 + 300 * step) for step in range(12)],
        )
    connection.close()
    return path


def sql_one(db: Path, query: str) -> tuple:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchone()


def write_notebook(directory: Path, name: str, sources: list[str], *,
                   kernel: str = "python3", default: bool = True) -> Path:
    """Write a report notebook whose first cell contains the standard parameters."""
    parameters = new_code_cell(
        'db: str = ""  # database\n'
        'table: str = "heartbeats"  # table\n'
        'start: str = ""  # window start\n'
        'end: str = ""  # window end\n'
        "firmware: list = []  # firmware versions\n"
        "devices: list = []  # device ids\n"
        'summary_path: str = ""  # summary file',
        metadata={"tags": ["parameters"]},
    )
    notebook = new_notebook(cells=[parameters, *map(new_code_cell, sources)])
    notebook.metadata = {
        "doorcounter": {"title": name.replace("_", " ").title(), "order": 1,
                        "default": default},
        "kernelspec": {"name": kernel, "display_name": kernel, "language": "python"},
    }
    path = directory / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory) -> Path:
    return write_small_fleet(tmp_path_factory.mktemp("db") / "fleet.sqlite")


@pytest.fixture(scope="module")
def full_run(fleet_db, tmp_path_factory):
    """One run of every notebook in notebooks/, with the database's bytes before and after."""
    before = (fleet_db.read_bytes(), fleet_db.stat().st_mtime_ns)
    names = list(discover_reports(NOTEBOOKS_DIR))
    # Two jobs, as on the 2-core CI machine, so the run also covers parallel execution.
    result = run_reports(fleet_db, reports=names, out_dir=tmp_path_factory.mktemp("reports"),
                         jobs=2)
    after = (fleet_db.read_bytes(), fleet_db.stat().st_mtime_ns)
    return result, before, after


@pytest.fixture(scope="module")
def mixed_run(fleet_db, tmp_path_factory):
    """A run of a notebook that echoes its parameters, one that raises, one whose kernel dies."""
    notebooks = tmp_path_factory.mktemp("notebooks")
    write_notebook(notebooks, "echo_parameters", [
        "from analysis.notebook import parse_list, parse_window, write_summary\n"
        "window = parse_window(start, end)\n"
        "write_summary({'start': start, 'start_type': type(start).__name__,\n"
        "               'end': end, 'firmware': firmware,\n"
        "               'firmware_type': type(firmware).__name__,\n"
        "               'devices': parse_list(devices, 'devices'),\n"
        "               'window_start': window[0]}, summary_path)",
    ], kernel="python3-venv-old")
    write_notebook(notebooks, "broken", [
        "import pandas as pd\n"
        "frame = pd.DataFrame({'uptime_s': [1]})",
        "frame['heap_free']",
        "print('never reached')",
    ])
    write_notebook(notebooks, "kernel_dies", ["import os\nos._exit(1)"])
    result = run_reports(
        fleet_db,
        start=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        end="2026-05-02T02:00:00+02:00",
        firmware=("1.1.0",),
        devices=["dc-0002"],
        reports=["echo_parameters", "broken", "kernel_dies"],
        notebooks_dir=notebooks,
        out_dir=tmp_path_factory.mktemp("reports"),
    )
    return result


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- every notebook on a small fleet -------------------------------------------------------


@pytest.mark.slow
def test_every_notebook_succeeds(full_run):
    result, _, _ = full_run
    failed = {report.name: f"{report.error_name}: {report.error_message}"
              for report in result.failed}

    assert result.reports, "no report ran"
    assert failed == {}


@pytest.mark.slow
def test_run_writes_pages_notebooks_and_records(full_run):
    result, _, _ = full_run

    assert (result.run_dir / "index.html").is_file()
    assert (result.run_dir / "summary.json").is_file()
    assert (result.run_dir / "run.json").is_file()
    assert (result.run_dir.parent / "index.html").is_file()
    for report in result.reports:
        assert (result.run_dir / f"{report.name}.html").is_file()
        assert (result.run_dir / f"{report.name}.ipynb").is_file()


@pytest.mark.slow
def test_overview_counts_equal_sql(full_run, fleet_db):
    result, _, _ = full_run
    overview = read_json(result.run_dir / "summary.json")["fleet_overview"]
    devices, heartbeats = sql_one(fleet_db,
                                  "SELECT count(DISTINCT device_id), count(*) FROM heartbeats")

    assert overview["devices"] == devices
    assert overview["heartbeats"] == heartbeats


@pytest.mark.slow
def test_overview_stale_devices_equal_sql(full_run, fleet_db):
    result, _, _ = full_run
    overview = read_json(result.run_dir / "summary.json")["fleet_overview"]
    with sqlite3.connect(fleet_db) as connection:
        stale = [row[0] for row in connection.execute(
            "SELECT device_id FROM heartbeats GROUP BY device_id HAVING max(received_at) < "
            "(SELECT datetime(max(received_at), '-1 hour') FROM heartbeats) "
            "ORDER BY device_id")]
    connection.close()

    assert MARKUP_DEVICE in stale
    assert sorted(overview["stale_device_ids"]) == stale
    assert overview["stale_devices"] == len(stale)


@pytest.mark.slow
def test_reports_print_nothing_to_stderr(full_run):
    result, _, _ = full_run
    # A warning printed by a cell is published in the report's HTML.
    for report in result.reports:
        executed = nbformat.read(result.run_dir / f"{report.name}.ipynb", as_version=4)
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                assert output.get("name") != "stderr", (report.name, output.get("text"))


@pytest.mark.slow
def test_overview_stability_equals_data_layer(full_run, fleet_db):
    result, _, _ = full_run
    overview = read_json(result.run_dir / "summary.json")["fleet_overview"]
    fleet = load_fleet(fleet_db, cache=False)
    unexpected = int(fleet.boots["is_unexpected"].sum())

    assert overview["stability"] == pytest.approx(stability_headline(fleet), rel=1e-9)
    assert overview["stability"]["unexpected_reboots"] == unexpected
    (with_diagnostics,) = sql_one(fleet_db, "SELECT count(DISTINCT device_id) FROM heartbeats "
                                            "WHERE recent_events IS NOT NULL")
    assert overview["stability"]["devices"] == with_diagnostics


@pytest.mark.slow
def test_overview_share_with_diagnostics_equals_sql(full_run, fleet_db):
    result, _, _ = full_run
    overview = read_json(result.run_dir / "summary.json")["fleet_overview"]
    (share,) = sql_one(fleet_db, "SELECT round(100.0 * sum(reset_reason IS NOT NULL OR "
                                 "heap_free IS NOT NULL OR heap_min_free IS NOT NULL OR "
                                 "last_disconnect_code IS NOT NULL OR recent_events IS NOT NULL)"
                                 " / count(*), 1) FROM heartbeats")

    assert overview["share_with_diagnostics_pct"] == pytest.approx(share)
    assert overview["firmware_versions"] == ["1.0.0", "1.1.0"]


@pytest.mark.slow
def test_run_json_records_run(full_run, fleet_db):
    result, _, _ = full_run
    run = read_json(result.run_dir / "run.json")

    assert run["schema_version"] == 1
    assert run["run_id"] == result.run_dir.name
    assert run["status"] == "succeeded"
    assert run["parameters"]["db"] == str(fleet_db.resolve())
    assert run["parameters"]["start"] == ""
    assert run["versions"]["pandas"] == pd.__version__
    assert run["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert [entry["name"] for entry in run["reports"]] == [r.name for r in result.reports]
    assert all(entry["duration_s"] > 0 for entry in run["reports"])


@pytest.mark.slow
def test_run_json_fingerprints_database(full_run, fleet_db):
    result, _, _ = full_run
    database = read_json(result.run_dir / "run.json")["database"]
    content = fleet_db.read_bytes()
    mebibyte = 1024 * 1024

    assert len(content) > 2 * mebibyte
    assert database["size_bytes"] == len(content)
    assert database["sha256_head_tail"] == hashlib.sha256(
        content[:mebibyte] + content[-mebibyte:]
    ).hexdigest()
    assert database["wal_size_bytes"] == 0


@pytest.mark.slow
def test_run_leaves_database_unchanged(full_run):
    _, before, after = full_run

    assert after[0] == before[0]
    assert after[1] == before[1]


@pytest.mark.slow
def test_report_page_has_no_code_and_embeds_figures(full_run):
    result, _, _ = full_run
    page = (result.run_dir / "fleet_overview.html").read_text(encoding="utf-8")

    assert "open_report_fleet" not in page
    assert "summary_path: str" not in page
    assert "hl-ipython3" not in page
    assert 'class="jp-InputPrompt' not in page
    assert re.search(r'<img alt="Plot of [^"]+" src="data:image/png;base64,', page)
    assert "cdnjs" not in page
    assert "Content-Security-Policy" in page


@pytest.mark.slow
def test_pages_escape_text_from_database(full_run):
    result, _, _ = full_run
    report = (result.run_dir / "fleet_overview.html").read_text(encoding="utf-8")

    assert MARKUP_DEVICE not in report
    assert "&lt;b&gt;dc-markup&lt;/b&gt;" in report


# --- a failing report, parameters and kernels --------------------------------------------


@pytest.mark.slow
def test_failing_report_recorded_as_failed(mixed_run):
    run = read_json(mixed_run.run_dir / "run.json")
    entries = {entry["name"]: entry for entry in run["reports"]}

    assert run["status"] == "failed"
    assert entries["broken"]["status"] == "failed"
    assert entries["broken"]["error"] == {"name": "KeyError", "message": "'heap_free'"}
    assert entries["echo_parameters"]["status"] == "succeeded"
    assert entries["echo_parameters"]["error"] is None


@pytest.mark.slow
def test_dead_kernel_recorded_as_failed(mixed_run):
    run = read_json(mixed_run.run_dir / "run.json")
    entry = {entry["name"]: entry for entry in run["reports"]}["kernel_dies"]

    assert entry["status"] == "failed"
    assert entry["error"]["name"] == "DeadKernelError"


@pytest.mark.slow
def test_failing_report_keeps_marked_notebook(mixed_run):
    notebook = nbformat.read(mixed_run.run_dir / "broken.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [cell for cell in code if any(o.output_type == "error" for o in cell.outputs)]
    markers = [cell for cell in notebook.cells
               if "papermill-error-cell-tag" in cell.metadata.get("tags", [])]

    assert [cell.source for cell in errors] == ["frame['heap_free']"]
    assert markers, "papermill did not mark the failing cell"
    assert code[-1].execution_count is None


@pytest.mark.slow
def test_failing_report_shown_in_indexes(mixed_run):
    run_index = (mixed_run.run_dir / "index.html").read_text(encoding="utf-8")
    runs_index = (mixed_run.run_dir.parent / "index.html").read_text(encoding="utf-8")

    assert "FAILED" in run_index
    assert "KeyError" in run_index
    assert "&#39;heap_free&#39;" in run_index
    assert "FAILED" in runs_index
    assert "broken" in runs_index


@pytest.mark.slow
def test_other_reports_written_after_failure(mixed_run):
    assert (mixed_run.run_dir / "echo_parameters.html").is_file()
    assert (mixed_run.run_dir / "broken.html").is_file()
    assert [report.name for report in mixed_run.failed] == ["broken", "kernel_dies"]


@pytest.mark.slow
def test_notebook_naming_missing_kernel_runs(mixed_run):
    notebook = nbformat.read(mixed_run.run_dir / "echo_parameters.ipynb", as_version=4)

    assert mixed_run.reports[0].succeeded
    assert notebook.metadata["papermill"]["parameters"]["devices"] == ["dc-0002"]


@pytest.mark.slow
def test_parameters_arrive_as_iso_strings_and_lists(mixed_run):
    echoed = read_json(mixed_run.run_dir / "summary.json")["echo_parameters"]

    assert echoed["start"] == "2026-05-01T00:00:00+00:00"
    assert echoed["start_type"] == "str"
    assert echoed["end"] == "2026-05-02T00:00:00+00:00"
    assert echoed["firmware"] == ["1.1.0"]
    assert echoed["firmware_type"] == "list"
    assert echoed["devices"] == ["dc-0002"]
    assert echoed["window_start"] == "2026-05-01T00:00:00+00:00"


@pytest.mark.slow
def test_runs_index_lists_newest_first(mixed_run, fleet_db, tmp_path):
    out = mixed_run.run_dir.parent
    notebooks_dir = read_json(mixed_run.run_dir / "run.json")["parameters"]["notebooks_dir"]
    second = run_reports(fleet_db, reports=["echo_parameters"], notebooks_dir=notebooks_dir,
                         out_dir=out)
    page = (out / "index.html").read_text(encoding="utf-8")

    assert second.run_dir.name != mixed_run.run_dir.name
    assert page.index(second.run_dir.name) < page.index(mixed_run.run_dir.name)


@pytest.mark.slow
def test_parallel_jobs_with_relative_out_dir(fleet_db, tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("first", "second", "third"):
        write_notebook(notebooks, name, [
            "import os\n"
            "from analysis.notebook import write_summary\n"
            "write_summary({'cwd': os.getcwd()}, summary_path)",
        ])
    monkeypatch.chdir(tmp_path)

    result = run_reports(fleet_db, reports=["first", "second", "third"],
                         notebooks_dir="notebooks", out_dir="reports", jobs=2)
    summaries = read_json(result.run_dir / "summary.json")

    assert result.succeeded, result.failed
    assert Path.cwd() == tmp_path
    assert result.run_dir.parent == tmp_path / "reports"
    assert {figures["cwd"] for figures in summaries.values()} == {str(notebooks)}


@pytest.mark.slow
def test_empty_window_gives_statement(fleet_db, tmp_path):
    result = run_reports(fleet_db, start="2030-01-01", reports=["fleet_overview"],
                         out_dir=tmp_path)
    overview = read_json(result.run_dir / "summary.json")["fleet_overview"]
    page = (result.run_dir / "fleet_overview.html").read_text(encoding="utf-8")

    assert result.succeeded
    assert overview["heartbeats"] == 0
    assert overview["devices"] == 0
    assert "No heartbeats" in page


# --- checks before anything runs ---------------------------------------------------------


def test_tuple_parameter_rejected():
    with pytest.raises(InvalidInputError, match="tuple"):
        check_parameters({"firmware": ("1.1.0",)})


def test_datetime_parameter_rejected():
    with pytest.raises(InvalidInputError, match="datetime"):
        check_parameters({"start": dt.datetime(2026, 5, 1)})


def test_plain_parameters_accepted():
    check_parameters({"db": "x.sqlite", "firmware": ["1.1.0"], "start": "", "limit": 3})


def test_zero_jobs_rejected(fleet_db, tmp_path):
    with pytest.raises(InvalidInputError, match="jobs=0"):
        run_reports(fleet_db, jobs=0, out_dir=tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_unknown_report_lists_known_ones():
    catalog = discover_reports(NOTEBOOKS_DIR)

    with pytest.raises(UnknownReportError, match="fleet_overview"):
        select_reports(catalog, ["no_such_report"])


def test_default_reports_follow_metadata(tmp_path):
    write_notebook(tmp_path, "second", ["1"], default=True)
    write_notebook(tmp_path, "drilldown", ["1"], default=False)
    nbformat.write(new_notebook(cells=[new_code_cell("1")]), tmp_path / "scratch.ipynb")

    selected = select_reports(discover_reports(tmp_path))

    assert [report.name for report in selected] == ["second"]


def test_missing_database_stops_run(tmp_path):
    with pytest.raises(DatabaseNotFoundError, match="not found"):
        run_reports(tmp_path / "missing.sqlite", out_dir=tmp_path / "out")

    assert not (tmp_path / "out").exists()


def test_check_database_rejects_table_missing(heartbeat_db):
    db = heartbeat_db([], table="other")

    with pytest.raises(TableNotFoundError, match="heartbeats"):
        check_database(str(db))


@pytest.mark.parametrize("size", [100, 1024 * 1024 + 10, 3 * 1024 * 1024])
def test_fingerprint_hashes_each_byte_once(tmp_path, size):
    path = tmp_path / "fleet.sqlite"
    content = (b"SQLite format 3\x00" + bytes(range(256)) * (size // 256 + 1))[:size]
    path.write_bytes(content)
    block = 1024 * 1024
    hashed = content if size <= 2 * block else content[:block] + content[-block:]

    fingerprint = fingerprint_database(str(path))

    assert fingerprint["sha256_head_tail"] == hashlib.sha256(hashed).hexdigest()
    assert fingerprint["size_bytes"] == size


def test_resolve_database_prefers_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DOORCOUNTER_DB", str(tmp_path / "from_env.sqlite"))

    assert resolve_database(tmp_path / "given.sqlite") == str(tmp_path / "given.sqlite")
    assert resolve_database("") == str(tmp_path / "from_env.sqlite")
    assert resolve_database("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


@pytest.mark.slow
def test_kernelspec_runs_this_interpreter():
    name = ensure_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)

    assert spec.argv[0] == sys.executable
    assert spec.argv[-4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # Declaring curve support lets jupyter_client encrypt the kernel's connections.
    assert "curve" in spec.metadata["supported_encryption"]


@pytest.mark.slow
def test_missing_ipykernel_stops_before_running(tmp_path, fleet_db):
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")

    with pytest.raises(KernelUnavailableError, match="pip install ipykernel"):
        ensure_kernel(python)
    with pytest.raises(KernelUnavailableError):
        run_reports(fleet_db, python=python, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- notebook helpers --------------------------------------------------------------------


def test_parse_list_keeps_list():
    assert parse_list(["1.0.0", "1.1.0"], "firmware") == ["1.0.0", "1.1.0"]


def test_parse_list_empty_values():
    assert parse_list([], "devices") == []
    assert parse_list("", "devices") == []
    assert parse_list(None, "devices") == []


def test_parse_list_single_string():
    assert parse_list("dc-0001", "devices") == ["dc-0001"]


def test_parse_list_rejects_tuple():
    with pytest.raises(InvalidInputError, match="tuple"):
        parse_list(("1.1.0",), "firmware")


def test_parse_list_rejects_stringified_tuple():
    with pytest.raises(InvalidInputError, match="tuple"):
        parse_list("('1.0.0', '1.1.0')", "firmware")


def test_parse_list_rejects_numbers():
    with pytest.raises(InvalidInputError, match="not strings"):
        parse_list([1.1], "firmware")


def test_parse_window_converts_to_utc():
    start, end = parse_window("2026-05-01T02:00:00+02:00", "2026-05-02")

    assert start == pd.Timestamp("2026-05-01 00:00", tz="UTC")
    assert end == pd.Timestamp("2026-05-02 00:00", tz="UTC")


def test_parse_window_open_bounds():
    assert parse_window("", "") == (None, None)


def test_parse_window_rejects_bad_date():
    with pytest.raises(InvalidInputError, match="2026-13-45"):
        parse_window("2026-13-45", "")


def test_parse_window_rejects_reversed_bounds():
    with pytest.raises(InvalidInputError, match="not before"):
        parse_window("2026-05-02", "2026-05-01")


@pytest.mark.parametrize(("span", "expected"), [
    ("7d", "2026-05-01 00:00"),
    ("12h", "2026-05-07 12:00"),
    ("2w", "2026-04-24 00:00"),
    ("30m", "2026-05-07 23:30"),
    ("2026-05-03", "2026-05-03 00:00"),
])
def test_parse_since_spans_and_dates(span, expected):
    now = pd.Timestamp("2026-05-08 00:00", tz="UTC")

    assert parse_since(span, now=now) == pd.Timestamp(expected, tz="UTC")


@pytest.mark.parametrize("value", ["notadate", "7x"])
def test_invalid_since_names_both_forms(value):
    with pytest.raises(InvalidInputError, match=r"a span such as 7d.*ISO-8601 date"):
        parse_since(value)


def test_write_summary_converts_numpy_and_missing(tmp_path):
    import numpy as np

    path = write_summary({
        "devices": np.int64(4),
        "share": np.float64(27.5),
        "rate": float("nan"),
        "missing": pd.NA,
        "last": pd.Timestamp("2026-05-01 04:55", tz="UTC"),
        "ids": pd.Series(["a", "b"]),
        "flag": np.bool_(True),
    }, tmp_path / "summary.json")

    assert read_json(path) == {
        "devices": 4, "share": 27.5, "rate": None, "missing": None,
        "last": "2026-05-01T04:55:00+00:00", "ids": ["a", "b"], "flag": True,
    }


def test_write_summary_without_path_writes_nothing(tmp_path):
    assert write_summary({"devices": 1}, "") is None


def test_summary_rejects_value_without_json_form():
    with pytest.raises(InvalidInputError, match="'figure'"):
        to_json_value({"figure": object()})


def test_format_duration_units():
    assert format_duration(pd.Timedelta(minutes=145)) == "2 h 25 min"
    assert format_duration(pd.Timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert format_duration(pd.Timedelta(seconds=59)) == "0 min"
    assert format_duration(pd.NaT) == ""


def test_open_report_fleet_applies_filters(fleet_db):
    fleet = open_report_fleet(str(fleet_db), "", "", ["1.1.0"], ["dc-0002"])
    (expected,) = sql_one(fleet_db, "SELECT count(*) FROM heartbeats WHERE "
                                    "firmware_version = '1.1.0' AND device_id = 'dc-0002'")

    assert len(fleet.heartbeats) == expected
    assert set(fleet.heartbeats["device_id"]) == {"dc-0002"}


def test_open_report_fleet_applies_window(fleet_db):
    fleet = open_report_fleet(str(fleet_db), "2026-05-01T01:00:00Z", "2026-05-01T02:00:00Z")
    (expected,) = sql_one(fleet_db, "SELECT count(*) FROM heartbeats WHERE received_at >= "
                                    "'2026-05-01 01:00:00' AND received_at < '2026-05-01 02:00:00'")

    assert len(fleet.heartbeats) == expected


def test_run_index_rounds_figures(tmp_path):
    run = {"run_id": "20260504T060000Z", "started_at": "2026-05-04T06:00:00Z",
           "finished_at": "2026-05-04T06:01:00Z", "duration_s": 60.0, "status": "succeeded",
           "versions": {"analysis": "0.1", "python": "3.11", "pandas": "3.1"},
           "parameters": {}, "database": {},
           "reports": [{"name": "fleet_overview", "title": "Fleet overview",
                        "status": "succeeded", "duration_s": 8.0, "error": None,
                        "html": "fleet_overview.html", "notebook": "fleet_overview.ipynb"}]}
    summaries = {"fleet_overview": {"device_hours": 75042.95361111111,
                                    "stability": {"reboots": 810.0, "per_1000_h": 10.79372}}}

    page = write_run_index(tmp_path, run, summaries).read_text(encoding="utf-8")

    assert "75,043" in page
    assert "reboots 810; per_1000_h 10.79" in page
    assert "75042.95" not in page
