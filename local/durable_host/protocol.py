"""The azure-functions-durable 1.x replay protocol, seen from the host side.

History events (DTFx ``HistoryEvent`` JSON, PascalCase), the context JSON the orchestrator entry
point receives, flattening of the V3 action list and the determinism comparison. Pure functions;
no I/O. See ``reference/durable-functions-facts.md`` §2.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "ACTION_NAMES",
    "EVENT_NAMES",
    "ActionType",
    "EventType",
    "FlatAction",
    "OrchestratorResult",
    "RuntimeStatus",
    "context_json",
    "describe_action",
    "first_difference",
    "flatten_actions",
    "format_timestamp",
    "make_event",
    "parse_orchestrator_result",
    "parse_timestamp",
]

# .NET TimeSpan "c" strings, as the real extension sends them for the Azure Storage provider.
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL_DURATION = "3.00:00:00"
OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


class EventType:
    """DTFx ``EventType`` numbers (``models/history/HistoryEventType.py``)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_INSTANCE_CREATED = 7
    SUB_ORCHESTRATION_INSTANCE_COMPLETED = 8
    SUB_ORCHESTRATION_INSTANCE_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC_EVENT = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


EVENT_NAMES: dict[int, str] = {
    value: "".join(part.capitalize() for part in name.split("_"))
    for name, value in vars(EventType).items()
    if not name.startswith("_")
}


class ActionType:
    """Action numbers in the orchestrator's output (``models/actions/ActionType.py``)."""

    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    WHEN_ANY = 11
    WHEN_ALL = 12


ACTION_NAMES: dict[int, str] = {
    0: "CallActivity",
    1: "CallActivityWithRetry",
    2: "CallSubOrchestrator",
    3: "CallSubOrchestratorWithRetry",
    4: "ContinueAsNew",
    5: "CreateTimer",
    6: "WaitForExternalEvent",
    7: "CallEntity",
    8: "CallHttp",
    9: "SignalEntity",
    11: "WhenAny",
    12: "WhenAll",
}

# Actions whose task takes the next sequence number when yielded (the SDK's
# ``_add_to_open_tasks`` / ``_record_fire_and_forget_action``). External events are keyed by name.
SEQUENCED_ACTIONS = frozenset({0, 1, 2, 3, 4, 5, 7, 8, 9})


class RuntimeStatus:
    """``OrchestrationRuntimeStatus`` names as the extension reports them."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    TERMINATED = "Terminated"
    CANCELED = "Canceled"

    ALL = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated", "Canceled")
    TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
    NON_RUNNING_STATES_REFUSED = frozenset({"Running", "Pending", "ContinuedAsNew"})


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z`` (what the SDK's ``dateutil`` parses tz-aware)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse the SDK's ``fireAt`` format (``%Y-%m-%dT%H:%M:%S.%fZ``) or any ISO-8601 UTC text."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def make_event(
    event_type: int, timestamp: datetime, *, event_id: int = -1, **fields: Any
) -> dict[str, Any]:
    """One history event as the extension serializes it for the out-of-process SDK."""
    event: dict[str, Any] = {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_timestamp(timestamp),
    }
    event.update(fields)
    return event


def context_json(
    *,
    history: list[dict[str, Any]],
    input_value: Any,
    instance_id: str,
    parent_instance_id: str | None,
) -> str:
    """The context document the real extension hands to a Python orchestrator (schema V3)."""
    return json.dumps(
        {
            "history": history,
            "input": input_value,
            "instanceId": instance_id,
            "isReplaying": False,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
            "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL_DURATION,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


@dataclass(frozen=True)
class FlatAction:
    """One leaf action of the flattened V3 action list, reduced to what determinism compares."""

    action_type: int
    name: str | None = None
    input: str | None = None
    fire_at: str | None = None
    event_name: str | None = None
    instance_id: str | None = None
    canceled: bool = False
    version: str | None = None
    retry_options: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_json(cls, action: dict[str, Any]) -> FlatAction:
        action_type = int(action["actionType"])
        retry = action.get("retryOptions")
        return cls(
            action_type=action_type,
            name=action.get("functionName") or action.get("operation"),
            input=_as_text(action.get("input")),
            fire_at=action.get("fireAt"),
            event_name=action.get("externalEventName"),
            instance_id=action.get("instanceId"),
            canceled=bool(action.get("isCanceled", False)),
            version=action.get("version"),
            retry_options=retry if isinstance(retry, dict) else None,
        )

    def signature(self) -> tuple[Any, ...]:
        """What must be identical on replay: type, name, input (timers: fireAt; events: name)."""
        return (
            self.action_type,
            self.name,
            self.input,
            self.fire_at,
            self.event_name,
            self.instance_id,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "type": self.action_type,
            "name": self.name,
            "input": self.input,
            "fireAt": self.fire_at,
            "event": self.event_name,
            "instanceId": self.instance_id,
            "canceled": self.canceled,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FlatAction:
        return cls(
            action_type=int(record["type"]),
            name=record.get("name"),
            input=record.get("input"),
            fire_at=record.get("fireAt"),
            event_name=record.get("event"),
            instance_id=record.get("instanceId"),
            canceled=bool(record.get("canceled", False)),
            version=record.get("version"),
        )


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def flatten_actions(actions: Any) -> list[FlatAction]:
    """Depth-first leaves of the schema V2/V3 action list ``[[a1, a2, ...]]``.

    Compound WhenAny/WhenAll actions are walked in child order, which is the order in which the
    SDK hands out sequence numbers (``_add_to_open_tasks``). V1 output (several inner lists) is
    accepted too and concatenated.
    """
    flat: list[FlatAction] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        if not isinstance(node, dict):
            raise ValueError(f"unexpected action payload: {type(node).__name__}")
        if "compoundActions" in node and int(node.get("actionType", -1)) in (11, 12):
            walk(node["compoundActions"])
            return
        flat.append(FlatAction.from_json(node))

    walk(actions or [])
    return flat


def describe_action(action: FlatAction | None) -> str:
    """Human-readable one-liner for determinism messages (inputs truncated)."""
    if action is None:
        return "nothing"
    kind = ACTION_NAMES.get(action.action_type, f"action type {action.action_type}")
    parts = [kind]
    if action.name is not None:
        parts.append(f"'{action.name}'")
    if action.event_name is not None:
        parts.append(f"for event '{action.event_name}'")
    if action.fire_at is not None:
        parts.append(f"firing at {action.fire_at}")
    if action.instance_id is not None:
        parts.append(f"instance '{action.instance_id}'")
    if action.input is not None:
        shown = action.input if len(action.input) <= 120 else action.input[:117] + "..."
        parts.append(f"with input {shown}")
    return " ".join(parts)


def first_difference(scheduled: list[FlatAction], replayed: list[FlatAction]) -> str | None:
    """Compare the already-scheduled prefix with a replay; describe the first difference.

    A replay is deterministic when it produces every action that was scheduled before, in the
    same order, with the same type, name and input. A replay that stops short is a difference too.
    """
    for index, expected in enumerate(scheduled):
        actual = replayed[index] if index < len(replayed) else None
        if actual is None or actual.signature() != expected.signature():
            return (
                "Non-deterministic workflow detected: action #"
                f"{index} was {describe_action(expected)} when it was first scheduled, but the "
                f"replay produced {describe_action(actual)}. Was the orchestrator code changed "
                "while this instance was running, or does it read time, random values or the "
                "environment directly?"
            )
    return None


@dataclass
class OrchestratorResult:
    """What one orchestrator invocation returned (or raised)."""

    is_done: bool
    actions: list[FlatAction]
    output: Any = None
    has_output: bool = False
    custom_status: Any = None
    error: str | None = None


def parse_orchestrator_result(
    returned: str | None, raised: BaseException | None
) -> OrchestratorResult:
    """Decode the OrchestratorState JSON, or the ``$OutOfProcData$`` payload of a failure."""
    if raised is not None:
        text = str(raised)
        message, marker, state_text = text.partition(OUT_OF_PROC_MARKER)
        if not marker:
            return OrchestratorResult(
                is_done=False, actions=[], error=text or type(raised).__name__
            )
        state = json.loads(state_text)
        return OrchestratorResult(
            is_done=False,
            actions=flatten_actions(state.get("actions")),
            custom_status=state.get("customStatus"),
            error=state.get("error") or message,
        )
    if returned is None:
        raise ValueError("orchestrator returned nothing")
    state = json.loads(returned)
    return OrchestratorResult(
        is_done=bool(state.get("isDone")),
        actions=flatten_actions(state.get("actions")),
        output=state.get("output"),
        has_output="output" in state,
        custom_status=state.get("customStatus"),
        error=state.get("error"),
    )
