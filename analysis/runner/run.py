"""Run a set of report notebooks on one database and write their pages, summaries and index.

Everything that can be checked before a notebook starts (database, report names, kernel,
parameters) is checked first, so bad input stops the run with an error and no directory.
After that a failing report never stops the others: it is recorded as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from analysis.database import database_label
from analysis.errors import InvalidInputError
from analysis.notebook import (
    PSEUDONYM_KEY_FILE_ENVIRONMENT_VARIABLE,
    PSEUDONYMIZE_ENVIRONMENT_VARIABLE,
)
from analysis.pseudonymize import load_pseudonym_key
from analysis.runner.catalog import Report, default_notebooks_dir, discover_reports, select_reports
from analysis.runner.execute import check_parameters, execute_notebook
from analysis.runner.html import export_report_html, write_run_index, write_runs_index
from analysis.runner.kernel import ensure_kernel
from analysis.runner.snapshot import SNAPSHOT_ENVIRONMENT_VARIABLE, snapshot_key, write_snapshot
from analysis.runner.source import check_database, fingerprint_database, resolve_database
from analysis.runner.summary import (
    FAILED,
    RUN_SCHEMA_VERSION,
    SUCCEEDED,
    ReportResult,
    read_report_summary,
    software_versions,
    write_json,
)
from analysis.runner.window import parse_window, to_iso

logger = logging.getLogger(__name__)

RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class RunResult:
    """The outcome of `run_reports`: where the run was written and how each report ended."""

    run_id: str
    run_dir: Path
    reports: list[ReportResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """True when every report succeeded."""
        return all(report.succeeded for report in self.reports)

    @property
    def failed(self) -> list[ReportResult]:
        """The reports that failed."""
        return [report for report in self.reports if not report.succeeded]

    @property
    def index_path(self) -> Path:
        """The run's ``index.html``."""
        return self.run_dir / "index.html"


@dataclass(frozen=True)
class _Plan:
    reports: list[Report]
    parameters: dict[str, object]
    database: dict[str, object]
    kernel_name: str
    notebooks_dir: Path
    pseudonymize: bool = False


def run_reports(
    db: str | Path | None = None,
    *,
    start: object = None,
    end: object = None,
    firmware: Sequence[str] = (),
    devices: Sequence[str] = (),
    reports: Sequence[str] = (),
    out_dir: str | Path = "reports",
    notebooks_dir: str | Path | None = None,
    table: str = "heartbeats",
    show_progress: bool = False,
    jobs: int = 1,
    python: str | None = None,
    parameters: Mapping[str, object] | None = None,
    pseudonymize: bool = False,
    pseudonym_key_file: str | Path | None = None,
    share_fleet: bool = True,
) -> RunResult:
    """Execute report notebooks on one database and write a run directory under `out_dir`.

    Parameters
    ----------
    db : str or Path, optional
        SQLite file or ``sqlite:///`` URL; defaults to ``DOORCOUNTER_DB``, else the sample
        fleet (generated under ``data/`` on first use). Opened read-only.
    start, end : str, datetime or Timestamp, optional
        Window of heartbeats: received at or after `start` and before `end` (UTC when no
        offset is given). Reaches the notebooks as ISO-8601 strings.
    firmware, devices : sequence of str
        Keep only these firmware versions or device ids; empty keeps all.
    reports : sequence of str
        Report names (notebook file names without ``.ipynb``); empty runs the default set.
    out_dir : str or Path
        Directory that receives ``<run id>/`` and the index of all runs.
    notebooks_dir : str or Path, optional
        Directory of the report notebooks; defaults to ``notebooks/`` of the project.
    table : str
        Name of the heartbeat table.
    show_progress : bool
        Show a progress bar on stderr instead of one log line per report.
    jobs : int
        Reports executed at the same time, each in its own kernel. Every kernel loads the
        whole selection into memory, so more jobs need more memory.
    python : str, optional
        Interpreter whose Jupyter kernel executes the notebooks; defaults to the running one.
    parameters : mapping, optional
        Extra notebook parameters, such as ``{"baseline": "1.0.0"}`` for ``release_impact``;
        checked like the standard ones.
    pseudonymize : bool
        Replace device ids in every report with keyed pseudonyms. The key comes from
        `pseudonym_key_file` or ``DOORCOUNTER_PSEUDONYM_KEY`` and is never written out.
    pseudonym_key_file : str or Path, optional
        File that contains the pseudonym key.
    share_fleet : bool
        Load the fleet once and hand it to every report kernel, instead of one load per
        report. Costs the pickled fleet's size on disk in a temporary directory.

    Returns
    -------
    RunResult
        The run directory and the outcome of each report.

    Raises
    ------
    AnalysisError
        Before any notebook runs: the database is missing, not SQLite or has no heartbeat
        table, a report name is unknown, a parameter is invalid or no kernel starts.

    Examples
    --------
    >>> result = run_reports(reports=["fleet_overview"], out_dir="reports")  # doctest: +SKIP
    >>> result.succeeded  # doctest: +SKIP
    True
    """
    if jobs < 1:
        raise InvalidInputError(f"jobs={jobs} is invalid; run at least one report at a time")
    if pseudonymize and devices:
        raise InvalidInputError(
            "--device with --pseudonymize would write the real device ids into run.json and "
            "the notebooks' parameters; run without --device, or without --pseudonymize"
        )
    environment = _pseudonym_environment(pseudonymize, pseudonym_key_file)
    plan = _plan_run(db, start, end, firmware, devices, reports, notebooks_dir, table, python,
                     parameters)
    plan = dataclasses.replace(plan, pseudonymize=pseudonymize)
    run_dir = _create_run_dir(Path(out_dir).resolve())
    started_at = _utc_now()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="doorcounter-summaries-") as summaries_dir:
        if share_fleet:
            snapshot = write_snapshot(Path(summaries_dir) / "fleet.pickle",
                                      _snapshot_key(plan.parameters))
            if snapshot is not None:
                environment[SNAPSHOT_ENVIRONMENT_VARIABLE] = str(snapshot)
        with _environment(environment):
            results, summaries = _run_all(plan, run_dir, Path(summaries_dir), show_progress,
                                          jobs)

    run = _run_record(run_dir.name, plan, results, started_at, time.perf_counter() - started)
    write_json(run_dir / "summary.json", summaries)
    write_json(run_dir / "run.json", run)
    write_run_index(run_dir, run, summaries)
    write_runs_index(run_dir.parent)
    return RunResult(run_id=run_dir.name, run_dir=run_dir, reports=results)


def _pseudonym_environment(pseudonymize: bool, key_file: str | Path | None) -> dict[str, str]:
    if not pseudonymize:
        return {PSEUDONYMIZE_ENVIRONMENT_VARIABLE: "0"}
    # Read once here, so that a missing or short key stops the run before any report.
    load_pseudonym_key(key_file)
    environment = {PSEUDONYMIZE_ENVIRONMENT_VARIABLE: "1"}
    if key_file:
        environment[PSEUDONYM_KEY_FILE_ENVIRONMENT_VARIABLE] = str(Path(key_file).resolve())
    return environment


@contextlib.contextmanager
def _environment(values: Mapping[str, str]):
    """Set environment variables for the kernels started inside the block, then restore."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _snapshot_key(parameters: Mapping[str, object]) -> dict[str, object]:
    return snapshot_key(parameters["db"], parameters["table"], parameters["start"],
                        parameters["end"], parameters["firmware"], parameters["devices"])


def _plan_run(db, start, end, firmware, devices, reports, notebooks_dir, table, python,
              extra_parameters=None) -> _Plan:
    start_time, end_time = parse_window(start, end)
    notebooks = Path(notebooks_dir or default_notebooks_dir()).resolve()
    selected = select_reports(discover_reports(notebooks), reports)
    database = resolve_database(db)
    check_database(database, table=table)

    parameters = {
        "db": database,
        "table": table,
        "start": to_iso(start_time),
        "end": to_iso(end_time),
        # Lists, never tuples: papermill would pass a tuple on as its text.
        "firmware": [str(version) for version in firmware],
        "devices": [str(device) for device in devices],
        **dict(extra_parameters or {}),
    }
    check_parameters(parameters)
    kernel_name = ensure_kernel(python)
    return _Plan(selected, parameters, fingerprint_database(database), kernel_name, notebooks)


def _run_all(
    plan: _Plan, run_dir: Path, summaries_dir: Path, show_progress: bool, jobs: int
) -> tuple[list[ReportResult], dict[str, object]]:
    def run(report: Report) -> ReportResult:
        try:
            return _run_one(report, plan, run_dir, summaries_dir / f"{report.name}.json")
        finally:
            _close_event_loop()

    # Each report runs in its own kernel process, and the threads only wait for papermill.
    # Even one job runs in a worker thread, so papermill never meets an event loop that
    # the caller runs, as in a Jupyter notebook.
    bar = tqdm(total=len(plan.reports), desc="reports", unit="report",
               disable=not show_progress)
    finished: dict[str, ReportResult] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="report") as pool:
        futures = {pool.submit(run, report): report for report in plan.reports}
        for future in as_completed(futures):
            result = future.result()
            finished[result.name] = result
            _log_result(result, show_progress)
            bar.set_postfix_str(result.name)
            bar.update()
    bar.close()

    results = [finished[report.name] for report in plan.reports]
    summaries = {
        report.name: read_report_summary(summaries_dir / f"{report.name}.json", report.name)
        for report in plan.reports
    }
    return results, summaries


def _run_one(report: Report, plan: _Plan, run_dir: Path, summary_path: Path) -> ReportResult:
    notebook_path = run_dir / f"{report.name}.ipynb"
    html_path = run_dir / f"{report.name}.html"
    started_at = _utc_now()
    parameters = {**plan.parameters, "summary_path": str(summary_path)}

    outcome = execute_notebook(report.path, notebook_path, parameters,
                               kernel_name=plan.kernel_name)
    html, error_name, error_message = _export_page(report, notebook_path, html_path)
    if outcome.error_name or outcome.error_message:
        error_name, error_message = outcome.error_name, outcome.error_message

    return ReportResult(
        name=report.name,
        title=report.title,
        status=SUCCEEDED if outcome.succeeded and html else FAILED,
        started_at=started_at.isoformat(),
        duration_s=outcome.duration_s,
        notebook=notebook_path.name if notebook_path.is_file() else "",
        html=html,
        error_name=error_name,
        error_message=error_message,
    )


def _export_page(report: Report, notebook_path: Path, html_path: Path) -> tuple[str, str, str]:
    """Return the page's file name, or "" with an error name and message."""
    if not notebook_path.is_file():
        return "", "FileNotFoundError", f"papermill wrote no executed notebook {notebook_path}"
    try:
        export_report_html(notebook_path, html_path, title=report.title)
    except Exception as err:
        # Export errors come from nbconvert, Jinja or the file system; whichever it is,
        # this report fails and the others still run.
        logger.warning("cannot write the page of report %s: %s", report.name, err,
                       exc_info=True)
        return "", type(err).__name__, str(err)
    return html_path.name, "", ""


def _log_result(result: ReportResult, show_progress: bool) -> None:
    if not result.succeeded:
        # tqdm.write keeps the message from breaking the progress bar's line.
        message = (f"report {result.name} FAILED after {result.duration_s:.1f} s: "
                   f"{result.error_name}: {result.error_message}")
        if show_progress:
            tqdm.write(message)
        logger.warning("%s", message)
        return
    level = logging.DEBUG if show_progress else logging.INFO
    logger.log(level, "report %s succeeded in %.1f s", result.name, result.duration_s)


def _run_record(
    run_id: str, plan: _Plan, results: list[ReportResult], started_at: dt.datetime,
    duration_s: float,
) -> dict[str, object]:
    parameters = {**plan.parameters, "db": database_label(plan.parameters["db"]),
                  "reports": [report.name for report in plan.reports],
                  "notebooks_dir": str(plan.notebooks_dir),
                  "pseudonymize": plan.pseudonymize}
    return {
        "schema_version": RUN_SCHEMA_VERSION,
        "run_id": run_id,
        "status": SUCCEEDED if all(r.succeeded for r in results) else FAILED,
        "started_at": started_at.isoformat(),
        "finished_at": _utc_now().isoformat(),
        "duration_s": round(duration_s, 3),
        "parameters": parameters,
        "database": plan.database,
        "kernel": plan.kernel_name,
        "versions": software_versions(),
        "reports": [result.to_dict() for result in results],
    }


def _create_run_dir(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = _utc_now().strftime(RUN_ID_FORMAT)
    # Two runs in the same second get -2, -3, ... so neither overwrites the other.
    for attempt in range(1, 1000):
        candidate = out_dir / (run_id if attempt == 1 else f"{run_id}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"cannot create a run directory for {run_id} in {out_dir}")


def _close_event_loop() -> None:
    # nbclient gives each thread an event loop and never closes it, so a finished worker
    # thread would leave an unclosed loop (a ResourceWarning) behind.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return
    loop.close()
    asyncio.set_event_loop(None)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
