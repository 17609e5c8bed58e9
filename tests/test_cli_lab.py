"""``fleet-report lab``: the command it runs, and one short real start on 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_heartbeats

from analysis.cli import main
from analysis.runner.kernel import kernel_name_for

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
START_TIMEOUT_S = 120


@pytest.fixture
def small_db(tmp_path) -> Path:
    return write_heartbeats(tmp_path / "lab.sqlite", [
        {"id": 1, "device_id": "dc-0001", "received_at": "2026-05-01 10:00:00", "uptime": 60},
    ])


def dry_run(*arguments: str, env: dict | None = None):
    return CliRunner().invoke(main, ["lab", "--dry-run", *arguments], env=env)


def test_dry_run_prints_database_and_command(small_db):
    result = dry_run("--db", str(small_db), "--no-browser", "--port", "8899")
    assignment, *argv = shlex.split(result.output)
    python = os.path.abspath(sys.executable)

    assert result.exit_code == 0, result.output
    assert assignment == f"DOORCOUNTER_DB={small_db.resolve()}"
    assert argv[:3] == [python, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={NOTEBOOKS_DIR}" in argv
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=8899" in argv
    assert "--no-browser" in argv
    assert f"--MultiKernelManager.default_kernel_name={kernel_name_for(python)}" in argv


def test_dry_run_opens_browser_by_default(small_db):
    result = dry_run("--db", str(small_db))

    assert "--no-browser" not in shlex.split(result.output)
    assert not any(arg.startswith("--ServerApp.port=") for arg in shlex.split(result.output))


def test_database_from_environment(small_db):
    result = dry_run(env={"DOORCOUNTER_DB": str(small_db)})

    assert shlex.split(result.output)[0] == f"DOORCOUNTER_DB={small_db.resolve()}"


def test_arguments_after_dashes_reach_jupyterlab(small_db):
    result = dry_run("--db", str(small_db), "--", "--allow-root", "--ServerApp.token=abc")

    assert shlex.split(result.output)[-2:] == ["--allow-root", "--ServerApp.token=abc"]


def test_notebooks_option_sets_root_dir(small_db, tmp_path):
    result = dry_run("--db", str(small_db), "--notebooks", str(tmp_path))

    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in shlex.split(result.output)


def test_missing_database_exits_with_bad_input(tmp_path):
    result = dry_run("--db", str(tmp_path / "absent.sqlite"))

    assert result.exit_code == 2
    assert "database not found" in result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_lab_starts_and_answers_on_localhost(small_db, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "analysis", "lab", "--db", str(small_db), "--no-browser",
               "--port", str(port), "--", "--allow-root", "--ServerApp.jpserver_extensions="
               "{'jupyter_lsp': False}"]
    environment = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        answer = wait_for_server(f"http://127.0.0.1:{port}/api", process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)

    assert answer is not None, output.decode(errors="replace")[-3000:]
    assert b'"version"' in answer


def wait_for_server(url: str, process: subprocess.Popen) -> bytes | None:
    """Poll `url` until it answers, the process exits, or START_TIMEOUT_S pass."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            time.sleep(0.5)
    return None
