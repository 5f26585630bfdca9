"""The local durable host: drives real azure-functions-durable 1.x orchestrators on one machine.

Each *episode* builds the history JSON the Durable extension would send (old events marked
played, then ``OrchestratorStarted`` and the new events), calls the orchestrator registered in
the app with the context JSON (schema V3), reads its actions, checks that the replayed prefix is
identical to what was scheduled before (type, name, input), hands out sequence numbers exactly
like the SDK does, and records the outcome (``TaskScheduled``, ``TimerCreated``,
``SubOrchestrationInstanceCreated``, ``ExecutionCompleted`` ...) in one SQLite transaction.
Activities run in a small thread pool; timers fire from a clock that is virtual (jumps to the
next timer when nothing else can run) or real (optionally sped up).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import threading
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from azure.functions._durable_functions import df_dumps

from local.clock import VirtualClock
from local.durable_host.errors import (
    InstanceGoneError,
    InstanceNotFoundError,
    InvalidArgumentError,
    NotTerminalError,
    OrchestrationAlreadyExistsError,
)
from local.durable_host.protocol import (
    EVENT_NAMES,
    ActionType,
    EventType,
    FlatAction,
    OrchestratorResult,
    RuntimeStatus,
    context_json,
    first_difference,
    format_timestamp,
    make_event,
    parse_orchestrator_result,
    parse_timestamp,
)
from local.durable_host.registry import Activity, ActivityFailure, FunctionRegistry
from local.durable_host.store import ActivityWork, InboxItem, InstanceRow, Store, TimerRow
from shared.clock import Clock

logger = logging.getLogger(__name__)

__all__ = ["DurableHost", "read_overridable_states"]

_INVALID_ID = re.compile(r"[/\\?#\x00-\x1f\x7f]")
_PROJECT_HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
_UNSUPPORTED = {
    ActionType.CALL_ENTITY: "durable entities",
    ActionType.SIGNAL_ENTITY: "durable entities",
    ActionType.CALL_HTTP: "durable HTTP (call_http)",
}
_ActivityOutcome = tuple[bool, str, str]  # (succeeded, result-or-reason, details)


def read_overridable_states(host_json_path: str | Path | None = None) -> str:
    """``extensions.durableTask.overridableExistingInstanceStates`` of host.json (or AnyState)."""
    path = Path(host_json_path) if host_json_path is not None else _PROJECT_HOST_JSON
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "AnyState"
    durable = document.get("extensions", {}).get("durableTask", {})
    value = durable.get("overridableExistingInstanceStates", "AnyState")
    return "NonRunningStates" if str(value).lower() == "nonrunningstates" else "AnyState"


def _fresh_state() -> dict[str, Any]:
    return {"next_seq": 0, "scheduled": [], "tasks": {}, "retries": {}}


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _status_time(seconds: float) -> str:
    return _utc(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class DurableHost:
    """Runs the orchestrations and activities of one Functions app against a SQLite task hub."""

    def __init__(
        self,
        app: Any,
        *,
        store_path: str = ":memory:",
        clock: Clock | None = None,
        task_hub: str = "catalogupdater",
        max_concurrent_activities: int = 4,
        overridable_existing_instance_states: str | None = None,
        host_json_path: str | Path | None = None,
    ) -> None:
        if max_concurrent_activities < 1:
            raise ValueError("max_concurrent_activities must be at least 1")
        self.app = app
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.task_hub = task_hub
        self.max_concurrent_activities = max_concurrent_activities
        if overridable_existing_instance_states is None:
            overridable_existing_instance_states = read_overridable_states(host_json_path)
        if overridable_existing_instance_states not in ("AnyState", "NonRunningStates"):
            raise ValueError("overridable_existing_instance_states: AnyState or NonRunningStates")
        self.overridable_existing_instance_states = overridable_existing_instance_states
        self.registry = FunctionRegistry.from_app(app)
        self._store = Store(store_path)
        self._changed = threading.Condition(self._store.lock)
        # bumped by every _notify, so the worker sees a wake-up that came while it was busy
        self._wakeups = 0
        self._server: Any = None
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._background_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._in_flight: dict[
            int, tuple[ActivityWork, concurrent.futures.Future[_ActivityOutcome]]
        ] = {}
        self.activity_invocations = 0

    # ================================================================ management API

    def start_new(self, name: str, instance_id: str | None = None, input: Any = None) -> str:
        """Schedule a new instance, like the Python SDK's ``client.start_new``; returns its id."""
        body = None if input is None else json.dumps(df_dumps(input))
        return self._start(name, instance_id, body, version=None)

    def _start(
        self, name: str, instance_id: str | None, input_text: str | None, *, version: str | None
    ) -> str:
        if name not in self.registry.orchestrators:
            raise InvalidArgumentError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function. Additional info: no such orchestrator is registered in the app."
            )
        if instance_id is None or instance_id == "":
            instance_id = uuid.uuid4().hex
        self._validate_instance_id(instance_id)
        with self._store.transaction():
            existing = self._store.get_instance(instance_id)
            if existing is not None:
                if (
                    self.overridable_existing_instance_states == "NonRunningStates"
                    and existing.runtime_status in RuntimeStatus.NON_RUNNING_STATES_REFUSED
                ):
                    raise OrchestrationAlreadyExistsError(
                        f"An Orchestration instance with the status {existing.runtime_status} "
                        "already exists."
                    )
                self._store.delete_instance(instance_id)
            self._create_instance(instance_id, name, input_text, version=version or "", parent=None)
        logger.info("started orchestration %s instance %s", name, instance_id)
        self._notify()
        return instance_id

    @staticmethod
    def _validate_instance_id(instance_id: str) -> None:
        if not instance_id.strip() or _INVALID_ID.search(instance_id) or len(instance_id) > 256:
            raise InvalidArgumentError(
                "Instance ID must not be empty, longer than 256 characters, or contain "
                "'/', '\\', '?', '#' or control characters."
            )
        if instance_id.startswith("@"):
            raise InvalidArgumentError("Orchestration instance ids must not start with @.")

    def _create_instance(
        self,
        instance_id: str,
        name: str,
        input_text: str | None,
        *,
        version: str,
        parent: tuple[str, str, int] | None,
    ) -> None:
        now = self.clock.time()
        self._store.put_instance(
            InstanceRow(
                instance_id=instance_id,
                name=name,
                version=version,
                execution_id=uuid.uuid4().hex,
                runtime_status=RuntimeStatus.PENDING,
                input=input_text,
                output=None,
                custom_status=None,
                created_time=now,
                last_updated_time=now,
                parent_instance_id=parent[0] if parent else None,
                parent_execution_id=parent[1] if parent else None,
                parent_task_id=parent[2] if parent else None,
                state=_fresh_state(),
            )
        )

    def get_status(self, instance_id: str, *, show_history: bool = False) -> dict[str, Any] | None:
        """The status document of the extension's HTTP API (``None`` when there is no instance)."""
        inst = self._store.get_instance(instance_id)
        if inst is None:
            return None
        return self._status_document(inst, show_history=show_history)

    def _status_document(
        self, inst: InstanceRow, *, show_history: bool = False, show_input: bool = True
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": inst.name,
            "instanceId": inst.instance_id,
            "runtimeStatus": inst.runtime_status,
            "input": _loads(inst.input) if show_input else None,
            "customStatus": _loads(inst.custom_status),
            "output": _loads(inst.output),
            "createdTime": _status_time(inst.created_time),
            "lastUpdatedTime": _status_time(inst.last_updated_time),
        }
        if show_history:
            document["historyEvents"] = [
                self._public_event(event)
                for event in self._store.history(inst.instance_id, inst.execution_id)
                if event["EventType"]
                not in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED)
            ]
        return document

    @staticmethod
    def _public_event(event: dict[str, Any]) -> dict[str, Any]:
        shown = dict(event)
        shown["EventType"] = EVENT_NAMES.get(int(event["EventType"]), str(event["EventType"]))
        shown.pop("IsPlayed", None)
        if "Name" in shown and shown["EventType"] != "EventRaised":
            shown["FunctionName"] = shown.pop("Name")
        return shown

    def list_instances(
        self,
        runtime_status: list[str] | None = None,
        created_from: datetime | float | str | None = None,
        created_to: datetime | float | str | None = None,
        *,
        instance_id_prefix: str | None = None,
        show_input: bool = True,
    ) -> list[dict[str, Any]]:
        """Status documents of all instances matching the filters (the ``GET instances/`` query)."""
        wanted = {s.lower() for s in runtime_status} if runtime_status else None
        lower = _epoch(created_from)
        upper = _epoch(created_to)
        documents = []
        for inst in self._store.list_instances():
            if wanted is not None and inst.runtime_status.lower() not in wanted:
                continue
            if lower is not None and inst.created_time < lower:
                continue
            if upper is not None and inst.created_time > upper:
                continue
            if instance_id_prefix and not inst.instance_id.startswith(instance_id_prefix):
                continue
            documents.append(self._status_document(inst, show_input=show_input))
        return documents

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Deliver an external event (buffered until the orchestrator waits for it)."""
        self._raise_event_text(instance_id, name, json.dumps(data))

    def _raise_event_text(self, instance_id: str, name: str, input_text: str) -> None:
        with self._store.transaction():
            inst = self._require(instance_id)
            if inst.runtime_status in RuntimeStatus.TERMINAL:
                raise InstanceGoneError(
                    f"Instance with ID {instance_id} is gone: either completed or failed"
                )
            event = make_event(EventType.EVENT_RAISED, self._now(), Name=name, Input=input_text)
            # Unbound to an execution: an event that arrives around a continue_as_new is carried
            # over to the new execution, as queued messages are with the Azure Storage provider.
            self._store.add_inbox(instance_id, None, event)
        logger.info("raised event %s for instance %s", name, instance_id)
        self._notify()

    def terminate(self, instance_id: str, reason: str = "") -> None:
        """Terminate a non-terminal instance (its pending work is dropped)."""
        with self._store.transaction():
            inst = self._require(instance_id)
            if inst.runtime_status in RuntimeStatus.TERMINAL:
                raise InstanceGoneError(f"Instance with ID {instance_id} is already terminal")
            now = self._now()
            events = [
                make_event(EventType.ORCHESTRATOR_STARTED, now),
                make_event(EventType.EXECUTION_TERMINATED, now, Input=json.dumps(reason)),
                make_event(EventType.ORCHESTRATOR_COMPLETED, now),
                make_event(
                    EventType.EXECUTION_COMPLETED,
                    now,
                    OrchestrationStatus=RuntimeStatus.TERMINATED,
                    Result=json.dumps(reason),
                ),
            ]
            self._store.append_history(instance_id, inst.execution_id, events)
            inst.runtime_status = RuntimeStatus.TERMINATED
            inst.output = json.dumps(reason)
            self._finish(
                inst, failed_reason=f"Orchestration '{inst.name}' was terminated: {reason}"
            )
        logger.info("terminated instance %s", instance_id)
        self._notify()

    def purge(self, instance_id: str) -> int:
        """Delete a terminal instance with its history; returns the number of instances deleted."""
        with self._store.transaction():
            inst = self._require(instance_id)
            if inst.runtime_status not in RuntimeStatus.TERMINAL:
                raise NotTerminalError(
                    "Only orchestrations in a terminal state can be purged, but the orchestration "
                    f"with instance ID {instance_id} has status {inst.runtime_status}"
                )
            deleted = self._store.delete_instance(instance_id)
        logger.info("purged instance %s", instance_id)
        return deleted

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """Every history event of every execution of the instance, oldest first."""
        return self._store.history(instance_id)

    def _require(self, instance_id: str) -> InstanceRow:
        inst = self._store.get_instance(instance_id)
        if inst is None:
            raise InstanceNotFoundError(f"No instance with ID {instance_id} found.")
        return inst

    # ================================================================ HTTP

    def start_server(self) -> str:
        """Start the loopback HTTP server (idempotent); returns the ``rpcBaseUrl``."""
        from local.durable_host.server import DurableHttpServer

        if self._server is None:
            self._server = DurableHttpServer(self)
            self._server.start()
        return str(self._server.rpc_base_url)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server (starting it if needed)."""
        self.start_server()
        return str(self._server.origin)

    def client_binding_json(self, function_origin: str | None = None) -> str:
        """The durable client binding document ``DurableOrchestrationClient(...)`` is built from.

        ``function_origin`` is the origin of the functions host whose requests will carry the
        check-status URLs (the SDK rewrites their origin to the request's); it defaults to this
        server, which serves the ``/runtime/webhooks/durabletask/...`` routes itself.
        """
        rpc_base_url = self.start_server()
        origin = (function_origin or self.origin).rstrip("/")
        base = f"{origin}/runtime/webhooks/durabletask"
        query = f"taskHub={self.task_hub}&connection=Storage"
        instance = f"{base}/instances/INSTANCEID"
        management = {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        }
        creation = {
            "createNewInstancePostUri": (
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?{query}"
            ),
            "createAndWaitOnNewInstancePostUri": (
                f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                f"?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{query}"
            ),
        }
        return json.dumps(
            {
                "taskHubName": self.task_hub,
                "creationUrls": creation,
                "managementUrls": management,
                "baseUrl": base,
                "requiredQueryStringParameters": query,
                "rpcBaseUrl": rpc_base_url,
                "httpBaseUrl": "",
                "maxGrpcMessageSizeInBytes": 0,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )

    def management_payload(self, instance_id: str, origin: str | None = None) -> dict[str, str]:
        """The ``create_check_status_response`` URL set for one instance."""
        urls = json.loads(self.client_binding_json(origin))["managementUrls"]
        return {key: str(value).replace("INSTANCEID", instance_id) for key, value in urls.items()}

    def stop(self) -> None:
        """Stop the HTTP server and the background worker (idempotent)."""
        self._stopping.set()
        self._notify()
        if self._worker is not None:
            self._worker.join(timeout=30)
            self._worker = None
        if self._background_pool is not None:
            self._background_pool.shutdown(wait=True)
            self._background_pool = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def close(self) -> None:
        """``stop()`` and close the SQLite connection (the host is unusable afterwards)."""
        self.stop()
        self._store.close()

    # ================================================================ driving

    def run_until_idle(
        self, *, max_virtual_seconds: float | None = None, max_steps: int = 100_000
    ) -> None:
        """VIRTUAL mode: run everything runnable, jumping the clock to the next timer when idle.

        Returns when no instance can make progress without an external event (or when
        ``max_virtual_seconds`` of clock time or ``max_steps`` episodes/activities/timers have
        been used). Activities run concurrently; the clock never jumps while one is running.
        An activity that raises a ``BaseException`` that is not an ``Exception`` (a simulated
        process crash) propagates out, with its completion not recorded.
        """
        if self._worker is not None:
            raise RuntimeError("run_until_idle cannot be used while run_in_background is active")
        deadline = None if max_virtual_seconds is None else self.clock.time() + max_virtual_seconds
        in_flight: dict[int, tuple[ActivityWork, concurrent.futures.Future[_ActivityOutcome]]] = {}
        steps = 0
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_concurrent_activities, thread_name_prefix="durable-activity"
        ) as pool:
            try:
                while steps < max_steps:
                    done = self._pump(pool, in_flight, budget=max_steps - steps)
                    steps += done
                    if done:
                        continue
                    if in_flight:
                        concurrent.futures.wait(
                            [future for _, future in in_flight.values()],
                            return_when=concurrent.futures.FIRST_COMPLETED,
                        )
                        continue
                    upcoming = self._store.next_timer()
                    if upcoming is None:
                        break
                    if deadline is not None and upcoming.fire_ts > deadline:
                        self._advance_clock_to(deadline)
                        break
                    self._advance_clock_to(upcoming.fire_ts)
            finally:
                # Record what already ran; never leave completions on the floor in normal exits.
                for work, future in list(in_flight.values()):
                    try:
                        outcome = future.result()
                    except Exception:  # pragma: no cover - _execute_activity catches these
                        logger.exception("activity %s crashed", work.name)
                        continue
                    except BaseException:
                        logger.warning("activity %s died; it will run again", work.name)
                        continue
                    self._record_activity(work, outcome)
        logger.debug("run_until_idle finished after %d steps", steps)

    def _advance_clock_to(self, timestamp: float) -> None:
        advance_to = getattr(self.clock, "advance_to", None)
        if callable(advance_to):
            advance_to(timestamp)
        else:
            self.clock.sleep(max(0.0, timestamp - self.clock.time()))

    def run_in_background(self) -> None:
        """REAL-clock mode: a worker thread processes work as it arrives and fires due timers."""
        if self._worker is not None:
            return
        self._stopping.clear()
        self._background_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_concurrent_activities, thread_name_prefix="durable-activity"
        )
        self._worker = threading.Thread(
            target=self._background_loop, name="durable-host", daemon=True
        )
        self._worker.start()

    def _background_loop(self) -> None:
        pool = self._background_pool
        assert pool is not None
        while not self._stopping.is_set():
            with self._changed:
                seen = self._wakeups
            try:
                done = self._pump(pool, self._in_flight, budget=1_000, notify_on_done=True)
            except Exception:
                logger.exception("durable host worker step failed")
                done = 0
            if done:
                continue
            with self._changed:
                if self._stopping.is_set():
                    break
                if self._wakeups == seen:  # nothing new since this pass began
                    self._changed.wait(timeout=self._idle_wait())
        for work, future in list(self._in_flight.values()):
            try:
                self._record_activity(work, future.result(timeout=30))
            except BaseException:  # noqa: S112 - stopping: leave it for the next host (at-least-once)
                continue
        self._in_flight.clear()

    def _idle_wait(self) -> float:
        upcoming = self._store.next_timer()
        if upcoming is None:
            return 0.5
        speed = float(getattr(self.clock, "speed", 1.0)) or 1.0
        return min(0.5, max(0.002, (upcoming.fire_ts - self.clock.time()) / speed))

    def wait_for(self, instance_id: str, timeout_seconds: float) -> dict[str, Any]:
        """Block until the instance is terminal (real seconds); returns its status document.

        Without a background worker this first runs the host in virtual mode.
        """
        if self._worker is None:
            self.run_until_idle()
        give_up = time.monotonic() + timeout_seconds
        with self._changed:
            while True:
                status = self.get_status(instance_id)
                if status is not None and status["runtimeStatus"] in RuntimeStatus.TERMINAL:
                    return status
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    shown = status["runtimeStatus"] if status else "missing"
                    raise TimeoutError(
                        f"instance {instance_id} not finished after {timeout_seconds}s ({shown})"
                    )
                self._changed.wait(timeout=min(remaining, 0.2))

    def _notify(self) -> None:
        with self._changed:
            self._wakeups += 1
            self._changed.notify_all()

    # ================================================================ one pass over runnable work

    def _pump(
        self,
        pool: concurrent.futures.ThreadPoolExecutor,
        in_flight: dict[int, tuple[ActivityWork, concurrent.futures.Future[_ActivityOutcome]]],
        *,
        budget: int,
        notify_on_done: bool = False,
    ) -> int:
        steps = 0
        for instance_id in self._store.runnable_instance_ids():
            if steps >= budget:
                return steps
            if self._run_episode(instance_id):
                steps += 1
        for work_id, (work, future) in list(in_flight.items()):
            if future.done():
                del in_flight[work_id]
                self._record_activity(work, future.result())
                steps += 1
        if steps >= budget:
            return steps
        for work in self._store.pending_activities():
            if work.id not in in_flight:
                future = pool.submit(self._execute_activity, work)
                if notify_on_done:
                    future.add_done_callback(lambda _f: self._notify())
                in_flight[work.id] = (work, future)
        for timer in self._store.due_timers(self.clock.time() + 1e-6):
            if steps >= budget:
                break
            if self._fire_timer(timer):
                steps += 1
        return steps

    # ================================================================ activities and timers

    def _execute_activity(self, work: ActivityWork) -> _ActivityOutcome:
        activity: Activity | None = self.registry.activities.get(work.name)
        with self._changed:
            self.activity_invocations += 1
        logger.debug("running activity %s for instance %s", work.name, work.instance_id)
        try:
            if activity is None:
                raise ActivityFailure(
                    f"Activity function '{work.name}' failed: The function '{work.name}' doesn't "
                    "exist, is disabled, or is not an activity function.",
                    json.dumps({"Message": "function not found"}),
                )
            return (True, activity.invoke(work.input), "")
        except ActivityFailure as failure:
            logger.info("activity %s failed for instance %s", work.name, work.instance_id)
            return (False, failure.reason, failure.details)

    def _record_activity(self, work: ActivityWork, outcome: _ActivityOutcome) -> None:
        succeeded, value, details = outcome
        with self._store.transaction():
            if not self._store.take_activity(work.id):
                return
            inst = self._store.get_instance(work.instance_id)
            if inst is None or inst.execution_id != work.execution_id:
                return
            if inst.runtime_status in RuntimeStatus.TERMINAL:
                return
            now = self._now()
            if succeeded:
                event = make_event(
                    EventType.TASK_COMPLETED, now, TaskScheduledId=work.task_id, Result=value
                )
            else:
                event = make_event(
                    EventType.TASK_FAILED,
                    now,
                    TaskScheduledId=work.task_id,
                    Reason=value,
                    Details=details,
                )
            self._store.add_inbox(work.instance_id, work.execution_id, event)
        self._notify()

    def _fire_timer(self, timer: TimerRow) -> bool:
        with self._store.transaction():
            if not self._store.take_timer(timer.id):
                return False
            inst = self._store.get_instance(timer.instance_id)
            if inst is None or inst.execution_id != timer.execution_id:
                return False
            if inst.runtime_status in RuntimeStatus.TERMINAL:
                return False
            event = make_event(
                EventType.TIMER_FIRED, self._now(), TimerId=timer.timer_id, FireAt=timer.fire_at
            )
            self._store.add_inbox(timer.instance_id, timer.execution_id, event)
        self._notify()
        return True

    def _now(self) -> datetime:
        return _utc(self.clock.time())

    # ================================================================ orchestrator episodes

    def _run_episode(self, instance_id: str) -> bool:
        """Deliver pending events to one instance and record its decisions; true if it ran."""
        with self._store.transaction():
            inst = self._store.get_instance(instance_id)
            if inst is None:
                return False
            inbox = self._store.inbox(instance_id)
            if inst.runtime_status in RuntimeStatus.TERMINAL:
                self._store.delete_inbox([item.id for item in inbox])
                return False
            stale = [i.id for i in inbox if i.execution_id not in (None, inst.execution_id)]
            live = [i for i in inbox if i.execution_id in (None, inst.execution_id)]
            self._store.delete_inbox(stale)
            old_events = self._store.history(instance_id, inst.execution_id)
            batch, retry_event = self._select_batch(inst.state, live)
            starting = not old_events
            if not starting and not batch:
                return False
            self._episode(inst, old_events, batch, retry_event)
        self._notify()
        return True

    def _select_batch(
        self, state: dict[str, Any], live: list[InboxItem]
    ) -> tuple[list[InboxItem], dict[str, Any] | None]:
        """Events for this episode; a retry event that takes a sequence number must come first.

        The SDK hands out a sequence number for a retry timer while it *processes* the failure
        (and for a rescheduled attempt while it processes that timer), interleaved with the
        numbers that resumed code takes. Putting such an event first, alone among its kind,
        makes the order host-predictable: retry number first, then the new actions in order.
        """
        batch: list[InboxItem] = []
        retry_event = None
        for item in live:
            consumes = self._retry_consumes(state, item.event)
            if consumes and batch:
                break
            batch.append(item)
            if consumes:
                retry_event = item.event
        return batch, retry_event

    @staticmethod
    def _retry_consumes(state: dict[str, Any], event: dict[str, Any]) -> bool:
        kind = event["EventType"]
        if kind in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
            task = state["tasks"].get(str(event.get("TaskScheduledId")))
            return bool(task and task.get("retry") is not None)
        if kind == EventType.TIMER_FIRED:
            task = state["tasks"].get(str(event.get("TimerId")))
            if task and task["kind"] == "retry_timer":
                retry = state["retries"][str(task["retry"])]
                return bool(retry["attempts"] < retry["max"])
        return False

    def _episode(
        self,
        inst: InstanceRow,
        old_events: list[dict[str, Any]],
        batch: list[InboxItem],
        retry_event: dict[str, Any] | None,
    ) -> None:
        now = self._now()
        for item in batch:
            if item.event["EventType"] == EventType.TIMER_FIRED:
                # The replayed clock must reach the timer's fireAt (long timers depend on it).
                now = max(now, parse_timestamp(item.event["FireAt"]))
        new_events = [make_event(EventType.ORCHESTRATOR_STARTED, now)]
        if not old_events:
            new_events.append(
                make_event(
                    EventType.EXECUTION_STARTED,
                    now,
                    Name=inst.name,
                    Version=inst.version,
                    Input=inst.input,
                    OrchestrationInstance={
                        "InstanceId": inst.instance_id,
                        "ExecutionId": inst.execution_id,
                    },
                    ParentInstance=(
                        {
                            "OrchestrationInstance": {
                                "InstanceId": inst.parent_instance_id,
                                "ExecutionId": inst.parent_execution_id,
                            },
                            "TaskScheduleId": inst.parent_task_id,
                        }
                        if inst.parent_instance_id
                        else None
                    ),
                    Tags=None,
                )
            )
            inst.runtime_status = RuntimeStatus.RUNNING
        new_events.extend(item.event for item in batch)
        played = [dict(event, IsPlayed=True) for event in old_events]
        result = self._invoke(inst, played + new_events)

        episode = _Episode(self, inst, now)
        if retry_event is not None:
            episode.apply_retry(retry_event)
        scheduled = [FlatAction.from_record(r) for r in inst.state["scheduled"]]
        difference = first_difference(scheduled, result.actions)
        if difference is not None:
            episode.fail(difference)
        elif result.error is not None and not result.is_done:
            if result.custom_status is not None:
                inst.custom_status = json.dumps(result.custom_status)
            episode.fail(f"Orchestrator function '{inst.name}' failed: {result.error}")
        else:
            episode.apply(result, len(scheduled))
        closing = [make_event(EventType.ORCHESTRATOR_COMPLETED, now), *episode.ending]
        self._store.append_history(
            inst.instance_id, inst.execution_id, new_events + episode.outcome + closing
        )
        self._store.delete_inbox([item.id for item in batch])
        episode.commit()

    def _invoke(self, inst: InstanceRow, history: list[dict[str, Any]]) -> OrchestratorResult:
        entry_point = self.registry.orchestrators.get(inst.name)
        if entry_point is None:
            return OrchestratorResult(
                is_done=False,
                actions=[],
                error=f"The function '{inst.name}' doesn't exist, is disabled, or is not an "
                "orchestrator function.",
            )
        body = context_json(
            history=history,
            input_value=_loads(inst.input),
            instance_id=inst.instance_id,
            parent_instance_id=inst.parent_instance_id,
        )
        returned: str | None = None
        raised: BaseException | None = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                returned = entry_point(body)
            except Exception as exc:
                raised = exc
        for warning in caught:
            logger.debug("orchestrator %s warned: %s", inst.name, warning.message)
        try:
            return parse_orchestrator_result(returned, raised)
        except (ValueError, KeyError, TypeError) as exc:
            return OrchestratorResult(
                is_done=False, actions=[], error=f"unreadable orchestrator output: {exc}"
            )

    def _finish(self, inst: InstanceRow, *, failed_reason: str | None) -> None:
        """Terminal bookkeeping: drop pending work, tell the parent (if any)."""
        self._store.clear_pending_work(inst.instance_id, include_inbox=True)
        inst.last_updated_time = self.clock.time()
        self._store.put_instance(inst)
        if not inst.parent_instance_id or inst.parent_task_id is None:
            return
        parent = self._store.get_instance(inst.parent_instance_id)
        if parent is None or parent.execution_id != inst.parent_execution_id:
            return
        if parent.runtime_status in RuntimeStatus.TERMINAL:
            return
        now = self._now()
        if inst.runtime_status == RuntimeStatus.COMPLETED:
            event = make_event(
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                now,
                TaskScheduledId=inst.parent_task_id,
                Result=inst.output,
            )
        else:
            reason = failed_reason or f"Orchestrator function '{inst.name}' failed"
            event = make_event(
                EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                now,
                TaskScheduledId=inst.parent_task_id,
                Reason=reason,
                Details=json.dumps({"InstanceId": inst.instance_id}),
            )
        self._store.add_inbox(parent.instance_id, parent.execution_id, event)


class _Episode:
    """Outcome of one orchestrator invocation, applied to the instance inside the transaction."""

    def __init__(self, host: DurableHost, inst: InstanceRow, now: datetime) -> None:
        self.host = host
        self.store = host._store
        self.inst = inst
        self.state = inst.state
        self.now = now
        self.outcome: list[dict[str, Any]] = []
        self.ending: list[dict[str, Any]] = []
        self.terminal_reason: str | None = None
        self.continue_input: str | None = None
        self.continued = False

    def next_id(self) -> int:
        seq = int(self.state["next_seq"])
        self.state["next_seq"] = seq + 1
        return seq

    # ---- retries (§2.8) ---------------------------------------------------------------------

    def apply_retry(self, event: dict[str, Any]) -> None:
        tasks = self.state["tasks"]
        if event["EventType"] == EventType.TIMER_FIRED:
            root = str(tasks[str(event["TimerId"])]["retry"])
            retry = self.state["retries"][root]
            retry["attempts"] += 1
            task_id = self.next_id()
            tasks[str(task_id)] = {"kind": retry["kind"], "retry": int(root)}
            if retry["kind"] == "activity":
                self.schedule_activity(task_id, retry["name"], retry["input"])
            else:
                self.schedule_sub_orchestration(
                    task_id, retry["name"], retry["input"], retry["instanceId"], retry["version"]
                )
            return
        root = str(tasks[str(event["TaskScheduledId"])]["retry"])
        retry = self.state["retries"][root]
        timer_id = self.next_id()
        tasks[str(timer_id)] = {"kind": "retry_timer", "retry": int(root)}
        self.create_timer(timer_id, self.now + timedelta(milliseconds=retry["interval_ms"]))

    # ---- new actions ------------------------------------------------------------------------

    def apply(self, result: OrchestratorResult, known: int) -> None:
        records = self.state["scheduled"]
        for index, record in enumerate(records):
            action = result.actions[index]
            if (
                record["type"] == ActionType.CREATE_TIMER
                and action.canceled
                and not record["canceled"]
            ):
                record["canceled"] = True
                self.store.cancel_timer(self.inst.instance_id, self.inst.execution_id, record["id"])
        for action in result.actions[known:]:
            unsupported = _UNSUPPORTED.get(action.action_type)
            if unsupported is not None:
                self.fail(f"The local durable host does not support {unsupported}.")
                return
            record = action.to_record()
            record["id"] = None
            if action.action_type in (
                ActionType.CALL_ACTIVITY,
                ActionType.CALL_ACTIVITY_WITH_RETRY,
            ):
                task_id = record["id"] = self.next_id()
                retry = self._register_retry(task_id, action, "activity")
                self.state["tasks"][str(task_id)] = {"kind": "activity", "retry": retry}
                self.schedule_activity(task_id, str(action.name), action.input)
            elif action.action_type in (
                ActionType.CALL_SUB_ORCHESTRATOR,
                ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
            ):
                task_id = record["id"] = self.next_id()
                retry = self._register_retry(task_id, action, "suborch")
                self.state["tasks"][str(task_id)] = {"kind": "suborch", "retry": retry}
                self.schedule_sub_orchestration(
                    task_id, str(action.name), action.input, action.instance_id, action.version
                )
            elif action.action_type == ActionType.CREATE_TIMER:
                task_id = record["id"] = self.next_id()
                self.state["tasks"][str(task_id)] = {"kind": "timer", "retry": None}
                self.create_timer(
                    task_id, parse_timestamp(str(action.fire_at)), canceled=action.canceled
                )
            elif action.action_type == ActionType.CONTINUE_AS_NEW:
                record["id"] = self.next_id()
                self.continued = True
                self.continue_input = action.input
            records.append(record)
        if result.custom_status is not None:
            self.inst.custom_status = json.dumps(result.custom_status)
        if self.continued:
            self.continue_as_new()
        elif result.is_done:
            self.complete(result.output)

    def _register_retry(self, task_id: int, action: FlatAction, kind: str) -> int | None:
        if action.retry_options is None:
            return None
        options = action.retry_options
        self.state["retries"][str(task_id)] = {
            "kind": kind,
            "name": action.name,
            "input": action.input,
            "instanceId": action.instance_id,
            "version": action.version,
            "max": int(options.get("maxNumberOfAttempts", 1)),
            "interval_ms": int(options.get("firstRetryIntervalInMilliseconds", 1)),
            "attempts": 1,
        }
        return task_id

    def schedule_activity(self, task_id: int, name: str, input_text: str | None) -> None:
        self.outcome.append(
            make_event(
                EventType.TASK_SCHEDULED, self.now, event_id=task_id, Name=name, Input=input_text
            )
        )
        self.store.add_activity(
            self.inst.instance_id, self.inst.execution_id, task_id, name, input_text
        )

    def schedule_sub_orchestration(
        self,
        task_id: int,
        name: str,
        input_text: str | None,
        instance_id: str | None,
        version: str | None,
    ) -> None:
        child_id = (
            instance_id
            or uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"durable://{self.inst.instance_id}/{self.inst.execution_id}/{task_id}",
            ).hex
        )
        self.outcome.append(
            make_event(
                EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
                self.now,
                event_id=task_id,
                Name=name,
                InstanceId=child_id,
                Input=input_text,
                Version=version,
            )
        )
        existing = self.store.get_instance(child_id)
        problem = None
        if name not in self.host.registry.orchestrators:
            problem = (
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function."
            )
        elif existing is not None and existing.runtime_status not in RuntimeStatus.TERMINAL:
            problem = f"An orchestration with instance ID '{child_id}' is already running."
        if problem is not None:
            self.store.add_inbox(
                self.inst.instance_id,
                self.inst.execution_id,
                make_event(
                    EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                    self.now,
                    TaskScheduledId=task_id,
                    Reason=problem,
                    Details=json.dumps({"Message": problem}),
                ),
            )
            return
        if existing is not None:
            self.store.delete_instance(child_id)
        self.host._create_instance(
            child_id,
            name,
            None if input_text is None else json.dumps(input_text),
            version=version or "",
            parent=(self.inst.instance_id, self.inst.execution_id, task_id),
        )

    def create_timer(self, timer_id: int, fire_at: datetime, *, canceled: bool = False) -> None:
        text = format_timestamp(fire_at)
        self.outcome.append(
            make_event(EventType.TIMER_CREATED, self.now, event_id=timer_id, FireAt=text)
        )
        if not canceled:
            self.store.add_timer(
                self.inst.instance_id, self.inst.execution_id, timer_id, text, fire_at.timestamp()
            )

    # ---- endings ----------------------------------------------------------------------------

    def complete(self, output: Any) -> None:
        text = json.dumps(output)
        self.ending.append(
            make_event(
                EventType.EXECUTION_COMPLETED,
                self.now,
                OrchestrationStatus=RuntimeStatus.COMPLETED,
                Result=text,
            )
        )
        self.inst.runtime_status = RuntimeStatus.COMPLETED
        self.inst.output = text
        self.terminal_reason = ""

    def fail(self, message: str) -> None:
        self.ending = []
        self.ending.append(
            make_event(
                EventType.EXECUTION_COMPLETED,
                self.now,
                OrchestrationStatus=RuntimeStatus.FAILED,
                Result=message,
                FailureDetails={"ErrorType": "OrchestrationFailure", "ErrorMessage": message},
            )
        )
        self.inst.runtime_status = RuntimeStatus.FAILED
        self.inst.output = json.dumps(message)
        self.terminal_reason = message
        logger.warning("instance %s failed: %s", self.inst.instance_id, message)

    def continue_as_new(self) -> None:
        self.ending.append(
            make_event(
                EventType.EXECUTION_COMPLETED,
                self.now,
                OrchestrationStatus=RuntimeStatus.CONTINUED_AS_NEW,
                Result=self.continue_input,
            )
        )

    def commit(self) -> None:
        inst = self.inst
        if self.terminal_reason is not None:
            self.host._finish(inst, failed_reason=self.terminal_reason or None)
            return
        if self.continued:
            # Fresh execution, same instance id; undelivered events stay queued and carry over.
            self.store.clear_pending_work(inst.instance_id, include_inbox=False)
            inst.execution_id = uuid.uuid4().hex
            inst.input = None if self.continue_input is None else json.dumps(self.continue_input)
            inst.state = _fresh_state()
            inst.runtime_status = RuntimeStatus.CONTINUED_AS_NEW
        inst.last_updated_time = self.host.clock.time()
        self.store.put_instance(inst)


def _epoch(value: datetime | float | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        return parse_timestamp(value).timestamp()
    return float(value)
