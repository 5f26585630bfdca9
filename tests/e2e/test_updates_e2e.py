"""End-to-end: requests and events through the functions host, durable host and simulator."""

from __future__ import annotations

import json
from typing import Any

from local.durable_host import DurableHost

FINANCE = "0c9a7e52-3f4b-4d8e-a1c6-7b2d9e4f5a10"
ENGINEERING = "7e1d4b2a-9c3f-4a5e-8b6d-1f2e3a4b5c60"
CALLCENTER = "a3b5c7d9-1e2f-4a6b-9c8d-0e1f2a3b4c70"
REQUEST = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "vdaUpdateDelay": 60}
VERSION = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-images/providers/"
    "Microsoft.Compute/galleries/acg_citrix/images/win11-23h2/versions/1.0.2"
)


def gallery_event(event_id: str = "evt-1") -> list[dict[str, Any]]:
    return [
        {
            "id": event_id,
            "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-images",
            "subject": VERSION,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-01-01T00:00:00Z",
            "dataVersion": "2",
            "metadataVersion": "1",
            "data": {
                "operationName": "Microsoft.Compute/galleries/images/versions/write",
                "status": "Succeeded",
                "resourceUri": VERSION,
            },
        }
    ]


def by_name(scenario: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in scenario["catalogs"] if c["name"] == name)


def route_to(*catalogs: str):
    def tweak(scenario: dict[str, Any]) -> None:
        scenario["appSettings"]["EVENT_ROUTES"][0]["catalogs"] = list(catalogs)

    return tweak


def test_http_request_updates_the_catalog_once(make_stack):
    """A pipeline request updates the catalog with one $updateImage and an explicit delay."""
    stack, client = make_stack()
    started = client.start(REQUEST)
    assert started["duplicate"] is False
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "succeeded"
    assert status["runtimeStatus"] == "Completed"
    assert client.updates_submitted(FINANCE) == 1
    received = stack.simulator.catalog(FINANCE)
    assert received["imageId"] == "img-v2"
    (sent,) = received["updateRequests"]
    assert sent["vdaUpdateDelay"] == 60 and sent["templateId"] == "img-v2"
    assert "VdaUpdateDelay" in sent["keys"]


def test_event_updates_every_routed_catalog(make_stack):
    """A gallery event updates each routed catalog once, after its Citrix image becomes Ready."""
    stack, client = make_stack(route_to("Engineering-Workstations", "CallCenter-Apps"))
    status, _ = stack.functions.deliver_event_grid("on_image_version_event", gallery_event())
    assert status in (200, 202)
    stack.run_until_idle()
    (instance,) = [i for i in stack.durable.list_instances() if i["name"] == "update_orchestrator"]
    output = instance["output"]
    assert output["outcome"] == "succeeded", output
    assert sorted(r["catalog"]["name"] for r in output["results"]) == [
        "CallCenter-Apps",
        "Engineering-Workstations",
    ]
    assert client.updates_submitted(ENGINEERING) == 1
    assert client.updates_submitted(CALLCENTER) == 1
    assert client.updates_submitted() == 2


def test_duplicate_request_and_redelivered_event_update_once(make_stack):
    """The same request while running and after success, and a re-delivered event, start nothing."""
    stack, client = make_stack()
    first = client.start(REQUEST)
    stack.durable.run_until_idle(max_virtual_seconds=600)
    while_running = client.start(REQUEST)
    assert while_running == {**first, "duplicate": True}
    stack.run_until_idle()
    after = client.start(REQUEST)
    assert after["duplicate"] is True and after["instanceId"] == first["instanceId"]
    for _ in range(3):
        stack.functions.deliver_event_grid("on_image_version_event", gallery_event("evt-1"))
        stack.run_until_idle()
    assert client.updates_submitted(FINANCE) == 1
    assert client.updates_submitted(ENGINEERING) == 1


def test_force_reruns_a_finished_update(make_stack):
    """force=true starts the same update again after it finished (here: already current)."""
    stack, client = make_stack()
    client.start(REQUEST)
    stack.run_until_idle()
    again = client.start({**REQUEST, "force": True})
    assert again["duplicate"] is False
    stack.run_until_idle()
    assert client.status(again["instanceId"])["outcome"] == "already_current"
    assert client.updates_submitted(FINANCE) == 1


def test_busy_catalog_is_waited_for_then_updated(make_stack):
    """A catalog Processing at start is waited for; the update is submitted after it settles."""

    def busy(scenario: dict[str, Any]) -> None:
        by_name(scenario, "Finance-Desktops").update(state="Processing", busyUntilMinutes=25)

    stack, client = make_stack(busy)
    started = client.start(REQUEST)
    stack.run_until_idle()
    assert client.status(started["instanceId"])["outcome"] == "succeeded"
    (post,) = [r for r in stack.citrix_requests() if r["path"].endswith("$updateImage")]
    assert post["time"] - stack.started_at >= 25 * 60


def test_unknown_catalog_or_image_is_rejected_without_update(make_stack):
    """Unknown names end `rejected` with what exists, and no $updateImage is sent."""
    stack, client = make_stack()
    bad_catalog = client.start({**REQUEST, "catalog": "Nope-Desktops"})
    bad_image = client.start({**REQUEST, "image": "win12-preview"})
    stack.run_until_idle()
    first = client.status(bad_catalog["instanceId"])
    second = client.status(bad_image["instanceId"])
    assert first["outcome"] == second["outcome"] == "rejected"
    assert (
        first["error"]["category"] == "not_found"
        and "Finance-Desktops" in first["error"]["message"]
    )
    assert "win12-preview" in second["error"]["message"]
    assert client.updates_submitted() == 0


def test_update_ending_in_error_is_failed_with_substate(make_stack):
    """Citrix ending the update in Error gives `failed` with its sub-state and message."""

    def fails(scenario: dict[str, Any]) -> None:
        by_name(scenario, "Finance-Desktops")["update"] = {
            "durationMinutes": 40,
            "outcome": "Error",
            "subState": "ErrorVdaUpdateCitrixServersFailed",
            "statusMessage": "Updating the VDAs on the Citrix servers failed.",
        }

    stack, client = make_stack(fails)
    started = client.start(REQUEST)
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "failed"
    assert status["error"]["category"] == "update_failed"
    assert status["error"]["message"].count("ErrorVdaUpdateCitrixServersFailed") == 1
    assert "Updating the VDAs" in status["error"]["message"]
    assert client.updates_submitted(FINANCE) == 1


def test_deadline_times_out_without_cancel_or_resubmit(make_stack):
    """Past the deadline the outcome is timed_out, saying the update may still finish."""
    stack, client = make_stack()
    started = client.start({**REQUEST, "deadlineMinutes": 30})
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "timed_out"
    assert "may still finish" in status["error"]["message"]
    assert client.updates_submitted(FINANCE) == 1
    assert stack.simulator.catalog(FINANCE)["state"] == "Processing"


def test_cancel_stops_monitoring_and_says_citrix_goes_on(make_stack):
    """Cancel ends monitoring as `cancelled`; the note says Citrix cannot cancel the update."""
    stack, client = make_stack()
    started = client.start(REQUEST)
    stack.durable.run_until_idle(max_virtual_seconds=900)
    code, answer = client.call("POST", f"/api/updates/{started['instanceId']}/cancel")
    assert code == 202, answer
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "cancelled"
    assert "cannot be cancelled" in status["error"]["message"]
    code, _ = client.call("POST", f"/api/updates/{started['instanceId']}/cancel")
    assert code == 409
    assert client.updates_submitted(FINANCE) == 1


def test_dry_run_returns_the_plan_and_submits_nothing(make_stack):
    """dryRun resolves everything and returns the exact request body, with no update call."""
    stack, client = make_stack()
    started = client.start({**REQUEST, "dryRun": True})
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "succeeded"
    plan = status["results"][0]["plan"]
    assert plan["request"]["body"] == {
        "TemplateId": "img-v2",
        "CitrixPrepared": False,
        "VdaUpdateDelay": 60,
    }
    assert plan["catalog"]["currentImageName"] == "win11-23h2-v1"
    assert client.updates_submitted() == 0
    real = client.start(REQUEST)
    assert real["duplicate"] is False and real["instanceId"] != started["instanceId"]


def test_eta_guided_polling_beats_fixed_30s(make_stack):
    """A 90-minute update with an ETA is seen within the max interval of its end, in far
    fewer polls than a 30-second loop would make."""
    stack, client = make_stack()
    started = client.start(REQUEST)
    stack.run_until_idle()
    result = client.status(started["instanceId"])["results"][0]
    gets = [r for r in stack.citrix_requests() if r["path"].endswith("/updateStatus")]
    submitted = next(
        r["time"] for r in stack.citrix_requests() if r["path"].endswith("$updateImage")
    )
    finished = submitted + 90 * 60
    detected = gets[-1]["time"]
    assert 0 <= detected - finished <= 600
    assert result["polls"] == len(gets) <= 180 // 4


def test_history_stays_bounded_with_continue_as_new(make_stack):
    """With few polls per execution the update still completes across several executions."""
    stack, client = make_stack(
        app_settings={"POLLS_PER_EXECUTION": "3", "POLL_MAX_INTERVAL_SECONDS": "120"}
    )
    started = client.start(REQUEST)
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "succeeded"
    assert status["polls"] > 6
    history = stack.durable.history(started["instanceId"])
    executions = [e for e in history if e.get("EventType") == 0]
    assert len(executions) >= 3


def test_status_api_speaks_plain_words_and_lists_updates(make_stack):
    """Status shows phase and progress while running; the list filters by status; 404s are JSON."""
    stack, client = make_stack()
    started = client.start(REQUEST)
    stack.durable.run_until_idle(max_virtual_seconds=1800)
    running = client.status(started["instanceId"])
    assert running["outcome"] is None and running["phase"] == "monitoring"
    assert running["state"] == "Processing" and 0 < running["progress"] < 100
    assert "done" in running["message"] and running["nextCheck"]
    code, listed = client.call("GET", "/api/updates?status=running")
    assert code == 200 and [u["instanceId"] for u in listed["updates"]] == [started["instanceId"]]
    stack.run_until_idle()
    code, listed = client.call("GET", "/api/updates?status=running")
    assert listed["updates"] == []
    code, missing = client.call("GET", "/api/updates/upd-nothing-here-0000")
    assert code == 404 and missing["error"]["field"] == "instanceId"
    code, bad = client.call("GET", "/api/updates?status=sideways")
    assert code == 400 and bad["error"]["field"] == "status"
    code, bad = client.call("GET", "/api/updates?top=%EF%BC%95")  # a full-width digit 5
    assert code == 400 and bad["error"]["field"] == "top"


def test_bad_request_is_400_and_starts_nothing(make_stack):
    """Invalid bodies are answered 400 with the field and start no orchestration."""
    stack, client = make_stack()
    code, answer = client.call(
        "POST", "/api/updates", {"catalog": "x", "image": "y", "vdaUpdateDelay": "soon"}
    )
    assert code == 400 and answer["error"]["field"] == "vdaUpdateDelay"
    code, answer = client.call("POST", "/api/updates", b"not json")
    assert code == 400 and answer["error"]["field"] == "body"
    assert stack.durable.list_instances() == []


def test_host_killed_mid_poll_resumes_with_one_update(make_stack, tmp_path):
    """A durable host dropped mid-poll, replaced by a new one on the same SQLite file, finishes
    the update without a second $updateImage."""
    import function_app

    stack, client = make_stack(store_path=str(tmp_path / "durable.sqlite"))
    started = client.start(REQUEST)
    stack.durable.run_until_idle(max_virtual_seconds=40 * 60)
    assert stack.durable.get_status(started["instanceId"])["runtimeStatus"] == "Running"
    stack.durable.stop()  # the old host is gone; nothing of it runs again
    replacement = DurableHost(
        function_app.app, store_path=str(tmp_path / "durable.sqlite"), clock=stack.clock
    )
    try:
        replacement.run_until_idle()
        final = replacement.get_status(started["instanceId"])
    finally:
        replacement.close()
    assert final is not None and final["runtimeStatus"] == "Completed"
    assert final["output"]["outcome"] == "succeeded"
    assert client.updates_submitted(FINANCE) == 1


def test_openapi_document_matches_the_code(make_stack):
    """Every route and request field in /api/openapi.json exists in the code, and vice versa."""
    import function_app
    from local.functions_host import index_functions
    from shared.api import REQUEST_FIELDS, validate_update_request
    from shared.config import Settings
    from shared.openapi import ROUTES

    _stack, client = make_stack()
    code, document = client.call("GET", "/api/openapi.json")
    assert code == 200
    documented = {
        (method.upper(), path.removeprefix("/api/"))
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = set()
    for function in index_functions(function_app.app):
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            for method in trigger.methods:
                served.add((str(getattr(method, "value", method)).upper(), trigger.route))
    assert documented == served == set(ROUTES)
    schema = document["paths"]["/api/updates"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert set(schema["properties"]) == set(REQUEST_FIELDS)
    settings = Settings.from_env({})
    for field in REQUEST_FIELDS:  # every documented field is accepted by the validator
        body: dict[str, Any] = {"catalog": "c", "image": "i"}
        sample = {"string": "x", "integer": 5, "boolean": True, "array": ["a"]}[
            REQUEST_FIELDS[field][0]
        ]
        if field == "catalogs":
            body.pop("catalog")
        body[field] = sample
        validate_update_request(json.loads(json.dumps(body)), settings)


def test_health_reports_ok_without_values(make_stack):
    """GET /api/health checks the vault and the token exchange and shows no secret."""
    _stack, client = make_stack()
    code, body = client.call("GET", "/api/health")
    assert code == 200, body
    text = json.dumps(body)
    assert "demo-secret-value" not in text


def test_cloud_event_schema_is_accepted(make_stack):
    """The same gallery event in the CloudEvents 1.0 schema updates the routed catalog."""
    stack, client = make_stack()
    cloud = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-images",
        "subject": VERSION,
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "time": "2026-01-01T00:00:00Z",
        "datacontenttype": "application/json",
        "data": gallery_event()[0]["data"],
    }
    status, _ = stack.functions.deliver_event_grid(
        "on_image_version_event", [cloud], cloud_events=True
    )
    assert status in (200, 202)
    stack.run_until_idle()
    (instance,) = stack.durable.list_instances()
    assert instance["output"]["outcome"] == "succeeded"
    assert client.updates_submitted(ENGINEERING) == 1


def test_image_that_never_becomes_ready_fails_clearly(make_stack):
    """An event whose Citrix image stays Importing fails after the wait, with no update call."""

    def stuck(scenario: dict[str, Any]) -> None:
        image = next(i for i in scenario["images"] if i["id"] == "img-102")
        image["readyAfterMinutes"] = 10_000

    stack, client = make_stack(stuck, app_settings={"IMAGE_READY_WAIT_MINUTES": "30"})
    stack.functions.deliver_event_grid("on_image_version_event", gallery_event())
    stack.run_until_idle()
    (instance,) = stack.durable.list_instances()
    output = instance["output"]
    assert output["outcome"] == "failed"
    assert output["error"]["category"] == "image_not_ready"
    assert "not ready after 30 minutes" in output["error"]["message"]
    assert "Importing" in output["error"]["message"]
    assert client.updates_submitted() == 0
    assert stack.clock.time() - stack.started_at >= 30 * 60


def test_multi_catalog_update_respects_the_concurrency_cap(make_stack):
    """With MAX_PARALLEL_CATALOGS=1 catalogs are updated one after another, each once."""
    stack, client = make_stack(app_settings={"MAX_PARALLEL_CATALOGS": "1"})
    started = client.start(
        {"catalogs": ["Finance-Desktops", "Engineering-Workstations"], "image": "win11-23h2-v2"}
    )
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "succeeded"
    assert [r["outcome"] for r in status["results"]] == ["succeeded", "succeeded"]
    posts = [r for r in stack.citrix_requests() if r["path"].endswith("$updateImage")]
    assert len(posts) == 2
    assert posts[1]["time"] - posts[0]["time"] >= 90 * 60  # the second waited for the first


def test_running_multi_catalog_update_shows_each_started_catalog_live(make_stack):
    """While a capped multi-catalog update runs, its status lists each started catalog's own
    phase, state and progress; a queued catalog is not listed until it starts."""
    stack, client = make_stack(app_settings={"MAX_PARALLEL_CATALOGS": "1"})
    started = client.start(
        {"catalogs": ["Finance-Desktops", "Engineering-Workstations"], "image": "win11-23h2-v2"}
    )
    stack.durable.run_until_idle(max_virtual_seconds=30 * 60)
    running = client.status(started["instanceId"])
    assert running["outcome"] is None
    (only,) = running["catalogUpdates"]
    assert only["instanceId"] == f"{started['instanceId']}.cat0"
    assert only["catalog"] == "Finance-Desktops" and only["phase"] == "monitoring"
    assert only["state"] == "Processing" and 0 < only["progress"] < 100
    stack.run_until_idle()
    done = client.status(started["instanceId"])
    assert done["outcome"] == "succeeded" and "catalogUpdates" not in done


def test_dry_run_is_planned_afresh_each_time(make_stack):
    """A repeated dry run is run again (the catalog may have changed), never a stale duplicate."""
    stack, client = make_stack()
    first = client.start({**REQUEST, "dryRun": True})
    stack.run_until_idle()
    client.start(REQUEST)
    stack.run_until_idle()
    again = client.start({**REQUEST, "dryRun": True})
    assert again["duplicate"] is False and again["instanceId"] == first["instanceId"]
    stack.run_until_idle()
    assert client.status(again["instanceId"])["outcome"] == "already_current"


def test_same_update_with_other_options_while_running_is_409(make_stack):
    """Asking for a running update with another delay, or with force, is a 409 naming the field;
    the same options are a plain duplicate."""
    stack, client = make_stack()
    first = client.start(REQUEST)
    stack.durable.run_until_idle(max_virtual_seconds=600)
    code, answer = client.call("POST", "/api/updates", {**REQUEST, "vdaUpdateDelay": 0})
    assert code == 409 and answer["error"]["field"] == "vdaUpdateDelay"
    assert "60" in answer["error"]["reason"] and answer["instanceId"] == first["instanceId"]
    code, answer = client.call("POST", "/api/updates", {**REQUEST, "force": True})
    assert code == 409 and answer["error"]["field"] == "force"
    assert client.start(REQUEST)["duplicate"] is True
    stack.run_until_idle()
    assert client.updates_submitted(FINANCE) == 1


def test_list_filters_go_by_outcome(make_stack):
    """A rejected update is listed under failed and not under succeeded, and vice versa."""
    stack, client = make_stack()
    good = client.start(REQUEST)
    bad = client.start({**REQUEST, "catalog": "Nope-Desktops"})
    stack.run_until_idle()

    def listed(status: str) -> list[str]:
        code, body = client.call("GET", f"/api/updates?status={status}")
        assert code == 200
        return [u["instanceId"] for u in body["updates"]]

    assert listed("failed") == [bad["instanceId"]]
    assert listed("succeeded") == [good["instanceId"]]
    assert sorted(listed("completed")) == sorted([good["instanceId"], bad["instanceId"]])
    assert listed("running") == []


def test_invalid_routes_fail_the_delivery_and_show_in_health(make_stack):
    """With broken EVENT_ROUTES the event is not dropped: delivery fails (Event Grid retries)
    and /api/health reports the setting as a configuration problem."""
    stack, client = make_stack(app_settings={"EVENT_ROUTES": '[{"gallery": "g"}]'})
    status, _ = stack.functions.deliver_event_grid("on_image_version_event", gallery_event())
    assert status == 500
    assert stack.durable.list_instances() == []
    code, health = client.call("GET", "/api/health")
    assert code == 503 and health["status"] != "healthy"
    assert not health["checks"]["configuration"]["ok"]
    assert "EVENT_ROUTES[0]" in health["checks"]["configuration"]["problems"][0]


def test_cancelling_a_multi_catalog_update_never_submits_queued_catalogs(make_stack):
    """Cancel stops the running catalog's monitoring and the queued catalogs are never
    submitted."""
    stack, client = make_stack(app_settings={"MAX_PARALLEL_CATALOGS": "1"})
    started = client.start(
        {
            "catalogs": ["Finance-Desktops", "Engineering-Workstations", "CallCenter-Apps"],
            "image": "win11-23h2-v2",
        }
    )
    stack.durable.run_until_idle(max_virtual_seconds=600)
    code, _ = client.call("POST", f"/api/updates/{started['instanceId']}/cancel")
    assert code == 202
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "cancelled"
    assert [r["outcome"] for r in status["results"]] == ["cancelled"] * 3
    assert "before anything was submitted" in status["results"][2]["error"]["message"]
    assert client.updates_submitted() == 1
    assert client.updates_submitted(FINANCE) == 1


def test_deadline_passing_while_the_catalog_is_busy_submits_nothing(make_stack):
    """A busy catalog is not waited for past the deadline: timed_out, nothing submitted."""

    def busy(scenario: dict[str, Any]) -> None:
        by_name(scenario, "Finance-Desktops").update(state="Processing", busyUntilMinutes=50)

    stack, client = make_stack(busy)
    started = client.start({**REQUEST, "deadlineMinutes": 30})
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "timed_out"
    assert "nothing was submitted" in status["error"]["message"]
    assert client.updates_submitted() == 0
