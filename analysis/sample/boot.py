"""Records of one simulated boot: its plan, its truth row and the events it logged.

A `BootPlan` describes how the next boot will start and behave (reset reason, cause, whether
the power-on wiped the ring buffer); a `BootRecord` is what actually happened.
`BootEvents` collects a boot's events out of order and writes them to the device's
`EventLog` in time order, with the ``ts`` and ``up`` the firmware would have recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.codes import EVT_WIFI_UP
from analysis.sample.ringbuffer import EventLog

# Boot kinds. A normal boot connects and sends heartbeats; the others end on their own.
NORMAL = "normal"
CAMERA_FAIL = "camera_fail"
CONFIG_FAIL = "config_fail"
BROWNOUT_SHORT = "brownout_short"
BROWNOUT_REPORT = "brownout_report"
PROVISIONING = "provisioning"


@dataclass(frozen=True)
class BootPlan:
    """Plan of the next boot: its reset reason, its true cause and what it will do."""

    kind: str
    reset_reason: int
    cause: str
    wipes_buffer: bool = False
    version: str | None = None
    # Further boots of the same loop after this one.
    remaining: int = 0
    # Seconds the device stays off after the last boot of a loop, or stays unprovisioned.
    off_s: int = 0


@dataclass
class BootRecord:
    """One boot as it happened; the source of a `truth_boots` row."""

    index: int
    boot_time: int
    version: str
    has_diagnostics: bool
    reset_reason: int
    reboot_reason: int | None
    cause: str
    kind: str
    end_time: int | None = None
    # Position of this boot's EVT_BOOT in the device's event log, -1 when not logged.
    boot_event: int = -1
    # Position of the EVT_REBOOT this boot logged before it ended, -1 when none.
    reboot_event: int = -1


@dataclass
class BootEvents:
    """Events of one boot, collected in any order and written out sorted by time."""

    start: int
    rows: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def add(self, time: int, tag: int, d0: int, d1: int = 0) -> None:
        """Log an event at `time`; events at the same second keep the order they were added."""
        self.rows.append((int(time), len(self.rows), int(tag), int(d0), int(d1)))

    def first_time(self, tag: int, end: int) -> int | None:
        """Return the time of the first `tag` event before `end`, or None."""
        times = [row[0] for row in self.rows if row[2] == tag and row[0] < end]
        return min(times) if times else None

    def write(
        self, log: EventLog, *, boot: int, end: int, synced_since: int | None
    ) -> list[int]:
        """Append the events before `end` to `log` and return their positions in it.

        ``ts`` is the true time once the clock is synced, and seconds since this boot
        before that: the simulated firmware keeps time across soft resets only after NTP
        has set it, so until then each boot's clock counts from 0.
        """
        positions = []
        for time, _, tag, d0, d1 in sorted(row for row in self.rows if row[0] < end):
            up = time - self.start
            is_synced = synced_since is not None and time >= synced_since
            positions.append(len(log))
            log.append(tag, d0, d1, time if is_synced else up, up, time, boot)
        return positions

    def sync_time(self, end: int) -> int | None:
        """Return when NTP sets the clock in this boot: a second after the first EVT_WIFI_UP."""
        first_up = self.first_time(EVT_WIFI_UP, end)
        return None if first_up is None else first_up + 1
