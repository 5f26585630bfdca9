"""A virtual clock on which concurrent sleepers overlap, for benchmarks with many parallel waits.

``local.clock.VirtualClock.sleep`` advances the shared clock by the full delay at once, so four
activity threads that each back off 1 s after a 429 at the same moment move the clock by 4 s:
fine for single-threaded tests, but it would make a rate-limited fan-out look four times slower
than it is. Here ``sleep(s)`` registers a wake-up time ``now + s`` and blocks; when no thread has
moved the clock for a short real-time grace period (every sleeper has registered), the clock
jumps to the earliest wake-up. Threads that back off together therefore wake together, as they
would in real time. ``advance_to``/``advance`` (the durable host's timer jumps) behave as usual.
"""

from __future__ import annotations

import heapq
import logging
import threading
from itertools import count

__all__ = ["OverlappingVirtualClock"]

logger = logging.getLogger(__name__)


class OverlappingVirtualClock:
    """Virtual time where concurrent ``sleep`` calls overlap instead of adding up."""

    def __init__(self, start: float = 1_767_225_600.0, grace_seconds: float = 0.02) -> None:
        self._now = float(start)
        self._grace = grace_seconds
        self._changed = threading.Condition()
        self._wakes: list[tuple[float, int]] = []
        self._ids = count()
        self.sleeps = 0

    def time(self) -> float:
        with self._changed:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += max(0.0, float(seconds))
            self._changed.notify_all()

    def advance_to(self, timestamp: float) -> None:
        with self._changed:
            if timestamp > self._now:
                self._now = float(timestamp)
                self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._changed:
            self.sleeps += 1
            entry = (self._now + float(seconds), next(self._ids))
            heapq.heappush(self._wakes, entry)
            try:
                while self._now < entry[0]:
                    if not self._changed.wait(timeout=self._grace):
                        # Nobody moved the clock for a grace period: jump to the earliest wake.
                        earliest = self._wakes[0][0]
                        if earliest > self._now:
                            self._now = earliest
                            self._changed.notify_all()
            finally:
                self._wakes.remove(entry)
                heapq.heapify(self._wakes)
