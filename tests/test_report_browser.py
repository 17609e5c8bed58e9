"""Open a run's pages in headless Chromium: they render, show figures and no errors.

Chromium runs with the network cut off (every host name resolves to nothing), so a page
that tried to load a script or style from a CDN would show it as missing, not fetch it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import write_heartbeats
from matplotlib.image import imread

from analysis.runner.run import run_reports

pytestmark = pytest.mark.slow

CHROMIUM_PATH = "/usr/bin/chromium"
WINDOW = (1280, 1800)
# Only a guard against a hung browser; the pages load in about a second.
BROWSER_TIMEOUT_S = 120
# matplotlib's first colour (C0, #1f77b4), which the firmware-mix plot fills with.
FIRST_PLOT_COLOUR = np.array([0x1F, 0x77, 0xB4]) / 255.0


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or CHROMIUM_PATH
    if Path(path).is_file():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM_PATH} is missing in CI; .ci/run installs it with apt-get")
    pytest.skip(f"{CHROMIUM_PATH} not installed (apt-get install chromium); CI runs this test")


def chromium(page: Path, tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        chromium_or_skip(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}", *arguments, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=BROWSER_TIMEOUT_S)


def dump_dom(page: Path, tmp_path: Path) -> str:
    return chromium(page, tmp_path, "--dump-dom").stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    rows = []
    for device in ("dc-0001", "dc-0002", "dc-0003"):
        for step in range(48):
            upgraded = device != "dc-0001" and step >= 24
            rows.append({
                "id": len(rows) + 1, "device_id": device,
                "received_at": f"2026-05-01 {step // 12:02d}:{step % 12 * 5:02d}:00",
                "uptime": 600 + 300 * step,
                "firmware_version": "1.1.0" if upgraded else "1.0.0",
                "heap_free": 180_000 if upgraded else None,
            })
    db = write_heartbeats(tmp_path_factory.mktemp("db") / "fleet.sqlite", rows)
    result = run_reports(db, reports=["fleet_overview"],
                         out_dir=tmp_path_factory.mktemp("reports"))
    assert result.succeeded, result.failed
    return result.run_dir


def test_run_index_renders(run_dir, tmp_path):
    dom = dump_dom(run_dir / "index.html", tmp_path)

    assert "DoorCounter reports, run" in dom
    assert "SUCCEEDED" in dom
    assert 'href="fleet_overview.html"' in dom


def test_runs_index_renders(run_dir, tmp_path):
    dom = dump_dom(run_dir.parent / "index.html", tmp_path)

    assert "DoorCounter report runs" in dom
    assert f'href="{run_dir.name}/index.html"' in dom


def test_report_shows_figures_and_no_error(run_dir, tmp_path):
    dom = dump_dom(run_dir / "fleet_overview.html", tmp_path)

    assert "Fleet overview" in dom
    assert "3 devices" in dom
    assert 'src="data:image/png;base64,' in dom
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in dom
    assert "Traceback" not in dom


def test_report_screenshot_shows_plot(run_dir, tmp_path):
    screenshot = tmp_path / "report.png"

    chromium(run_dir / "fleet_overview.html", tmp_path, f"--screenshot={screenshot}")
    pixels = imread(screenshot)[:, :, :3]

    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # The stacked-area plot fills a large area with its first colour.
    plotted = np.all(np.abs(pixels - FIRST_PLOT_COLOUR) < 0.02, axis=2)
    assert plotted.sum() > 10_000
