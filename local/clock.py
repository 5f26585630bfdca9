"""Clocks for the local runtime: virtual (jumps) and real-with-speed-up.

One clock object is shared by the Citrix simulator, the Key Vault emulator, the Citrix client's
retry sleeps and the durable host's timers, so all agree on "now".
"""

from __future__ import annotations

import threading
import time

__all__ = ["RealClock", "VirtualClock"]


class VirtualClock:
    """Time that only moves when told to. ``sleep`` advances it instead of blocking."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (never backwards)."""
        with self._lock:
            self._now += max(0.0, float(seconds))

    def advance_to(self, timestamp: float) -> None:
        """Move forward to ``timestamp`` if it is in the future."""
        with self._lock:
            self._now = max(self._now, float(timestamp))


class RealClock:
    """Wall-clock time, optionally sped up: with ``speed=60`` one real second is one minute."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._origin_wall = time.time()
        self._origin_mono = time.monotonic()

    def time(self) -> float:
        return self._origin_wall + (time.monotonic() - self._origin_mono) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
