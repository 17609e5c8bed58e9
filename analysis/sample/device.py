"""Run the DoorCounter firmware of one device through the window, boot after boot.

Firmware behaviour simulated here:

- At boot the firmware logs EVT_BOOT (d0 = reset reason), connects to Wi-Fi a few seconds
  later (EVT_WIFI_UP, d0 = RSSI as uint16) and sets its clock by NTP a second after that.
  It posts the first heartbeat 7-16 s after boot and then every heartbeat interval.
- A heartbeat that cannot go out for lack of a link logs EVT_HEARTBEAT_MISS with the
  consecutive count (only the first N are logged). At the N-th the firmware logs EVT_REBOOT 1
  and restarts, once per outage: it does not restart again before a heartbeat got through.
- A post that reaches the server but fails logs EVT_HTTP_FAIL (HTTP status or errno).
  The first success after a failure or a miss logs EVT_HTTP_OK, and so does the daily
  config fetch.
- Every Wi-Fi disconnect logs EVT_WIFI_DOWN with the reason; ``last_disconnect_code`` is the
  last one of the boot.
- Firmware restarts (OTA, factory reset, re-provisioning, connectivity watchdog) log
  EVT_REBOOT first and reset with ESP_RST_SW (3). The two FATAL paths log EVT_REBOOT and
  hang until the task watchdog resets the chip (6).
- The ring buffer and a synced clock survive every reset except a power-on (1).

Versions without diagnostics behave the same but log nothing and report only base fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.codes import (
    EVT_BOOT,
    EVT_HEARTBEAT_MISS,
    EVT_HTTP_FAIL,
    EVT_HTTP_OK,
    EVT_REBOOT,
)
from analysis.sample import schedule as sched
from analysis.sample.boot import (
    BROWNOUT_REPORT,
    BROWNOUT_SHORT,
    CAMERA_FAIL,
    CONFIG_FAIL,
    NORMAL,
    PROVISIONING,
    BootEvents,
    BootPlan,
    BootRecord,
)
from analysis.sample.config import FleetConfig
from analysis.sample.heap import HeapModel, sample_heap
from analysis.sample.link import HEARTBEAT_PATH_HASH, HTTP_FAILED, SENT, LinkModel
from analysis.sample.ringbuffer import EventLog
from analysis.sample.schedule import DeviceProfile, DeviceSchedule, Incident, ServerSchedule

# Firmware reboot reasons (EVT_REBOOT d0).
REBOOT_HEARTBEAT_MISS, REBOOT_FACTORY_RESET, REBOOT_OTA = 1, 2, 3
REBOOT_WIFI_REPROV, REBOOT_FATAL_CONFIG, REBOOT_FATAL_CAMERA = 4, 5, 6
# The task watchdog resets a hung FATAL path after its default timeout of 5 s.
TASK_WDT_TIMEOUT_S = 5


@dataclass(frozen=True)
class BootEnding:
    """End of a boot: its reason (``panic``, ``ota``, ``incident``, ...) and reset time."""

    reason: str
    time: int
    incident: Incident | None = None
    version: str | None = None


@dataclass
class DeviceRun:
    """Everything one device produced: boots, events and the heartbeats the server stored."""

    profile: DeviceProfile
    boots: list[BootRecord]
    log: EventLog
    heartbeats: dict[str, list[np.ndarray]] = field(default_factory=dict)


class DeviceSimulation:
    """The firmware of one device, run boot by boot from before the window to its end."""

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
        self.rng = rng
        self.window_start = config.start_unix
        self.window_end = config.start_unix + config.window_seconds
        self.version = _start_version(config, profile)
        self.pending_updates = sorted(
            (time, version) for version, time in profile.update_times.items()
            if time > self.window_start
        )
        self.incidents = list(schedule.incidents)
        self.link = LinkModel(config, profile, schedule, server, rng)
        self.log = EventLog()
        self.boots: list[BootRecord] = []
        self.heartbeats: dict[str, list[np.ndarray]] = {
            name: [] for name in ("time", "uptime", "boot", "heap_free", "heap_min_free",
                                  "last_disconnect_code")
        }
        self.synced_since: int | None = None
        self.watchdog_used = False
        self.pending_reboot_reason: int | None = None
        self.pending_reboot_event = -1

    def run(self) -> DeviceRun:
        """Simulate every boot until the window closes."""
        start = self.window_start - self._initial_uptime()
        plan: BootPlan | None = BootPlan(NORMAL, 1, "power_on", wipes_buffer=True)
        while plan is not None and start < self.window_end:
            start, plan = self._boot(start, plan)
        return DeviceRun(self.profile, self.boots, self.log, self.heartbeats)

    def _initial_uptime(self) -> int:
        # A leaking device cannot have been up longer than its heap lasts.
        release = self.config.release(self.version)
        heap = HeapModel(self.profile.heap_base, release.leak_bytes_per_hour,
                         self.profile.leak_bytes_per_hour, self.profile.leak_start_uptime_s)
        lasts = heap.uptime_at(self.config.heap_floor_bytes)
        return int(min(self.profile.initial_uptime_s, 0.8 * lasts))

    # --- one boot -------------------------------------------------------------------

    def _boot(self, start: int, plan: BootPlan) -> tuple[int, BootPlan | None]:
        was_logging = self.config.release(self.version).has_diagnostics
        self.version = plan.version or self.version
        release = self.config.release(self.version)
        if plan.wipes_buffer:
            self.synced_since = None
        if release.has_diagnostics and (plan.wipes_buffer or not was_logging):
            self.log.wipe(start)

        record = BootRecord(
            index=len(self.boots), boot_time=start, version=self.version,
            has_diagnostics=release.has_diagnostics, reset_reason=plan.reset_reason,
            reboot_reason=self.pending_reboot_reason, cause=plan.cause, kind=plan.kind,
        )
        self.boots.append(record)
        self.pending_reboot_reason = None
        events = BootEvents(start)
        events.add(start, EVT_BOOT, plan.reset_reason)

        if plan.kind in (NORMAL, BROWNOUT_REPORT):
            end, next_start, next_plan = self._networked_boot(record, events, plan)
        else:
            end, next_start, next_plan = self._offline_boot(events, plan)
        self._close_boot(record, events, end)
        return next_start, next_plan

    def _close_boot(self, record: BootRecord, events: BootEvents, end: int) -> None:
        record.end_time = end
        sync = events.sync_time(end)
        if self.synced_since is None and sync is not None:
            self.synced_since = sync
        if not record.has_diagnostics:
            self.pending_reboot_reason = None
            return
        positions = events.write(self.log, boot=record.index, end=end,
                                 synced_since=self.synced_since)
        record.boot_event = positions[0] if positions else -1
        reboots = [p for p in positions if self.log.columns["tag"][p] == EVT_REBOOT]
        record.reboot_event = reboots[-1] if reboots else -1
        if reboots:
            self.pending_reboot_reason = self.log.columns["d0"][reboots[-1]]

    def _offline_boot(self, events: BootEvents, plan: BootPlan) -> tuple[int, int, BootPlan]:
        """Run a boot that never reaches Wi-Fi: a FATAL hang, a brownout, provisioning."""
        start = events.start
        if plan.kind in (CAMERA_FAIL, CONFIG_FAIL):
            reason = REBOOT_FATAL_CAMERA if plan.kind == CAMERA_FAIL else REBOOT_FATAL_CONFIG
            events.add(start + 1, EVT_REBOOT, reason)
            end = start + 1 + TASK_WDT_TIMEOUT_S
            return end, end + 1, _after_fatal(plan)
        if plan.kind == PROVISIONING:
            events.add(start + plan.off_s, EVT_REBOOT, REBOOT_WIFI_REPROV)
            end = start + plan.off_s + 1
            return end, end + 1, BootPlan(NORMAL, 3, "wifi_reprovision")
        if plan.kind == BROWNOUT_SHORT:
            end = start + int(self.rng.integers(1, 5))
            return end, end + 1, self._next_brownout(plan, BROWNOUT_SHORT)
        raise ValueError(f"unknown boot kind {plan.kind!r}")

    def _networked_boot(
        self, record: BootRecord, events: BootEvents, plan: BootPlan
    ) -> tuple[int, int, BootPlan | None]:
        """Run a boot that connects and posts heartbeats until something ends it."""
        start = events.start
        connect, first_slot = self._connection_times(start, plan)
        heap = self._heap_model()
        ending = self._first_ending(start, heap)
        if plan.kind == BROWNOUT_REPORT and start + 10 < ending.time:
            ending = BootEnding("brownout", start + 10)

        interval = self.config.heartbeat_interval_s
        slots = np.arange(first_slot, max(ending.time, first_slot), interval, dtype=np.int64)
        status, http_codes = self.link.slot_status(slots)
        ending = self._firmware_ending(ending, slots, status, http_codes)

        keep = slots < ending.time
        slots, status, http_codes = slots[keep], status[keep], http_codes[keep]
        _, used = self._walk_failures(slots, status, http_codes, events)
        release = self.config.release(self.version)
        down_times, down_codes = self.link.link_events(events, release, connect, ending.time)
        self.link.config_fetches(events, first_slot + 2, ending.time)
        self._store_heartbeats(record, slots, status, heap, down_times, down_codes)
        self.watchdog_used = used
        return self._after_networked(ending, events, plan)

    def _connection_times(self, start: int, plan: BootPlan) -> tuple[int, int]:
        """Return when the boot tries Wi-Fi and when it posts its first heartbeat."""
        if plan.kind == BROWNOUT_REPORT:
            return start + 3, start + int(self.rng.integers(6, 9))
        connect = start + int(self.rng.integers(3, 7))
        return connect, connect + int(self.rng.integers(4, 11))

    def _heap_model(self) -> HeapModel:
        release = self.config.release(self.version)
        return HeapModel(
            base=int(self.profile.heap_base + self.rng.normal(0, 1_500)),
            version_leak_per_hour=release.leak_bytes_per_hour,
            device_leak_per_hour=self.profile.leak_bytes_per_hour,
            device_leak_start_s=self.profile.leak_start_uptime_s,
        )

    def _firmware_ending(
        self, ending: BootEnding, slots: np.ndarray, status: np.ndarray, codes: np.ndarray
    ) -> BootEnding:
        """Return an earlier ending the firmware chooses: connectivity watchdog or OTA."""
        trigger, _ = self._walk_failures(slots, status, codes, None)
        if trigger is not None:
            ending = BootEnding("connectivity", int(slots[trigger]) + 1)
        ota = self._ota_slot(slots, status, ending.time)
        if ota is not None:
            slot, version = ota
            download_s = int(self.rng.integers(30, 121))
            ending = BootEnding("ota", slot + download_s, version=version)
        return ending

    def _after_networked(
        self, ending: BootEnding, events: BootEvents, plan: BootPlan
    ) -> tuple[int, int, BootPlan | None]:
        reason, end = ending.reason, ending.time
        if reason == "window":
            return end, end, None
        if reason in ("panic", "leak"):
            return end, end + 1, BootPlan(NORMAL, 4, "panic")
        if reason == "watchdog":
            reset = int(self.rng.choice([6, 5, 7], p=[0.6, 0.3, 0.1]))
            return end, end + 1, BootPlan(NORMAL, reset, "watchdog")
        if reason == "connectivity":
            events.add(end - 1, EVT_REBOOT, REBOOT_HEARTBEAT_MISS)
            self.watchdog_used = True
            return end, end + 1, BootPlan(NORMAL, 3, "connectivity_watchdog")
        if reason == "ota":
            events.add(end - 1, EVT_REBOOT, REBOOT_OTA)
            self.pending_updates = [item for item in self.pending_updates if item[0] > end]
            return end, end + 1, BootPlan(NORMAL, 3, "ota_update", version=ending.version)
        if reason == "brownout":
            # After the last reporting boot the supply gives up for hours.
            delay = plan.off_s if plan.remaining <= 0 else 1
            return end, end + delay, self._next_brownout(plan, BROWNOUT_REPORT)
        return self._after_incident(ending.incident, events)

    def _after_incident(
        self, incident: Incident, events: BootEvents
    ) -> tuple[int, int, BootPlan]:
        self.incidents.remove(incident)
        time = incident.time
        if incident.kind == "power_cut":
            return time, time + incident.off_s, BootPlan(NORMAL, 1, "power_on", wipes_buffer=True)
        if incident.kind == "factory_reset":
            events.add(time - 1, EVT_REBOOT, REBOOT_FACTORY_RESET)
            return time, time + 1, BootPlan(PROVISIONING, 3, "factory_reset",
                                            off_s=incident.off_s)
        if incident.kind == "reprovision":
            events.add(time - 1, EVT_REBOOT, REBOOT_WIFI_REPROV)
            return time, time + 1, BootPlan(NORMAL, 3, "wifi_reprovision")
        if incident.kind == "fatal_config":
            # A panic corrupts the stored config; the next boot cannot load it.
            return time, time + 1, BootPlan(CONFIG_FAIL, 4, "panic")
        if incident.kind == "camera_loop":
            # A short power cut; on the cold start the camera fails to initialise.
            plan = BootPlan(CAMERA_FAIL, 1, "power_on", wipes_buffer=True,
                            remaining=incident.count - 1)
            return time, time + incident.off_s, plan
        first = BROWNOUT_SHORT if incident.variant == "silent" else BROWNOUT_REPORT
        plan = BootPlan(first, 9, "brownout", remaining=incident.count - 1, off_s=incident.off_s)
        return time, time + 1, plan

    def _next_brownout(self, plan: BootPlan, kind: str) -> BootPlan:
        if plan.remaining <= 0:
            if kind == BROWNOUT_SHORT:
                return BootPlan(NORMAL, 9, "brownout")
            return BootPlan(NORMAL, 1, "power_on", wipes_buffer=True)
        resets = [(9, "brownout"), (7, "watchdog")]
        weights = [0.85, 0.15]
        if kind == BROWNOUT_REPORT:
            resets.append((1, "power_on"))
            weights = [0.8, 0.1, 0.1]
        reset, cause = resets[int(self.rng.choice(len(resets), p=weights))]
        return BootPlan(kind, reset, cause, wipes_buffer=reset == 1,
                        remaining=plan.remaining - 1, off_s=plan.off_s)

    # --- what ends a boot -----------------------------------------------------------

    def _first_ending(self, start: int, heap: HeapModel) -> BootEnding:
        """Return what ends the boot first from outside the firmware's choice."""
        multiplier = self.config.release(self.version).crash_rate_multiplier
        panics = self.config.panics_per_device_day * multiplier
        watchdog_resets = self.config.watchdog_resets_per_device_day * multiplier
        # Crashes are drawn from the window start, so no device crashes before it.
        crash_from = max(start, self.window_start)
        candidates = {
            "panic": crash_from + self._waiting_time(panics),
            "watchdog": crash_from + self._waiting_time(watchdog_resets),
            "leak": start + heap.uptime_at(self.config.heap_floor_bytes),
            "window": float(self.window_end),
        }
        incident = self._next_incident(start)
        if incident is not None:
            candidates["incident"] = float(incident.time)
        reason = min(candidates, key=candidates.get)
        time = int(math.ceil(min(candidates[reason], self.window_end)))
        return BootEnding(reason, time, incident=incident if reason == "incident" else None)

    def _waiting_time(self, per_day: float) -> float:
        if per_day <= 0:
            return math.inf
        return float(self.rng.exponential(sched.DAY_S / per_day))

    def _next_incident(self, after: int) -> Incident | None:
        while self.incidents and self.incidents[0].time <= after:
            self.incidents.pop(0)
        return self.incidents[0] if self.incidents else None

    def _ota_slot(
        self, slots: np.ndarray, status: np.ndarray, end: int
    ) -> tuple[int, str] | None:
        if not self.pending_updates:
            return None
        ready = (status == SENT) & (slots >= self.pending_updates[0][0]) & (slots < end)
        ready &= slots >= self.window_start
        if not ready.any():
            return None
        slot = int(slots[np.argmax(ready)])
        version = [v for time, v in self.pending_updates if time <= slot][-1]
        if version == self.version:
            return None
        return slot, version

    # --- heartbeats, links and HTTP -------------------------------------------------

    def _walk_failures(
        self, slots: np.ndarray, status: np.ndarray, codes: np.ndarray,
        events: BootEvents | None,
    ) -> tuple[int | None, bool]:
        """Follow the miss counter through the failed slots.

        Returns the slot index where the connectivity watchdog fires (or None) and whether
        the watchdog is still used up for the current outage at the end. Logs the events
        when `events` is given.
        """
        limit = self.config.heartbeat_miss_reboot_after
        used, misses, previous = self.watchdog_used, 0, -1
        for i in np.flatnonzero(status != SENT).tolist():
            if i > previous + 1:
                # A heartbeat got through between the failures.
                if previous >= 0 and events is not None:
                    events.add(slots[previous + 1] + 1, EVT_HTTP_OK, HEARTBEAT_PATH_HASH,
                               self.link.elapsed_ms())
                misses, used = 0, False
            previous = i
            if status[i] == HTTP_FAILED:
                if events is not None:
                    events.add(slots[i], EVT_HTTP_FAIL, HEARTBEAT_PATH_HASH, codes[i])
                continue
            misses += 1
            if misses <= limit and events is not None:
                events.add(slots[i], EVT_HEARTBEAT_MISS, misses)
            if misses == limit and not used:
                return i, True
        if previous >= 0 and previous + 1 < len(slots):
            if events is not None:
                events.add(slots[previous + 1] + 1, EVT_HTTP_OK, HEARTBEAT_PATH_HASH,
                           self.link.elapsed_ms())
            used = False
        elif previous < 0 and len(slots):
            used = False
        return None, used

    def _store_heartbeats(
        self, record: BootRecord, slots: np.ndarray, status: np.ndarray, heap: HeapModel,
        down_times: list[int], down_codes: list[int],
    ) -> None:
        uptime = slots - record.boot_time
        heap_free, heap_min_free = sample_heap(heap, uptime, self.rng)
        stored = (status == SENT) & (slots >= self.window_start)
        times = slots[stored]
        last_down = np.searchsorted(np.asarray(down_times, dtype=np.int64), times, side="right")
        codes = np.asarray([-1, *down_codes], dtype=np.int64)[last_down]
        columns = {
            "time": times, "uptime": uptime[stored],
            "boot": np.full(len(times), record.index, dtype=np.int64),
            "heap_free": heap_free[stored], "heap_min_free": heap_min_free[stored],
            "last_disconnect_code": codes,
        }
        for name, values in columns.items():
            self.heartbeats[name].append(values)


def _after_fatal(plan: BootPlan) -> BootPlan:
    if plan.kind == CONFIG_FAIL:
        return BootPlan(NORMAL, 6, "fatal_config")
    if plan.remaining > 0:
        return BootPlan(CAMERA_FAIL, 6, "fatal_camera", remaining=plan.remaining - 1)
    return BootPlan(NORMAL, 6, "fatal_camera")


def _start_version(config: FleetConfig, profile: DeviceProfile) -> str:
    version = config.releases[0].version
    for release in config.releases[1:]:
        time = profile.update_times.get(release.version)
        if time is not None and time <= config.start_unix:
            version = release.version
    return version
