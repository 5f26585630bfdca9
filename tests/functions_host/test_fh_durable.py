"""Local functions host + local durable host: durable client starters run the real SDK client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
import requests

from local.clock import VirtualClock
from local.durable_host import DurableHost
from local.functions_host import FunctionsHost

KEY = "durable-test-key"


@pytest.fixture
def durable_app(load_app: Callable[[str], ModuleType]) -> ModuleType:
    return load_app("durable_sample_app.py")


@pytest.fixture
def hosts(durable_app: ModuleType) -> Iterator[tuple[FunctionsHost, DurableHost]]:
    durable = DurableHost(durable_app.app, clock=VirtualClock())
    functions = FunctionsHost(durable_app.app, durable_host=durable, function_key=KEY)
    functions.start()
    try:
        yield functions, durable
    finally:
        functions.stop()
        durable.stop()


def test_http_starter_returns_check_status_urls_on_the_functions_host(
    hosts: tuple[FunctionsHost, DurableHost],
) -> None:
    """POST to an HTTP starter gives 202 whose management URLs point at this host and answer."""
    functions, durable = hosts
    base = functions.start()
    response = requests.post(f"{base}/api/start/Ada?code={KEY}&id=inst-1", timeout=30)
    assert response.status_code == 202, response.text
    payload = response.json()
    assert payload["id"] == "inst-1"
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    assert payload["statusQueryGetUri"].startswith(
        f"{base}/runtime/webhooks/durabletask/instances/inst-1"
    )
    durable.run_until_idle()
    status = requests.get(payload["statusQueryGetUri"], timeout=30)
    assert status.status_code == 200, status.text
    document = status.json()
    assert document["runtimeStatus"] == "Completed"
    assert document["output"] == {"greeting": "Hello Ada"}


def test_repeated_durable_client_calls_share_one_event_loop(
    hosts: tuple[FunctionsHost, DurableHost],
) -> None:
    """Several client invocations in a row work (the SDK's global aiohttp session stays usable)."""
    functions, durable = hosts
    base = functions.start()
    for name in ("A", "B", "C"):
        response = requests.post(f"{base}/api/start/{name}?code={KEY}&id=i-{name}", timeout=30)
        assert response.status_code == 202, response.text
    durable.run_until_idle()
    for name in ("A", "B", "C"):
        status = requests.get(f"{base}/api/status/i-{name}", timeout=30).json()
        assert status == {"runtimeStatus": "Completed", "output": {"greeting": f"Hello {name}"}}
    assert requests.get(f"{base}/api/status/missing", timeout=30).status_code == 404


def test_event_grid_starter_starts_an_orchestration(
    hosts: tuple[FunctionsHost, DurableHost],
) -> None:
    """An Event Grid delivery to a durable-client function starts the orchestration it names."""
    functions, durable = hosts
    event = {
        "id": "e1",
        "subject": "gallery/image/1.0.0",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-03-01T10:15:30Z",
        "data": {},
        "dataVersion": "2",
    }
    response = requests.post(
        functions.eventgrid_url("event_start"),
        json=[event],
        headers={"aeg-event-type": "Notification"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    durable.run_until_idle()
    status = durable.get_status("evt-e1")
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"greeting": "Hello gallery/image/1.0.0"}


def test_durable_client_function_without_durable_host_is_500(durable_app: ModuleType) -> None:
    """A durable-client function on a host with no durable host fails with a generic 500."""
    functions = FunctionsHost(durable_app.app, function_key=KEY)
    try:
        status, _, body = functions.invoke_http("POST", "/api/start/x", params={"code": KEY})
        assert status == 500
        assert json.loads(body)["error"] == "the function failed; see the host log"
        status, _, body = functions.invoke_http("GET", "/runtime/webhooks/durabletask/instances/x")
        assert status == 404
    finally:
        functions.stop()


def test_fresh_hosts_in_the_same_process_work_again(durable_app: ModuleType) -> None:
    """After a host pair stops, a new pair in the same process still drives the SDK client."""
    for round_ in range(2):
        durable = DurableHost(durable_app.app, clock=VirtualClock())
        functions = FunctionsHost(durable_app.app, durable_host=durable, function_key=KEY)
        try:
            status, _, body = functions.invoke_http(
                "POST", f"/api/start/R{round_}", params={"code": KEY, "id": f"r{round_}"}
            )
            assert status == 202, body
            durable.run_until_idle()
            document = durable.get_status(f"r{round_}")
            assert document is not None
            assert document["output"] == {"greeting": f"Hello R{round_}"}
        finally:
            functions.stop()
            durable.stop()
