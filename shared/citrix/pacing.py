"""Client-side request pacing shared by every sender that talks to one Citrix API host.

Citrix Cloud rate-limits per tenant and answers 429 with a ``retryDelay``; it documents no
numbers. Without pacing, every activity thread in a worker fires at once and each earns its own
429. A :class:`RequestPacer` keeps requests to at most ``rate`` in any second across threads,
and when any thread is told to slow down (429), everyone holds off until the told time.
Pacing is per process: each scaled-out worker has its own pacer.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from urllib.parse import urlsplit

from shared.clock import Clock

__all__ = ["RequestPacer", "shared_pacer"]

_GUARD = 1.1


class RequestPacer:
    """At most ``rate`` requests per second across threads, as a sliding window on ``clock``.

    A sliding window (the way gateways count) lets an idle client send a short burst at once,
    so a single update is not slowed down, while no one-second window ever holds more than the
    rate. Rates below one per second become one request per ``1 / rate`` seconds."""

    def __init__(self, rate_per_second: float, clock: Clock) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.capacity = max(1, math.floor(rate_per_second))
        # 10% longer than the nominal window: the gateway counts arrivals, which trail our send
        # times by a network delay that varies, so a burst at the edge of a window must not
        # land inside the previous one.
        self.window = self.capacity / float(rate_per_second) * _GUARD

        self.clock = clock
        self._lock = threading.Lock()
        self._turn_lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._not_before = 0.0

    def wait_turn(self) -> float:
        """Block until this caller may send; returns the seconds waited (on the clock).

        Waiters take turns one at a time (the request itself is sent outside the lock), so on a
        shared virtual clock, whose ``sleep`` moves time for everyone, turns stay in order."""
        waited = 0.0
        with self._turn_lock:
            while True:
                with self._lock:
                    now = self.clock.time()
                    while self._sent and self._sent[0] <= now - self.window:
                        self._sent.popleft()
                    ready = max(
                        self._not_before,
                        self._sent[0] + self.window if len(self._sent) >= self.capacity else now,
                    )
                    if ready <= now:
                        self._sent.append(now)
                        return waited
                self.clock.sleep(ready - now)
                waited += ready - now

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
