"""Benchmark: building heartbeats, events and boots from a large simulated fleet.

Runs each approach in its own subprocess so that peak memory (ru_maxrss) belongs to that
approach alone, and prints one line per approach:

- ``sqlite3 scan``: the sqlite3 command-line tool running
  ``SELECT count(*), sum(length(recent_events)) FROM heartbeats`` (a floor: reading the bytes);
- ``pandas route``: ``read_sql``, ``json.loads``, ``explode``, ``json_normalize`` and
  ``drop_duplicates``, the straightforward way (and it counts boot-loop events wrongly);
- ``analysis``: `load_heartbeats`, `expand_events` and `derive_boots`.

Usage::

    .venv/bin/python benchmarks/bench_data_layer.py --heartbeats 1000000

The database is generated once under ``data/bench/`` (fixed seed) and reused.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEARTBEATS_PER_DEVICE_DAY = 288


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartbeats", type=int, default=1_000_000,
                        help="approximate number of heartbeats in the simulated fleet")
    parser.add_argument("--days", type=int, default=30, help="days of simulated history")
    parser.add_argument("--db", type=Path, default=None, help="use this database instead")
    parser.add_argument("--skip-pandas", action="store_true",
                        help="skip the slow straightforward pandas route")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the scan and of analysis; the median is compared "
                        "(the pandas route runs once)")
    parser.add_argument("--approach", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.approach:
        run_approach(args.approach, args.db)
        return

    db = args.db or ensure_database(args.heartbeats, args.days)
    print(f"machine: {platform.machine()}, {_cpu_count()} cores, {_memory_gib():.0f} GiB; "
          f"python {platform.python_version()}")
    print(f"database: {db} ({db.stat().st_size / 2**20:.0f} MiB)")
    approaches = ["sqlite3 scan", "analysis"] + ([] if args.skip_pandas else ["pandas route"])
    results = {name: measure_repeatedly(name, db, 1 if name == "pandas route" else args.repeat)
               for name in approaches}
    for name, result in results.items():
        print(f"{name:14s} {result['seconds']:8.2f} s  (runs {result['runs']})  "
              f"peak {result['peak_mib']:8.0f} MiB  {result['detail']}")
    scan = results["sqlite3 scan"]["seconds"]
    ours = results["analysis"]["seconds"]
    print(f"analysis / sqlite3 scan: {ours / scan:.1f}x")
    if "pandas route" in results:
        print(f"pandas route / analysis: {results['pandas route']['seconds'] / ours:.1f}x")


def ensure_database(heartbeats: int, days: int) -> Path:
    from analysis.sample import generate_sample_database

    devices = max(1, round(heartbeats / (days * HEARTBEATS_PER_DEVICE_DAY)))
    path = ROOT / "data" / "bench" / f"fleet_{devices}x{days}.sqlite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        generate_sample_database(path, devices=devices, days=days)
        print(f"generated {path} in {time.perf_counter() - started:.0f} s")
    return path


def measure_repeatedly(name: str, db: Path, repeat: int) -> dict:
    """Run one approach `repeat` times: the median time, every time, the largest peak."""
    runs = [measure(name, db) for _ in range(max(1, repeat))]
    seconds = sorted(run["seconds"] for run in runs)
    return {
        "seconds": statistics.median(seconds),
        "runs": ", ".join(f"{value:.2f}" for value in seconds),
        "peak_mib": max(run["peak_mib"] for run in runs),
        "detail": runs[-1]["detail"],
    }


def measure(name: str, db: Path) -> dict:
    # Every approach runs in a fresh process, so that its peak memory is its own.
    output = subprocess.run(
        [sys.executable, __file__, "--approach", name, "--db", str(db)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _measure_sqlite_cli(db: Path) -> dict:
    """Time the sqlite3 tool from this small process.

    A child's peak memory counts the memory of the process that started it, so the tool is
    started from here, before anything large is imported, and not from the benchmark's
    main process (which may just have generated the database).
    """
    query = "SELECT count(*), sum(length(recent_events)) FROM heartbeats"
    started = time.perf_counter()
    output = subprocess.run(["sqlite3", str(db), query], check=True, capture_output=True,
                            text=True).stdout.strip()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "detail": f"count, bytes = {output}"}


def run_approach(name: str, db: Path) -> None:
    if name == "sqlite3 scan":
        print(json.dumps(_measure_sqlite_cli(db)))
        return

    # Imports are done before the clock starts: the figure is the work of building the
    # tables, which a notebook or report pays on every load, not once per process.
    import pandas  # noqa: F401
    import sqlalchemy  # noqa: F401

    import analysis  # noqa: F401

    started = time.perf_counter()
    detail = _run_analysis(db) if name == "analysis" else _run_pandas_route(db)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "detail": detail}))


def _run_analysis(db: Path) -> str:
    from analysis import DataQualityReport, derive_boots, expand_events, load_heartbeats

    quality = DataQualityReport()
    heartbeats = load_heartbeats(db, quality=quality)
    events = expand_events(heartbeats, quality=quality)
    boots = derive_boots(heartbeats, events, quality=quality)
    return f"{len(heartbeats)} heartbeats, {len(events)} events, {len(boots)} boots"


def _run_pandas_route(db: Path) -> str:
    import pandas as pd
    import sqlalchemy as sa

    def events_of(text: object) -> list:
        # The sample has a few malformed rows on purpose; this route just skips them.
        try:
            value = json.loads(text) if isinstance(text, str) else []
        except json.JSONDecodeError:
            return []
        return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []

    engine = sa.create_engine(f"sqlite:///{db}")
    frame = pd.read_sql("SELECT * FROM heartbeats", engine)
    frame["recent_events"] = frame["recent_events"].map(events_of)
    exploded = frame[["id", "device_id", "recent_events"]].explode("recent_events").dropna()
    fields = pd.json_normalize(exploded["recent_events"].tolist())
    fields["device_id"] = exploded["device_id"].to_numpy()
    events = fields.drop_duplicates(subset=["device_id", "t", "d0", "d1", "ts", "up"])
    return f"{len(frame)} heartbeats, {len(events)} events"


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        return kib / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


if __name__ == "__main__":
    main()
