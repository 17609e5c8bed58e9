"""Settings of a simulated fleet: size, window, firmware rollout and scenario rates.

Rates are expected counts per device-day unless the name says otherwise; shares are the
fraction of devices that carry a scenario for the whole window.
"""

from __future__ import annotations

import dataclasses
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime

from analysis.errors import InvalidInputError

DEFAULT_SEED = 20260501
DEFAULT_START = datetime(2026, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FirmwareRelease:
    """One firmware version and how it reaches the fleet.

    Parameters
    ----------
    version : str
        Version string as the device reports it, for example ``"1.1.0"``.
    has_diagnostics : bool
        Whether the firmware sends the five diagnostic fields and keeps the event log.
    rollout_day : float
        Day of the window (0 = start) from which devices may install it.
    crash_rate_multiplier : float
        Factor on the panic and watchdog rates while a device runs this version.
    leak_bytes_per_hour : float
        Heap lost per hour of uptime by every device running this version.
    rollout_days : float
        The install times of the devices are spread evenly over this many days.
    rollout_share : float
        Fraction of the devices that receive the release.
    idf_version : str
        ESP-IDF release the firmware is built with. From 5.2 on, the Wi-Fi driver reports
        some "AP not found" cases as 210, 211 or 212 instead of 201.
    """

    version: str
    has_diagnostics: bool
    rollout_day: float = 0.0
    crash_rate_multiplier: float = 1.0
    leak_bytes_per_hour: float = 0.0
    _: KW_ONLY
    rollout_days: float = 0.0
    rollout_share: float = 1.0
    idf_version: str = "5.1.4"

    @property
    def reports_split_ap_codes(self) -> bool:
        """True when the ESP-IDF release reports reasons 210-212 (v5.2 and later)."""
        major, minor = (int(part) for part in self.idf_version.split(".")[:2])
        return (major, minor) >= (5, 2)


def default_releases(days: float) -> tuple[FirmwareRelease, ...]:
    """Return v1.0.0 from the start and an OTA to v1.1.0 spread around the window's middle.

    Examples
    --------
    >>> [r.version for r in default_releases(30)]
    ['1.0.0', '1.1.0']
    """
    return (
        FirmwareRelease("1.0.0", has_diagnostics=False, rollout_day=0.0),
        FirmwareRelease(
            "1.1.0",
            has_diagnostics=True,
            rollout_day=days * 0.4,
            rollout_days=days * 0.15,
            idf_version="5.2.2",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class FleetConfig:
    """Everything that shapes a simulated fleet; the same config and seed give the same fleet.

    Parameters
    ----------
    devices, days, start
        Fleet size, window length and window start (an aware datetime).
    heartbeat_interval_s, ring_buffer_size, heartbeat_miss_reboot_after
        Firmware settings: seconds between heartbeats, events the ring buffer keeps, and
        consecutive heartbeats lost for lack of a link before EVT_REBOOT 1.
    seed
        Seed of every random draw.
    releases
        Firmware versions in rollout order; None selects `default_releases` for `days`.
    panics_per_device_day, watchdog_resets_per_device_day
        Crash rates, multiplied by the running release's ``crash_rate_multiplier``.
    fatal_config_per_device_day, power_cuts_per_device_day
        Rates of a config-load failure after a panic, and of power cuts of 0.5-16 h.
    factory_resets_per_device_day, reprovisions_per_device_day
        Rates of factory resets and of Wi-Fi re-provisioning.
    camera_loop_share, camera_loops_per_device, brownout_loop_share, brownout_loops_per_device
        Devices with camera or brownout boot loops, and how many loops each has.
    leaking_share, leak_bytes_per_hour_range, heap_floor_bytes
        Devices whose heap leaks at a rate drawn from the range, from an uptime of 1-6 h,
        until the free heap reaches the floor and the device panics.
    ap_outages_per_device_day, signal_losses_per_device_day
        Link outages with disconnect reason 201 (210-212 on ESP-IDF 5.2) and 200.
    silent_deaths_per_device_day, own_disconnects_per_device_day
        Link outages with disconnect reason 255 and 8.
    weak_signal_share, radio_cycling_share, rssi_sentinel_share
        Devices with a weak signal (ten times the signal losses), devices that drop their
        link on purpose every 15 minutes, and RSSI readings sent as 0 or -127.
    server_outages_per_day, http_failures_per_heartbeat
        Fleet-wide server outages of 5-40 minutes, and single failed posts.
    malformed_rows
        Heartbeats damaged after the simulation (cut-off JSON, an object instead of a
        list, an element with missing keys, text in ``heap_free``).
    """

    devices: int = 20
    days: float = 14.0
    start: datetime = DEFAULT_START
    heartbeat_interval_s: int = 300
    seed: int = DEFAULT_SEED
    ring_buffer_size: int = 16
    releases: tuple[FirmwareRelease, ...] | None = None
    # Consecutive heartbeats lost for lack of a link before EVT_REBOOT 1 (HEARTBEAT_MISS).
    heartbeat_miss_reboot_after: int = 4

    panics_per_device_day: float = 0.03
    watchdog_resets_per_device_day: float = 0.015
    fatal_config_per_device_day: float = 0.002
    power_cuts_per_device_day: float = 0.02
    factory_resets_per_device_day: float = 0.002
    reprovisions_per_device_day: float = 0.003

    camera_loop_share: float = 0.04
    camera_loops_per_device: int = 2
    brownout_loop_share: float = 0.04
    brownout_loops_per_device: int = 2
    leaking_share: float = 0.06
    leak_bytes_per_hour_range: tuple[float, float] = (4_000.0, 30_000.0)
    # Free heap at which a leaking device panics.
    heap_floor_bytes: int = 20_000

    ap_outages_per_device_day: float = 0.08
    signal_losses_per_device_day: float = 0.3
    silent_deaths_per_device_day: float = 0.05
    own_disconnects_per_device_day: float = 0.2
    weak_signal_share: float = 0.1
    # Devices that switch their radio off on purpose every 15 minutes (reason 8).
    radio_cycling_share: float = 0.02
    rssi_sentinel_share: float = 0.02

    server_outages_per_day: float = 0.1
    http_failures_per_heartbeat: float = 0.002
    malformed_rows: int = 4

    def __post_init__(self) -> None:
        if self.releases is None:
            object.__setattr__(self, "releases", default_releases(self.days))
        else:
            object.__setattr__(self, "releases", tuple(self.releases))
        _validate(self)

    @property
    def window_seconds(self) -> int:
        """Length of the window in whole seconds."""
        return int(round(self.days * 86_400))

    @property
    def start_unix(self) -> int:
        """Start of the window as unix seconds."""
        return int(self.start.timestamp())

    def release(self, version: str) -> FirmwareRelease:
        """Return the release named `version`."""
        for release in self.releases:
            if release.version == version:
                return release
        raise InvalidInputError(f"firmware version {version!r} is not in the config's releases")


def replace_config(config: FleetConfig, overrides: dict[str, object]) -> FleetConfig:
    """Return `config` with `overrides` applied, naming the valid fields on a typo."""
    names = {f.name for f in dataclasses.fields(FleetConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InvalidInputError(
            f"unknown FleetConfig setting(s) {', '.join(unknown)}; "
            f"valid settings are {', '.join(sorted(names))}"
        )
    changes = dict(overrides)
    # A changed window length must not keep the default rollout of the old length.
    if "days" in changes and "releases" not in changes and config.releases == default_releases(
        config.days
    ):
        changes["releases"] = None
    return dataclasses.replace(config, **changes)


_COUNT_FIELDS = ("devices", "heartbeat_interval_s", "ring_buffer_size",
                 "heartbeat_miss_reboot_after")
_SHARE_FIELDS = ("camera_loop_share", "brownout_loop_share", "leaking_share",
                 "weak_signal_share", "radio_cycling_share", "rssi_sentinel_share",
                 "http_failures_per_heartbeat")


def _validate(config: FleetConfig) -> None:
    for name in _COUNT_FIELDS:
        if int(getattr(config, name)) < 1:
            raise InvalidInputError(f"{name} must be at least 1, got {getattr(config, name)}")
    if config.days <= 0:
        raise InvalidInputError(f"days must be positive, got {config.days}")
    if config.start.tzinfo is None:
        raise InvalidInputError(
            f"start {config.start.isoformat()} has no time zone; pass an aware datetime "
            "such as datetime(2026, 5, 1, tzinfo=UTC)"
        )
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
            raise InvalidInputError(f"{item.name} must not be negative, got {value}")
    for name in _SHARE_FIELDS:
        if getattr(config, name) > 1:
            raise InvalidInputError(f"{name} is a share and must lie in 0..1")
    low, high = config.leak_bytes_per_hour_range
    if not 0 < low <= high:
        raise InvalidInputError(
            f"leak_bytes_per_hour_range must be (low, high) with 0 < low <= high, got {low, high}"
        )
    _validate_releases(config.releases)


def _validate_releases(releases: tuple[FirmwareRelease, ...]) -> None:
    if not releases:
        raise InvalidInputError("releases is empty; give at least the version devices start on")
    versions = [release.version for release in releases]
    if len(set(versions)) != len(versions):
        raise InvalidInputError(f"release versions must be unique, got {versions}")
    first = releases[0]
    if first.rollout_day != 0 or first.rollout_share != 1:
        raise InvalidInputError(
            f"the first release ({first.version}) is what every device starts on, so it needs "
            "rollout_day=0 and rollout_share=1"
        )
    for release in releases:
        if not 0 <= release.rollout_share <= 1:
            raise InvalidInputError(f"rollout_share of {release.version} must lie in 0..1")
        if release.rollout_day < 0 or release.rollout_days < 0:
            raise InvalidInputError(f"rollout days of {release.version} must not be negative")
        try:
            release.reports_split_ap_codes  # noqa: B018 - parses idf_version
        except ValueError as err:
            raise InvalidInputError(
                f"idf_version {release.idf_version!r} of {release.version} is not "
                "a version such as '5.2.2'"
            ) from err
