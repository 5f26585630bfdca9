"""Polling policy: pure function behaviour."""

from __future__ import annotations

import pytest

from shared.polling import PollPolicy, estimate_remaining_seconds, next_poll_delay

POLICY = PollPolicy(min_interval=30, max_interval=600)


def test_far_eta_sleeps_the_maximum():
    """With 90 minutes left the next look is the maximum interval away."""
    assert next_poll_delay(POLICY, elapsed=0, attempt=0, eta_minutes=90) == 600


def test_near_eta_closes_in():
    """With 4 minutes left the next look is half of that, and never below the minimum."""
    assert next_poll_delay(POLICY, elapsed=3000, attempt=5, eta_minutes=4) == 120
    assert next_poll_delay(POLICY, elapsed=3000, attempt=5, eta_minutes=0.5) == 30


def test_overdue_eases_off_geometrically_but_stays_bounded():
    """Past the predicted end the delay starts at the minimum and grows up to the maximum."""
    delays = [
        next_poll_delay(POLICY, elapsed=6000, attempt=9, eta_minutes=0, overdue_polls=n)
        for n in range(12)
    ]
    assert delays[0] == 30
    assert delays == sorted(delays)
    assert delays[-1] == 600


def test_progress_without_eta_is_extrapolated():
    """25% done after 10 minutes predicts 30 more minutes."""
    assert estimate_remaining_seconds(600, 25, None) == 1800
    assert next_poll_delay(POLICY, elapsed=600, attempt=1, progress=25) == 600


def test_no_hint_backs_off_from_the_minimum():
    """Without ETA or progress the delay grows 30, 45, 67.5 ... up to the maximum."""
    assert next_poll_delay(POLICY, elapsed=0, attempt=0) == 30
    assert next_poll_delay(POLICY, elapsed=0, attempt=1) == 45
    assert next_poll_delay(POLICY, elapsed=0, attempt=50) == 600


def test_retry_after_is_honoured():
    """A server's Retry-After longer than the computed delay wins."""
    assert next_poll_delay(POLICY, elapsed=0, attempt=0, retry_after=120) == 120


def test_deadline_is_never_overshot():
    """The delay is cut so the deadline is noticed on time."""
    assert (
        next_poll_delay(POLICY, elapsed=0, attempt=0, eta_minutes=90, remaining_deadline=45) == 45
    )


@pytest.mark.parametrize("eta", [None, 0, 1, 10, 100, 1000])
@pytest.mark.parametrize("attempt", [0, 3, 30])
def test_delay_always_within_bounds(eta, attempt):
    """Whatever the inputs, the delay stays within [min, max]."""
    delay = next_poll_delay(POLICY, elapsed=100, attempt=attempt, eta_minutes=eta)
    assert 30 <= delay <= 600
