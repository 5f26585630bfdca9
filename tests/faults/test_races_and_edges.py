"""Races and edge cases on the whole stack (virtual time): the same catalog asked for twice, a
cancel before the submit, short-lived Unknown states, lost answers followed by fast endings,
waits that must end at the deadline. Each case checks the outcome and the $updateImage calls
the simulator received."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

from local.citrix_simulator.testing import ENGINEERING, FINANCE, SITE, base_scenario
from local.stack import LocalStack
from local.testing_stack import (
    CATALOG_PATH,
    POST_UPDATE,
    STATUS_PATH,
    fault_scenario,
    run_update,
    start_update,
)


def _active_on_old_image() -> dict[str, Any]:
    return {"id": FINANCE, "name": "Finance-Desktops", "state": "Active", "imageId": "img-v1"}


def _outcome(stack: LocalStack, instance_id: str) -> dict[str, Any]:
    status = stack.durable.get_status(instance_id) or {}
    return dict(status.get("output") or {})


# ------------------------------------------------------------------- one catalog, asked twice


def test_same_catalog_by_name_and_by_id_in_one_request_is_updated_once() -> None:
    """Two entries of one request resolve to the same catalog: one $updateImage; the second
    entry waits for it and ends already_current, so the request succeeds."""
    request = {"catalogs": ["Finance-Desktops", FINANCE], "image": "win11-23h2-v2"}
    run = run_update(fault_scenario(), request, catalog_id=FINANCE)
    assert [r["status"] for r in run.calls("POST", POST_UPDATE)] == [202]
    assert len(run.update_requests) == 1
    assert run.outcome == "succeeded", run.error
    assert sorted(r["outcome"] for r in run.output["results"]) == [
        "already_current",
        "succeeded",
    ]


def test_second_request_by_id_seconds_later_waits_instead_of_resubmitting() -> None:
    """A request by id five seconds after one by name (within the reused listing's lifetime)
    finds the catalog busy, waits and ends already_current: one $updateImage in all."""
    with LocalStack(fault_scenario()) as stack:
        _, first = start_update(stack, {"catalog": "Finance-Desktops", "image": "win11-23h2-v2"})
        stack.durable.run_until_idle(max_virtual_seconds=5)
        _, second = start_update(stack, {"catalog": FINANCE, "image": "img-v2"})
        stack.run_until_idle()
        posts = [r for r in stack.citrix_requests() if r["path"].endswith("$updateImage")]
        assert [r["status"] for r in posts] == [202]
        assert _outcome(stack, first["instanceId"])["outcome"] == "succeeded"
        assert _outcome(stack, second["instanceId"])["outcome"] == "already_current"


def test_instant_update_is_not_applied_twice_by_a_second_request() -> None:
    """An update that finishes at once leaves the listing stale for a few seconds: the second
    request's submit reads the catalog afresh, finds the new image and sends nothing."""
    scenario = fault_scenario(update={"durationMinutes": 0})
    with LocalStack(scenario) as stack:
        start_update(stack, {"catalog": "Finance-Desktops", "image": "win11-23h2-v2"})
        stack.durable.run_until_idle(max_virtual_seconds=5)
        _, second = start_update(stack, {"catalog": FINANCE, "image": "img-v2"})
        stack.run_until_idle()
        assert stack.simulator is not None
        assert len(stack.simulator.catalog(FINANCE)["updateRequests"]) == 1
        result = _outcome(stack, second["instanceId"])
        assert result["outcome"] == "already_current", result


# ----------------------------------------------------------------------- cancel before submit


def test_cancel_while_preparing_submits_nothing() -> None:
    """A cancel that arrives while the prepare activity is still running (its image listing
    hangs for a second) ends the update cancelled before anything is sent to Citrix."""
    hang = {"method": "GET", "path": "*/images", "calls": [1], "action": "hang", "hangSeconds": 1}
    with LocalStack(fault_scenario(faults=[hang])) as stack:
        _, started = start_update(stack, {"catalog": "Finance-Desktops", "image": "win11-23h2-v2"})
        instance_id = started["instanceId"]

        def cancel_once_preparing() -> None:
            give_up = time.monotonic() + 10
            while stack.durable.activity_invocations == 0 and time.monotonic() < give_up:
                time.sleep(0.01)
            time.sleep(0.2)  # the prepare activity is inside its hanging request now
            stack.durable.raise_event(instance_id, "cancel", {"reason": "test"})

        canceller = threading.Thread(target=cancel_once_preparing)
        canceller.start()
        stack.run_until_idle()
        canceller.join()
        result = _outcome(stack, instance_id)
        posts = [r for r in stack.citrix_requests() if r["path"].endswith("$updateImage")]
        assert posts == []
        assert result["outcome"] == "cancelled"
        assert "before anything was submitted" in result["error"]["message"]


# ---------------------------------------------------------------- states that are not answers


def test_update_that_shows_late_is_not_a_failure() -> None:
    """The first three status reads still show the old image (async $updateImage not visible
    yet, about two and a half minutes): the update is watched on and succeeds."""
    stale = {
        "method": "GET",
        "path": STATUS_PATH,
        "calls": [1, 2, 3],
        "status": 200,
        "body": _active_on_old_image(),
    }
    run = run_update(fault_scenario(faults=[stale]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", POST_UPDATE)) == 1


def test_unknown_for_good_is_decided_after_the_grace_time_not_sooner() -> None:
    """Unknown from minute 10 on: the failure comes once three checks in a row span at least
    15 minutes, and within one maximum interval after that."""
    update = {"durationMinutes": 90, "glitch": {"atMinutes": 10, "state": "Unknown"}}
    run = run_update(fault_scenario(update=update), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "catalog_state_unknown"
    submitted = run.calls("POST", POST_UPDATE)[0]["time"]
    unknown_from = submitted + 10 * 60
    reads = [r for r in run.calls("GET", STATUS_PATH) if r["time"] >= unknown_from]
    assert len(reads) >= 3
    assert reads[-1]["time"] - reads[0]["time"] >= 15 * 60
    assert reads[-1]["time"] - unknown_from <= 15 * 60 + 2 * 600


# ----------------------------------------------------------- lost answers, then fast endings


def test_lost_answer_then_fast_error_reports_the_error() -> None:
    """$updateImage applied but answered 502, and the update fails within seconds: the outcome
    is update_failed with Citrix's sub-state and message, not 'outcome unknown'."""
    lost = {"method": "POST", "path": POST_UPDATE, "calls": [1], "status": 502}
    lost["applyUpdate"] = True
    update = {
        "durationMinutes": 0.2,
        "outcome": "Error",
        "subState": "ErrorMasterImageInvalidOs",
        "statusMessage": "bad OS",
    }
    run = run_update(fault_scenario(faults=[lost], update=update), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "update_failed"
    assert "ErrorMasterImageInvalidOs" in run.error["message"]
    assert "bad OS" in run.error["message"]
    assert len(run.calls("POST", POST_UPDATE)) == 1


def test_lost_answer_shown_late_is_watched_not_resubmitted() -> None:
    """Applied but answered 502, and the catalog shows the old image for the two reconcile
    reads: the resubmit's own read finds it Processing, so it is watched; one update applied,
    one POST, outcome succeeded."""
    lost = {"method": "POST", "path": POST_UPDATE, "calls": [1], "status": 502}
    lost["applyUpdate"] = True
    stale = {
        "method": "GET",
        "path": f"/catalogservice/*/*/catalogs/{FINANCE}",
        "calls": [2, 3],  # the first read is the submit's own check, before the POST
        "status": 200,
        "body": _active_on_old_image(),
    }
    run = run_update(fault_scenario(faults=[lost, stale]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", POST_UPDATE)) == 1


def test_resubmit_refused_because_the_first_took_effect_is_watched() -> None:
    """Applied but answered 502; three reads (two reconcile reads and the resubmit's own check)
    still show the old image, and Citrix refuses the resubmit with 400 as the catalog is busy:
    the first update is watched to its end instead of ending rejected."""
    lost = {"method": "POST", "path": POST_UPDATE, "calls": [1], "status": 502}
    lost["applyUpdate"] = True
    stale = {
        "method": "GET",
        "path": f"/catalogservice/*/*/catalogs/{FINANCE}",
        "calls": [2, 3, 4],
        "status": 200,
        "body": _active_on_old_image(),
    }
    run = run_update(fault_scenario(faults=[lost, stale]), catalog_id=FINANCE)
    assert [r["status"] for r in run.calls("POST", POST_UPDATE)] == [502, 400]
    assert len(run.update_requests) == 1
    assert run.outcome == "succeeded", run.error


def test_redirect_to_the_submit_is_reconciled_not_failed() -> None:
    """$updateImage applied but answered 302 (never followed): reconciled like a lost answer,
    one update, outcome succeeded."""
    moved = {"method": "POST", "path": POST_UPDATE, "calls": [1], "status": 302}
    moved["applyUpdate"] = True
    moved["headers"] = {"location": "/elsewhere"}
    run = run_update(fault_scenario(faults=[moved]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", POST_UPDATE)) == 1


# --------------------------------------------------------------------- waits and the deadline


def _busy_for(minutes: float) -> dict[str, Any]:
    scenario = fault_scenario()
    scenario["catalogs"][0]["busyUntilMinutes"] = minutes
    return scenario


def test_waiting_for_a_busy_catalog_ends_at_the_deadline() -> None:
    """A catalog busy for hours and a 30-minute deadline: timed_out at the deadline (not
    minutes after it), nothing submitted."""
    request = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "deadlineMinutes": 30}
    run = run_update(_busy_for(500), request, catalog_id=FINANCE)
    assert run.outcome == "timed_out"
    assert run.calls("POST", POST_UPDATE) == []
    assert 30 * 60 <= run.output["durationSeconds"] <= 30 * 60 + 5


def test_waiting_for_a_busy_catalog_ends_at_the_busy_limit() -> None:
    """With the default busy limit (120 minutes) the wait ends rejected/catalog_busy at that
    limit, not one back-off step later."""
    run = run_update(_busy_for(500), catalog_id=FINANCE)
    assert run.outcome == "rejected"
    assert run.error["category"] == "catalog_busy"
    assert 120 * 60 <= run.output["durationSeconds"] <= 120 * 60 + 5
    assert run.calls("POST", POST_UPDATE) == []


def test_dry_run_on_a_busy_catalog_answers_at_once_with_a_note() -> None:
    """A dry run does not wait for a busy catalog: the plan comes back at once and says a real
    run would wait first; nothing is submitted."""
    request = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "dryRun": True}
    run = run_update(_busy_for(500), request, catalog_id=FINANCE)
    assert run.outcome == "succeeded"
    assert "wait" in run.output["plan"]["note"]
    assert run.output["durationSeconds"] < 60
    assert run.calls("POST", POST_UPDATE) == []


# ------------------------------------------------------------------ multi-catalog summaries


def test_multi_catalog_error_comes_from_a_catalog_with_the_overall_outcome() -> None:
    """One catalog unknown (rejected) and one whose update fails: the overall outcome is failed
    and its error is the failed catalog's, not the rejected one's."""
    scenario = copy.deepcopy(base_scenario())
    scenario["token"] = {"lifetimeSeconds": 86400}
    engineering = next(c for c in scenario["catalogs"] if c["id"] == ENGINEERING)
    engineering["update"] = {"durationMinutes": 10, "outcome": "Error", "subState": "Boom"}
    request = {"catalogs": ["nope", "Engineering"], "image": "win11-23h2-v2"}
    run = run_update(scenario, request, catalog_id=ENGINEERING)
    assert run.outcome == "failed"
    assert run.error["category"] == "update_failed"
    assert "Boom" in run.error["message"]
    assert run.calls("GET", CATALOG_PATH)  # the failing catalog was read, so it really ran


# ------------------------------------------------------------------ the update status URL


def test_status_url_answering_404_falls_back_to_the_catalog() -> None:
    """The location URL answers 404 on every read: each check reads the catalog instead and
    the update succeeds, without 'monitoring lost'."""
    gone = {"method": "GET", "path": STATUS_PATH, "status": 404}
    run = run_update(fault_scenario(faults=[gone]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    status_reads = run.calls("GET", STATUS_PATH)
    catalog_reads = run.calls("GET", f"/catalogservice/*/*/catalogs/{FINANCE}")
    assert status_reads and all(r["status"] == 404 for r in status_reads)
    # one read before the POST, then one fallback read per check
    assert len(catalog_reads) == len(status_reads) + 1


def test_stored_status_url_on_another_host_is_not_followed() -> None:
    """A check whose stored location is not on the configured API host (the setting changed
    since the submit) reads the catalog directly and never calls that host."""
    from shared.activities import check_catalog

    with LocalStack(fault_scenario()) as stack:
        assert stack.settings is not None
        before = len(stack.citrix_requests())
        answer = check_catalog(
            {
                "siteId": SITE,
                "catalogId": FINANCE,
                "targetImageId": "img-v2",
                "location": "http://127.0.0.1:9/catalogservice/x/y/catalogs/z/updateStatus",
            }
        )
        reads = stack.citrix_requests()[before:]
    assert answer["ok"] is True, answer
    assert answer["catalog"]["id"] == FINANCE
    assert [r["path"].rsplit("/", 1)[-1] for r in reads if r["method"] == "GET"][-1] == FINANCE


# ------------------------------------------------------- the deadline and the submit itself


def test_catalog_ready_only_at_the_deadline_is_not_submitted() -> None:
    """The catalog stops being busy a minute before a 30-minute deadline and the wait wakes
    at the deadline: timed_out, nothing submitted (not a POST followed by 'timed out')."""
    request = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "deadlineMinutes": 30}
    run = run_update(_busy_for(29), request, catalog_id=FINANCE)
    assert run.outcome == "timed_out"
    assert "nothing was submitted" in run.error["message"]
    assert run.calls("POST", POST_UPDATE) == []


def test_lost_answer_is_not_resubmitted_after_the_deadline() -> None:
    """The POST's connection drops and a 1-minute deadline passes while reconciling: timed_out
    naming the lost request, and no second POST."""
    drop = {"method": "POST", "path": POST_UPDATE, "calls": [1], "action": "drop"}
    request = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "deadlineMinutes": 1}
    run = run_update(fault_scenario(faults=[drop]), request, catalog_id=FINANCE)
    assert run.outcome == "timed_out"
    assert "answer was lost" in run.error["message"]
    assert "not submitted again" in run.error["message"]
    assert len(run.calls("POST", POST_UPDATE)) == 1


class _WorkerDied(BaseException):
    """Stands for the worker process dying after the activity's POST, before its completion
    is recorded (the local durable host then runs the activity again, at least once)."""


def _submit_dies_once_after_posting(monkeypatch: Any) -> None:
    import shared.activities as activities

    real = activities.submit_update
    died: list[bool] = []

    def dies_once(payload: dict[str, Any]) -> dict[str, Any]:
        answer = real(payload)
        if not died:
            died.append(True)
            raise _WorkerDied("worker died after the POST")
        return answer

    monkeypatch.setattr(activities, "submit_update", dies_once)


def _run_with_a_dying_submit(monkeypatch: Any, update: dict[str, Any]) -> dict[str, Any]:
    _submit_dies_once_after_posting(monkeypatch)
    with LocalStack(fault_scenario(update=update)) as stack:
        _, started = start_update(stack, {"catalog": "Finance-Desktops", "image": "win11-23h2-v2"})
        try:
            stack.run_until_idle()
        except _WorkerDied:
            stack.run_until_idle()  # a new worker picks the activity up again
        assert stack.simulator is not None
        assert len(stack.simulator.catalog(FINANCE)["updateRequests"]) == 1
        posts = [r for r in stack.citrix_requests() if r["path"].endswith("$updateImage")]
        assert len(posts) == 1
        status = stack.durable.get_status(started["instanceId"]) or {}
        assert status["runtimeStatus"] == "Completed"
        return dict(status["output"])


def test_submit_run_again_after_its_post_waits_for_that_update(monkeypatch) -> None:
    """The submit activity runs twice (the first run's POST applied): the second sees the
    catalog busy, sends nothing, waits past the busy limit (150 minutes) and reports the
    catalog on the new image, saying it found the update running."""
    result = _run_with_a_dying_submit(monkeypatch, {"durationMinutes": 150})
    assert result["outcome"] == "already_current", result
    assert "being updated when this update went to submit" in result["message"]


def test_submit_run_again_after_its_post_reports_that_update_failing(monkeypatch) -> None:
    """As above, and the update ends in Error: failed, with Citrix's sub-state, not rejected."""
    update = {"durationMinutes": 40, "outcome": "Error", "subState": "ErrorBoom"}
    result = _run_with_a_dying_submit(monkeypatch, update)
    assert result["outcome"] == "failed", result
    assert "ErrorBoom" in result["error"]["message"]


def test_same_catalog_twice_with_an_update_longer_than_the_busy_limit_succeeds() -> None:
    """The sibling entry waits for a 150-minute update of its own catalog (longer than the
    120-minute busy limit) and ends already_current; one $updateImage, request succeeded."""
    request = {"catalogs": ["Finance-Desktops", FINANCE], "image": "win11-23h2-v2"}
    scenario = fault_scenario(update={"durationMinutes": 150})
    run = run_update(scenario, request, catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.calls("POST", POST_UPDATE)) == 1


def test_rerun_does_not_show_the_previous_runs_catalogs_as_live() -> None:
    """A failed multi-catalog update run again: while its second catalog is still queued, the
    status does not list that catalog's finished update from the first run."""
    scenario = fault_scenario()
    engineering = next(c for c in scenario["catalogs"] if c["id"] == ENGINEERING)
    engineering["update"] = {"durationMinutes": 60}
    scenario["faults"] = [
        {"method": "POST", "path": f"*/catalogs/{ENGINEERING}/$updateImage", "calls": [1]}
    ]
    scenario["faults"][0]["status"] = 403
    request = {"catalogs": ["Engineering", "Finance-Desktops"], "image": "win11-23h2-v2"}
    with LocalStack(scenario, app_settings={"MAX_PARALLEL_CATALOGS": "1"}) as stack:
        _, first = start_update(stack, request)
        stack.run_until_idle()
        assert _outcome(stack, first["instanceId"])["outcome"] == "failed"
        _, again = start_update(stack, request)
        assert again["instanceId"] == first["instanceId"]
        stack.durable.run_until_idle(max_virtual_seconds=120)
        code, _, body = stack.functions.invoke_http(
            "GET",
            f"/api/updates/{again['instanceId']}",
            headers={"x-functions-key": stack.function_key},
        )
        live = json.loads(body)["catalogUpdates"]
        assert code == 200
        assert [u["instanceId"].rsplit(".", 1)[-1] for u in live] == ["cat0"]
        assert live[0]["runtimeStatus"] == "Running"
