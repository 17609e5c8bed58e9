"""``fleet-report run``, run in-process with click's CliRunner on real SQLite files."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from conftest import write_heartbeats
from test_runner import write_notebook

from analysis.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_REPORT_FAILED, main

OPTIONS = ["--db", "--table", "--since", "--until", "--firmware", "--device", "--report",
           "--notebooks", "--out", "--jobs", "--quiet"]
ROWS = [
    {"id": 1, "device_id": "dc-0001", "received_at": "2026-05-01 10:00:00", "uptime": 600,
     "firmware_version": "1.0.0"},
    {"id": 2, "device_id": "dc-0001", "received_at": "2026-05-01 10:05:00", "uptime": 900,
     "firmware_version": "1.0.0"},
    {"id": 3, "device_id": "dc-0002", "received_at": "2026-05-01 10:05:00", "uptime": 300,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 150_000},
]


def invoke(*arguments: str, env: dict | None = None):
    return CliRunner().invoke(main, ["run", *arguments], env=env)


def write_report(directory, name: str, source: str) -> None:
    write_notebook(directory, name, [source])


@pytest.fixture
def db(tmp_path):
    return write_heartbeats(tmp_path / "fleet.sqlite", ROWS)


@pytest.fixture
def notebooks(tmp_path):
    directory = tmp_path / "notebooks"
    directory.mkdir()
    write_report(directory, "count", (
        "from analysis.notebook import open_report_fleet, write_summary\n"
        "fleet = open_report_fleet(db, start, end, firmware, devices, table=table)\n"
        "write_summary({'heartbeats': len(fleet.heartbeats)}, summary_path)"
    ))
    return directory


def test_help_documents_every_option():
    result = invoke("--help")

    assert result.exit_code == EXIT_OK
    for option in OPTIONS:
        assert option in result.output


def test_help_ends_with_example():
    lines = invoke("--help").output.strip().splitlines()

    assert lines[-1].strip().startswith("Example: fleet-report run")


def test_help_states_formats():
    output = invoke("--help").output

    assert "7d" in output
    assert "ISO-8601" in output
    assert "DOORCOUNTER_DB" in output


def test_missing_database_exit_2(tmp_path):
    result = invoke("--db", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path / "out"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "not found" in result.output
    assert "missing.sqlite" in result.output
    assert not (tmp_path / "out").exists()


def test_database_from_environment(tmp_path):
    missing = tmp_path / "from_env.sqlite"

    result = invoke("--out", str(tmp_path / "out"), env={"DOORCOUNTER_DB": str(missing)})

    assert result.exit_code == EXIT_BAD_INPUT
    assert "from_env.sqlite" in result.output


def test_not_sqlite_exit_2(tmp_path):
    text_file = tmp_path / "notes.sqlite"
    text_file.write_text("device,uptime\ndc-0001,600\n", encoding="utf-8")

    result = invoke("--db", str(text_file), "--out", str(tmp_path / "out"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "not a SQLite database" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_table_exit_2(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE devices (id INTEGER)")
    connection.close()

    result = invoke("--db", str(path), "--out", str(tmp_path / "out"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "'heartbeats' not found" in result.output
    assert "devices" in result.output


def test_unknown_report_lists_known(db, notebooks, tmp_path):
    result = invoke("--db", str(db), "--notebooks", str(notebooks), "--report", "nope",
                    "--out", str(tmp_path / "out"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert "'nope'" in result.output
    assert "known reports: count" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("option", "value"), [("--since", "last tuesday"),
                                               ("--until", "2026-13-01")])
def test_invalid_date_exit_2(db, tmp_path, option, value):
    result = invoke("--db", str(db), option, value, "--out", str(tmp_path / "out"))

    assert result.exit_code == EXIT_BAD_INPUT
    assert value in result.output


def test_error_is_one_line(tmp_path):
    result = invoke("--db", str(tmp_path / "missing.sqlite"))

    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ")


@pytest.mark.slow
def test_successful_run_exit_0(db, notebooks, tmp_path):
    result = invoke("--db", str(db), "--notebooks", str(notebooks), "--since", "2026-05-01",
                    "--until", "2026-05-02", "--firmware", "1.0.0", "--out", str(tmp_path))
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()
                  and path.name not in {"notebooks"}]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))

    assert result.exit_code == EXIT_OK, result.output
    assert "SUCCEEDED  count" in result.output
    assert summary == {"count": {"heartbeats": 2}}
    assert run["parameters"]["start"] == "2026-05-01T00:00:00+00:00"
    assert run["parameters"]["firmware"] == ["1.0.0"]


@pytest.mark.slow
def test_failing_report_exit_1(db, notebooks, tmp_path):
    write_report(notebooks, "broken", "raise ValueError('no heap column in this table')")
    out = tmp_path / "out"

    result = invoke("--db", str(db), "--notebooks", str(notebooks), "--out", str(out),
                    "--quiet")
    (run_dir,) = list(out.glob("2*"))

    assert result.exit_code == EXIT_REPORT_FAILED
    assert result.stdout == ""
    assert (run_dir / "count.html").is_file()
    assert (run_dir / "broken.ipynb").is_file()
    assert "FAILED" in (out / "index.html").read_text(encoding="utf-8")
