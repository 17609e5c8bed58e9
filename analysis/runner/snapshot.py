"""Share one loaded fleet between the report kernels of a run.

Every report notebook loads the fleet it describes. On a large database that load costs
more than the report itself, and a run executes several notebooks, each in its own kernel
process. The runner therefore loads the fleet once, pickles it into the run's temporary
directory, and names the file in ``DOORCOUNTER_FLEET_SNAPSHOT``, which the kernels inherit.
`open_report_fleet` uses the snapshot only when it was made for the same database, table,
window and filters; otherwise it loads from the database as before.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

SNAPSHOT_ENVIRONMENT_VARIABLE = "DOORCOUNTER_FLEET_SNAPSHOT"


def snapshot_key(
    db: str,
    table: str,
    start: str,
    end: str,
    firmware: Sequence[str],
    devices: Sequence[str],
) -> dict[str, object]:
    """Return what a fleet load depends on, in the form the notebooks receive it."""
    return {
        "db": str(db),
        "table": str(table),
        "start": str(start or ""),
        "end": str(end or ""),
        "firmware": [str(v) for v in firmware],
        "devices": [str(d) for d in devices],
    }


def write_snapshot(path: Path, key: Mapping[str, object]) -> Path | None:
    """Load the fleet for `key` and pickle it to `path`.

    The raw ``recent_events`` text is left out of the pickled heartbeats: the events table
    contains what it decodes to, and the text stays in the database.

    Returns
    -------
    Path or None
        `path`, or None when the fleet could not be loaded; each notebook then loads (and
        reports the error) on its own.
    """
    from analysis.errors import AnalysisError
    from analysis.fleet import load_fleet
    from analysis.runner.window import parse_window

    started = time.perf_counter()
    start, end = parse_window(str(key["start"]), str(key["end"]))
    try:
        fleet = load_fleet(str(key["db"]), table=str(key["table"]), start=start, end=end,
                           firmware=list(key["firmware"]) or None,
                           devices=list(key["devices"]) or None, cache=False)
    except AnalysisError as err:
        logger.warning("cannot load the fleet once for all reports: %s", err)
        return None

    if fleet.heartbeats.empty:
        # The reports still run and state it; this log line is what a cron mail shows.
        logger.warning(
            "no heartbeats match the selection (window %s to %s, firmware %s, devices %s); "
            "the reports will be empty. Check --since, --until, --firmware and --device",
            key["start"] or "start", key["end"] or "end", list(key["firmware"]) or "all",
            list(key["devices"]) or "all",
        )
    fleet.heartbeats = fleet.heartbeats.assign(recent_events=None)
    with path.open("wb") as handle:
        pickle.dump({"key": dict(key), "fleet": fleet}, handle, protocol=pickle.HIGHEST_PROTOCOL)
    logger.info("loaded the fleet once for all reports in %.1f s (%d heartbeats)",
                time.perf_counter() - started, len(fleet.heartbeats))
    return path


def read_snapshot(key: Mapping[str, object]):
    """Return the run's pickled fleet when it was made for `key`, else None."""
    location = os.environ.get(SNAPSHOT_ENVIRONMENT_VARIABLE, "")
    if not location or not Path(location).is_file():
        return None
    # The file is written by the runner of this run into its own temporary directory.
    with Path(location).open("rb") as handle:
        stored = pickle.load(handle)  # noqa: S301
    if stored.get("key") != dict(key):
        logger.info("fleet snapshot %s is for another selection; loading from the database",
                    location)
        return None
    return stored["fleet"]
