"""Benchmark 1: polling efficiency on virtual time.

Our policy runs through the real app (LocalStack: functions host, durable host, activities,
Citrix client) with ``POST /api/updates``. The fixed-interval baselines run in the same stack as a
plain loop with the real ``CatalogServiceClient`` (the app's own, sharing its token cache) against
the same simulator on the same virtual clock: submit ``$updateImage`` once, then GET the status
``location`` every N seconds until the catalog is Active.

Each (policy, duration) pair runs once per phase offset: the update takes ``duration`` minutes
plus ``offset`` seconds, so the moment the catalog turns Active falls at different points of a
fixed-interval grid (and of our policy's ETA arithmetic). Detection latency is the time from the
catalog turning Active (submit time + planned duration on the simulator) to the moment the
orchestration (or loop) has an answer that says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import SITE, catalog_id, epoch_of, median, post_json, tenant
from local.stack import LocalStack

__all__ = [
    "BASELINES",
    "OURS",
    "PollRun",
    "PollingResult",
    "go_sdk_interval",
    "run_polling",
]

logger = logging.getLogger(__name__)

OURS = "ours (ETA-aware, 30-600 s)"
DEFAULT_DURATIONS: tuple[int, ...] = (30, 90, 240)
DEFAULT_OFFSETS: tuple[float, ...] = (0.0, 11.0, 23.0, 37.0, 52.0)


def go_sdk_interval(elapsed: float) -> float:
    """Citrix Go SDK style: every 10 s for the first 30 s, then every 30 s."""
    return 10.0 if elapsed < 30.0 else 30.0


# name -> interval as a function of seconds since submit
BASELINES: dict[str, Callable[[float], float]] = {
    "fixed 30 s (Terraform provider)": lambda _elapsed: 30.0,
    "fixed 15 s (community scripts)": lambda _elapsed: 15.0,
    "10 s then 30 s (Go SDK)": go_sdk_interval,
}


@dataclass(frozen=True)
class PollRun:
    """One update watched by one policy."""

    policy: str
    duration_minutes: int
    offset_seconds: float
    outcome: str
    status_checks: int
    all_calls: int
    latency_seconds: float


@dataclass
class PollingResult:
    runs: list[PollRun] = field(default_factory=list)

    def policies(self) -> list[str]:
        return [OURS, *BASELINES]

    def durations(self) -> list[int]:
        return sorted({r.duration_minutes for r in self.runs})

    def select(self, policy: str, duration: int | None = None) -> list[PollRun]:
        return [
            r
            for r in self.runs
            if r.policy == policy and (duration is None or r.duration_minutes == duration)
        ]

    def mean_calls(
        self, policy: str, duration: int | None = None, *, checks: bool = False
    ) -> float:
        runs = self.select(policy, duration)
        if not runs:
            return float("nan")
        values = [r.status_checks if checks else r.all_calls for r in runs]
        return sum(values) / len(values)

    def median_latency(self, policy: str, duration: int | None = None) -> float:
        return median([r.latency_seconds for r in self.select(policy, duration)])

    def max_latency(self, policy: str, duration: int | None = None) -> float:
        runs = self.select(policy, duration)
        return max((r.latency_seconds for r in runs), default=float("nan"))

    def failures(self) -> list[PollRun]:
        return [r for r in self.runs if r.outcome != "succeeded"]


def _is_status_check(entry: dict[str, Any], cid: str) -> bool:
    path = str(entry["path"])
    return entry["method"] == "GET" and (
        path.endswith((f"/catalogs/{cid}", f"/catalogs/{cid}/updateStatus"))
    )


def _checks_after_submit(log: list[dict[str, Any]], cid: str) -> int:
    """Status reads of ``cid`` after its ``$updateImage`` (the app's own read of the catalog
    right before the POST is part of submitting, not of watching)."""
    posts = [
        i
        for i, e in enumerate(log)
        if e["method"] == "POST" and str(e["path"]).endswith(f"/catalogs/{cid}/$updateImage")
    ]
    if not posts:
        return 0
    return sum(1 for e in log[posts[0] + 1 :] if _is_status_check(e, cid))


def _catalog(index: int, minutes: float) -> dict[str, Any]:
    return {
        "id": catalog_id(index),
        "name": f"bench-catalog-{index:03d}",
        "state": "Active",
        "imageId": "img-v1",
        "update": {"durationMinutes": minutes, "outcome": "Active"},
    }


def _active_at(stack: LocalStack, cid: str, minutes: float) -> float:
    """Clock time at which the simulator turned the catalog Active (last accepted update)."""
    assert stack.simulator is not None
    submitted = stack.simulator.catalog(cid)["updateRequests"][-1]["time"]
    return float(submitted) + minutes * 60.0


def _run_ours(stack: LocalStack, cid: str, minutes: float) -> tuple[str, float]:
    answer = post_json(
        f"{stack.functions_url}/api/updates",
        {"catalog": cid, "image": "img-v2", "deadlineMinutes": 360},
        {"x-functions-key": stack.function_key},
    )
    if answer.status_code != 202:
        raise RuntimeError(f"POST /api/updates answered {answer.status_code}: {answer.text}")
    instance = answer.json()["instanceId"]
    stack.run_until_idle()
    status = stack.durable.get_status(instance) or {}
    output = status.get("output") or {}
    outcome = str(output.get("outcome"))
    if outcome != "succeeded" or not output.get("finishedAt"):
        return outcome, float("nan")
    return outcome, epoch_of(str(output["finishedAt"])) - _active_at(stack, cid, minutes)


def _run_baseline(
    stack: LocalStack, cid: str, minutes: float, interval: Callable[[float], float]
) -> tuple[str, float]:
    from shared.citrix import map_catalog_status
    from shared.runtime import get_services

    services = get_services()
    clock = stack.clock
    submission = services.citrix.update_image(
        SITE, cid, template_id="img-v2", citrix_prepared=False, vda_update_delay=-1
    )
    started = clock.time()
    # A generous cap (the longest update plus a day) so a broken run cannot loop forever.
    give_up = started + minutes * 60.0 + 86_400.0
    while clock.time() < give_up:
        clock.sleep(interval(clock.time() - started))
        catalog = services.citrix.get_update_status(SITE, cid, submission.location)
        verdict = map_catalog_status(catalog, target_image_id="img-v2").status
        if verdict in ("succeeded", "failed"):
            return verdict, clock.time() - _active_at(stack, cid, minutes)
    return "gave_up", float("nan")


def run_polling(
    durations: Sequence[int] = DEFAULT_DURATIONS,
    offsets: Sequence[float] = DEFAULT_OFFSETS,
    *,
    app_settings: dict[str, str] | None = None,
) -> PollingResult:
    """Every policy over every (duration, offset); returns the per-run measurements."""
    plan: list[tuple[str, int, float, int]] = []
    index = 0
    for duration in durations:
        for offset in offsets:
            for policy in [OURS, *BASELINES]:
                index += 1
                plan.append((policy, duration, offset, index))
    catalogs = [_catalog(i, d + o / 60.0) for _, d, o, i in plan]
    settings = {"POLL_MIN_INTERVAL_SECONDS": "30", "POLL_MAX_INTERVAL_SECONDS": "600"}
    settings.update(app_settings or {})
    result = PollingResult()
    with LocalStack(tenant(catalogs), app_settings=settings) as stack:
        assert stack.simulator is not None
        for policy, duration, offset, i in plan:
            cid = catalog_id(i)
            minutes = duration + offset / 60.0
            before = len(stack.simulator.requests)
            if policy == OURS:
                outcome, latency = _run_ours(stack, cid, minutes)
            else:
                outcome, latency = _run_baseline(stack, cid, minutes, BASELINES[policy])
            log = stack.simulator.requests[before:]
            result.runs.append(
                PollRun(
                    policy=policy,
                    duration_minutes=duration,
                    offset_seconds=offset,
                    outcome=outcome,
                    status_checks=_checks_after_submit(log, cid),
                    all_calls=len(log),
                    latency_seconds=latency,
                )
            )
            logger.info("polling %s %s min +%s s: %s", policy, duration, offset, result.runs[-1])
    return result
