"""Client-side request pacing shared by every sender that talks to one Citrix API host.

Citrix Cloud rate-limits per tenant and answers 429 with a ``retryDelay``; it documents no
numbers. Without pacing, every activity thread in a worker fires at once and each earns its own
429. A :class:`RequestPacer` spaces requests to at most ``rate`` per second across threads, and
when any thread is told to slow down (429), everyone holds off until the told time.
Pacing is per process: each scaled-out worker has its own pacer.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from shared.clock import Clock

__all__ = ["RequestPacer", "shared_pacer"]


class RequestPacer:
    """Spaces requests ``1 / rate`` seconds apart on ``clock``; thread-safe."""

    def __init__(self, rate_per_second: float, clock: Clock) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.interval = 1.0 / float(rate_per_second)
        self.clock = clock
        self._lock = threading.Lock()
        self._turn_lock = threading.Lock()
        self._next_free = 0.0
        self._not_before = 0.0

    def wait_turn(self) -> float:
        """Block until this caller may send; returns the seconds waited (on the clock).

        Waiters take turns one at a time (the request itself is sent outside the lock), so on a
        shared virtual clock, whose ``sleep`` moves time for everyone, turns stay in order and
        never bunch up at one instant."""
        with self._turn_lock:
            with self._lock:
                now = self.clock.time()
                slot = max(now, self._next_free, self._not_before)
            if slot > now:
                self.clock.sleep(slot - now)
            with self._lock:
                self._next_free = max(self.clock.time(), slot) + self.interval
            return max(0.0, slot - now)

    def hold(self, seconds: float) -> None:
        """Nobody sends for ``seconds`` from now (a 429 told us so)."""
        if seconds > 0:
            with self._lock:
                self._not_before = max(self._not_before, self.clock.time() + seconds)


_registry: dict[tuple[str, int], RequestPacer] = {}
_registry_lock = threading.Lock()


def shared_pacer(api_base: str, rate_per_second: float, clock: Clock) -> RequestPacer | None:
    """The process-wide pacer for ``api_base``'s host on ``clock`` (``None`` when rate <= 0)."""
    if rate_per_second <= 0:
        return None
    parts = urlsplit(api_base)
    key = (f"{parts.scheme}://{parts.netloc}".lower(), id(clock))
    with _registry_lock:
        pacer = _registry.get(key)
        if pacer is None or pacer.clock is not clock:
            pacer = RequestPacer(rate_per_second, clock)
            _registry[key] = pacer
        return pacer
