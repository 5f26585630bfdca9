"""The real DurableOrchestrationClient works unchanged against the host's loopback endpoints."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
import requests

from local.clock import RealClock
from local.durable_host import close_sdk_http_session, make_client


def _run(coroutine_factory: Any) -> Any:
    async def main() -> Any:
        try:
            return await coroutine_factory()
        finally:
            await close_sdk_http_session()

    return asyncio.run(main())


def test_client_starts_queries_raises_and_completes(host, sample):
    """start_new / get_status / raise_event through the SDK client drive an instance to the end."""
    client = make_client(host.client_binding_json())

    async def scenario() -> dict[str, Any]:
        instance_id = await client.start_new("two_events", "rpc-1", {"hello": "world"})
        pending = await client.get_status(instance_id)
        host.run_until_idle()
        running = await client.get_status(instance_id)
        await client.raise_event(instance_id, "First", {"a": 1})
        await client.raise_event(instance_id, "Second", [1, 2])
        host.run_until_idle()
        done = await client.get_status(instance_id, show_history=True)
        return {"id": instance_id, "pending": pending, "running": running, "done": done}

    seen = _run(scenario)

    assert seen["id"] == "rpc-1"
    assert seen["pending"].runtime_status == df.OrchestrationRuntimeStatus.Pending
    assert seen["running"].runtime_status == df.OrchestrationRuntimeStatus.Running
    done = seen["done"]
    assert done.runtime_status == df.OrchestrationRuntimeStatus.Completed
    # The SDK JSON-encodes event data before posting it as JSON, so (as in Azure, see
    # azure-functions-durable-python#295) the orchestrator receives JSON *text*.
    assert done.output == ['{"a": 1}', "[1, 2]"]
    assert json.loads(done.input_) == {"hello": "world"}
    assert any(e["EventType"] == "ExecutionCompleted" for e in done.historyEvents)


def test_client_get_status_of_unknown_instance_is_falsy(host):
    """A 404 status (JSON body) gives the SDK's falsy DurableOrchestrationStatus."""
    client = make_client(host.client_binding_json())

    status = _run(lambda: client.get_status("nobody"))

    assert not status


def test_client_terminate_purge_and_queries(host, sample):
    """terminate, get_status_by/get_status_all and purge_instance_history work via RPC."""
    client = make_client(host.client_binding_json())

    async def scenario() -> dict[str, Any]:
        await client.start_new("waits_forever", "rpc-wait")
        await client.start_new("chain", "rpc-chain", {"n": 1})
        host.run_until_idle()
        running = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running])
        everything = await client.get_status_all()
        await client.terminate("rpc-wait", "operator said stop")
        terminated = await client.get_status("rpc-wait")
        purged = await client.purge_instance_history("rpc-wait")
        missing = await client.purge_instance_history("rpc-wait")
        return {
            "running": [s.instance_id for s in running],
            "all": sorted(s.instance_id for s in everything),
            "terminated": terminated,
            "purged": purged.instances_deleted,
            "missing": missing.instances_deleted,
        }

    seen = _run(scenario)

    assert seen["running"] == ["rpc-wait"]
    assert seen["all"] == ["rpc-chain", "rpc-wait"]
    assert seen["terminated"].runtime_status == df.OrchestrationRuntimeStatus.Terminated
    assert seen["terminated"].output == "operator said stop"
    assert seen["purged"] == 1
    assert seen["missing"] == 0
    assert host.get_status("rpc-wait") is None


def test_client_start_refused_by_non_running_states(make_host, sample):
    """With NonRunningStates a second start of a running id raises in the SDK (HTTP 409)."""
    host = make_host(overridable_existing_instance_states="NonRunningStates")
    client = make_client(host.client_binding_json())

    async def scenario() -> str:
        await client.start_new("waits_forever", "only-one")
        try:
            await client.start_new("waits_forever", "only-one")
        except Exception as exc:
            return str(exc)
        return "no error"

    message = _run(scenario)

    assert "already exists" in message


def test_client_start_of_unknown_orchestrator_raises_its_message(host):
    """HTTP 400 with ExceptionMessage becomes the SDK's exception text."""
    client = make_client(host.client_binding_json())

    async def scenario() -> str:
        try:
            await client.start_new("missing_orchestrator")
        except Exception as exc:
            return str(exc)
        return "no error"

    assert "doesn't exist" in _run(scenario)


def test_check_status_response_urls_are_served(host, sample):
    """create_check_status_response URLs point at webhook routes that answer over HTTP."""
    client = make_client(host.client_binding_json())
    instance_id = host.start_new("waits_forever", "hooked")
    request = func.HttpRequest(
        method="POST", url=f"{host.origin}/api/start/waits_forever", body=b"{}", headers={}
    )

    response = client.create_check_status_response(request, instance_id)
    links = json.loads(response.get_body())
    running = requests.get(links["statusQueryGetUri"], timeout=10)
    host.run_until_idle()
    raised = requests.post(
        links["sendEventPostUri"].replace("{eventName}", "Never"),
        json={"value": 42},
        timeout=10,
    )
    host.run_until_idle()
    done = requests.get(links["statusQueryGetUri"], timeout=10)

    assert response.status_code == 202
    assert links["statusQueryGetUri"].startswith(f"{host.origin}/runtime/webhooks/durabletask/")
    assert running.status_code == 202 and running.json()["runtimeStatus"] == "Pending"
    assert raised.status_code == 202
    assert done.status_code == 200
    assert done.json()["output"] == {"value": 42}
    gone = requests.post(links["terminatePostUri"].replace("{text}", "late"), timeout=10)
    assert gone.status_code == 410
    missing = requests.get(links["statusQueryGetUri"].replace("hooked", "nope"), timeout=10)
    assert missing.status_code == 404 and "Message" in missing.json()


def test_binding_json_uses_the_given_function_origin(host):
    """client_binding_json(function_origin) puts that origin in the management URLs."""
    binding = json.loads(host.client_binding_json("http://127.0.0.1:7071"))

    assert binding["taskHubName"] == "catalogupdater"
    assert binding["rpcBaseUrl"] == f"{host.origin}/durabletask/"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert binding["managementUrls"]["statusQueryGetUri"].startswith(
        "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/INSTANCEID?"
    )


@pytest.mark.parametrize("speed", [6000.0])
def test_background_mode_runs_on_a_real_clock(make_host, sample, speed):
    """run_in_background processes work and fires timers on a (sped-up) real clock."""
    host = make_host(clock=RealClock(speed=speed))
    host.run_in_background()
    client = make_client(host.client_binding_json())

    instance_id = _run(lambda: client.start_new("slow_chain", "bg-1"))
    status = host.wait_for(instance_id, timeout_seconds=60)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"n": 5}
    assert sample.CALLS["add_one"] == 5


def test_webhook_routes_can_be_served_in_process(host, sample):
    """handle_request answers webhook URLs for another server (the functions host) in-process."""
    from local.durable_host import handle_request

    instance_id = host.start_new("waits_forever", "inproc")
    base = "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances"

    pending = handle_request(host, "GET", f"{base}/{instance_id}?taskHub=catalogupdater")
    raised = handle_request(
        host,
        "POST",
        f"{base}/{instance_id}/raiseEvent/Never",
        b'"done"',
        {"Content-Type": "application/json"},
    )
    wrong_type = handle_request(
        host, "POST", f"{base}/{instance_id}/raiseEvent/Never", b"x", {"Content-Type": "text/plain"}
    )
    host.run_until_idle()
    done = handle_request(host, "GET", f"{base}/{instance_id}")
    purged = handle_request(host, "DELETE", f"{base}/{instance_id}")
    missing = handle_request(host, "GET", f"{base}/{instance_id}")

    assert pending.status == 202 and pending.headers["Retry-After"] == "5"
    assert raised.status == 202
    assert wrong_type.status == 400
    assert done.status == 200 and done.body["output"] == "done"
    assert purged.status == 200 and purged.body == {"instancesDeleted": 1}
    assert missing.status == 404
