"""Polling policy: when to look at a catalog next. Pure functions, no I/O, no clock.

The orchestrator feeds in what it knows (time since submit, what the API last reported, any
``Retry-After``, how many polls it made) and gets the next delay back. With an ETA (or a progress
rate to derive one) it sleeps long while the end is far away and closes in as it nears, so a
90-minute update costs a dozen calls instead of the 180 a 30-second loop would make, yet the end
is seen within the minimum interval of when the API predicted it. Without any hint it backs off
geometrically from the minimum to the maximum interval.

A catalog that reports no usable state during an update (``Unknown``, ``NotFound``, or still the
old image) is given up on by :func:`decide_unknown`: after a number of checks in a row *and* a
stretch of time, so that a short glitch early in an update, when checks are close together, is
ridden out, and a catalog that stays unreadable is still decided within a bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_UNKNOWN_POLLS",
    "MIN_UNKNOWN_MINUTES",
    "PollPolicy",
    "decide_unknown",
    "estimate_remaining_seconds",
    "next_poll_delay",
]

# Consecutive checks without a usable state before an update is decided (never poll forever)...
MAX_UNKNOWN_POLLS = 3
# ...and for at least this long since the first of them.
MIN_UNKNOWN_MINUTES = 15


@dataclass(frozen=True)
class PollPolicy:
    """Bounds of the polling policy (seconds). Built from Settings by the starter and carried in
    the orchestration input, since orchestrators may not read settings themselves."""

    min_interval: float = 30.0
    max_interval: float = 600.0
    # Fraction of the predicted remaining time to sleep: 0.5 halves the gap each poll.
    approach: float = 0.5
    # Geometric growth without any hint.
    backoff: float = 1.5


def estimate_remaining_seconds(
    elapsed: float, progress: float | None, eta_minutes: float | None
) -> float | None:
    """Seconds until the update should end: the API's ETA if given, else extrapolated from
    progress (``elapsed * (100 - p) / p``), else ``None``."""
    if eta_minutes is not None and eta_minutes >= 0:
        return float(eta_minutes) * 60.0
    if progress is not None and 0 < progress < 100 and elapsed > 0:
        return elapsed * (100.0 - float(progress)) / float(progress)
    return None


def next_poll_delay(
    policy: PollPolicy,
    *,
    elapsed: float,
    attempt: int,
    progress: float | None = None,
    eta_minutes: float | None = None,
    retry_after: float | None = None,
    remaining_deadline: float | None = None,
    overdue_polls: int = 0,
) -> float:
    """Seconds to wait before the next status check.

    ``elapsed``: seconds since the update was submitted; ``attempt``: polls made so far;
    ``progress``/``eta_minutes``: what the API last reported (``None`` when absent);
    ``retry_after``: a server-imposed minimum wait; ``remaining_deadline``: seconds left until
    the deadline (the delay never overshoots it, so a deadline is noticed on time);
    ``overdue_polls``: polls already made since the predicted end passed.
    """
    low, high = policy.min_interval, max(policy.min_interval, policy.max_interval)
    remaining = estimate_remaining_seconds(elapsed, progress, eta_minutes)
    if remaining is not None and remaining > 0:
        delay = remaining * policy.approach
    elif remaining is not None:
        # The predicted end has passed (ETA 0): look closely, then ease off in case the
        # estimate was wrong by a lot.
        delay = low * (policy.backoff ** max(0, overdue_polls))
    else:
        delay = low * (policy.backoff ** max(0, attempt))
    delay = min(max(delay, low), high)
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    if remaining_deadline is not None:
        delay = min(delay, max(1.0, remaining_deadline))
    return float(delay)


def decide_unknown(
    consecutive_unknown: int,
    max_unknown: int,
    *,
    unknown_seconds: float = 0.0,
    min_unknown_seconds: float = 0.0,
) -> bool:
    """True when it is time to give up on a catalog that reports no usable state: at least
    ``max_unknown`` checks in a row (below 1 counts as 1) spanning at least
    ``min_unknown_seconds`` (``unknown_seconds`` since the first of them). Bounded: with polls
    at most the maximum interval apart, the answer comes within that time plus one interval."""
    return consecutive_unknown >= max(1, max_unknown) and unknown_seconds >= min_unknown_seconds
