"""The local durable host drives real azure-functions-durable orchestrators through replay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from local.durable_host import (
    DurableHost,
    InstanceGoneError,
    InstanceNotFoundError,
    InvalidArgumentError,
    NotTerminalError,
)
from local.durable_host.protocol import EventType

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _events(host: DurableHost, instance_id: str, event_type: int) -> list[dict[str, Any]]:
    return [e for e in host.history(instance_id) if e["EventType"] == event_type]


def test_activity_chain_completes_with_output_and_custom_status(host, sample):
    """A chain of sync and async activities completes; output and last custom status are kept."""
    instance_id = host.start_new("chain", "chain-1", {"n": 5})
    assert host.get_status(instance_id)["runtimeStatus"] == "Pending"

    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"n": 8, "greeting": "Hello durable!", "doubled": 16}
    assert status["customStatus"] == {"step": 3, "n": 8}
    assert sample.CALLS == {"add_one": 3, "greet": 1, "async_double": 1}


def test_history_follows_the_replay_protocol(host, sample):
    """History has ExecutionStarted with Version and sequential TaskScheduled/Completed ids."""
    instance_id = host.start_new("chain", "chain-2", {"n": 0})
    host.run_until_idle()

    history = host.history(instance_id)
    assert history[0]["EventType"] == EventType.ORCHESTRATOR_STARTED
    started = history[1]
    assert started["EventType"] == EventType.EXECUTION_STARTED
    assert started["Version"] == "" and started["Name"] == "chain"
    scheduled = _events(host, instance_id, EventType.TASK_SCHEDULED)
    assert [e["EventId"] for e in scheduled] == [0, 1, 2, 3, 4]
    assert [e["Name"] for e in scheduled] == ["add_one"] * 3 + ["greet", "async_double"]
    completed = _events(host, instance_id, EventType.TASK_COMPLETED)
    assert [e["TaskScheduledId"] for e in completed] == [0, 1, 2, 3, 4]
    assert history[-1]["EventType"] == EventType.EXECUTION_COMPLETED


def test_retry_follows_the_extension_protocol(host, sample):
    """Retries: TaskFailed -> TimerCreated/TimerFired -> new TaskScheduled, ids in SDK order."""
    sample.BEHAVIOUR["flaky_failures"] = 2
    instance_id = host.start_new("with_retry", "retry-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["output"] == {"ok": True, "result": "ok after 3", "after": "Hello after retry!"}
    kinds = [
        (e["EventType"], e.get("EventId"), e.get("TaskScheduledId"), e.get("TimerId"))
        for e in host.history(instance_id)
        if e["EventType"] in (4, 5, 6, 10, 11)
    ]
    assert kinds == [
        (EventType.TASK_SCHEDULED, 0, None, None),
        (EventType.TASK_FAILED, -1, 0, None),
        (EventType.TIMER_CREATED, 1, None, None),
        (EventType.TIMER_FIRED, -1, None, 1),
        (EventType.TASK_SCHEDULED, 2, None, None),
        (EventType.TASK_FAILED, -1, 2, None),
        (EventType.TIMER_CREATED, 3, None, None),
        (EventType.TIMER_FIRED, -1, None, 3),
        (EventType.TASK_SCHEDULED, 4, None, None),
        (EventType.TASK_COMPLETED, -1, 4, None),
        (EventType.TASK_SCHEDULED, 5, None, None),
        (EventType.TASK_COMPLETED, -1, 5, None),
    ]
    fired = _events(host, instance_id, EventType.TIMER_FIRED)
    assert [e["FireAt"] for e in fired] == [
        "2026-01-01T00:00:05.000000Z",
        "2026-01-01T00:00:10.000000Z",
    ]


def test_retry_exhausted_waits_one_extra_timer_then_fails(host, sample):
    """After the last attempt fails the host still fires one extra timer, then the task throws."""
    sample.BEHAVIOUR["flaky_failures"] = 10
    instance_id = host.start_new("with_retry", "retry-2")
    host.run_until_idle()

    output = host.get_status(instance_id)["output"]
    assert output["ok"] is False
    assert "Activity function 'flaky' failed: attempt 3 failed" in output["error"]
    assert sample.CALLS["flaky"] == 3
    assert len(_events(host, instance_id, EventType.TIMER_CREATED)) == 3
    assert len(_events(host, instance_id, EventType.TIMER_FIRED)) == 3


def test_task_any_external_event_wins_and_cancelled_timer_never_fires(host, clock, sample):
    """task_any([event, 1h timer]): the event wins, the timer is cancelled and never fires."""
    instance_id = host.start_new("approval", "approval-1")
    host.run_until_idle(max_virtual_seconds=60)
    assert host.get_status(instance_id)["runtimeStatus"] == "Running"

    host.raise_event(instance_id, "Approve", {"by": "alice"})
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["output"]["approved"] is True
    assert status["output"]["by"] == {"by": "alice"}
    assert _events(host, instance_id, EventType.TIMER_FIRED) == []
    assert clock.time() < START.timestamp() + 3600


def test_task_any_timer_wins_without_event(host, sample):
    """With no event the one-hour timer wins at exactly one hour of virtual time."""
    instance_id = host.start_new("approval", "approval-2")
    host.run_until_idle()

    output = host.get_status(instance_id)["output"]
    assert output == {"approved": False, "at": (START + timedelta(hours=1)).isoformat()}


def test_early_external_events_are_buffered(host, sample):
    """Events raised before the orchestrator waits (and out of order) are delivered by name."""
    instance_id = host.start_new("two_events", "events-1")
    host.raise_event(instance_id, "Second", {"b": 2})
    host.raise_event(instance_id, "First", {"a": 1})
    host.run_until_idle()

    assert host.get_status(instance_id)["output"] == [{"a": 1}, {"b": 2}]


def test_run_until_idle_returns_when_only_waiting_for_events(host, sample):
    """An instance waiting only for an external event leaves run_until_idle in Running state."""
    instance_id = host.start_new("waits_forever", "wait-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["runtimeStatus"] == "Running"
    assert status["customStatus"] == {"phase": "waiting"}


def test_sub_orchestration_fan_out_with_task_all(host, sample):
    """Three sub-orchestrations (each with its own task_all) complete and report to the parent."""
    instance_id = host.start_new("fan_out", "fan-1", 3)
    host.run_until_idle()

    assert host.get_status(instance_id)["output"] == [2, 12, 22]
    created = _events(host, instance_id, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED)
    assert [e["EventId"] for e in created] == [0, 1, 2]
    completed = _events(host, instance_id, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED)
    assert sorted(e["TaskScheduledId"] for e in completed) == [0, 1, 2]
    children = [s for s in host.list_instances() if s["name"] == "child"]
    assert len(children) == 3
    assert all(s["runtimeStatus"] == "Completed" for s in children)
    assert sample.CALLS == {"add_one": 6, "greet": 3}


def test_sub_orchestration_failure_reaches_the_parent(host, sample):
    """A failing sub-orchestration fails itself and throws into the parent with its message."""
    instance_id = host.start_new("failing_child_parent", "parent-1")
    host.run_until_idle()

    assert host.get_status("boom-child")["runtimeStatus"] == "Failed"
    caught = host.get_status(instance_id)["output"]["caught"]
    assert "Orchestrator function 'boom' failed: the orchestrator broke on purpose" in caught


def test_sub_orchestration_retry_reruns_the_child(host, sample):
    """call_sub_orchestrator_with_retry re-creates the failed child after the retry timer."""
    instance_id = host.start_new("retrying_parent", "retry-parent")
    host.run_until_idle()

    assert "the orchestrator broke on purpose" in host.get_status(instance_id)["output"]["caught"]
    assert sample.CALLS["greet"] == 2
    kinds = [
        (e["EventType"], e.get("EventId"), e.get("TaskScheduledId"), e.get("TimerId"))
        for e in host.history(instance_id)
        if e["EventType"] in (7, 9, 10, 11)
    ]
    assert kinds == [
        (EventType.SUB_ORCHESTRATION_INSTANCE_CREATED, 0, None, None),
        (EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, -1, 0, None),
        (EventType.TIMER_CREATED, 1, None, None),
        (EventType.TIMER_FIRED, -1, None, 1),
        (EventType.SUB_ORCHESTRATION_INSTANCE_CREATED, 2, None, None),
        (EventType.SUB_ORCHESTRATION_INSTANCE_FAILED, -1, 2, None),
        (EventType.TIMER_CREATED, 3, None, None),
        (EventType.TIMER_FIRED, -1, None, 3),
    ]


def test_continue_as_new_starts_fresh_executions(host, sample):
    """continue_as_new restarts with fresh history and sequence ids under the same instance id."""
    instance_id = host.start_new("counter", "counter-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["output"] == {"final": 3, "instance": instance_id}
    assert status["customStatus"] == {"round": 3}
    started = _events(host, instance_id, EventType.EXECUTION_STARTED)
    assert len(started) == 3
    assert len({e["OrchestrationInstance"]["ExecutionId"] for e in started}) == 3
    assert [e["EventId"] for e in _events(host, instance_id, EventType.TIMER_CREATED)] == [0, 0, 0]
    endings = [
        e["OrchestrationStatus"] for e in _events(host, instance_id, EventType.EXECUTION_COMPLETED)
    ]
    assert endings == ["ContinuedAsNew", "ContinuedAsNew", "Completed"]


def test_continue_as_new_carries_undelivered_events(host, sample):
    """An event raised while the instance is ContinuedAsNew reaches the new execution."""
    instance_id = host.start_new("relay", "relay-1")
    host.run_until_idle(max_steps=3)
    assert host.get_status(instance_id)["runtimeStatus"] == "ContinuedAsNew"

    host.raise_event(instance_id, "Go", "now")
    host.run_until_idle()

    assert host.get_status(instance_id)["output"] == {"round": 1, "go": "now"}


def test_custom_status_keeps_the_last_truthy_value(host, sample):
    """Falsy custom statuses are not emitted by the SDK, so the last truthy one stays."""
    instance_id = host.start_new("status_keeper", "status-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["output"] == "done"
    assert status["customStatus"] == {"phase": "one"}


def test_orchestrator_exception_fails_the_instance_with_its_message(host, sample):
    """An exception in the orchestrator ($OutOfProcData$) marks the instance Failed."""
    instance_id = host.start_new("boom", "boom-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'boom' failed: the orchestrator broke on purpose"
    )
    assert sample.CALLS["greet"] == 1


def test_terminate_then_purge(host, sample):
    """Terminate stops a running instance (event then refused); purge removes it entirely."""
    instance_id = host.start_new("waits_forever", "term-1")
    host.run_until_idle()
    with pytest.raises(NotTerminalError):
        host.purge(instance_id)

    host.terminate(instance_id, "no longer needed")

    status = host.get_status(instance_id)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "no longer needed"
    with pytest.raises(InstanceGoneError):
        host.raise_event(instance_id, "Never", 1)
    with pytest.raises(InstanceGoneError):
        host.terminate(instance_id, "again")
    assert host.purge(instance_id) == 1
    assert host.get_status(instance_id) is None
    assert host.history(instance_id) == []
    with pytest.raises(InstanceNotFoundError):
        host.purge(instance_id)


def test_non_deterministic_orchestrator_fails_with_the_first_difference(host, sample):
    """A replay that schedules a different activity fails the instance naming index and actions."""
    instance_id = host.start_new("nondeterministic", "nd-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    message = status["output"]
    assert message.startswith("Non-deterministic workflow detected: action #0")
    assert "CallActivity 'greet' with input \"first\"" in message
    assert "CallActivity 'add_one'" in message
    assert sample.CALLS["greet"] == 1
    assert sample.CALLS["add_one"] == 0


def test_ninety_minutes_of_timers_run_in_virtual_time(host, clock, sample):
    """Eighteen five-minute timers (90 virtual minutes) complete in one run_until_idle call."""
    instance_id = host.start_new("poller", "poll-1")
    host.run_until_idle()

    status = host.get_status(instance_id)
    assert status["output"] == {
        "polls": 18,
        "finished": (START + timedelta(minutes=90)).isoformat(),
    }
    assert clock.time() == START.timestamp() + 90 * 60


def test_long_timers_are_split_like_schema_v3(host, sample):
    """A ten-day timer is split: 3-day steps while more than 6 days remain, then the final one."""
    instance_id = host.start_new("long_sleep", "long-1")
    host.run_until_idle()

    assert host.get_status(instance_id)["output"] == {"slept_seconds": 10 * 86400.0}
    fire_times = [e["FireAt"] for e in _events(host, instance_id, EventType.TIMER_CREATED)]
    assert fire_times == [
        "2026-01-04T00:00:00.000000Z",
        "2026-01-07T00:00:00.000000Z",
        "2026-01-11T00:00:00.000000Z",
    ]


def test_max_virtual_seconds_stops_before_later_timers(host, clock, sample):
    """run_until_idle(max_virtual_seconds=...) stops the clock at the limit, mid-run."""
    instance_id = host.start_new("poller", "poll-2")
    host.run_until_idle(max_virtual_seconds=12 * 60)

    assert clock.time() == START.timestamp() + 12 * 60
    assert host.get_status(instance_id)["customStatus"] == {"polls": 2}


def test_start_is_refused_for_running_instance_under_non_running_states(make_host, sample):
    """NonRunningStates refuses to restart a running id but allows it once terminal."""
    host = make_host(overridable_existing_instance_states="NonRunningStates")
    host.start_new("waits_forever", "single")
    from local.durable_host import OrchestrationAlreadyExistsError

    with pytest.raises(OrchestrationAlreadyExistsError, match="status Pending already exists"):
        host.start_new("waits_forever", "single")
    host.run_until_idle()
    with pytest.raises(OrchestrationAlreadyExistsError, match="status Running"):
        host.start_new("chain", "single", {"n": 0})
    host.terminate("single", "done")

    host.start_new("chain", "single", {"n": 0})
    host.run_until_idle()
    assert host.get_status("single")["output"]["n"] == 3


def test_any_state_overwrites_a_running_instance(host, sample):
    """With AnyState (the extension default) a start replaces the running instance."""
    host.start_new("waits_forever", "dup")
    host.run_until_idle()
    host.start_new("chain", "dup", {"n": 1})
    host.run_until_idle()

    status = host.get_status("dup")
    assert status["name"] == "chain" and status["output"]["n"] == 4
    assert [e["Name"] for e in _events(host, "dup", EventType.EXECUTION_STARTED)] == ["chain"]


def test_overridable_states_are_read_from_host_json(tmp_path, sample, clock):
    """The host reads extensions.durableTask.overridableExistingInstanceStates from host.json."""
    strict = tmp_path / "strict.json"
    strict.write_text(
        '{"extensions": {"durableTask": {"overridableExistingInstanceStates": "NonRunningStates"}}}'
    )
    loose = tmp_path / "loose.json"
    loose.write_text('{"version": "2.0"}')

    strict_host = DurableHost(sample.app, clock=clock, host_json_path=strict)
    loose_host = DurableHost(sample.app, clock=clock, host_json_path=loose)
    try:
        assert strict_host.overridable_existing_instance_states == "NonRunningStates"
        assert loose_host.overridable_existing_instance_states == "AnyState"
    finally:
        strict_host.stop()
        loose_host.stop()


def test_bad_starts_are_rejected(host, sample):
    """Unknown orchestrators and invalid ids (/ ? # backslash, @, > 256 chars) are refused."""
    with pytest.raises(InvalidArgumentError, match="doesn't exist"):
        host.start_new("no_such_orchestrator", None, None)
    for bad in ("a/b", "a?b", "a#b", "a\\b", " ", "@entity@key", "x" * 257):
        with pytest.raises(InvalidArgumentError):
            host.start_new("chain", bad, None)
    assert host.list_instances() == []


def test_list_instances_filters_by_status_and_creation_time(host, clock, sample):
    """list_instances filters on runtime status and the created-time window."""
    host.start_new("chain", "early", {"n": 0})
    host.run_until_idle()
    clock.advance(3600)
    host.start_new("waits_forever", "late")
    host.run_until_idle()

    assert [s["instanceId"] for s in host.list_instances(["Completed"])] == ["early"]
    assert [s["instanceId"] for s in host.list_instances(["Running"])] == ["late"]
    later = START + timedelta(minutes=30)
    assert [s["instanceId"] for s in host.list_instances(created_from=later)] == ["late"]
    assert [s["instanceId"] for s in host.list_instances(created_to=later)] == ["early"]


def test_indexing_leaves_the_app_reusable(sample, clock):
    """Building hosts does not break a later plain app.get_functions() (azure-functions memo)."""
    first = DurableHost(sample.app, clock=clock)
    second = DurableHost(sample.app, clock=clock)
    try:
        names = {f.get_function_name() for f in sample.app.get_functions()}
    finally:
        sample.app.functions_bindings = None
        first.stop()
        second.stop()
    assert {"chain", "add_one", "http_start"} <= names
    assert "http_start" not in second.registry.orchestrators
    assert set(second.registry.activities) == {"add_one", "greet", "flaky", "async_double"}
