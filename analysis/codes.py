"""Code tables and vectorised decoders for DoorCounter diagnostics.

The ESP-IDF tables follow `esp_reset_reason_t` in
`components/esp_system/include/esp_system.h` and `wifi_err_reason_t` in
`esp_wifi_types_generic.h` (ESP-IDF master, commit 102122904ade). Event tags and firmware
reboot reasons follow the DoorCounter firmware's `event_log.h`. A value outside a table
decodes to ``UNKNOWN(n)`` and never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

EVENT_TAGS: dict[int, str] = {
    1: "EVT_BOOT",
    2: "EVT_WIFI_UP",
    3: "EVT_WIFI_DOWN",
    4: "EVT_HTTP_OK",
    5: "EVT_HTTP_FAIL",
    6: "EVT_HEARTBEAT_MISS",
    7: "EVT_NTP_SYNC",
    8: "EVT_REBOOT",
}
EVT_BOOT, EVT_WIFI_UP, EVT_WIFI_DOWN, EVT_HTTP_OK = 1, 2, 3, 4
EVT_HTTP_FAIL, EVT_HEARTBEAT_MISS, EVT_NTP_SYNC, EVT_REBOOT = 5, 6, 7, 8

# EVT_REBOOT d0: why the firmware restarted itself.
REBOOT_REASONS: dict[int, str] = {
    1: "HEARTBEAT_MISS",
    2: "FACTORY_RESET",
    3: "OTA",
    4: "WIFI_REPROV",
    5: "FATAL_CONFIG",
    6: "FATAL_CAMERA",
}

# esp_reset_reason(); 11-12 exist since ESP-IDF v5.2 and 13-15 since v5.3.
RESET_REASONS: dict[int, str] = {
    0: "ESP_RST_UNKNOWN",
    1: "ESP_RST_POWERON",
    2: "ESP_RST_EXT",
    3: "ESP_RST_SW",
    4: "ESP_RST_PANIC",
    5: "ESP_RST_INT_WDT",
    6: "ESP_RST_TASK_WDT",
    7: "ESP_RST_WDT",
    8: "ESP_RST_DEEPSLEEP",
    9: "ESP_RST_BROWNOUT",
    10: "ESP_RST_SDIO",
    11: "ESP_RST_USB",
    12: "ESP_RST_JTAG",
    13: "ESP_RST_EFUSE",
    14: "ESP_RST_PWR_GLITCH",
    15: "ESP_RST_CPU_LOCKUP",
}

_WIFI_REASON_SUFFIXES: dict[int, str] = {
    1: "UNSPECIFIED", 2: "AUTH_EXPIRE", 3: "AUTH_LEAVE", 4: "DISASSOC_DUE_TO_INACTIVITY",
    5: "ASSOC_TOOMANY", 6: "CLASS2_FRAME_FROM_NONAUTH_STA", 7: "CLASS3_FRAME_FROM_NONASSOC_STA",
    8: "ASSOC_LEAVE", 9: "ASSOC_NOT_AUTHED", 10: "DISASSOC_PWRCAP_BAD",
    11: "DISASSOC_SUPCHAN_BAD", 12: "BSS_TRANSITION_DISASSOC", 13: "IE_INVALID",
    14: "MIC_FAILURE", 15: "4WAY_HANDSHAKE_TIMEOUT", 16: "GROUP_KEY_UPDATE_TIMEOUT",
    17: "IE_IN_4WAY_DIFFERS", 18: "GROUP_CIPHER_INVALID", 19: "PAIRWISE_CIPHER_INVALID",
    20: "AKMP_INVALID", 21: "UNSUPP_RSN_IE_VERSION", 22: "INVALID_RSN_IE_CAP",
    23: "802_1X_AUTH_FAILED", 24: "CIPHER_SUITE_REJECTED", 25: "TDLS_PEER_UNREACHABLE",
    26: "TDLS_UNSPECIFIED", 27: "SSP_REQUESTED_DISASSOC", 28: "NO_SSP_ROAMING_AGREEMENT",
    29: "BAD_CIPHER_OR_AKM", 30: "NOT_AUTHORIZED_THIS_LOCATION",
    31: "SERVICE_CHANGE_PERCLUDES_TS", 32: "UNSPECIFIED_QOS", 33: "NOT_ENOUGH_BANDWIDTH",
    34: "MISSING_ACKS", 35: "EXCEEDED_TXOP", 36: "STA_LEAVING", 37: "END_BA",
    38: "UNKNOWN_BA", 39: "TIMEOUT", 46: "PEER_INITIATED", 47: "AP_INITIATED",
    48: "INVALID_FT_ACTION_FRAME_COUNT", 49: "INVALID_PMKID", 50: "INVALID_MDE",
    51: "INVALID_FTE", 67: "TRANSMISSION_LINK_ESTABLISH_FAILED",
    # The misspelling is ESP-IDF's own identifier.
    68: "ALTERATIVE_CHANNEL_OCCUPIED",
    200: "BEACON_TIMEOUT", 201: "NO_AP_FOUND", 202: "AUTH_FAIL", 203: "ASSOC_FAIL",
    204: "HANDSHAKE_TIMEOUT", 205: "CONNECTION_FAIL", 206: "AP_TSF_RESET", 207: "ROAMING",
    208: "ASSOC_COMEBACK_TIME_TOO_LONG", 209: "SA_QUERY_TIMEOUT",
    # 210-212 exist since ESP-IDF v5.2; older firmware reported these cases as 201.
    210: "NO_AP_FOUND_W_COMPATIBLE_SECURITY", 211: "NO_AP_FOUND_IN_AUTHMODE_THRESHOLD",
    212: "NO_AP_FOUND_IN_RSSI_THRESHOLD",
}
WIFI_REASONS: dict[int, str] = {
    code: f"WIFI_REASON_{suffix}" for code, suffix in _WIFI_REASON_SUFFIXES.items()
}

# Names that older ESP-IDF releases used for the same numbers. Decoding is by number only,
# so these are shown beside the current name and never change a count.
WIFI_REASON_FORMER_NAMES: dict[int, str] = {
    4: "WIFI_REASON_ASSOC_EXPIRE",
    6: "WIFI_REASON_NOT_AUTHED",
    7: "WIFI_REASON_NOT_ASSOCED",
}

# 255 is not an ESP-IDF code: the firmware sends it when the link died without an event.
SILENT_DEATH = 255
WIFI_SILENT_DEATH_NAME = "SILENT_DEATH"

# Disconnect families group codes that ESP-IDF relabelled between releases (201 became
# 210-212 in v5.2), so a relabelling is not read as a fix.
DISCONNECT_FAMILY_CODES: dict[str, tuple[int, ...]] = {
    "ap_not_found": (201, 210, 211, 212),
    "signal_loss": (200, 34, 39),
    "auth_failure": (2, 15, 202, 204, 23, 14),
    "association_failure": (203, 205, 5, 9, 17, 18, 19, 20, 21, 22, 24, 29),
    "ap_side": (3, 4, 6, 7, 206, 46, 47),
    "own_disconnect": (8, 36),
    "roaming": (207, 12),
    "silent_death": (SILENT_DEATH,),
}
DISCONNECT_FAMILIES: tuple[str, ...] = (*DISCONNECT_FAMILY_CODES, "other", "unknown")
# Families that are not link failures: the device chose to disconnect or moved between APs.
NON_FAILURE_FAMILIES: frozenset[str] = frozenset({"own_disconnect", "roaming"})

_FAMILY_BY_CODE: dict[int, str] = {
    code: family for family, codes in DISCONNECT_FAMILY_CODES.items() for code in codes
}

# Reboot causes: (cause, class). The class groups causes for stability figures.
CAUSE_CLASSES: dict[str, str] = {
    "ota_update": "planned",
    "factory_reset": "planned",
    "wifi_reprovision": "planned",
    "deep_sleep_wake": "planned",
    "external_reset": "planned",
    "connectivity_watchdog": "recovery",
    "fatal_config": "crash",
    "fatal_camera": "crash",
    "panic": "crash",
    "watchdog": "crash",
    "software_restart_unlogged": "crash",
    "hardware_fault": "crash",
    "unknown": "crash",
    "brownout": "power",
    "power_on": "power_on",
    "no_diagnostics": "no_diagnostics",
}
CAUSE_CLASS_ORDER: tuple[str, ...] = (
    "crash", "recovery", "power", "power_on", "planned", "no_diagnostics",
)
UNEXPECTED_CLASSES: frozenset[str] = frozenset({"crash", "recovery", "power"})

CAUSE_BY_REBOOT_REASON: dict[int, str] = {
    1: "connectivity_watchdog",
    2: "factory_reset",
    3: "ota_update",
    4: "wifi_reprovision",
    5: "fatal_config",
    6: "fatal_camera",
}
CAUSE_BY_RESET_REASON: dict[int, str] = {
    0: "unknown",
    1: "power_on",
    2: "external_reset",
    3: "software_restart_unlogged",
    4: "panic",
    5: "watchdog",
    6: "watchdog",
    7: "watchdog",
    8: "deep_sleep_wake",
    9: "brownout",
    10: "external_reset",
    11: "external_reset",
    12: "external_reset",
    13: "hardware_fault",
    14: "brownout",
    15: "panic",
}


def unknown_name(code: int) -> str:
    """Return the label of a code that no table defines, such as ``UNKNOWN(23)``."""
    return f"UNKNOWN({code})"


def decode(values: pd.Series | np.ndarray | list, table: Mapping[int, str]) -> pd.Series:
    """Decode integer codes to names with one lookup per distinct value.

    Parameters
    ----------
    values : Series, ndarray or list of int
        Codes; missing values stay missing.
    table : mapping of int to str
        The code table, for example `RESET_REASONS`.

    Returns
    -------
    Series of str
        The names, ``UNKNOWN(n)`` for codes outside the table, missing where the code is.

    Examples
    --------
    >>> decode(pd.Series([1, 23, None], dtype="Int64"), RESET_REASONS).tolist()
    ['ESP_RST_POWERON', 'UNKNOWN(23)', nan]
    """
    return _map_distinct(_as_int_series(values), lambda code: table.get(code, unknown_name(code)))


def is_known(values: pd.Series | np.ndarray | list, table: Mapping[int, str]) -> pd.Series:
    """Return a boolean Series that is True where the code is in `table`.

    Missing values count as known, because a missing code is not an unrecognised one.
    """
    series = _as_int_series(values)
    return series.isna() | series.isin(list(table))


def decode_disconnect_reason(values: pd.Series | np.ndarray | list) -> pd.Series:
    """Decode Wi-Fi disconnect reasons, including the firmware's 255 (``SILENT_DEATH``).

    Examples
    --------
    >>> decode_disconnect_reason([201, 255, 0]).tolist()
    ['WIFI_REASON_NO_AP_FOUND', 'SILENT_DEATH', 'UNKNOWN(0)']
    """
    table = {**WIFI_REASONS, SILENT_DEATH: WIFI_SILENT_DEATH_NAME}
    return decode(values, table)


def disconnect_family(values: pd.Series | np.ndarray | list) -> pd.Series:
    """Map Wi-Fi disconnect reasons to their family.

    Codes that ESP-IDF defines but no family names are ``other`` (1 UNSPECIFIED included);
    0 and undefined codes are ``unknown``.

    Examples
    --------
    >>> disconnect_family([201, 212, 8, 1, 0, 99]).tolist()
    ['ap_not_found', 'ap_not_found', 'own_disconnect', 'other', 'unknown', 'unknown']
    """
    return _map_distinct(_as_int_series(values), _family_of)


def _family_of(code: int) -> str:
    if code in _FAMILY_BY_CODE:
        return _FAMILY_BY_CODE[code]
    return "other" if code in WIFI_REASONS else "unknown"


def decode_rssi(values: pd.Series | np.ndarray | list) -> pd.Series:
    """Convert EVT_WIFI_UP d0 (an int16 sent as uint16) to dBm.

    Examples
    --------
    >>> decode_rssi([65469, 65466, 0]).tolist()
    [-67, -70, 0]
    """
    series = _as_int_series(values)
    return series.where(series < 32768, series - 65536)


def cause_class(causes: pd.Series) -> pd.Series:
    """Map reboot causes to their class (planned, crash, recovery, power, power_on, ...)."""
    return causes.map(CAUSE_CLASSES).astype(object)


def _map_distinct(codes: pd.Series, name_of: Callable[[int], str]) -> pd.Series:
    """Name each distinct code once, then spread the names over the rows by factorize code.

    A missing code gives NaN, always the same marker, so that tables built per device equal
    the same table built for the fleet.
    """
    positions, distinct = pd.factorize(codes)
    names = np.empty(len(distinct) + 1, dtype=object)
    names[:-1] = [name_of(int(code)) for code in distinct]
    # factorize numbers a missing code -1, which picks this last entry.
    names[-1] = np.nan
    return pd.Series(names[positions], index=codes.index, name=codes.name, dtype=object)


def _as_int_series(values: pd.Series | np.ndarray | list) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.astype("Int64")
    return pd.Series(values, dtype="Int64")
