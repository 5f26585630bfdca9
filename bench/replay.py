"""Benchmark 5: orchestrator replay cost across a 6-hour update, on virtual time.

Every orchestrator invocation replays the instance's whole history of the current execution.
The benchmark wraps the local durable host's invocation method (in this process only, no change
to ``local/durable_host``) and records, for each invocation, the clock time and the number of
history events handed to the orchestrator. Monitoring calls ``continue_as_new`` every
``POLLS_PER_EXECUTION`` polls, which should keep that number bounded however long the update runs.

Two polling configurations run: the default policy (few polls, so little history anyway) and a
stress setting with a fixed 30 s interval (POLL_MIN = POLL_MAX = 30 s: 720 polls in 6 hours),
where unbounded history would show at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from bench.common import catalog_id, post_json, tenant
from local.stack import LocalStack

__all__ = ["ReplayCase", "ReplayResult", "run_replay"]

logger = logging.getLogger(__name__)

DEFAULT_CASES: tuple[tuple[str, dict[str, str]], ...] = (
    ("default policy (30-600 s)", {}),
    (
        "fixed 30 s (stress)",
        {"POLL_MIN_INTERVAL_SECONDS": "30", "POLL_MAX_INTERVAL_SECONDS": "30"},
    ),
)


@dataclass
class ReplayCase:
    """One long update: the history length at each orchestrator invocation."""

    name: str
    update_minutes: float
    polls_per_execution: int
    outcome: str = ""
    polls: int = 0
    executions: int = 0
    # (hours since submit, history events replayed at that invocation)
    invocations: list[tuple[float, int]] = field(default_factory=list)

    @property
    def total_events(self) -> int:
        return sum(n for _, n in self.invocations)

    def events_per_poll(self) -> float:
        return self.total_events / self.polls if self.polls else float("nan")

    def max_history(self, from_hour: float = 0.0, to_hour: float = 1e9) -> int:
        return max((n for h, n in self.invocations if from_hour <= h < to_hour), default=0)

    def per_hour(self) -> list[tuple[int, int, float]]:
        """(hour index, max history events, mean history events) per hour of the update."""
        rows = []
        last = int(max((h for h, _ in self.invocations), default=0.0))
        for hour in range(last + 1):
            values = [n for h, n in self.invocations if hour <= h < hour + 1]
            if values:
                rows.append((hour, max(values), sum(values) / len(values)))
        return rows

    def first_execution_max(self) -> int:
        """Longest history during the first execution (before the first continue_as_new)."""
        best = 0
        for index, (_, n) in enumerate(self.invocations):
            if index and n < self.invocations[index - 1][1]:
                break
            best = max(best, n)
        return best

    def bounded(self) -> bool:
        """Flat: continue_as_new happened, and no later execution replayed a longer history
        than the first one did (so the cost does not grow with elapsed time)."""
        return self.executions > 1 and self.max_history() <= self.first_execution_max()


@dataclass
class ReplayResult:
    cases: list[ReplayCase] = field(default_factory=list)


def _record_invocations(stack: LocalStack, sink: list[tuple[str, float, int]]) -> None:
    host: Any = stack.durable
    original = host._invoke

    def counting(inst: Any, history: list[dict[str, Any]]) -> Any:
        sink.append((str(inst.instance_id), stack.clock.time(), len(history)))
        return original(inst, history)

    host._invoke = counting  # instance attribute: only this host, only this run


def run_replay(
    update_minutes: float = 360.0,
    cases: Sequence[tuple[str, dict[str, str]]] = DEFAULT_CASES,
    *,
    polls_per_execution: int = 40,
) -> ReplayResult:
    """One ``update_minutes`` update per case; returns the replayed history per invocation."""
    result = ReplayResult()
    for name, overrides in cases:
        catalog = {
            "id": catalog_id(1),
            "name": "bench-long-update",
            "state": "Active",
            "imageId": "img-v1",
            "update": {"durationMinutes": update_minutes, "outcome": "Active"},
        }
        settings = {"POLLS_PER_EXECUTION": str(polls_per_execution), **overrides}
        case = ReplayCase(name, update_minutes, polls_per_execution)
        calls: list[tuple[str, float, int]] = []
        with LocalStack(tenant([catalog]), app_settings=settings) as stack:
            _record_invocations(stack, calls)
            answer = post_json(
                f"{stack.functions_url}/api/updates",
                {
                    "catalog": catalog["id"],
                    "image": "img-v2",
                    "deadlineMinutes": int(update_minutes) + 120,
                },
                {"x-functions-key": stack.function_key},
            )
            if answer.status_code != 202:
                raise RuntimeError(f"POST /api/updates answered {answer.status_code}")
            instance = answer.json()["instanceId"]
            stack.run_until_idle()
            status = stack.durable.get_status(instance) or {}
            output = status.get("output") or {}
            case.outcome = str(output.get("outcome"))
            case.polls = int(output.get("polls") or 0)
            origin = calls[0][1] if calls else 0.0
            case.invocations = [((t - origin) / 3600.0, n) for _, t, n in calls]
            # A new execution (continue_as_new) starts from an empty history again.
            case.executions = 1 + sum(
                1
                for (ia, _, na), (ib, _, nb) in pairwise(calls)
                if ia == ib == instance and nb < na
            )
        result.cases.append(case)
        logger.info("replay %s: %s", name, case)
    return result
