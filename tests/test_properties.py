"""Property-based tests: arbitrary stored values never break loading or event expansion.

Each example writes a real SQLite file whose columns hold whatever SQLite accepts (text,
integers, reals, blobs, NULL, invalid UTF-8), then loads it. Nothing may raise, every stored
heartbeat must be loaded or counted as rejected, and valid ring-buffer elements must survive
next to invalid ones.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import DataQualityReport, derive_boots, expand_events, load_heartbeats

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
# One heartbeat per example is cheaper to vary, so fewer examples cover it.
SINGLE_ROW_SETTINGS = settings(SETTINGS, max_examples=50)
REJECTION_CHECKS = ("received_at_unparsable", "device_id_missing")
COLUMNS = ("device_id", "received_at", "uptime", "firmware_version", "reset_reason",
           "heap_free", "heap_min_free", "last_disconnect_code", "recent_events")


class InvalidUtf8(bytes):
    """Bytes stored as TEXT, which SQLite accepts without checking the encoding."""


def any_value(text: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        INT64,
        st.floats(allow_nan=True, allow_infinity=True),
        text if text is not None else st.text(max_size=30),
        st.binary(max_size=12),
        st.binary(min_size=1, max_size=6).map(lambda raw: InvalidUtf8(b"\xff" + raw)),
    )


# json.dumps writes NaN and Infinity, which are not JSON, so they stay out of elements.
FIELD_VALUE = st.one_of(st.none(), st.booleans(), INT64, st.text(max_size=5),
                        st.floats(allow_nan=False, allow_infinity=False))


def event_element() -> st.SearchStrategy[object]:
    valid = st.fixed_dictionaries({"t": INT64, "d0": INT64, "d1": INT64, "ts": INT64,
                                   "up": INT64})
    odd = st.one_of(
        st.dictionaries(st.sampled_from(["t", "d0", "d1", "ts", "up", "x"]), FIELD_VALUE,
                        max_size=6),
        st.lists(INT64, max_size=3),
        st.none(),
        st.text(max_size=5),
        INT64,
    )
    return st.one_of(valid, odd)


def recent_events_text() -> st.SearchStrategy[object]:
    as_json = st.lists(event_element(), max_size=20).map(json.dumps)
    truncated = as_json.flatmap(lambda text: st.integers(0, len(text)).map(lambda n: text[:n]))
    return st.one_of(as_json, truncated, any_value())


def time_value() -> st.SearchStrategy[object]:
    iso = st.datetimes(min_value=pd.Timestamp("1600-01-01").to_pydatetime(),
                       max_value=pd.Timestamp("2400-01-01").to_pydatetime()).map(str)
    offsets = st.sampled_from(["", "Z", "+02:00", "-05:30"])
    return st.one_of(iso, st.tuples(iso, offsets).map("".join), any_value())


def heartbeat_row() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({
        "device_id": st.one_of(st.sampled_from(["dev-A", "dev-B", " dev-A", "DEV-A", ""]),
                               any_value()),
        "received_at": time_value(),
        "uptime": any_value(),
        "firmware_version": any_value(),
        "reset_reason": any_value(),
        "heap_free": any_value(),
        "heap_min_free": any_value(),
        "last_disconnect_code": any_value(),
        "recent_events": recent_events_text(),
    })


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    connection = sqlite3.connect(path)
    # Nothing here needs to survive a crash, and skipping fsync keeps examples fast.
    connection.execute("PRAGMA synchronous = OFF")
    with connection:
        connection.execute(
            "CREATE TABLE heartbeats (id INTEGER PRIMARY KEY, device_id TEXT, received_at "
            "TEXT, uptime INTEGER, firmware_version TEXT, reset_reason INTEGER, heap_free "
            "INTEGER, heap_min_free INTEGER, last_disconnect_code INTEGER, recent_events TEXT)"
        )
        for row in rows:
            values = [row[column] for column in COLUMNS]
            placeholders = ", ".join(
                "CAST(? AS TEXT)" if isinstance(value, InvalidUtf8) else "?" for value in values
            )
            connection.execute(
                f"INSERT INTO heartbeats ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                [bytes(value) if isinstance(value, InvalidUtf8) else value for value in values],
            )
    connection.close()


@SETTINGS
@given(rows=st.lists(heartbeat_row(), min_size=1, max_size=8))
def test_arbitrary_rows_load_or_count_as_rejected(rows):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fleet.sqlite"
        write_rows(path, rows)
        quality = DataQualityReport()

        heartbeats = load_heartbeats(path, quality=quality)
        events = expand_events(heartbeats, quality=quality)
        boots = derive_boots(heartbeats, events, quality=quality)

    rejected = sum(quality.count(check) for check in REJECTION_CHECKS)
    assert len(heartbeats) + rejected == len(rows)
    assert heartbeats["heartbeat_id"].is_unique
    assert heartbeats["uptime_s"].dtype == "Int64"
    assert set(events["first_heartbeat_id"]) <= set(heartbeats["heartbeat_id"])
    assert set(boots["device_id"]) <= set(heartbeats["device_id"])


def is_valid_event(element: object) -> bool:
    if not isinstance(element, dict):
        return False
    values = [element.get(key) for key in ("t", "d0", "d1", "ts", "up")]
    return all(type(value) is int for value in values)


@SINGLE_ROW_SETTINGS
@given(elements=st.lists(event_element(), max_size=24),
       uptime=st.integers(min_value=0, max_value=10**7))
def test_valid_events_found_beside_invalid_ones(elements, uptime):
    row = {"device_id": "dev-A", "received_at": "2026-05-01T10:00:00Z", "uptime": uptime,
           "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 150000,
           "heap_min_free": 140000, "last_disconnect_code": None,
           "recent_events": json.dumps(elements)}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fleet.sqlite"
        write_rows(path, [row])
        quality = DataQualityReport()
        events = expand_events(load_heartbeats(path, quality=quality), quality=quality)

    expected = [tuple(e[k] for k in ("t", "d0", "d1", "ts", "up"))
                for e in elements if is_valid_event(e)]
    found = list(events[["tag", "d0", "d1", "ts", "up"]].itertuples(index=False, name=None))
    assert [tuple(int(v) for v in event) for event in found] == expected
    skipped = len(elements) - len(expected)
    counted = sum(quality.count(check) for check in
                  ("event_not_object", "event_missing_keys", "event_non_integer"))
    assert counted == skipped
