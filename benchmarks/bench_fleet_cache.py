"""Benchmark: a first and a repeated `load_fleet` of the same database and window.

A notebook that is run again from the top calls `load_fleet` again with the same
arguments. The second call should come from the in-process cache and take a small
fraction of the first. Prints the machine, the database, both times and their ratio, and
exits with status 1 when the repeated load is less than 10 times faster.

Usage::

    .venv/bin/python benchmarks/bench_fleet_cache.py --devices 200 --days 30
    .venv/bin/python benchmarks/bench_fleet_cache.py --db data/sample.sqlite --start 2026-05-10

Without ``--db`` the fleet is simulated once (fixed seed) under ``data/bench/`` and reused.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_SPEEDUP = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200, help="devices in the simulated fleet")
    parser.add_argument("--days", type=int, default=30, help="days of simulated history")
    parser.add_argument("--db", type=Path, help="time this database instead of a simulated one")
    parser.add_argument("--start", help="window start (ISO-8601, UTC when no offset)")
    parser.add_argument("--end", help="window end, excluded")
    args = parser.parse_args()

    from analysis import load_fleet
    from analysis.cache import cache_info, clear_cache

    db = args.db or simulated_database(args.devices, args.days)
    clear_cache()
    first_s, fleet = timed(lambda: load_fleet(db, start=args.start, end=args.end))
    second_s, _ = timed(lambda: load_fleet(db, start=args.start, end=args.end))
    info = cache_info()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB; "
          f"python {platform.python_version()}")
    print(f"database: {db} ({db.stat().st_size / 2**20:.0f} MiB), window "
          f"{args.start or 'open'} to {args.end or 'open'}")
    print(f"loaded: {len(fleet.heartbeats):,} heartbeats, {len(fleet.events):,} events, "
          f"{len(fleet.boots):,} boots; peak memory {peak_mib():.0f} MiB")
    print(f"first load  {first_s * 1000:10.1f} ms")
    print(f"second load {second_s * 1000:10.1f} ms  (cache hits {info.hits}, "
          f"misses {info.misses})")
    speedup = first_s / second_s
    print(f"speedup {speedup:,.0f}x (required: {REQUIRED_SPEEDUP:.0f}x)")
    return 0 if speedup >= REQUIRED_SPEEDUP else 1


def simulated_database(devices: int, days: int) -> Path:
    from analysis.sample import generate_sample_database

    path = ROOT / "data" / "bench" / f"fleet_{devices}x{days}.sqlite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_sample_database(path, devices=devices, days=days)
    return path


def timed(call):
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def peak_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_gib() -> float:
    try:
        with open("/proc/meminfo") as handle:
            return int(handle.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


if __name__ == "__main__":
    sys.exit(main())
