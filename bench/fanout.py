"""Benchmark 4: fan-out. 200 catalogs to one image under a 10 requests/second simulator rate
limit, on virtual time, through the real app: four ``POST /api/updates`` of 50 catalogs each
(a request takes at most 50), each running its catalogs as capped sub-orchestrations.

Measured from the simulator's request log (Catalog Service paths, the ones the limit covers):
failures (catalogs whose outcome is not ``succeeded``), 429 answers, the peak request rate (most
requests in any 1-second window, all requests and accepted ones), and the makespan (first POST to
the last catalog's result) against the bound the limit sets (accepted requests / limit).

The clock is :class:`bench.clock.OverlappingVirtualClock` so that activity threads backing off
after a 429 at the same moment wake together (as in real time) instead of adding their waits up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from bench.clock import OverlappingVirtualClock
from bench.common import catalog_id, epoch_of, peak_per_second, post_json, tenant
from local.stack import LocalStack

__all__ = ["FanoutResult", "run_fanout"]

logger = logging.getLogger(__name__)

LIMITED_PATHS = "/catalogservice/*"


@dataclass
class FanoutResult:
    catalogs: int
    batch: int
    limit_per_second: float
    retry_delay_seconds: float
    max_parallel: int
    update_minutes: float
    # CITRIX_MAX_REQUESTS_PER_SECOND of the run (0: client-side pacing off)
    pacing_per_second: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    accepted: int = 0
    throttled: int = 0
    other_errors: int = 0
    token_requests: int = 0
    peak_all: int = 0
    peak_accepted: int = 0
    makespan_seconds: float = 0.0
    last_submit_seconds: float = 0.0
    min_poll_seconds: float = 30.0
    clock_sleeps: int = 0
    # accepted Catalog Service requests by kind (sites, list catalogs, list images, submit, ...)
    by_kind: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome != "succeeded")

    @property
    def bound_seconds(self) -> float:
        return self.accepted / self.limit_per_second

    @property
    def ratio(self) -> float:
        return self.makespan_seconds / self.bound_seconds if self.bound_seconds else float("nan")


def _kind(method: str, path: str) -> str:
    if method == "POST" and path.endswith("$updateImage"):
        return "submit"
    if path.endswith("/sites"):
        return "list sites"
    if path.endswith("/catalogs"):
        return "list catalogs"
    if path.endswith("/images"):
        return "list images"
    if path.endswith("/updateStatus") or "/catalogs/" in path:
        return "status check"
    return "other"


def run_fanout(
    catalogs: int = 200,
    *,
    batch: int = 50,
    limit_per_second: float = 10,
    retry_delay_seconds: float = 1,
    max_parallel: int | None = None,
    update_minutes: float = 0.0,
    pacing_per_second: float | None = None,
) -> FanoutResult:
    """Update ``catalogs`` catalogs in requests of ``batch``; ``max_parallel`` sets
    MAX_PARALLEL_CATALOGS (None: the app's default); ``pacing_per_second`` sets
    CITRIX_MAX_REQUESTS_PER_SECOND (None: the tenant's limit, as an admin who knows it would
    set it; 0: pacing off)."""
    specs = [
        {
            "id": catalog_id(i),
            "name": f"fan-{i:03d}",
            "state": "Active",
            "imageId": "img-v1",
            "update": {"durationMinutes": update_minutes, "outcome": "Active"},
        }
        for i in range(1, catalogs + 1)
    ]
    rate_limit = {
        "requestsPerSecond": limit_per_second,
        "retryDelaySeconds": retry_delay_seconds,
        "path": LIMITED_PATHS,
    }
    # The pacer keeps its own 10% guard (N calls in any 1.1 s), so the limit itself is the
    # setting: no second margin on top.
    pacing = limit_per_second if pacing_per_second is None else pacing_per_second
    settings: dict[str, str] = {"CITRIX_MAX_REQUESTS_PER_SECOND": f"{pacing:g}"}
    if max_parallel is not None:
        settings["MAX_PARALLEL_CATALOGS"] = str(max_parallel)
    stack = LocalStack(tenant(specs, rate_limit=rate_limit), app_settings=settings)
    clock = OverlappingVirtualClock()
    stack.clock = clock
    with stack:
        assert stack.settings is not None and stack.simulator is not None
        result = FanoutResult(
            catalogs=catalogs,
            batch=batch,
            limit_per_second=limit_per_second,
            retry_delay_seconds=retry_delay_seconds,
            max_parallel=stack.settings.max_parallel_catalogs,
            update_minutes=update_minutes,
            pacing_per_second=pacing,
            min_poll_seconds=float(stack.settings.poll_min_interval_seconds),
        )
        started = clock.time()
        instances: list[str] = []
        ids = [str(s["id"]) for s in specs]
        for first in range(0, catalogs, batch):
            answer = post_json(
                f"{stack.functions_url}/api/updates",
                {"catalogs": ids[first : first + batch], "image": "img-v2"},
                {"x-functions-key": stack.function_key},
            )
            if answer.status_code != 202:
                raise RuntimeError(
                    f"POST /api/updates answered {answer.status_code}: {answer.text}"
                )
            instances.append(str(answer.json()["instanceId"]))
        stack.run_until_idle()
        finished: list[float] = []
        for instance in instances:
            status: dict[str, Any] = stack.durable.get_status(instance) or {}
            output = status.get("output") or {}
            results = output.get("results") or []
            if not results:
                result.outcomes["no result"] = result.outcomes.get("no result", 0) + batch
            for item in results:
                outcome = str(item.get("outcome"))
                result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
                if item.get("finishedAt"):
                    finished.append(epoch_of(str(item["finishedAt"])))
        log = stack.simulator.requests
        limited = [e for e in log if fnmatchcase(str(e["path"]), LIMITED_PATHS)]
        result.requests = len(limited)
        result.accepted = sum(1 for e in limited if e["status"] != 429)
        result.throttled = sum(1 for e in limited if e["status"] == 429)
        result.other_errors = (
            sum(1 for e in limited if e["status"] is None or int(e["status"]) >= 400)
            - result.throttled
        )
        result.token_requests = len(log) - len(limited)
        result.peak_all = peak_per_second([float(e["time"]) for e in limited])
        result.peak_accepted = peak_per_second(
            [float(e["time"]) for e in limited if e["status"] != 429]
        )
        submits = [float(e["time"]) for e in limited if str(e["path"]).endswith("$updateImage")]
        result.last_submit_seconds = (max(submits) - started) if submits else float("nan")
        result.makespan_seconds = (max(finished) - started) if finished else float("nan")
        result.clock_sleeps = clock.sleeps
        for entry in limited:
            if entry["status"] != 429:
                kind = _kind(str(entry["method"]), str(entry["path"]))
                result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
    logger.info("fan-out: %s", result)
    return result
