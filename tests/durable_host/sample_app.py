# mypy: disable-error-code="untyped-decorator"
"""A small DFApp that exercises every durable feature the local host supports (test fixture).

Activity invocations are counted in ``CALLS`` (name -> count) so tests can prove that replays
and restarts do not re-run completed activities. ``BEHAVIOUR`` lets a test make an activity fail
or "crash the process" a given number of times.
"""

from __future__ import annotations

import collections
import threading
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

CALLS: collections.Counter[str] = collections.Counter()
BEHAVIOUR: dict[str, Any] = {}
_lock = threading.Lock()


class SimulatedCrash(BaseException):
    """Raised inside an activity to simulate the host process dying mid-activity."""


def _count(name: str) -> int:
    with _lock:
        CALLS[name] += 1
        return CALLS[name]


def reset() -> None:
    """Forget counts and behaviours (each test starts clean)."""
    with _lock:
        CALLS.clear()
        BEHAVIOUR.clear()


# ---------------------------------------------------------------- activities


@app.activity_trigger(input_name="payload")
def add_one(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``{"n": n + 1}``; may crash once when BEHAVIOUR['crash_add_one_at'] == n."""
    _count("add_one")
    if BEHAVIOUR.get("crash_add_one_at") == payload["n"]:
        BEHAVIOUR.pop("crash_add_one_at")
        raise SimulatedCrash("host process killed")
    return {"n": payload["n"] + 1}


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    _count("greet")
    return f"Hello {name}!"


@app.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    """Fail the first BEHAVIOUR['flaky_failures'] calls, then succeed."""
    attempt = _count("flaky")
    if attempt <= int(BEHAVIOUR.get("flaky_failures", 0)):
        raise RuntimeError(f"attempt {attempt} failed")
    return f"ok after {attempt}"


@app.activity_trigger(input_name="payload")
async def async_double(payload: int) -> int:
    _count("async_double")
    return payload * 2


# ---------------------------------------------------------------- orchestrators


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    """Three activities in sequence, custom status after each."""
    state = context.get_input() or {"n": 0}
    for step in range(3):
        state = yield context.call_activity("add_one", state)
        context.set_custom_status({"step": step + 1, "n": state["n"]})
    greeting = yield context.call_activity("greet", "durable")
    doubled = yield context.call_activity("async_double", state["n"])
    return {"n": state["n"], "greeting": greeting, "doubled": doubled}


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    try:
        result = yield context.call_activity_with_retry("flaky", options, {"x": 1})
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
    after = yield context.call_activity("greet", "after retry")
    return {"ok": True, "result": result, "after": after}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """Wait for 'Approve' or a one-hour timer, whichever comes first."""
    deadline = context.current_utc_datetime + timedelta(hours=1)
    timer = context.create_timer(deadline)
    event = context.wait_for_external_event("Approve")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return {
            "approved": True,
            "by": event.result,
            "at": context.current_utc_datetime.isoformat(),
        }
    return {"approved": False, "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def two_events(context: df.DurableOrchestrationContext):
    """Do an activity first, then wait for two events (either may have arrived early)."""
    yield context.call_activity("greet", "first")
    first = yield context.wait_for_external_event("First")
    second = yield context.wait_for_external_event("Second")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    tasks = [context.call_sub_orchestrator("child", {"n": i * 10}) for i in range(count)]
    results = yield context.task_all(tasks)
    return sorted(r["n"] for r in results)


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    value = context.get_input()
    first = yield context.call_activity("add_one", value)
    both = yield context.task_all(
        [context.call_activity("add_one", first), context.call_activity("greet", "child")]
    )
    if context.parent_instance_id is None:
        raise RuntimeError("child must run as a sub-orchestration")
    return both[0]


@app.orchestration_trigger(context_name="context")
def failing_child_parent(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("boom", None, "boom-child")
    except Exception as exc:
        return {"caught": str(exc)}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def retrying_parent(context: df.DurableOrchestrationContext):
    """Retry a failing sub-orchestration (fixed instance id) twice, then report the error."""
    options = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=2)
    try:
        yield context.call_sub_orchestrator_with_retry("boom", options, None, "retried-child")
    except Exception as exc:
        return {"caught": str(exc)}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "before failing")
    raise ValueError("the orchestrator broke on purpose")


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    """continue_as_new until n reaches 3, with a ten-minute timer per round."""
    state = context.get_input() or {"n": 0}
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    state = yield context.call_activity("add_one", state)
    context.set_custom_status({"round": state["n"]})
    if state["n"] < 3:
        context.continue_as_new(state)
        return None
    return {"final": state["n"], "instance": context.instance_id}


@app.orchestration_trigger(context_name="context")
def poller(context: df.DurableOrchestrationContext):
    """Poll every five minutes for 90 minutes (18 timers), then finish."""
    polls = 0
    end = context.current_utc_datetime + timedelta(minutes=90)
    while context.current_utc_datetime < end:
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
        polls += 1
        context.set_custom_status({"polls": polls})
    return {"polls": polls, "finished": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def long_sleep(context: df.DurableOrchestrationContext):
    """One ten-day timer: schema V3 splits it into 3-day sub-timers (§2.9)."""
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(days=10))
    return {"slept_seconds": (context.current_utc_datetime - start).total_seconds()}


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext):
    """add_one five times with a one-minute timer between (restart tests stop it midway)."""
    state = {"n": 0}
    for _ in range(5):
        state = yield context.call_activity("add_one", state)
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    return state


@app.orchestration_trigger(context_name="context")
def relay(context: df.DurableOrchestrationContext):
    """Round 0 runs an activity and continues as new; round 1 waits for 'Go'."""
    state = context.get_input() or {"round": 0}
    if state["round"] == 0:
        yield context.call_activity("greet", "round zero")
        context.continue_as_new({"round": 1})
        return None
    value = yield context.wait_for_external_event("Go")
    return {"round": state["round"], "go": value}


@app.orchestration_trigger(context_name="context")
def status_keeper(context: df.DurableOrchestrationContext):
    """Sets a custom status, then tries to clear it with falsy values (which the SDK drops)."""
    context.set_custom_status({"phase": "one"})
    yield context.call_activity("greet", "a")
    context.set_custom_status("")
    yield context.call_activity("greet", "b")
    context.set_custom_status(None)
    return "done"


# The non-determinism test flips this between replays.
FLIP = {"value": False}


@app.orchestration_trigger(context_name="context")
def nondeterministic(context: df.DurableOrchestrationContext):
    """Deliberately broken: the activity it schedules depends on a module global."""
    name = "greet" if not FLIP["value"] else "add_one"
    payload: Any = "first" if name == "greet" else {"n": 0}
    FLIP["value"] = True
    yield context.call_activity(name, payload)
    yield context.call_activity("greet", "second")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def waits_forever(context: df.DurableOrchestrationContext):
    context.set_custom_status({"phase": "waiting"})
    value = yield context.wait_for_external_event("Never")
    return value


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Starter function (not used by the durable host itself; proves indexing ignores it)."""
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)
