"""Pseudonyms for sharing reports, and device ids that try to inject HTML."""

from __future__ import annotations

import hashlib
import hmac
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis import load_fleet
from analysis.cli import EXIT_BAD_INPUT, EXIT_OK, main
from analysis.errors import InvalidInputError
from analysis.pseudonymize import (
    KEY_ENVIRONMENT_VARIABLE,
    load_pseudonym_key,
    pseudonym,
    pseudonymize_fleet,
)

KEY = b"test-key-0123456789abcdef-0123456789"
T0 = 1777629600  # 2026-05-01 10:00:00 UTC
EVENTS = [{"t": 1, "d0": 1, "d1": 0, "ts": T0, "up": 0},
          {"t": 2, "d0": 65469, "d1": 0, "ts": T0 + 5, "up": 5}]
ROWS = [
    {"id": 1, "device_id": "dc-0001", "received_at": "2026-05-01 10:01:00", "uptime": 60,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 150000,
     "recent_events": EVENTS},
    {"id": 2, "device_id": "dc-0001", "received_at": "2026-05-01 10:06:00", "uptime": 360,
     "firmware_version": "1.1.0", "reset_reason": 1, "heap_free": 149000,
     "recent_events": EVENTS},
    {"id": 3, "device_id": "dc-0002 ", "received_at": "2026-05-01 10:02:00", "uptime": 30,
     "firmware_version": "1.0.0"},
]


def test_pseudonym_is_hmac_sha256_of_id():
    expected = hmac.new(KEY, b"dc-0001", hashlib.sha256).hexdigest()[:16]

    assert pseudonym("dc-0001", KEY) == f"anon-{expected}"


def test_pseudonym_stable_for_same_key():
    assert pseudonym("dc-0001", KEY) == pseudonym("dc-0001", KEY.decode())
    assert pseudonym("dc-0001", KEY) != pseudonym("dc-0002", KEY)
    assert pseudonym("dc-0001", KEY) != pseudonym("dc-0001", KEY + b"x")


def test_key_read_from_environment(monkeypatch):
    monkeypatch.setenv(KEY_ENVIRONMENT_VARIABLE, KEY.decode())

    assert load_pseudonym_key() == KEY


def test_key_file_wins_over_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENVIRONMENT_VARIABLE, "environment-key-0123456789")
    key_file = tmp_path / "pseudonym.key"
    key_file.write_bytes(KEY + b"\n")

    assert load_pseudonym_key(key_file) == KEY


def test_missing_key_raises(monkeypatch):
    monkeypatch.delenv(KEY_ENVIRONMENT_VARIABLE, raising=False)

    with pytest.raises(InvalidInputError, match="no pseudonym key") as raised:
        load_pseudonym_key()

    assert KEY_ENVIRONMENT_VARIABLE in str(raised.value)
    assert "--pseudonym-key-file" in str(raised.value)


def test_short_key_raises(monkeypatch):
    monkeypatch.setenv(KEY_ENVIRONMENT_VARIABLE, "secret")

    with pytest.raises(InvalidInputError, match="has 6 bytes, fewer than the 16"):
        load_pseudonym_key()


def test_unreadable_key_file_raises(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot read the pseudonym key file"):
        load_pseudonym_key(tmp_path / "absent.key")


@pytest.fixture
def fleet(heartbeat_db):
    return load_fleet(heartbeat_db(ROWS), cache=False)


def test_fleet_tables_carry_pseudonyms(fleet):
    shared = pseudonymize_fleet(fleet, KEY)
    expected = {pseudonym("dc-0001", KEY), pseudonym("dc-0002 ", KEY)}

    assert set(shared.heartbeats["device_id"]) == expected
    assert set(shared.events["device_id"]) == {pseudonym("dc-0001", KEY)}
    assert set(shared.boots["device_id"]) == expected
    assert shared.heartbeats["heartbeat_id"].tolist() == fleet.heartbeats["heartbeat_id"].tolist()


def test_original_ids_left_nowhere(fleet):
    shared = pseudonymize_fleet(fleet, KEY)
    text = " ".join([shared.heartbeats.to_csv(), shared.events.to_csv(), shared.boots.to_csv(),
                     json.dumps(shared.quality.to_dict())])

    assert "dc-000" not in text
    assert KEY.decode() not in text


def test_quality_detail_quotes_pseudonyms(fleet):
    shared = pseudonymize_fleet(fleet, KEY)
    detail = shared.quality.to_dict()["device_id_whitespace"]["detail"]

    assert fleet.quality.to_dict()["device_id_whitespace"]["detail"] == \
        "ids such as ['dc-0002 ']"
    assert detail == f"ids such as ['{pseudonym('dc-0002 ', KEY)}']"
    assert shared.quality.count("device_id_whitespace") == 1
    assert shared.quality.examples("device_id_whitespace") == [3]


def test_original_fleet_unchanged(fleet):
    before = fleet.heartbeats.copy()

    pseudonymize_fleet(fleet, KEY)

    pd.testing.assert_frame_equal(fleet.heartbeats, before)


def test_check_output_pseudonymized(heartbeat_db):
    path = heartbeat_db(ROWS)

    result = CliRunner().invoke(main, ["check", "--db", str(path), "--json", "--pseudonymize"],
                                env={KEY_ENVIRONMENT_VARIABLE: KEY.decode()})

    assert result.exit_code == EXIT_OK, result.output
    assert "dc-000" not in result.stdout
    assert KEY.decode() not in result.output
    assert pseudonym("dc-0002 ", KEY) in result.stdout


def test_check_without_key_exits_2(heartbeat_db):
    path = heartbeat_db(ROWS)

    result = CliRunner().invoke(main, ["check", "--db", str(path), "--pseudonymize"],
                                env={KEY_ENVIRONMENT_VARIABLE: ""})

    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.startswith("error: no pseudonym key")


@pytest.mark.slow
def test_script_in_device_id_shows_as_text(heartbeat_db, tmp_path):
    hostile = "<script>alert('dc')</script>"
    rows = [dict(row, device_id=hostile) if row["id"] == 3 else row for row in ROWS]
    out = tmp_path / "reports"

    result = CliRunner().invoke(main, ["run", "--db", str(heartbeat_db(rows)), "--report",
                                       "fleet_overview", "--out", str(out), "--quiet"])
    (page,) = out.glob("*/fleet_overview.html")
    html = page.read_text(encoding="utf-8")

    assert result.exit_code == EXIT_OK, result.output
    assert hostile not in html
    assert "&lt;script&gt;alert(" in html
