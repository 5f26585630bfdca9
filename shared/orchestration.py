"""Orchestrator bodies: deterministic generators, no I/O, no clock but the context's.

``update_orchestrator`` is what triggers start. One catalog runs inline; several run as
``catalog_update_orchestrator`` sub-orchestrations under a concurrency cap. Each catalog goes
prepare -> (wait for image) -> (wait while the catalog is busy) -> (dry run: plan) -> submit ->
monitor, and ends with one result dict whose ``outcome`` is one of ``OUTCOMES``.

Everything that crosses a durable boundary is a plain JSON dict; activities report expected
failures as ``{"ok": false, "category": ..., "message": ...}`` values. Monitoring keeps history
bounded with ``continue_as_new`` every ``pollsPerExecution`` polls, carrying its state over.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

from shared.polling import (
    MAX_UNKNOWN_POLLS,
    MIN_UNKNOWN_MINUTES,
    PollPolicy,
    decide_unknown,
    next_poll_delay,
)
from shared.telemetry import log_event

__all__ = [
    "ACT_CHECK",
    "ACT_PREPARE",
    "ACT_SUBMIT",
    "CHILD_SUFFIX",
    "EVENT_CANCEL",
    "MAX_UNKNOWN_POLLS",
    "ORCH_CATALOG",
    "ORCH_UPDATE",
    "OUTCOMES",
    "catalog_update_orchestrator",
    "child_instance_id",
    "summarize",
    "update_orchestrator",
]

logger = logging.getLogger(__name__)

ORCH_UPDATE = "update_orchestrator"
ORCH_CATALOG = "catalog_update_orchestrator"
ACT_PREPARE = "prepare_update"
ACT_SUBMIT = "submit_update"
ACT_CHECK = "check_catalog"
EVENT_CANCEL = "cancel"

OUTCOMES = ("succeeded", "already_current", "failed", "timed_out", "cancelled", "rejected")

# Activity failure categories that mean "the request is wrong", not "the system failed".
_REJECT_CATEGORIES = frozenset(
    {"not_found", "ambiguous", "invalid_input", "image_not_ready", "bad_request", "catalog_state"}
)
# Activity failure categories worth another try after a pause (the API or vault had a bad moment).
_TRANSIENT_CATEGORIES = frozenset(
    {
        "connection",
        "server",
        "rate_limited",
        "protocol",
        "vault_unavailable",
        "vault_throttled",
        "internal",
    }
)
_READY_STATES = frozenset({"active", "inputrequired"})
_BUSY_STATES = frozenset({"processing", "predeployment"})
_PREPARE_ATTEMPTS = 4
_SUBMIT_ATTEMPTS = 3
# What submit_update answers when its own fresh read shows the catalog no longer ready for the
# update (busy, on the image already, another state); nothing was sent.
_CHANGED = "catalog_changed"

Context = Any  # azure.durable_functions.DurableOrchestrationContext (untyped SDK)
Gen = Generator[Any, Any, Any]

_DEFAULT_POLICY: dict[str, Any] = {
    "minInterval": 30,
    "maxInterval": 600,
    "pollsPerExecution": 40,
    "maxPollFailures": 5,
    "maxUnknownPolls": MAX_UNKNOWN_POLLS,
    "minUnknownMinutes": MIN_UNKNOWN_MINUTES,
    "busyWaitMinutes": 120,
    "imageWaitMinutes": 60,
    "maxParallel": 5,
}


CHILD_SUFFIX = ".cat"  # "." never occurs in a parent id (see shared/ids.py)


def child_instance_id(parent_id: str, index: int) -> str:
    """Instance id of the sub-orchestration for the ``index``-th catalog of ``parent_id``."""
    return f"{parent_id}{CHILD_SUFFIX}{index}"


# --------------------------------------------------------------------------------------------
# Entry points (wired in function_app.py)


def update_orchestrator(context: Context) -> Gen:
    """Top-level orchestration: one catalog inline, several as capped sub-orchestrations."""
    job: dict[str, Any] = context.get_input() or {}
    catalogs = job.get("catalogs") or []
    if len(catalogs) <= 1:
        single = dict(job)
        single["catalog"] = catalogs[0] if catalogs else job.get("catalog", "")
        result = yield from _run_catalog(context, single)
        return result
    result = yield from _run_many(context, job, catalogs)
    return result


def catalog_update_orchestrator(context: Context) -> Gen:
    """One catalog's update (used as a sub-orchestration of a multi-catalog update)."""
    job: dict[str, Any] = context.get_input() or {}
    result = yield from _run_catalog(context, job)
    return result


# --------------------------------------------------------------------------------------------
# Several catalogs


def _run_many(context: Context, job: dict[str, Any], catalogs: list[str]) -> Gen:
    policy = {**_DEFAULT_POLICY, **(job.get("policy") or {})}
    cap = max(1, int(policy["maxParallel"]))
    children = [child_instance_id(context.instance_id, i) for i in range(len(catalogs))]
    results: list[dict[str, Any] | None] = [None] * len(catalogs)
    pending: dict[int, Any] = {}
    queue = list(range(len(catalogs)))
    cancel = context.wait_for_external_event(EVENT_CANCEL)
    cancelled = False

    def status(phase: str) -> dict[str, Any]:
        done = [r for r in results if r is not None]
        counts: dict[str, int] = {}
        for r in done:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        return {
            "phase": phase,
            "image": job.get("image"),
            # Names shortened: custom status must stay well under Durable's 16 KB.
            "catalogs": [str(c)[:40] for c in catalogs],
            "children": children,
            "done": len(done),
            "total": len(catalogs),
            "counts": counts,
            "message": f"{len(done)} of {len(catalogs)} catalogs finished"
            + (f", {len(pending)} updating" if pending else "")
            + (", cancel requested" if cancelled else ""),
        }

    while queue or pending:
        while queue and len(pending) < cap:
            index = queue.pop(0)
            child = {k: v for k, v in job.items() if k != "catalogs"}
            child["catalog"] = catalogs[index]
            pending[index] = context.call_sub_orchestrator(
                ORCH_CATALOG, child, instance_id=children[index]
            )
        context.set_custom_status(status("updating"))
        waiting = list(pending.values()) + ([] if cancelled else [cancel])
        winner = yield context.task_any(waiting)
        if winner is cancel:
            # Catalogs not started yet are never submitted; the running ones get the cancel
            # event from the API themselves and end as soon as they see it.
            cancelled = True
            for index in queue:
                results[index] = _result(
                    "cancelled",
                    {"ref": catalogs[index]},
                    {"ref": job.get("image")},
                    category="cancelled",
                    message="cancelled before anything was submitted to Citrix for this catalog",
                )
            queue.clear()
            continue
        for index, task in list(pending.items()):
            if task is winner or task.is_completed:
                del pending[index]
                results[index] = _child_result(task.result, catalogs[index], job)
    final = [r for r in results if r is not None]
    summary = summarize(final, job.get("image"))
    context.set_custom_status({**status("done"), "outcome": summary["outcome"]})
    return summary


def _child_result(value: Any, catalog: str, job: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value.get("outcome") in OUTCOMES:
        return value
    message = str(value).splitlines()[0][:500] if value is not None else "no result"
    return _result(
        "failed",
        {"ref": catalog},
        {"ref": job.get("image")},
        category="internal",
        message=f"the catalog's update orchestration failed: {message}",
    )


def summarize(results: list[dict[str, Any]], image: Any) -> dict[str, Any]:
    """One overall result for a multi-catalog update."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    good = counts.get("succeeded", 0) + counts.get("already_current", 0)
    if good == len(results):
        outcome = (
            "already_current" if counts.get("already_current") == len(results) else "succeeded"
        )
    else:
        outcome = next(
            o for o in ("failed", "timed_out", "cancelled", "rejected") if counts.get(o, 0) > 0
        )
    summary: dict[str, Any] = {
        "outcome": outcome,
        "image": {"ref": image},
        "counts": counts,
        "results": results,
        "error": None,
    }
    if outcome not in ("succeeded", "already_current"):
        bad = [r for r in results if r["outcome"] not in ("succeeded", "already_current")]
        # The error shown is one of the catalogs that decided the overall outcome.
        first = next(r for r in bad if r["outcome"] == outcome).get("error") or {}
        names = ", ".join(str(r["catalog"].get("name") or r["catalog"].get("ref")) for r in bad)
        summary["error"] = {
            "category": first.get("category", outcome),
            "message": f"{len(bad)} of {len(results)} catalogs did not update ({names}): "
            f"{first.get('message', outcome)}",
        }
    return summary


# --------------------------------------------------------------------------------------------
# One catalog


def _result(
    outcome: str,
    catalog: dict[str, Any],
    image: dict[str, Any],
    *,
    category: str | None = None,
    message: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    result: dict[str, Any] = {"outcome": outcome, "catalog": catalog, "image": image}
    result["error"] = (
        {"category": category or outcome, "message": message or outcome}
        if outcome not in ("succeeded", "already_current")
        else None
    )
    if message and result["error"] is None:
        result["message"] = message
    result.update({k: v for k, v in extra.items() if v is not None})
    return result


class _Run:
    """The mutable state of one catalog's run inside one orchestrator execution."""

    def __init__(self, context: Context, job: dict[str, Any]) -> None:
        self.context = context
        self.job = job
        self.policy = {**_DEFAULT_POLICY, **(job.get("policy") or {})}
        self.poll = PollPolicy(
            min_interval=float(self.policy["minInterval"]),
            max_interval=float(self.policy["maxInterval"]),
        )
        self.carry: dict[str, Any] = dict(job.get("carry") or {})
        self.cancel_task = context.wait_for_external_event(EVENT_CANCEL)
        self.status: dict[str, Any] = dict(self.carry.get("status") or {})

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    def catalog_ref(self) -> dict[str, Any]:
        c = self.carry
        return {
            "ref": self.job.get("catalog"),
            "id": c.get("catalogId"),
            "name": c.get("catalogName"),
        }

    def image_ref(self) -> dict[str, Any]:
        c = self.carry
        return {"ref": self.job.get("image"), "id": c.get("imageId"), "name": c.get("imageName")}

    def set_status(self, phase: str, message: str, **fields: Any) -> None:
        changed = phase != self.status.get("phase") or fields.get("state") != self.status.get(
            "state"
        )
        self.status.update({k: v for k, v in fields.items()})
        self.status.update(
            {
                "phase": phase,
                "message": message,
                "catalog": self.carry.get("catalogName") or self.job.get("catalog"),
                "catalogId": self.carry.get("catalogId"),
                "image": self.carry.get("imageName") or self.job.get("image"),
                "imageId": self.carry.get("imageId"),
                "polls": self.carry.get("polls", 0),
                "transactionId": self.carry.get("transactionId"),
                "dryRun": bool(self.job.get("options", {}).get("dryRun")) or None,
            }
        )
        self.context.set_custom_status({k: v for k, v in self.status.items() if v is not None})
        if changed and not self.context.is_replaying:
            log_event(
                logger,
                "update.phase",
                instanceId=self.context.instance_id,
                catalogId=self.carry.get("catalogId"),
                catalogName=self.status.get("catalog"),
                imageId=self.carry.get("imageId"),
                imageName=self.status.get("image"),
                phase=phase,
                state=self.status.get("state"),
                subState=self.status.get("subState"),
                progress=self.status.get("progress"),
                polls=self.carry.get("polls", 0),
            )

    def finish(self, result: dict[str, Any]) -> dict[str, Any]:
        started = self.carry.get("startedAt")
        if started:
            result["durationSeconds"] = round(
                (self.now - datetime.fromisoformat(started)).total_seconds(), 3
            )
        result["polls"] = self.carry.get("polls", 0)
        result["finishedAt"] = self.now.isoformat()
        self.set_status(
            "done",
            _plain_outcome(result),
            outcome=result["outcome"],
            nextCheck=None,
        )
        if not self.context.is_replaying:
            error = result.get("error") or {}
            log_event(
                logger,
                "update.completed",
                logging.WARNING if result["outcome"] in ("failed", "timed_out") else logging.INFO,
                instanceId=self.context.instance_id,
                catalogId=self.carry.get("catalogId"),
                catalogName=self.carry.get("catalogName") or self.job.get("catalog"),
                imageId=self.carry.get("imageId"),
                imageName=self.carry.get("imageName") or self.job.get("image"),
                outcome=result["outcome"],
                errorCategory=error.get("category"),
                errorMessage=error.get("message"),
                transactionId=result.get("transactionId"),
                subState=result.get("subState"),
                durationSeconds=result.get("durationSeconds"),
                polls=result["polls"],
            )
        return result

    def result(
        self,
        outcome: str,
        *,
        category: str | None = None,
        message: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A final result for this catalog; the transaction id is included when known."""
        extra.setdefault("transactionId", self.carry.get("transactionId"))
        return _result(
            outcome,
            self.catalog_ref(),
            self.image_ref(),
            category=category,
            message=message,
            **extra,
        )

    def deadline_left(self) -> float:
        deadline = datetime.fromisoformat(self.carry["deadline"])
        return (deadline - self.now).total_seconds()

    def sleep(self, seconds: float) -> Gen:
        """Wait ``seconds`` on a durable timer; returns True if a cancel request arrived."""
        fire_at = self.now + timedelta(seconds=max(1.0, seconds))
        self.status["nextCheck"] = fire_at.isoformat()
        self.context.set_custom_status({k: v for k, v in self.status.items() if v is not None})
        timer = self.context.create_timer(fire_at)
        winner = yield self.context.task_any([timer, self.cancel_task])
        if winner is self.cancel_task:
            if not timer.is_completed:
                timer.cancel()
            return True
        return False

    def pause(
        self, attempt: int, retry_after: float | None = None, *, until: datetime | None = None
    ) -> Gen:
        """Back off before trying again (attempt-based delay, at least ``retry_after``), never
        past the deadline or ``until``; returns True if a cancel request arrived meanwhile."""
        limit = self.deadline_left()
        if until is not None:
            limit = min(limit, (until - self.now).total_seconds())
        delay = next_poll_delay(
            self.poll,
            elapsed=0,
            attempt=attempt,
            retry_after=retry_after,
            remaining_deadline=limit,
        )
        cancelled = yield from self.sleep(delay)
        return cancelled

    def activity(self, name: str, payload: dict[str, Any], *, cancellable: bool = False) -> Gen:
        """Call an activity; a crash in it becomes an ``internal`` failure value.

        ``cancellable`` (for activities that change nothing): a cancel request that arrives
        while the activity runs ends the wait at once with a ``cancelled`` value. (The SDK only
        delivers an external event to a task that is being waited for, so a cancel can only be
        noticed this way, never by looking at the task between yields.)"""
        task = self.context.call_activity(name, {**payload, "instanceId": self.context.instance_id})
        try:
            if cancellable:
                winner = yield self.context.task_any([task, self.cancel_task])
                if winner is self.cancel_task:
                    return {"ok": False, "category": "cancelled", "message": "cancel requested"}
                result = task.result
                if isinstance(result, Exception):
                    raise result
            else:
                result = yield task
        except Exception as exc:  # the SDK raises a bare Exception for a failed activity
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return {"ok": False, "category": "internal", "message": first[:500], "retryable": True}
        if not isinstance(result, dict):
            return {"ok": False, "category": "internal", "message": "activity returned no result"}
        return result


def _run_catalog(context: Context, job: dict[str, Any]) -> Gen:
    run = _Run(context, job)
    if not run.carry:
        start = run.now
        run.carry = {
            "phase": "preparing",
            "startedAt": start.isoformat(),
            "deadline": (
                start + timedelta(minutes=int(job.get("deadlineMinutes") or 360))
            ).isoformat(),
            "polls": 0,
            "failures": 0,
            "unknown": 0,
            "overdue": 0,
        }
        outcome = yield from _prepare_and_submit(run)
        if outcome is not None:
            return run.finish(outcome)
    outcome = yield from _monitor(run)
    if outcome is None:
        return None  # continued as new
    return run.finish(outcome)


def _prepare_and_submit(run: _Run) -> Gen:
    """Resolve, check preconditions, submit. Returns a final result, or None to start monitoring.

    A cancel that arrives while preparing or waiting stops before anything is submitted (the
    submit itself, once scheduled, is always waited for). When the submit finds the
    catalog changed since it was prepared (another update took it), the catalog is prepared
    afresh, so the usual rules (already current, busy: wait, other state: reject) decide."""
    job, carry, policy = run.job, run.carry, run.policy
    options = job.get("options") or {}
    run.set_status("preparing", "resolving the site, catalog and image")

    deadline = datetime.fromisoformat(carry["deadline"])
    image_wait_until = min(deadline, run.now + timedelta(minutes=int(policy["imageWaitMinutes"])))
    busy_wait_until = min(deadline, run.now + timedelta(minutes=int(policy["busyWaitMinutes"])))
    attempts = 0
    waits = 0
    changes = 0
    fresh = False
    # Set once the submit found the catalog taken by an update between the check and the POST.
    # That update may be this one's own (an activity run again after a worker died past its
    # POST) or a sibling's to the same image, so it is waited for until the deadline, not the
    # busy limit, and what it ends in is reported as such.
    taken = False
    while True:
        prepared = yield from run.activity(
            ACT_PREPARE,
            {"catalog": job.get("catalog"), "image": job.get("image"), "fresh": fresh},
            cancellable=True,
        )
        fresh = False
        if prepared.get("category") == "cancelled":
            return _cancelled(run, submitted=False)
        _remember(carry, prepared)
        if prepared.get("ok"):
            catalog, image = prepared["catalog"], prepared["image"]
            state = str(catalog.get("state") or "")
            if str(catalog.get("imageId") or "").lower() == str(carry["imageId"]).lower():
                return run.result(
                    "already_current",
                    message=f"catalog '{catalog.get('name')}' uses image "
                    f"'{carry.get('imageName')}' now; it was being updated when this update "
                    "went to submit (by an earlier attempt of this update or by another), so "
                    "nothing more was submitted"
                    if taken
                    else f"catalog '{catalog.get('name')}' already uses image "
                    f"'{carry.get('imageName')}'; no update was submitted",
                    state=state,
                )
            body = _update_body(image, options)
            if state.lower() in _READY_STATES:
                if options.get("dryRun"):
                    return _dry_run(run, catalog, image, body)
                outcome = yield from _submit(run, body)
                if outcome != _CHANGED:
                    return outcome
                changes += 1
                if changes >= _SUBMIT_ATTEMPTS:
                    return run.result(
                        "failed",
                        category="catalog_changed",
                        message=f"catalog '{catalog.get('name')}' changed between the check and "
                        f"the submit {changes} times; no update was submitted",
                    )
                taken = True
                fresh = True
                continue
            if state.lower() in _BUSY_STATES:
                if options.get("dryRun"):
                    return _dry_run(
                        run,
                        catalog,
                        image,
                        body,
                        note=f"the catalog is {state} (busy with another task): a real run "
                        f"waits up to {policy['busyWaitMinutes']} minutes for it before "
                        "submitting",
                    )
                if run.now >= deadline:
                    return _deadline_before_submit(run, f"catalog '{catalog.get('name')}'")
                if run.now >= busy_wait_until and not taken:
                    return run.result(
                        "rejected",
                        category="catalog_busy",
                        message=f"catalog '{catalog.get('name')}' stayed in state {state} for "
                        f"{policy['busyWaitMinutes']} minutes; no update was submitted",
                        state=state,
                    )
                run.set_status(
                    "waiting_for_catalog",
                    f"catalog is {state} (an update found running when submitting); waiting "
                    "for it to end"
                    if taken
                    else f"catalog is {state} (busy with another task); waiting before submitting",
                    state=state,
                    subState=catalog.get("subState"),
                    progress=catalog.get("progress"),
                )
                waits += 1
                if (yield from run.pause(waits - 1, until=deadline if taken else busy_wait_until)):
                    return _cancelled(run, submitted=False)
                continue
            if taken:
                detail = f" ({catalog['subState']})" if catalog.get("subState") else ""
                cause = f": {catalog['statusMessage']}" if catalog.get("statusMessage") else ""
                return run.result(
                    "failed",
                    category="catalog_state",
                    message=f"catalog '{catalog.get('name')}' ended in state {state}{detail} "
                    "after an update of it started (an earlier attempt of this update or "
                    f"another){cause}; nothing more was submitted",
                    state=state,
                    subState=catalog.get("subState"),
                    statusMessage=catalog.get("statusMessage"),
                )
            return run.result(
                "rejected",
                category="catalog_state",
                message=f"catalog '{catalog.get('name')}' is in state {state}; an image update "
                "needs Active or InputRequired",
                state=state,
                statusMessage=catalog.get("statusMessage"),
            )
        category = str(prepared.get("category") or "internal")
        # A just-published image may not be imported yet (not found) or still importing (not
        # ready, in a state the client reports as transitional); any other state is final.
        waiting_for_image = (
            job.get("waitForImage")
            and prepared.get("subject") == "image"
            and (
                category == "not_found"
                or (category == "image_not_ready" and bool(prepared.get("retryable")))
            )
        )
        if waiting_for_image:
            if run.now >= deadline:
                return _deadline_before_submit(run, f"the Citrix image '{job.get('image')}'")
            if run.now >= image_wait_until:
                return run.result(
                    "failed",
                    category=category,
                    message=f"the Citrix image '{job.get('image')}' was not ready after "
                    f"{policy['imageWaitMinutes']} minutes: {prepared.get('message')}",
                )
            run.set_status("waiting_for_image", str(prepared.get("message")))
            waits += 1
            if (yield from run.pause(waits - 1, until=image_wait_until)):
                return _cancelled(run, submitted=False)
            continue
        if category in _TRANSIENT_CATEGORIES and attempts + 1 < _PREPARE_ATTEMPTS:
            if run.now >= deadline:
                return _deadline_before_submit(run, "the Citrix API to answer")
            attempts += 1
            run.set_status(
                "preparing", f"retrying after a transient error: {prepared.get('message')}"
            )
            if (yield from run.pause(attempts, prepared.get("retryAfter"))):
                return _cancelled(run, submitted=False)
            continue
        outcome = "rejected" if category in _REJECT_CATEGORIES else "failed"
        return run.result(
            outcome,
            category=category,
            message=str(prepared.get("message") or category),
            transactionId=prepared.get("transactionId"),
        )


def _update_body(image: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The ``$updateImage`` body: ``VdaUpdateDelay`` always explicit."""
    body = {
        "TemplateId": image["id"],
        "CitrixPrepared": bool(
            options["citrixPrepared"]
            if options.get("citrixPrepared") is not None
            else image.get("citrixPrepared", False)
        ),
        "VdaUpdateDelay": int(options.get("vdaUpdateDelay", -1)),
    }
    if options.get("warningTitle"):
        body["WarningTitle"] = options["warningTitle"]
    if options.get("warningMessage"):
        body["WarningMessage"] = options["warningMessage"]
    return body


def _dry_run(
    run: _Run,
    catalog: dict[str, Any],
    image: dict[str, Any],
    body: dict[str, Any],
    note: str | None = None,
) -> dict[str, Any]:
    site_id = run.carry["siteId"]
    plan = {
        "siteId": site_id,
        "catalog": {
            "id": catalog["id"],
            "name": catalog.get("name"),
            "state": catalog.get("state"),
            "currentImageId": catalog.get("imageId"),
            "currentImageName": catalog.get("templateImageName"),
        },
        "image": {"id": image["id"], "name": image.get("name"), "state": image.get("state")},
        "request": {
            "method": "POST",
            "path": f"/catalogservice/{{customerId}}/{site_id}/catalogs/"
            f"{catalog['id']}/$updateImage?async=true",
            "body": body,
        },
    }
    if note:
        plan["note"] = note
    return run.result(
        "succeeded",
        message="dry run: nothing was submitted; this is the request that would be sent"
        + (f" ({note})" if note else ""),
        dryRun=True,
        plan=plan,
    )


def _remember(carry: dict[str, Any], prepared: dict[str, Any]) -> None:
    if prepared.get("siteId"):
        carry["siteId"] = prepared["siteId"]
    catalog = prepared.get("catalog") or {}
    image = prepared.get("image") or {}
    if catalog.get("id"):
        carry["catalogId"] = catalog["id"]
        carry["catalogName"] = catalog.get("name")
        carry["previousImageId"] = catalog.get("imageId")
        carry["previousImageName"] = catalog.get("templateImageName")
    if image.get("id"):
        carry["imageId"] = image["id"]
        carry["imageName"] = image.get("name")


def _submit(run: _Run, body: dict[str, Any]) -> Gen:
    """POST $updateImage; reconcile an unknown outcome by re-reading the catalog. Returns a
    final result, None when the update is running and monitoring should begin, or ``_CHANGED``
    when the submit found the catalog no longer ready for it (nothing was sent)."""
    carry = run.carry
    resubmitted = False
    unconfirmed = False  # a request of ours was sent and its answer lost
    attempts = 0
    while True:
        if run.deadline_left() <= 0:
            if unconfirmed:
                return run.result(
                    "timed_out",
                    category="deadline",
                    message="the deadline passed while reconciling an update request whose "
                    f"answer was lost (transaction {carry.get('transactionId')}); it was not "
                    f"submitted again: check catalog '{carry.get('catalogName')}'",
                )
            return _deadline_before_submit(run, "a chance to submit the update")
        transaction_id = str(run.context.new_uuid())
        run.set_status("submitting", "submitting the image update to Citrix")
        submitted = yield from run.activity(
            ACT_SUBMIT,
            {
                "siteId": carry["siteId"],
                "catalogId": carry["catalogId"],
                "targetImageId": carry["imageId"],
                "body": body,
                "transactionId": transaction_id,
            },
        )
        if submitted.get("ok"):
            carry["transactionId"] = submitted.get("transactionId") or transaction_id
            carry["location"] = submitted.get("location")
            break
        category = str(submitted.get("category") or "internal")
        if category == _CHANGED:
            if resubmitted:
                # Our first request's answer was lost and two reads did not show it; a catalog
                # that has changed since is taken to be that request at work: watch it.
                break
            return _CHANGED
        carry["transactionId"] = submitted.get("transactionId") or transaction_id
        if category in ("outcome_unknown", "internal"):
            # The POST may have reached Citrix (a lost answer, or the activity itself failed
            # after sending): never resubmit before the catalog has been re-read.
            unconfirmed = True
            verdict = yield from _reconcile(run)
            if verdict == "running":
                break
            if verdict == "resubmit" and not resubmitted:
                resubmitted = True
                continue
            if verdict == "cancelled":
                return _cancelled(run, submitted=True)
            return run.result(
                "failed",
                category="outcome_unknown",
                message="Citrix did not confirm the update request and the catalog does not show "
                f"it; check catalog '{carry.get('catalogName')}' before retrying "
                f"(transaction {carry['transactionId']}): {submitted.get('message')}",
                transactionId=carry["transactionId"],
            )
        if submitted.get("retryable") and attempts + 1 < _SUBMIT_ATTEMPTS:
            # Only errors where nothing reached Citrix (refused connection, 429) are retryable.
            attempts += 1
            if (yield from run.pause(attempts, submitted.get("retryAfter"))):
                return _cancelled(run, submitted=False)
            continue
        outcome = "rejected" if category in _REJECT_CATEGORIES else "failed"
        return run.result(
            outcome,
            category=category,
            message=str(submitted.get("message") or category),
        )

    carry["phase"] = "monitoring"
    carry["submittedAt"] = run.now.isoformat()
    if not run.context.is_replaying:
        log_event(
            logger,
            "update.submitted",
            instanceId=run.context.instance_id,
            catalogId=carry.get("catalogId"),
            catalogName=carry.get("catalogName"),
            imageId=carry.get("imageId"),
            imageName=carry.get("imageName"),
            transactionId=carry.get("transactionId"),
            vdaUpdateDelay=body["VdaUpdateDelay"],
        )
    run.set_status("monitoring", "Citrix accepted the update; watching the catalog")
    return None


def _reconcile(run: _Run) -> Gen:
    """After a lost or failed answer to the POST: 'running' if the catalog took the update
    (busy, on the new image, or already ended in a failure state, which monitoring then
    reports), 'resubmit' if two reads a poll interval apart show it ready on its old image,
    'unknown' if we could not tell, 'cancelled'. With ``async=true`` Citrix may show the update
    only after a moment, so the catalog is never read straight away and one read is not enough
    to resubmit."""
    carry = run.carry
    unchanged_reads = 0
    retry_after: float | None = None
    for attempt in range(max(2, int(run.policy["maxPollFailures"]))):
        run.set_status(
            "reconciling", "the update request's answer was lost; re-reading the catalog"
        )
        if (yield from run.pause(attempt, retry_after)):
            return "cancelled"
        checked = yield from run.activity(
            ACT_CHECK,
            {
                "siteId": carry["siteId"],
                "catalogId": carry["catalogId"],
                "targetImageId": carry["imageId"],
            },
        )
        if not checked.get("ok"):
            retry_after = checked.get("retryAfter")
            continue
        catalog = checked.get("catalog") or {}
        state = str(catalog.get("state") or "").lower()
        if state in _BUSY_STATES:
            return "running"
        if str(catalog.get("imageId") or "").lower() == str(carry["imageId"]).lower():
            return "running"  # already applied; the first poll will report success
        if state == "error":
            return "running"  # it was ready before the POST: the update failed; monitoring says how
        if state not in _READY_STATES:
            return "unknown"
        unchanged_reads += 1
        if unchanged_reads >= 2:
            return "resubmit"
    return "unknown"


def _monitor(run: _Run) -> Gen:
    """Poll until the catalog settles, the deadline passes, or a cancel arrives."""
    carry, policy = run.carry, run.policy
    polls_here = 0
    max_failures = int(policy["maxPollFailures"])
    max_unknown = int(policy["maxUnknownPolls"])
    min_unknown_seconds = float(policy["minUnknownMinutes"]) * 60
    retry_after: float | None = None
    while True:
        left = run.deadline_left()
        if left <= 0:
            return run.result(
                "timed_out",
                category="deadline",
                message=f"monitoring stopped at the deadline ({run.job.get('deadlineMinutes')} "
                "minutes); the Citrix update was neither cancelled nor resubmitted and may still "
                f"finish (transaction {carry.get('transactionId')})",
                state=run.status.get("state"),
                subState=run.status.get("subState"),
            )
        if polls_here >= int(policy["pollsPerExecution"]):
            new_job = dict(run.job)
            carry["status"] = {k: v for k, v in run.status.items() if v is not None}
            new_job["carry"] = carry
            run.context.continue_as_new(new_job)
            return None
        submitted_at = datetime.fromisoformat(carry["submittedAt"])
        delay = next_poll_delay(
            run.poll,
            elapsed=(run.now - submitted_at).total_seconds(),
            attempt=int(carry["polls"]),
            progress=run.status.get("progress"),
            eta_minutes=run.status.get("etaMinutes"),
            retry_after=retry_after,
            remaining_deadline=left,
            overdue_polls=int(carry.get("overdue", 0)),
        )
        if (yield from run.sleep(delay)):
            return _cancelled(run, submitted=True)
        checked = yield from run.activity(
            ACT_CHECK,
            {
                "siteId": carry["siteId"],
                "catalogId": carry["catalogId"],
                "targetImageId": carry["imageId"],
                "location": carry.get("location"),
            },
        )
        carry["polls"] = int(carry["polls"]) + 1
        polls_here += 1
        run.status["lastCheck"] = run.now.isoformat()
        if not checked.get("ok"):
            carry["failures"] = int(carry["failures"]) + 1
            retry_after = checked.get("retryAfter")
            if carry["failures"] >= max_failures:
                return run.result(
                    "failed",
                    category="monitoring_lost",
                    message=f"monitoring lost: {carry['failures']} status checks in a row failed "
                    f"(last: {checked.get('message')}); the update itself may still be running "
                    f"(transaction {carry.get('transactionId')})",
                )
            run.set_status(
                "monitoring",
                f"status check failed ({checked.get('category')}); will retry",
            )
            continue
        carry["failures"] = 0
        retry_after = None
        status = checked.get("status") or {}
        catalog = checked.get("catalog") or {}
        verdict = status.get("status")
        fields = {
            "state": status.get("state") or catalog.get("state"),
            "subState": status.get("subState"),
            "progress": status.get("progress"),
            "etaMinutes": status.get("etaMinutes"),
        }
        eta = fields["etaMinutes"]
        carry["overdue"] = int(carry.get("overdue", 0)) + 1 if eta is not None and eta <= 0 else 0
        if verdict == "succeeded":
            run.status.update(fields)
            return run.result(
                "succeeded",
                message=f"catalog '{carry.get('catalogName')}' is {fields['state']} on image "
                f"'{carry.get('imageName')}'",
                state=fields["state"],
            )
        if verdict == "failed":
            run.status.update(fields)
            # Citrix's own words; the normalized message repeats the sub-state shown already.
            detail = catalog.get("statusMessage") or (
                "" if fields["subState"] else status.get("message") or ""
            )
            return run.result(
                "failed",
                category="update_failed",
                message=f"the image update ended in state {fields['state']}"
                + (f" ({fields['subState']})" if fields["subState"] else "")
                + (f": {detail}" if detail else ""),
                state=fields["state"],
                subState=fields["subState"],
                statusMessage=catalog.get("statusMessage"),
            )
        if verdict == "running":
            carry["unknown"] = 0
            carry.pop("unknownSince", None)
        else:
            carry["unknown"] = int(carry["unknown"]) + 1
            since = datetime.fromisoformat(carry.setdefault("unknownSince", run.now.isoformat()))
            unknown_seconds = (run.now - since).total_seconds()
            if decide_unknown(
                int(carry["unknown"]),
                max_unknown,
                unknown_seconds=unknown_seconds,
                min_unknown_seconds=min_unknown_seconds,
            ):
                return run.result(
                    "failed",
                    category="catalog_state_unknown",
                    message=f"the catalog reported {fields['state']} for {carry['unknown']} checks "
                    f"in a row over {unknown_seconds / 60:.0f} minutes: "
                    f"{status.get('message') or 'state cannot be interpreted'}; the "
                    f"update may not have completed (transaction {carry.get('transactionId')})",
                    state=fields["state"],
                    subState=fields["subState"],
                )
        run.set_status("monitoring", _plain_progress(fields), **fields)


def _deadline_before_submit(run: _Run, waiting_for: str) -> dict[str, Any]:
    return run.result(
        "timed_out",
        category="deadline",
        message=f"the deadline ({run.job.get('deadlineMinutes')} minutes) passed while waiting "
        f"for {waiting_for}; nothing was submitted to Citrix",
    )


def _cancelled(run: _Run, *, submitted: bool) -> dict[str, Any]:
    note = (
        "monitoring was cancelled; the Citrix update itself cannot be cancelled through the "
        "Catalog Service API and may still complete"
        if submitted
        else "cancelled before anything was submitted to Citrix"
    )
    return run.result(
        "cancelled",
        category="cancelled",
        message=note,
    )


def _plain_progress(fields: dict[str, Any]) -> str:
    text = f"catalog is {fields.get('state') or 'unknown'}"
    if fields.get("subState"):
        text += f" ({fields['subState']})"
    if fields.get("progress") is not None:
        text += f", {fields['progress']}% done"
    if fields.get("etaMinutes") is not None:
        text += f", about {fields['etaMinutes']} min left"
    return text


def _plain_outcome(result: dict[str, Any]) -> str:
    if result.get("error"):
        return f"{result['outcome']}: {result['error']['message']}"
    return str(result.get("message") or result["outcome"])
