"""In-process cache of loaded fleets, so re-running a notebook does not re-read the database.

A cached fleet is keyed by the database file's identity (resolved path, size, modification
time in nanoseconds, inode) and by the query arguments. Any write to the file changes its
size or modification time, so the next load reads the file again. A database in WAL mode
keeps new rows in its ``-wal`` file until a checkpoint, so that file's size and
modification time are part of the key as well.

The cache stores fleets, not connections, and never writes to the database. A fleet leaves
the cache as a copy, so a caller that changes a returned frame in place cannot change what
the next caller gets. With pandas 3 the copies are shallow: copy-on-write, always on there,
copies a column only when one side writes to it, so a cache hit costs no extra memory.
With older pandas the copies are deep.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from packaging.version import Version

from analysis.database import sqlite_path
from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from analysis.fleet import Fleet

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 4
# pandas 3 always applies copy-on-write, so a shallow copy cannot be changed through the
# frame it came from; pandas 2 needs deep copies.
SHALLOW_COPIES_ARE_SAFE = Version(pd.__version__).major >= 3


@dataclass(frozen=True)
class CacheInfo:
    """Counters of the fleet cache: hits, misses, and the number of entries it contains."""

    hits: int
    misses: int
    entries: int
    max_entries: int


class FleetCache:
    """A small least-recently-used cache of `Fleet` objects.

    Parameters
    ----------
    max_entries : int
        Number of fleets kept; the least recently used one is dropped first. Each entry
        keeps a whole fleet in memory, so a few are enough for a notebook session.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, Fleet] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def get_or_load(self, key: Hashable | None, load: Callable[[], Fleet]) -> Fleet:
        """Return a copy of the fleet cached under `key`, calling `load` on a miss.

        A `key` of None (the file cannot be identified) always loads and caches nothing.
        """
        if key is None:
            return load()

        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if cached is not None:
            logger.info("reusing the fleet loaded earlier from %s", cached.source)
            return copy_fleet(cached)

        fleet = load()
        with self._lock:
            self.misses += 1
            self._entries[key] = copy_fleet(fleet)
            while len(self._entries) > max(self.max_entries, 0):
                self._entries.popitem(last=False)
        return fleet

    def clear(self) -> None:
        """Drop every cached fleet and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = 0
            self.misses = 0

    def info(self) -> CacheInfo:
        """Return the hit and miss counts and the number of entries."""
        with self._lock:
            return CacheInfo(self.hits, self.misses, len(self._entries), self.max_entries)


FLEET_CACHE = FleetCache()


def clear_cache() -> None:
    """Drop every fleet that `load_fleet` cached in this process.

    Examples
    --------
    >>> clear_cache()
    >>> cache_info().entries
    0
    """
    FLEET_CACHE.clear()


def cache_info() -> CacheInfo:
    """Return the hits, misses and entries of the cache that `load_fleet` uses."""
    return FLEET_CACHE.info()


def file_identity(db: str | Path) -> tuple | None:
    """Return what identifies the current contents of the SQLite file behind `db`.

    Parameters
    ----------
    db : str or Path
        A SQLite file path or ``sqlite:///`` URL.

    Returns
    -------
    tuple or None
        Resolved path, size, ``st_mtime_ns`` and inode of the file and of its ``-wal``
        file (zeros when there is none); None when the file cannot be read, so that the
        loader raises its own error.
    """
    try:
        path = sqlite_path(db).resolve()
        status = path.stat()
    except (AnalysisError, OSError):
        return None

    wal = path.with_name(path.name + "-wal")
    try:
        wal_status = wal.stat()
        wal_identity = (wal_status.st_size, wal_status.st_mtime_ns, wal_status.st_ino)
    except FileNotFoundError:
        wal_identity = (0, 0, 0)
    except OSError:
        return None
    return (os.fspath(path), status.st_size, status.st_mtime_ns, status.st_ino, wal_identity)


def query_key(
    *,
    table: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    devices: Iterable[str] | None,
    columns: Mapping[str, str] | None,
) -> tuple:
    """Return the load arguments as a hashable key; device order and repeats do not matter."""
    if devices is None:
        device_key = None
    elif isinstance(devices, str):
        device_key = (devices,)
    else:
        device_key = tuple(sorted({str(device) for device in devices}))
    column_key = tuple(sorted((columns or {}).items()))
    return (table, _time_key(start), _time_key(end), device_key, column_key)


def copy_fleet(fleet: Fleet) -> Fleet:
    """Return a copy of `fleet` that can be changed without changing `fleet`.

    The frames are copied shallowly where copy-on-write protects them (pandas 3) and
    deeply otherwise; the quality report is always copied deeply.
    """
    deep = not SHALLOW_COPIES_ARE_SAFE
    return dataclasses.replace(
        fleet,
        heartbeats=fleet.heartbeats.copy(deep=deep),
        events=fleet.events.copy(deep=deep),
        boots=fleet.boots.copy(deep=deep),
        quality=copy.deepcopy(fleet.quality),
    )


def _time_key(stamp: pd.Timestamp | None) -> int | None:
    return None if stamp is None else stamp.value
