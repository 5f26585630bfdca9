"""The simulator itself: request shapes it accepts, admin routes, scenario validation, the
standalone command and the demo scenario."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local.citrix_simulator import CitrixSimulator, ScenarioError, load_scenario, parse_scenario
from local.citrix_simulator.testing import CLIENT_ID, CUSTOMER, ENGINEERING, FINANCE, SECRET, SITE

ROOT = Path(__file__).resolve().parents[2]


def _token(http, sim) -> str:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    answer = http.post(
        f"{sim.base_url}/cctrustoauth2/{CUSTOMER}/tokens/clients", data=form, timeout=5
    )
    return str(answer.json()["access_token"])


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"CwsAuth Bearer={token}", "Accept": "application/json"}


def test_admin_routes(start_sim, sessions, connect):
    """/_sim/requests, /_sim/state and /_sim/reset-log work over HTTP and are not logged."""
    sim = start_sim()
    client, _ = connect(sim)
    client.list_catalogs(SITE)
    http = sessions()
    log = http.get(f"{sim.base_url}/_sim/requests", timeout=5).json()["items"]
    assert [(e["method"], e["status"]) for e in log] == [("POST", 200), ("GET", 200)]
    assert set(log[1]) == {"method", "path", "query", "status", "time", "fault"}
    assert "?" not in log[1]["path"]
    state = http.get(f"{sim.base_url}/_sim/state", timeout=5).json()
    assert state["tokensIssued"] == 1 and len(state["catalogs"]) == 3
    assert http.post(f"{sim.base_url}/_sim/reset-log", timeout=5).status_code == 204
    assert sim.requests == []


def test_camel_and_pascal_request_bodies_and_sync_form(start_sim, sessions):
    """$updateImage binds camelCase like PascalCase; the sync updateImage form answers 200."""
    sim = start_sim()
    http = sessions()
    token = _token(http, sim)
    base = f"{sim.base_url}/catalogservice/{CUSTOMER}/{SITE}/catalogs"
    camel = http.post(
        f"{base}/{FINANCE}/$updateImage?async=true",
        json={"templateId": "img-v2", "citrixPrepared": False, "vdaUpdateDelay": "60"},
        headers=_headers(token),
        timeout=5,
    )
    assert camel.status_code == 202 and camel.json() == FINANCE
    assert camel.headers["location"].endswith(f"/catalogs/{FINANCE}/updateStatus")
    assert camel.headers["citrix-transactionId"]
    assert sim.catalog(FINANCE)["updateRequests"][0]["vdaUpdateDelay"] == 60
    sync = http.post(
        f"{base}/{ENGINEERING}/updateImage",
        json={"TemplateId": "img-v2", "CitrixPrepared": False, "VdaUpdateDelay": 0},
        headers=_headers(token),
        timeout=5,
    )
    assert sync.status_code == 200 and sync.json() == ENGINEERING and "location" not in sync.headers


def test_request_validation(start_sim, sessions):
    """Missing TemplateId, non-JSON bodies, wrong content type and Accept get documented errors."""
    sim = start_sim()
    http = sessions()
    token = _token(http, sim)
    base = f"{sim.base_url}/catalogservice/{CUSTOMER}/{SITE}"
    url = f"{base}/catalogs/{FINANCE}/$updateImage?async=true"
    missing = http.post(url, json={"VdaUpdateDelay": 0}, headers=_headers(token), timeout=5)
    assert missing.status_code == 400 and missing.json()["type"].endswith("common/missing")
    text = http.post(
        url, data="x", headers={**_headers(token), "Content-Type": "text/plain"}, timeout=5
    )
    assert text.status_code == 415
    accept = http.get(
        f"{sim.base_url}/catalogservice/{CUSTOMER}/sites",
        headers={"Authorization": f"CwsAuth Bearer={token}", "Accept": "*/*"},
        timeout=5,
    )
    assert accept.status_code == 406


def test_transaction_id_is_echoed(start_sim, sessions):
    """The caller's Citrix-TransactionId comes back in citrix-transactionId."""
    sim = start_sim()
    http = sessions()
    token = _token(http, sim)
    answer = http.get(
        f"{sim.base_url}/catalogservice/{CUSTOMER}/sites",
        headers={**_headers(token), "Citrix-TransactionId": "abc-123"},
        timeout=5,
    )
    assert answer.headers["citrix-transactionId"] == "abc-123"


def test_own_images_need_include_customer_prepared(start_sim, sessions):
    """Without includeCustomerPrepared=true the image list omits the customer's own images."""
    sim = start_sim()
    http = sessions()
    token = _token(http, sim)
    url = f"{sim.base_url}/catalogservice/{CUSTOMER}/{SITE}/images"
    bare = http.get(url, headers=_headers(token), timeout=5).json()["items"]
    assert [i["id"] for i in bare] == ["img-citrix"]
    full = http.get(
        url, params={"includeCustomerPrepared": "true"}, headers=_headers(token), timeout=5
    )
    assert len(full.json()["items"]) == 4 and full.json()["overviews"] == full.json()["items"]


def test_status_overview_shape(start_sim, sessions, clock):
    """updateStatus answers a CatalogStatusOverview with progress and estimatedTimeInMinute."""
    sim = start_sim()
    http = sessions()
    token = _token(http, sim)
    base = f"{sim.base_url}/catalogservice/{CUSTOMER}/{SITE}/catalogs/{FINANCE}"
    http.post(
        f"{base}/$updateImage?async=true",
        json={"TemplateId": "img-v2", "CitrixPrepared": False, "VdaUpdateDelay": 0},
        headers=_headers(token),
        timeout=5,
    )
    clock.advance(45 * 60)
    overview = http.get(f"{base}/updateStatus", headers=_headers(token), timeout=5).json()
    assert overview["state"] == "Processing"
    assert overview["estimatedTimeInMinute"] == 45 and overview["taskCompletionPercentage"] == 50
    assert {"subState", "statusMessage", "transactionId", "startedAt", "warnings"} <= set(overview)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customerId": ""}, "customerId"),
        ({"catalogs": [{"id": "a", "name": "n", "state": "Sleeping"}]}, "catalogs[0].state"),
        ({"catalogs": [{"id": "a", "name": "n", "colour": "red"}]}, "catalogs[0]"),
        ({"faults": [{"path": "*", "status": 99}]}, "faults[0].status"),
        ({"faults": [{"path": "*", "calls": [0]}]}, "faults[0].calls"),
        ({"apiClients": []}, "apiClients"),
        (
            {"images": [{"id": "x", "name": "x", "readyAfterMinutes": -1}]},
            "images[0].readyAfterMinutes",
        ),
    ],
)
def test_scenario_errors_name_the_field(scenario, change, field):
    """A malformed scenario is refused with a message naming the field."""
    scenario.update(change)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario)
    assert field in str(info.value)


def test_updates_list_plays_in_order(start_sim, connect, clock, scenario):
    """With 'updates', the first accepted update fails and the second (a retry) succeeds."""
    scenario["catalogs"][0].pop("update")
    scenario["catalogs"][0]["updates"] = [
        {"durationMinutes": 10, "outcome": "Error"},
        {"durationMinutes": 10, "outcome": "Active"},
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    for expected, image in (("Error", "img-v1"), ("Active", "img-v2")):
        client.update_image(
            SITE, FINANCE, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
        )
        clock.advance(11 * 60)
        catalog = client.get_catalog(SITE, FINANCE)
        assert (catalog.state, catalog.image_id) == (expected, image)
        if expected == "Error":
            sim.set_catalog_state(FINANCE, "Active")  # an admin fixed it


def test_stop_releases_threads_and_port(scenario, clock):
    """stop() ends the server thread and frees the port; stopping twice is harmless."""
    sim = CitrixSimulator(scenario, clock=clock)
    url = sim.start()
    assert any(t.name == "citrix-simulator" for t in threading.enumerate())
    sim.stop()
    sim.stop()
    assert not any(t.name == "citrix-simulator" for t in threading.enumerate())
    again = CitrixSimulator(scenario, clock=clock)
    try:
        assert again.start(port=int(url.rsplit(":", 1)[1])) == url
    finally:
        again.stop()


def test_demo_scenario_matches_the_brief():
    """demo.json: demo-customer, Finance-Desktops Active on win11-23h2-v1, img-v2 Ready, a
    90-minute update, the demo API client."""
    scenario = load_scenario(ROOT / "local" / "scenarios" / "demo.json")
    assert scenario.customer_id == "demo-customer" and len(scenario.catalogs) == 3
    finance = next(c for c in scenario.catalogs if c.name == "Finance-Desktops")
    assert (finance.state, finance.template_image_name) == ("Active", "win11-23h2-v1")
    assert finance.updates[0].duration_minutes == 90 and finance.updates[0].outcome == "Active"
    v2 = next(i for i in scenario.images if i.name == "win11-23h2-v2")
    assert (v2.id, v2.state) == ("img-v2", "Ready")
    client = scenario.api_clients[0]
    assert (client.client_id, client.secret) == ("demo-client", "demo-secret-value")


def test_docs_example_is_a_valid_scenario():
    """The complete example in docs/scenario-format.md parses."""
    text = (ROOT / "docs" / "scenario-format.md").read_text()
    block = text.split("```json", 1)[1].split("```", 1)[0]
    parsed = parse_scenario(json.loads(block))
    assert parsed.faults and parsed.rate_limit and parsed.catalogs


def test_standalone_command_serves(sessions):
    """python -m local.citrix_simulator prints its URL and answers on loopback until stopped."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.citrix_simulator",
            "--scenario",
            "local/scenarios/demo.json",
            "--port",
            "0",
            "--speed",
            "60",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        state = sessions().get(f"{url}/_sim/state", timeout=5).json()
        assert state["customerId"] == "demo-customer"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
