"""A host killed mid-run resumes every instance from SQLite without redoing completed work."""

from __future__ import annotations

import pytest

from local.durable_host.protocol import EventType


def test_restart_resumes_from_history_without_rerunning_completed_activities(
    make_host, clock, sample, tmp_path
):
    """Drop a host mid-run (no stop), open a new one on the same file: activities run once each."""
    db = str(tmp_path / "hub.sqlite")
    first = make_host(store_path=db)
    instance_id = first.start_new("slow_chain", "restart-1")
    first.run_until_idle(max_virtual_seconds=150)
    assert sample.CALLS["add_one"] == 3
    assert first.get_status(instance_id)["runtimeStatus"] == "Running"
    del first  # the "process" dies here: no stop(), nothing flushed beyond committed steps

    second = make_host(store_path=db)
    second.run_until_idle()

    status = second.get_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"n": 5}
    assert sample.CALLS["add_one"] == 5
    scheduled = [
        e["EventId"]
        for e in second.history(instance_id)
        if e["EventType"] == EventType.TASK_SCHEDULED
    ]
    assert scheduled == [0, 2, 4, 6, 8]


def test_activity_whose_completion_was_not_recorded_runs_again(make_host, clock, sample, tmp_path):
    """An activity killed mid-run (completion never recorded) is re-run by the next host."""
    db = str(tmp_path / "hub.sqlite")
    sample.BEHAVIOUR["crash_add_one_at"] = 2
    first = make_host(store_path=db)
    instance_id = first.start_new("slow_chain", "restart-2")
    with pytest.raises(sample.SimulatedCrash):
        first.run_until_idle()
    assert sample.CALLS["add_one"] == 3
    del first

    second = make_host(store_path=db)
    second.run_until_idle()

    status = second.get_status(instance_id)
    assert status["output"] == {"n": 5}
    assert sample.CALLS["add_one"] == 6  # five logical calls, the crashed one ran twice
    completed = [
        e["TaskScheduledId"]
        for e in second.history(instance_id)
        if e["EventType"] == EventType.TASK_COMPLETED
    ]
    assert completed == [0, 2, 4, 6, 8]


def test_pending_events_and_timers_survive_a_restart(make_host, clock, sample, tmp_path):
    """Raised-but-undelivered events and pending timers are persisted with the instance."""
    db = str(tmp_path / "hub.sqlite")
    first = make_host(store_path=db)
    instance_id = first.start_new("approval", "restart-3")
    first.run_until_idle(max_virtual_seconds=60)
    first.raise_event(instance_id, "Approve", "bob")
    del first

    second = make_host(store_path=db)
    second.run_until_idle()

    assert second.get_status(instance_id)["output"]["by"] == "bob"
