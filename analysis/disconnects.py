"""Wi-Fi disconnects from two sources in one table, counted by reason code, device and time.

Firmware v1.1.0 logs each disconnect as an EVT_WIFI_DOWN event, and also reports the
reason of the latest one in the heartbeat column ``last_disconnect_code``. That column
repeats its value until the next disconnect, so a code is counted only on the heartbeat
where it first appears in a boot or where it differs from the previous code reported in
that boot. Repeated disconnects with the same reason in one boot therefore count once from
the column, while the events count each of them.

Both sources describe the same disconnects, so each device is counted from one of them:
from its events when it logged any ring-buffer event in the window, otherwise from the
column. ``is_counted`` marks the rows that the figures use.

Families ``own_disconnect`` (the device disconnected itself) and ``roaming`` are not link
failures, and figures that rank devices count link failures only.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.boots import heartbeat_boot_numbers

logger = logging.getLogger(__name__)

SOURCE_HEARTBEAT = "last_disconnect_code"
SOURCE_EVENT = "EVT_WIFI_DOWN"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

DISCONNECT_COLUMNS = (
    "device_id", "time", "firmware_version", "code", "reason_name", "former_name", "family",
    "is_link_failure", "source", "heartbeat_id", "is_counted",
)


def is_link_failure(families: pd.Series) -> pd.Series:
    """Return True where a disconnect family is a link failure (not own_disconnect or roaming)."""
    return ~families.isin(codes.NON_FAILURE_FAMILIES)


def code_changes(heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Return the heartbeats whose ``last_disconnect_code`` counts as a new disconnect.

    A code counts on the first heartbeat of a boot that reports one, and on each heartbeat
    whose code differs from the previous code reported in the same boot. Heartbeats without
    a code (v1.0.0 firmware) neither count nor interrupt the comparison.

    Parameters
    ----------
    heartbeats : DataFrame
        From `analysis.load_heartbeats`, sorted by device and time.

    Returns
    -------
    DataFrame
        The counted heartbeats, with their original columns.
    """
    heartbeats = heartbeats.reset_index(drop=True)
    boot = pd.Series(heartbeat_boot_numbers(heartbeats), index=heartbeats.index)
    reported = heartbeats["last_disconnect_code"].notna()

    code = heartbeats.loc[reported, "last_disconnect_code"]
    previous = code.groupby(boot[reported]).shift()
    changed = (previous.isna() | (code != previous)).fillna(True).astype(bool)
    return heartbeats.loc[reported].loc[changed.to_numpy()]


def collect_disconnects(heartbeats: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Return one row per disconnect seen in ``last_disconnect_code`` or as EVT_WIFI_DOWN.

    Parameters
    ----------
    heartbeats : DataFrame
        ``Fleet.heartbeats``.
    events : DataFrame
        ``Fleet.events`` of the same heartbeats.

    Returns
    -------
    DataFrame
        Columns `DISCONNECT_COLUMNS`, sorted by device and time. ``time`` is the event time,
        or for a code from the column the heartbeat's ``received_at`` (the disconnect
        happened at or before it). ``firmware_version`` is the version that ran when the
        disconnect happened, as far as the heartbeats show it. ``is_counted`` is True for
        the source the device is counted from (its events if it logged any, else the
        column).

    Examples
    --------
    >>> from analysis import load_fleet
    >>> from analysis.sample import ensure_sample_database
    >>> fleet = load_fleet(ensure_sample_database(), devices=["dc-0001"])
    >>> table = collect_disconnects(fleet.heartbeats, fleet.events)
    >>> sorted(table["source"].unique()) <= [SOURCE_EVENT, SOURCE_HEARTBEAT]
    True
    """
    from_column = code_changes(heartbeats)
    column_rows = pd.DataFrame({
        "device_id": from_column["device_id"].to_numpy(dtype=object),
        "time": from_column["received_at"].to_numpy(),
        "firmware_version": from_column["firmware_version"].to_numpy(dtype=object),
        "code": from_column["last_disconnect_code"].to_numpy(),
        "source": SOURCE_HEARTBEAT,
        "heartbeat_id": from_column["heartbeat_id"].to_numpy(),
    })

    down = events[events["tag"] == codes.EVT_WIFI_DOWN]
    event_rows = pd.DataFrame({
        "device_id": down["device_id"].to_numpy(dtype=object),
        "time": down["event_time"].to_numpy(),
        "firmware_version": _event_versions(down, heartbeats),
        "code": down["d0"].to_numpy(),
        "source": SOURCE_EVENT,
        "heartbeat_id": down["first_heartbeat_id"].to_numpy(),
    })

    table = pd.concat([column_rows, event_rows], ignore_index=True)
    table = _decode(table)
    devices_with_events = set(events["device_id"].unique())
    table["is_counted"] = (table["source"] == SOURCE_EVENT) | ~table["device_id"].isin(
        devices_with_events)
    table = table.sort_values(["device_id", "time"], kind="stable").reset_index(drop=True)
    logger.info("collected %d disconnects (%d counted) from %d devices", len(table),
                int(table["is_counted"].sum()), table["device_id"].nunique())
    return table[list(DISCONNECT_COLUMNS)]


def _event_versions(down: pd.DataFrame, heartbeats: pd.DataFrame) -> np.ndarray:
    """Return the firmware version that ran when each EVT_WIFI_DOWN was logged.

    An event of an earlier boot than its carrying heartbeat's (``boot_offset`` > 0) ran
    before a reboot, possibly an OTA update, so it takes the version of the device's
    heartbeat before the carrying one.
    """
    result = np.full(len(down), None, dtype=object)
    if down.empty:
        return result
    ids = heartbeats["heartbeat_id"].to_numpy(dtype="float64", na_value=np.nan)
    position_by_id = pd.Series(np.arange(len(heartbeats)), index=ids)
    position_by_id = position_by_id[~position_by_id.index.duplicated()]
    carriers = down["first_heartbeat_id"].to_numpy(dtype="float64", na_value=np.nan)
    found = position_by_id.reindex(carriers)
    known = found.notna().to_numpy()

    carrier = found.to_numpy()[known].astype(np.int64)
    previous = np.maximum(carrier - 1, 0)
    versions = heartbeats["firmware_version"]
    devices = heartbeats["device_id"]
    version = versions.take(carrier).to_numpy(dtype=object)
    before = versions.take(previous).to_numpy(dtype=object)
    previous_device = devices.take(previous).to_numpy(dtype=object)
    same_device = (carrier > 0) & (previous_device == devices.take(carrier).to_numpy(dtype=object))
    use_before = (down["boot_offset"].to_numpy()[known] > 0) & same_device & pd.notna(before)
    result[known] = np.where(use_before, before, version)
    return result


def _decode(table: pd.DataFrame) -> pd.DataFrame:
    table["code"] = table["code"].astype("Int64")
    table["time"] = pd.to_datetime(table["time"], utc=True)
    table["heartbeat_id"] = table["heartbeat_id"].astype("Int64")
    table["reason_name"] = codes.decode_disconnect_reason(table["code"])
    table["former_name"] = table["code"].map(codes.WIFI_REASON_FORMER_NAMES).astype(object)
    table["family"] = codes.disconnect_family(table["code"])
    table["is_link_failure"] = is_link_failure(table["family"])
    return table


def counted(disconnects: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of `disconnects` that the figures count (``is_counted``)."""
    return disconnects[disconnects["is_counted"].astype(bool)]


def count_by_code(disconnects: pd.DataFrame) -> pd.DataFrame:
    """Count disconnects by reason code: one row per number, whatever its name was.

    Returns
    -------
    DataFrame
        ``code, reason_name, former_name, family, is_link_failure, disconnects, devices,
        from_events, from_column``, most frequent first. ``former_name`` is the name older
        ESP-IDF releases used for the same number, if any.
    """
    rows = counted(disconnects)
    columns = ["code", "reason_name", "former_name", "family", "is_link_failure",
               "disconnects", "devices", "from_events", "from_column"]
    if rows.empty:
        return pd.DataFrame(columns=columns)

    grouped = rows.assign(is_event=rows["source"] == SOURCE_EVENT).groupby("code")
    table = pd.DataFrame({
        "disconnects": grouped.size(),
        "devices": grouped["device_id"].nunique(),
        "from_events": grouped["is_event"].sum().astype(np.int64),
    }).reset_index()
    table["from_column"] = table["disconnects"] - table["from_events"]
    table["reason_name"] = codes.decode_disconnect_reason(table["code"])
    table["former_name"] = table["code"].map(codes.WIFI_REASON_FORMER_NAMES).astype(object)
    table["family"] = codes.disconnect_family(table["code"])
    table["is_link_failure"] = is_link_failure(table["family"])
    table = table.sort_values(["disconnects", "code"], ascending=[False, True])
    return table[columns].reset_index(drop=True)


def device_days(heartbeats: pd.DataFrame, *, by_version: bool = False) -> pd.DataFrame:
    """Return the device-days (device and UTC date) with at least one diagnostic heartbeat.

    Only heartbeats with diagnostic fields count, because v1.0.0 firmware reports no
    disconnects. With `by_version`, a device that changed version during a day counts one
    day for each version.
    """
    diagnostic = heartbeats[heartbeats["has_diagnostics"].astype(bool)]
    frame = pd.DataFrame({
        "device_id": diagnostic["device_id"],
        "day": diagnostic["received_at"].dt.floor("D"),
    })
    if by_version:
        frame["firmware_version"] = diagnostic["firmware_version"]
    return frame.drop_duplicates().reset_index(drop=True)


def count_by_device_day(disconnects: pd.DataFrame, heartbeats: pd.DataFrame) -> pd.DataFrame:
    """Count the disconnects of every observed device-day, zeros included.

    Returns
    -------
    DataFrame
        ``device_id, day, link_failures, silent_deaths, own_disconnects, roaming`` for every
        device-day with a diagnostic heartbeat, sorted by device and day. A day with a
        counted disconnect but no heartbeat (an event carried by a later heartbeat) is
        added, so that no disconnect is lost from the totals.
    """
    rows = counted(disconnects).assign(day=lambda f: f["time"].dt.floor("D"))
    days = pd.concat([device_days(heartbeats), rows[["device_id", "day"]]], ignore_index=True)
    days = days.drop_duplicates().reset_index(drop=True)
    kinds = {
        "link_failures": rows["is_link_failure"].astype(bool),
        "silent_deaths": rows["family"] == "silent_death",
        "own_disconnects": rows["family"] == "own_disconnect",
        "roaming": rows["family"] == "roaming",
    }
    for name, mask in kinds.items():
        per_day = rows[mask].groupby(["device_id", "day"]).size().rename(name)
        days = days.merge(per_day.reset_index(), on=["device_id", "day"], how="left")
        days[name] = days[name].fillna(0).astype(np.int64)
    return days.sort_values(["device_id", "day"], kind="stable").reset_index(drop=True)


def rank_devices(per_day: pd.DataFrame, *, top: int | None = 10) -> pd.DataFrame:
    """Rank devices by link-failure disconnects, the worst first.

    Own disconnects and roaming are shown beside the count but never rank a device, so a
    device that switches its radio off on purpose is not listed as the worst.

    Parameters
    ----------
    per_day : DataFrame
        From `count_by_device_day`.
    top : int or None
        At most this many rows, or every device with a link failure when None.

    Returns
    -------
    DataFrame
        ``device_id, link_failures, silent_deaths, own_disconnects, roaming, device_days,
        link_failures_per_day`` for devices with at least one link failure. Ties in the
        count go to the higher rate per device-day.
    """
    columns = ["device_id", "link_failures", "silent_deaths", "own_disconnects", "roaming",
               "device_days", "link_failures_per_day"]
    grouped = per_day.groupby("device_id")
    table = grouped[["link_failures", "silent_deaths", "own_disconnects", "roaming"]].sum()
    table["device_days"] = grouped.size()
    table["link_failures_per_day"] = table["link_failures"] / table["device_days"]
    table = table[table["link_failures"] > 0].reset_index()
    table = table.sort_values(["link_failures", "link_failures_per_day", "device_id"],
                              ascending=[False, False, True])
    table = table.reset_index(drop=True)[columns]
    return table if top is None else table.head(top)


def weekly_pattern(disconnects: pd.DataFrame, *, link_failures_only: bool = True) -> pd.DataFrame:
    """Count disconnects by UTC weekday (rows, Monday first) and UTC hour (columns 0-23)."""
    rows = counted(disconnects)
    if link_failures_only:
        rows = rows[rows["is_link_failure"].astype(bool)]
    times = rows["time"].dt.tz_convert("UTC")
    table = pd.crosstab(times.dt.day_of_week.rename("weekday"), times.dt.hour.rename("hour"))
    table = table.reindex(index=range(7), columns=range(24), fill_value=0)
    table.index = pd.Index(WEEKDAYS, name="weekday (UTC)")
    table.columns.name = "hour (UTC)"
    return table


def silent_death_share(disconnects: pd.DataFrame) -> float | None:
    """Return the percentage of counted disconnects that were silent deaths (code 255)."""
    rows = counted(disconnects)
    if rows.empty:
        return None
    return 100.0 * float((rows["code"] == codes.SILENT_DEATH).sum()) / len(rows)


def plot_weekly_pattern(
    pattern: pd.DataFrame, *, title: str = "Link-failure disconnects by weekday and hour (UTC)"
) -> Figure | None:
    """Plot `weekly_pattern` as a heat map (UTC), or return None when it counts no disconnect."""
    if pattern.empty or int(pattern.to_numpy().sum()) == 0:
        return None
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(pattern.to_numpy(), aspect="auto", cmap="viridis")
    axes.set_xticks(range(24), [str(hour) for hour in range(24)])
    axes.set_yticks(range(len(pattern.index)), list(pattern.index))
    axes.set_title(title)
    axes.set_xlabel("hour of day (UTC)")
    axes.set_ylabel("weekday (UTC)")
    figure.colorbar(image, ax=axes, label="disconnects")
    return figure


def plot_device_day_counts(per_day: pd.DataFrame, *, largest: int = 10) -> Figure | None:
    """Plot how many device-days saw 0, 1, 2, ... link failures (the last bar is `largest`+).

    `per_day` is `count_by_device_day` output. Returns None when it is empty.
    """
    if per_day.empty:
        return None
    counts = per_day["link_failures"].clip(upper=largest).value_counts()
    counts = counts.reindex(range(largest + 1), fill_value=0)
    labels = [str(n) for n in range(largest)] + [f"{largest}+"]

    figure = Figure(figsize=(9, 3.8), layout="constrained")
    axes = figure.add_subplot()
    axes.bar(labels, counts.to_numpy(), color="tab:blue")
    axes.set_title("Link-failure disconnects per device-day")
    axes.set_xlabel("link failures in the device-day")
    axes.set_ylabel("device-days")
    return figure
