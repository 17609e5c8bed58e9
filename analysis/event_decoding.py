"""Decode the fields of expanded events into readable columns and a one-line detail."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import codes
from analysis.quality import DataQualityReport

# EVT_HTTP_FAIL d1 holds an HTTP status or an errno. A 1xx status is never a final
# response, while common lwIP/newlib errno values overlap that range (ECONNRESET 104,
# ECONNREFUSED 111, EHOSTUNREACH 113), so only 200-599 is read as a status.
HTTP_STATUS_RANGE = (200, 599)
RSSI_SENTINELS = (0, -127)


def add_decoded_columns(events: pd.DataFrame, report: DataQualityReport) -> pd.DataFrame:
    """Add ``tag_name``, ``reason_name``, ``disconnect_family``, ``rssi_dbm``,
    ``rssi_valid``, ``http_status``, ``errno`` and ``detail`` to `events`, and count unknown
    tags, unknown reboot reasons and RSSI sentinels in `report`."""
    tag = events["tag"]
    d0 = events["d0"]
    d1 = events["d1"]

    events["tag_name"] = codes.decode(tag, codes.EVENT_TAGS)
    events["reason_name"] = _reason_names(tag, d0)
    family = codes.disconnect_family(d0.where(tag == codes.EVT_WIFI_DOWN))
    events["disconnect_family"] = family

    is_up = tag == codes.EVT_WIFI_UP
    rssi = codes.decode_rssi(d0.where(is_up))
    events["rssi_dbm"] = rssi
    events["rssi_valid"] = (rssi > RSSI_SENTINELS[1]) & (rssi < RSSI_SENTINELS[0])
    events["rssi_valid"] = events["rssi_valid"].fillna(False).astype(bool)

    is_fail = tag == codes.EVT_HTTP_FAIL
    is_status = d1.between(*HTTP_STATUS_RANGE)
    events["http_status"] = d1.where(is_fail & is_status).astype("Int64")
    events["errno"] = d1.where(is_fail & ~is_status).astype("Int64")
    events["detail"] = _details(events)

    _report_unknowns(events, report)
    return events


def _reason_names(tag: pd.Series, d0: pd.Series) -> pd.Series:
    names = pd.Series(pd.NA, index=tag.index, dtype=object)
    tables = {
        codes.EVT_BOOT: codes.RESET_REASONS,
        codes.EVT_REBOOT: codes.REBOOT_REASONS,
    }
    for event_tag, table in tables.items():
        mask = tag == event_tag
        names[mask] = codes.decode(d0[mask], table)
    down = tag == codes.EVT_WIFI_DOWN
    names[down] = codes.decode_disconnect_reason(d0[down])
    return names


def _details(events: pd.DataFrame) -> pd.Series:
    detail = pd.Series("", index=events.index, dtype=object)
    tag = events["tag"]
    for event_tag, describe in _DESCRIBERS.items():
        mask = (tag == event_tag).to_numpy()
        if mask.any():
            detail[mask] = describe(events[mask]).to_numpy()
    other = ~tag.isin(list(_DESCRIBERS)).to_numpy()
    if other.any():
        subset = events[other]
        detail[other] = ("d0=" + subset["d0"].astype(str) + " d1="
                         + subset["d1"].astype(str)).to_numpy()
    return detail


def _path(subset: pd.DataFrame) -> pd.Series:
    hashes = subset["d0"].astype("int64").to_numpy() & 0xFFFFFFFF
    return pd.Series([f"path 0x{value:08x}" for value in hashes], index=subset.index)


def _http_fail(subset: pd.DataFrame) -> pd.Series:
    code = subset["d1"].astype(str)
    kind = np.where(subset["http_status"].notna(), "HTTP ", "errno ")
    return _path(subset) + ", " + kind + code


_DESCRIBERS = {
    codes.EVT_BOOT: lambda s: "reset " + s["reason_name"].astype(str),
    codes.EVT_WIFI_UP: lambda s: "RSSI " + s["rssi_dbm"].astype(str) + " dBm",
    codes.EVT_WIFI_DOWN: lambda s: (
        "reason " + s["reason_name"].astype(str) + " (" + s["d0"].astype(str) + ")"
    ),
    codes.EVT_HTTP_OK: lambda s: _path(s) + ", " + s["d1"].astype(str) + " ms",
    codes.EVT_HTTP_FAIL: _http_fail,
    codes.EVT_HEARTBEAT_MISS: lambda s: s["d0"].astype(str) + " consecutive missed heartbeats",
    codes.EVT_NTP_SYNC: lambda s: "synced at uptime " + s["d0"].astype(str) + " s",
    codes.EVT_REBOOT: lambda s: "firmware reboot " + s["reason_name"].astype(str),
}


def _report_unknowns(events: pd.DataFrame, report: DataQualityReport) -> None:
    heartbeat = events["first_heartbeat_id"]
    unknown_tag = ~codes.is_known(events["tag"], codes.EVENT_TAGS)
    if unknown_tag.any():
        values = sorted(events.loc[unknown_tag, "tag"].unique().tolist())[:5]
        report.add("event_unknown_tag", heartbeat[unknown_tag], detail=f"tags {values}")

    is_reboot = events["tag"] == codes.EVT_REBOOT
    unknown_reboot = is_reboot & ~codes.is_known(events["d0"], codes.REBOOT_REASONS)
    if unknown_reboot.any():
        values = sorted(events.loc[unknown_reboot, "d0"].unique().tolist())[:5]
        report.add("event_unknown_reboot_reason", heartbeat[unknown_reboot],
                   detail=f"reasons {values}")

    rssi = events["rssi_dbm"]
    sentinel = rssi.isin(RSSI_SENTINELS).fillna(False)
    report.add("rssi_sentinel", heartbeat[sentinel])
    impossible = ((rssi > 0) | (rssi < -127)).fillna(False)
    report.add("rssi_impossible", heartbeat[impossible])
