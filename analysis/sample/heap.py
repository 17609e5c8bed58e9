"""Free heap over one boot: a flat level with noise, less whatever leaks.

Camera boards count PSRAM in the free heap, so the level sits near 150-250 kB. A leak of
the firmware version runs from boot; a device's own leak starts at a fixed uptime. The
low-water mark also catches short allocations between heartbeats, so it lies a few kB
under the sampled free heap and never rises within a boot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HEAP_NOISE_SD_BYTES = 800
DIP_MEAN_BYTES = 2_500


@dataclass(frozen=True)
class HeapModel:
    """The heap level of one boot as a function of uptime (seconds)."""

    base: int
    version_leak_per_hour: float = 0.0
    device_leak_per_hour: float = 0.0
    device_leak_start_s: int = 0

    def level(self, uptime: np.ndarray) -> np.ndarray:
        """Return the noise-free free heap, bytes, at each uptime."""
        uptime = np.asarray(uptime, dtype=np.float64)
        own = np.maximum(uptime - self.device_leak_start_s, 0.0)
        lost = self.version_leak_per_hour * uptime + self.device_leak_per_hour * own
        return self.base - lost / 3_600.0

    def uptime_at(self, floor: int) -> float:
        """Return the uptime, seconds, at which the level reaches `floor` (inf if never)."""
        budget = self.base - floor
        if budget <= 0:
            return 0.0
        version_rate = self.version_leak_per_hour / 3_600.0
        device_rate = self.device_leak_per_hour / 3_600.0
        if version_rate <= 0 and device_rate <= 0:
            return math.inf
        before_device_leak = budget / version_rate if version_rate > 0 else math.inf
        if before_device_leak <= self.device_leak_start_s or device_rate <= 0:
            return before_device_leak
        left = budget - version_rate * self.device_leak_start_s
        return self.device_leak_start_s + left / (version_rate + device_rate)


def sample_heap(
    model: HeapModel, uptime: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``heap_free`` and ``heap_min_free`` at each heartbeat uptime of one boot.

    `uptime` must hold every heartbeat time of the boot in order, also those that were
    never stored, because the low-water mark covers them all.
    """
    noise = rng.normal(0.0, HEAP_NOISE_SD_BYTES, size=len(uptime))
    heap_free = np.maximum(np.round(model.level(uptime) + noise), 0).astype(np.int64)
    dips = np.round(rng.exponential(DIP_MEAN_BYTES, size=len(uptime))).astype(np.int64)
    heap_min_free = np.minimum.accumulate(np.maximum(heap_free - dips, 0)) if len(uptime) else (
        np.empty(0, dtype=np.int64)
    )
    return heap_free, heap_min_free
