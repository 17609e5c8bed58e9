"""Draw each device's scenario labels and the outside events that happen to it.

Everything here is decided before the firmware runs: which devices leak or loop, when the
access point disappears, when the power fails, when the server is down. Crashes whose rate
depends on the firmware version are drawn per boot in `analysis.sample.device` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.sample.config import FleetConfig

DAY_S = 86_400
# Outside events start this long after the window opens, so every device sends at least
# one heartbeat of the boot it was in when the window opened.
QUIET_START_S = 900

# Link outage kinds and the disconnect reason each one logs.
AP_OUTAGE, SIGNAL_LOSS, SILENT_DEATH, OWN_DISCONNECT = 0, 1, 2, 3
BEACON_TIMEOUT, NO_AP_FOUND, ASSOC_LEAVE, SILENT_DEATH_CODE = 200, 201, 8, 255
# ESP-IDF v5.2 and later name why no AP was found: 201 when it is absent, 212 below the RSSI
# threshold, 211 below the auth-mode threshold, 210 with no compatible security.
AP_SITUATION_CODES = (201, 212, 211, 210)
AP_SITUATION_WEIGHTS = (0.15, 0.75, 0.07, 0.03)


@dataclass(frozen=True)
class Incident:
    """An outside event that ends the boot it falls in (power cut, loop, user action)."""

    time: int
    kind: str
    off_s: int = 0
    count: int = 0
    variant: str = ""


@dataclass
class DeviceProfile:
    """The scenario labels of one device; the same for the whole window."""

    device_id: str
    index: int
    rssi_dbm: int
    heap_base: int
    is_leaking: bool
    leak_bytes_per_hour: float
    leak_start_uptime_s: int
    has_camera_loop: bool
    has_brownout_loop: bool
    has_radio_cycling: bool
    is_weak_signal: bool
    initial_uptime_s: int
    # Unix time at which each later release becomes available to this device.
    update_times: dict[str, int] = field(default_factory=dict)


@dataclass
class DeviceSchedule:
    """Link outages (sorted, never overlapping) and boot-ending incidents (sorted)."""

    outage_start: np.ndarray
    outage_end: np.ndarray
    outage_kind: np.ndarray
    outage_situation: np.ndarray
    incidents: list[Incident]


@dataclass
class ServerSchedule:
    """Windows in which the server rejects every heartbeat with an HTTP error."""

    start: np.ndarray
    end: np.ndarray
    status: np.ndarray


def draw_profile(config: FleetConfig, index: int, rng: np.random.Generator) -> DeviceProfile:
    """Draw the scenario labels of device number `index`."""
    is_weak = bool(rng.random() < config.weak_signal_share)
    rssi = rng.normal(-80, 3) if is_weak else rng.normal(-63, 7)
    is_leaking = bool(rng.random() < config.leaking_share)
    low, high = config.leak_bytes_per_hour_range
    return DeviceProfile(
        device_id=f"dc-{index + 1:04d}",
        index=index,
        rssi_dbm=int(np.clip(round(rssi), -90, -35)),
        heap_base=int(np.clip(rng.normal(205_000, 20_000), 160_000, 245_000)),
        is_leaking=is_leaking,
        leak_bytes_per_hour=float(round(rng.uniform(low, high))) if is_leaking else 0.0,
        leak_start_uptime_s=int(rng.integers(3_600, 6 * 3_600)),
        has_camera_loop=bool(rng.random() < config.camera_loop_share),
        has_brownout_loop=bool(rng.random() < config.brownout_loop_share),
        has_radio_cycling=bool(rng.random() < config.radio_cycling_share),
        is_weak_signal=is_weak,
        initial_uptime_s=int(rng.integers(3_600, 5 * DAY_S)),
        update_times=_draw_update_times(config, rng),
    )


def _draw_update_times(config: FleetConfig, rng: np.random.Generator) -> dict[str, int]:
    times = {}
    for release in config.releases[1:]:
        # Both draws happen for every release, so one release's share does not shift the
        # random stream of the next.
        is_selected = rng.random() < release.rollout_share
        offset_days = release.rollout_day + rng.random() * release.rollout_days
        if is_selected:
            times[release.version] = config.start_unix + int(offset_days * DAY_S)
    return times


def draw_schedule(
    config: FleetConfig, profile: DeviceProfile, rng: np.random.Generator
) -> DeviceSchedule:
    """Draw the link outages and incidents of one device over the window."""
    starts, ends, kinds = _merge_outages(_draw_outages(config, profile, rng))
    situations = rng.choice(len(AP_SITUATION_CODES), p=AP_SITUATION_WEIGHTS, size=len(starts))
    incidents = sorted(_draw_incidents(config, profile, rng), key=lambda item: item.time)
    return DeviceSchedule(starts, ends, kinds, situations, incidents=incidents)


def draw_server_schedule(config: FleetConfig, rng: np.random.Generator) -> ServerSchedule:
    """Draw the fleet-wide server outages: 5-40 minutes of HTTP 503 or 500."""
    starts = _poisson_times(config, config.server_outages_per_day, rng)
    durations = rng.integers(300, 2_400, size=len(starts))
    status = rng.choice([503, 500], p=[0.7, 0.3], size=len(starts))
    return ServerSchedule(starts, starts + durations, status)


def _poisson_times(config: FleetConfig, per_day: float, rng: np.random.Generator) -> np.ndarray:
    span = config.window_seconds - QUIET_START_S
    if per_day <= 0 or span <= 0:
        return np.empty(0, dtype=np.int64)
    count = rng.poisson(per_day * config.days)
    offsets = rng.integers(QUIET_START_S, config.window_seconds, size=count)
    return np.sort(config.start_unix + offsets).astype(np.int64)


def _draw_outages(
    config: FleetConfig, profile: DeviceProfile, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    signal_rate = config.signal_losses_per_device_day * (10 if profile.is_weak_signal else 1)
    specs = [
        # kind, rate per day, median duration s, log-sd, min s, max s
        (AP_OUTAGE, config.ap_outages_per_device_day, 900, 1.0, 120, 8 * 3_600),
        (SIGNAL_LOSS, signal_rate, 60, 0.8, 5, 1_200),
        (SILENT_DEATH, config.silent_deaths_per_device_day, 240, 0.6, 60, 900),
        (OWN_DISCONNECT, config.own_disconnects_per_device_day, 5, 0.3, 3, 8),
    ]
    drawn = []
    for kind, rate, median, sigma, low, high in specs:
        starts = _poisson_times(config, rate, rng)
        durations = np.clip(np.round(median * rng.lognormal(0, sigma, len(starts))), low, high)
        drawn.append((starts, starts + durations.astype(np.int64), kind))
    if profile.has_radio_cycling:
        drawn.append((*_radio_cycles(config, rng), OWN_DISCONNECT))
    return drawn


def _radio_cycles(config: FleetConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    count = config.window_seconds // 900
    starts = config.start_unix + QUIET_START_S + 900 * np.arange(count) + rng.integers(0, 60, count)
    starts = starts[starts < config.start_unix + config.window_seconds]
    return starts, starts + rng.integers(3, 9, size=len(starts))


def _merge_outages(
    drawn: list[tuple[np.ndarray, np.ndarray, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = np.concatenate([item[0] for item in drawn]).astype(np.int64)
    ends = np.concatenate([item[1] for item in drawn]).astype(np.int64)
    kinds = np.concatenate([np.full(len(item[0]), item[2]) for item in drawn]).astype(np.int64)
    order = np.argsort(starts, kind="stable")
    starts, ends, kinds = starts[order], ends[order], kinds[order]

    # An outage that begins while another is still going on is dropped, because the link
    # cannot go down twice; the earlier outage keeps its reason.
    keep = np.zeros(len(starts), dtype=bool)
    last_end = np.iinfo(np.int64).min
    for i, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if start > last_end:
            keep[i] = True
            last_end = end
    return starts[keep], ends[keep], kinds[keep]


def _draw_incidents(
    config: FleetConfig, profile: DeviceProfile, rng: np.random.Generator
) -> list[Incident]:
    incidents = []
    for time in _poisson_times(config, config.power_cuts_per_device_day, rng):
        off = int(np.clip(10_800 * rng.lognormal(0, 0.7), 1_800, 16 * 3_600))
        incidents.append(Incident(int(time), "power_cut", off_s=off))
    for time in _poisson_times(config, config.factory_resets_per_device_day, rng):
        incidents.append(Incident(int(time), "factory_reset", off_s=int(rng.integers(600, 3_600))))
    for time in _poisson_times(config, config.reprovisions_per_device_day, rng):
        incidents.append(Incident(int(time), "reprovision"))
    for time in _poisson_times(config, config.fatal_config_per_device_day, rng):
        incidents.append(Incident(int(time), "fatal_config"))
    if profile.has_camera_loop:
        for time in _spread_times(config, config.camera_loops_per_device, rng):
            off = int(rng.integers(120, 1_200))
            failing_boots = int(rng.integers(3, 7))
            incidents.append(Incident(time, "camera_loop", off_s=off, count=failing_boots))
    if profile.has_brownout_loop:
        for time in _spread_times(config, config.brownout_loops_per_device, rng):
            incidents.append(_brownout_loop(time, rng))
    return incidents


def _brownout_loop(time: int, rng: np.random.Generator) -> Incident:
    if rng.random() < 0.5:
        # Boots that die before Wi-Fi comes up, seen only as EVT_BOOT events.
        return Incident(time, "brownout_loop", count=int(rng.integers(4, 11)), variant="silent")
    # Boots that live long enough to send one heartbeat each, then the supply gives up.
    off = int(rng.integers(2 * 3_600, 8 * 3_600))
    return Incident(time, "brownout_loop", off_s=off, count=int(rng.integers(3, 6)),
                    variant="reporting")


def _spread_times(config: FleetConfig, count: int, rng: np.random.Generator) -> list[int]:
    """Return `count` times, one in each equal part of the window, so loops fall apart."""
    if count <= 0:
        return []
    part = (config.window_seconds - QUIET_START_S) / count
    offsets = QUIET_START_S + part * (np.arange(count) + rng.uniform(0.1, 0.9, size=count))
    return [config.start_unix + int(offset) for offset in offsets]
