"""The clock seam: production code asks a Clock for time and sleeps through it.

Tests and the local runtime inject a virtual clock (``local.clock.VirtualClock``) that the
Citrix simulator and the durable host share, so a 90-minute update runs in milliseconds.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["Clock", "SystemClock", "utc_from_timestamp"]


class Clock(Protocol):
    """Time source. ``time()`` is seconds since the epoch (UTC); ``sleep`` blocks or advances."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def utc_from_timestamp(seconds: float) -> datetime:
    """A tz-aware UTC datetime for an epoch timestamp."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
