"""The device's Wi-Fi link and the server as the firmware meets them.

`LinkModel` decides, for each heartbeat time of a boot, whether the post went out, found no
link (a miss) or failed at the server, and logs the Wi-Fi and config-fetch events of the
boot. It shares the device's random stream, so the draws keep their order.
"""

from __future__ import annotations

import numpy as np

from analysis.codes import EVT_HTTP_OK, EVT_WIFI_DOWN, EVT_WIFI_UP
from analysis.sample import schedule as sched
from analysis.sample.boot import BootEvents
from analysis.sample.config import FirmwareRelease, FleetConfig
from analysis.sample.schedule import DeviceProfile, DeviceSchedule, ServerSchedule

SENT, MISSED, HTTP_FAILED = 0, 1, 2
SPORADIC_HTTP_CODES = (500, 503, 104, 113)
SPORADIC_HTTP_WEIGHTS = (0.2, 0.2, 0.35, 0.25)


def path_hash(path: str) -> int:
    """Return the 32-bit FNV-1a hash of a request path, used as EVT_HTTP_OK/FAIL d0.

    NOTE: the firmware's own path hash is not documented; FNV-1a is used in its place.
    """
    value = 0x811C9DC5
    for byte in path.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


HEARTBEAT_PATH_HASH = path_hash("/api/v1/heartbeat")
CONFIG_PATH_HASH = path_hash("/api/v1/config")


class LinkModel:
    """Link outages, server outages and sporadic HTTP failures of one device."""

    def __init__(
        self,
        config: FleetConfig,
        profile: DeviceProfile,
        schedule: DeviceSchedule,
        server: ServerSchedule,
        rng: np.random.Generator,
    ) -> None:
        self.config = config
        self.profile = profile
        self.schedule = schedule
        self.server = server
        self.rng = rng
        self.window_start = config.start_unix

    def slot_status(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return per heartbeat time SENT, MISSED or HTTP_FAILED, and the HTTP status or errno."""
        schedule = self.schedule
        is_missed = _inside(schedule.outage_start, schedule.outage_end, slots)
        in_server_outage, server_index = _inside_index(self.server.start, self.server.end, slots)
        is_sporadic = self.rng.random(len(slots)) < self.config.http_failures_per_heartbeat
        sporadic_codes = self.rng.choice(SPORADIC_HTTP_CODES, p=SPORADIC_HTTP_WEIGHTS,
                                         size=len(slots))
        server_codes = (
            self.server.status[server_index] if len(self.server.status) else sporadic_codes
        )
        codes = np.where(in_server_outage, server_codes, sporadic_codes)

        status = np.full(len(slots), SENT, dtype=np.int64)
        status[(in_server_outage | is_sporadic) & ~is_missed] = HTTP_FAILED
        status[is_missed] = MISSED
        # Before the window the device only matters for its heap low-water mark.
        status[slots < self.window_start] = SENT
        return status, codes

    def elapsed_ms(self) -> int:
        """Draw the duration of a successful request, ms (EVT_HTTP_OK d1)."""
        return int(self.rng.integers(80, 900))

    def link_events(
        self, events: BootEvents, release: FirmwareRelease, connect: int, end: int
    ) -> tuple[list[int], list[int]]:
        """Log Wi-Fi up and down events of the boot; return the disconnect times and codes."""
        if connect >= end:
            return [], []
        schedule = self.schedule
        first = int(np.searchsorted(schedule.outage_end, connect, side="right"))
        last = int(np.searchsorted(schedule.outage_start, end, side="left"))
        down_times, down_codes = [], []
        if first < len(schedule.outage_start) and schedule.outage_start[first] <= connect:
            # The link is down when the boot tries to connect: the attempt fails.
            code = self._disconnect_code(first, release)
            if connect + 2 < end:
                events.add(connect + 2, EVT_WIFI_DOWN, code)
                down_times.append(connect + 2)
                down_codes.append(code)
            back = max(int(schedule.outage_end[first]), connect + 3)
            if back < end:
                events.add(back, EVT_WIFI_UP, self._rssi())
            first += 1
        else:
            events.add(connect, EVT_WIFI_UP, self._rssi())
        for i in range(first, last):
            code = self._disconnect_code(i, release)
            events.add(schedule.outage_start[i], EVT_WIFI_DOWN, code)
            down_times.append(int(schedule.outage_start[i]))
            down_codes.append(code)
            if schedule.outage_end[i] < end:
                events.add(schedule.outage_end[i], EVT_WIFI_UP, self._rssi())
        return down_times, down_codes

    def _disconnect_code(self, outage: int, release: FirmwareRelease) -> int:
        kind = int(self.schedule.outage_kind[outage])
        if kind == sched.AP_OUTAGE:
            if release.reports_split_ap_codes:
                return sched.AP_SITUATION_CODES[int(self.schedule.outage_situation[outage])]
            return sched.NO_AP_FOUND
        return {
            sched.SIGNAL_LOSS: sched.BEACON_TIMEOUT,
            sched.SILENT_DEATH: sched.SILENT_DEATH_CODE,
            sched.OWN_DISCONNECT: sched.ASSOC_LEAVE,
        }[kind]

    def _rssi(self) -> int:
        """Return an RSSI reading as EVT_WIFI_UP d0 carries it: int16 cast to uint16."""
        if self.rng.random() < self.config.rssi_sentinel_share:
            dbm = int(self.rng.choice([0, -127]))
        else:
            dbm = int(np.clip(round(self.profile.rssi_dbm + self.rng.normal(0, 3)), -95, -30))
        return dbm & 0xFFFF

    def config_fetches(self, events: BootEvents, first: int, end: int) -> None:
        for time in range(first, end, sched.DAY_S):
            if not _inside(self.schedule.outage_start, self.schedule.outage_end,
                           np.asarray([time]))[0]:
                events.add(time, EVT_HTTP_OK, CONFIG_PATH_HASH, self.elapsed_ms())

def _inside(starts: np.ndarray, ends: np.ndarray, times: np.ndarray) -> np.ndarray:
    return _inside_index(starts, ends, times)[0]


def _inside_index(
    starts: np.ndarray, ends: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return whether each time lies in ``[start, end)`` of the last interval starting at or
    before it, and that interval's index (0 where none)."""
    index = np.searchsorted(starts, times, side="right") - 1
    clipped = np.maximum(index, 0)
    if len(starts) == 0:
        return np.zeros(len(times), dtype=bool), clipped
    return (index >= 0) & (times < ends[clipped]), clipped
