"""Decoders against the ESP-IDF headers' tables and the product's family rule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis import codes

ENUMS = json.loads((Path(__file__).parent / "data" / "esp_idf_enums.json").read_text())


def test_reset_reasons_match_esp_idf_header():
    expected = {int(code): name for code, name in ENUMS["esp_reset_reason"].items()}
    assert codes.RESET_REASONS == expected


def test_wifi_reasons_match_esp_idf_header():
    expected = {int(code): name for code, name in ENUMS["wifi_err_reason"].items()}
    assert codes.WIFI_REASONS == expected


@pytest.mark.parametrize(
    ("code", "name", "cause", "cause_class"),
    [
        (11, "ESP_RST_USB", "external_reset", "planned"),
        (14, "ESP_RST_PWR_GLITCH", "brownout", "power"),
        (15, "ESP_RST_CPU_LOCKUP", "panic", "crash"),
    ],
)
def test_newer_reset_reasons_decode(code, name, cause, cause_class):
    assert codes.decode([code], codes.RESET_REASONS).tolist() == [name]
    assert codes.CAUSE_BY_RESET_REASON[code] == cause
    assert codes.CAUSE_CLASSES[cause] == cause_class


def test_unknown_codes_decode_without_raising():
    decoded = codes.decode(pd.Series([23, -1, 70000], dtype="Int64"), codes.RESET_REASONS)

    assert decoded.tolist() == ["UNKNOWN(23)", "UNKNOWN(-1)", "UNKNOWN(70000)"]


def test_missing_code_stays_missing():
    decoded = codes.decode(pd.Series([None, 1], dtype="Int64"), codes.RESET_REASONS)

    assert pd.isna(decoded.iloc[0])
    assert decoded.iloc[1] == "ESP_RST_POWERON"


def test_renamed_wifi_reasons_decode_by_number():
    decoded = codes.decode_disconnect_reason([4, 6, 7]).tolist()

    assert decoded == [
        "WIFI_REASON_DISASSOC_DUE_TO_INACTIVITY",
        "WIFI_REASON_CLASS2_FRAME_FROM_NONAUTH_STA",
        "WIFI_REASON_CLASS3_FRAME_FROM_NONASSOC_STA",
    ]
    assert codes.WIFI_REASON_FORMER_NAMES[4] == "WIFI_REASON_ASSOC_EXPIRE"
    assert codes.WIFI_REASON_FORMER_NAMES[6] == "WIFI_REASON_NOT_AUTHED"
    assert codes.WIFI_REASON_FORMER_NAMES[7] == "WIFI_REASON_NOT_ASSOCED"


def test_silent_death_decodes_and_has_own_family():
    assert codes.decode_disconnect_reason([255]).tolist() == ["SILENT_DEATH"]
    assert codes.disconnect_family([255]).tolist() == ["silent_death"]


@pytest.mark.parametrize(
    ("family", "members"),
    [
        ("ap_not_found", [201, 210, 211, 212]),
        ("signal_loss", [200, 34, 39]),
        ("auth_failure", [2, 15, 202, 204, 23, 14]),
        ("association_failure", [203, 205, 5, 9, 17, 18, 19, 20, 21, 22, 24, 29]),
        ("ap_side", [3, 4, 6, 7, 206, 46, 47]),
        ("own_disconnect", [8, 36]),
        ("roaming", [207, 12]),
    ],
)
def test_disconnect_families(family, members):
    assert codes.disconnect_family(members).tolist() == [family] * len(members)


def test_every_other_defined_code_is_other():
    grouped = {c for members in codes.DISCONNECT_FAMILY_CODES.values() for c in members}
    rest = sorted(set(codes.WIFI_REASONS) - grouped)

    assert 1 in rest
    assert set(codes.disconnect_family(rest)) == {"other"}


def test_zero_and_undefined_codes_are_unknown_family():
    assert codes.disconnect_family([0, 40, 199, 300]).tolist() == ["unknown"] * 4


def test_rssi_decodes_int16_sent_as_uint16():
    assert codes.decode_rssi([65469, 65466, 0, 65409]).tolist() == [-67, -70, 0, -127]


def test_every_reset_reason_has_a_cause():
    assert set(codes.CAUSE_BY_RESET_REASON) == set(codes.RESET_REASONS)
    assert set(codes.CAUSE_BY_RESET_REASON.values()) <= set(codes.CAUSE_CLASSES)
    assert set(codes.CAUSE_BY_REBOOT_REASON.values()) <= set(codes.CAUSE_CLASSES)


def test_decode_is_one_lookup_per_distinct_value():
    values = pd.Series([201] * 100_000 + [4] * 100_000, dtype="Int64")

    decoded = codes.decode_disconnect_reason(values)

    assert decoded.value_counts().to_dict() == {
        "WIFI_REASON_NO_AP_FOUND": 100_000,
        "WIFI_REASON_DISASSOC_DUE_TO_INACTIVITY": 100_000,
    }
