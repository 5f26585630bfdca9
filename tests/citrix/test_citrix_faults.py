"""Every simulator fault kind against the client's retry rules, over real HTTP on loopback."""

from __future__ import annotations

import socket

import pytest

from local.citrix_simulator import CitrixSimulator
from local.citrix_simulator.testing import FINANCE, SITE
from local.clock import VirtualClock
from shared.citrix import (
    CitrixBadRequestError,
    CitrixOutcomeUnknownError,
    CitrixRateLimitError,
    CitrixRequestError,
    CitrixServerError,
)

CATALOGS = "*/catalogs"
UPDATE = "*/$updateImage"


def _update(client):
    return client.update_image(
        SITE, FINANCE, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )


def _statuses(sim, path_suffix):
    return [e["status"] for e in sim.requests if e["path"].endswith(path_suffix)]


def test_get_503_is_retried_no_sooner_than_retry_delay(start_sim, connect, scenario):
    """503 with retryDelay on a GET is retried after at least that delay, then succeeds."""
    scenario["faults"] = [
        {
            "method": "GET",
            "path": CATALOGS,
            "calls": [1, 2],
            "status": 503,
            "body": {
                "type": "https://errors-api.cloud.com/common/serviceUnavailable",
                "detail": "busy",
                "parameters": [{"name": "retryDelay", "value": "7"}],
            },
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    assert len(client.list_catalogs(SITE)) == 3
    calls = [e for e in sim.requests if e["path"].endswith("/catalogs")]
    assert [c["status"] for c in calls] == [503, 503, 200]
    assert calls[1]["time"] - calls[0]["time"] >= 7
    assert calls[2]["time"] - calls[1]["time"] >= 7


def test_get_502_gives_up_within_the_budget(start_sim, connect, scenario, clock):
    """A 502 that never clears ends as a server error within the retry budget (bounded)."""
    scenario["faults"] = [{"method": "GET", "path": CATALOGS, "status": 502}]
    sim = start_sim(scenario)
    client, _ = connect(sim, retry_budget_seconds=60)
    start = clock.time()
    with pytest.raises(CitrixServerError) as info:
        client.list_catalogs(SITE)
    assert info.value.status == 502 and info.value.retryable
    attempts = len(_statuses(sim, "/catalogs"))
    assert 3 <= attempts <= 8
    assert clock.time() - start <= 60


@pytest.mark.parametrize("status", [500, 400, 409, 422])
def test_other_statuses_are_not_retried(start_sim, connect, scenario, status):
    """500 and other 4xx on a GET are raised at once, with the Citrix error details."""
    scenario["faults"] = [
        {
            "method": "GET",
            "path": CATALOGS,
            "status": status,
            "body": {
                "type": "https://errors-api.cloud.com/x/y",
                "detail": "nope",
                "parameters": {"k": "v"},
            },
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises((CitrixServerError, CitrixBadRequestError)) as info:
        client.list_catalogs(SITE)
    assert _statuses(sim, "/catalogs") == [status]
    assert info.value.error_type == "https://errors-api.cloud.com/x/y"
    assert info.value.detail == "nope" and info.value.parameters == {"k": "v"}
    assert info.value.transaction_id and info.value.transaction_id in info.value.message


def test_rate_limit_429_is_honoured(start_sim, connect, scenario):
    """Above N requests/second the simulator answers 429 with retryDelay; the client waits at
    least that long and every call still succeeds."""
    scenario["rateLimit"] = {"requestsPerSecond": 3, "retryDelaySeconds": 4}
    sim = start_sim(scenario)
    client, _ = connect(sim)
    for _ in range(7):
        client.get_catalog(SITE, FINANCE)
    log = [e for e in sim.requests if e["path"].startswith("/catalogservice")]
    assert sum(1 for e in log if e["status"] == 200) == 7
    limited = [i for i, e in enumerate(log) if e["status"] == 429]
    assert limited
    for i in limited:
        assert log[i + 1]["time"] - log[i]["time"] >= 4


def test_retry_after_header_is_honoured(start_sim, connect, scenario):
    """A 429 with a Retry-After header is retried no sooner than it says."""
    scenario["faults"] = [
        {
            "method": "GET",
            "path": CATALOGS,
            "calls": [1],
            "status": 429,
            "headers": {"Retry-After": "30"},
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    client.list_catalogs(SITE)
    calls = [e for e in sim.requests if e["path"].endswith("/catalogs")]
    assert [c["status"] for c in calls] == [429, 200]
    assert calls[1]["time"] - calls[0]["time"] >= 30


def test_429_beyond_budget_is_rate_limited_error(start_sim, connect, scenario):
    """When the told delay does not fit in the budget, a rate_limited error carries retry_after."""
    scenario["faults"] = [
        {"method": "GET", "path": CATALOGS, "status": 429, "headers": {"Retry-After": "500"}}
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim, retry_budget_seconds=120)
    with pytest.raises(CitrixRateLimitError) as info:
        client.list_catalogs(SITE)
    assert info.value.retry_after == 500 and info.value.category == "rate_limited"
    assert _statuses(sim, "/catalogs") == [429]


def test_post_429_is_retried_and_applied_once(start_sim, connect, scenario):
    """A 429 on $updateImage means it was not processed: it is retried and applied once."""
    scenario["faults"] = [{"method": "POST", "path": UPDATE, "calls": [1], "status": 429}]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    _update(client)
    assert _statuses(sim, "$updateImage") == [429, 202]
    assert len(sim.catalog(FINANCE)["updateRequests"]) == 1


def test_update_applied_but_answered_502_is_outcome_unknown(start_sim, connect, scenario):
    """'Applied but answered 502': one POST, outcome_unknown, and the catalog is updating."""
    scenario["faults"] = [{"method": "POST", "path": UPDATE, "status": 502, "applyUpdate": True}]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixOutcomeUnknownError) as info:
        _update(client)
    assert info.value.status == 502 and not info.value.retryable
    assert "re-read the catalog" in info.value.message
    assert _statuses(sim, "$updateImage") == [502]
    assert sim.catalog(FINANCE)["state"] == "Processing"


def test_post_500_not_applied_is_still_outcome_unknown(start_sim, connect, scenario):
    """A 5xx on the POST is never retried even when nothing happened: the caller reconciles."""
    scenario["faults"] = [{"method": "POST", "path": UPDATE, "status": 500}]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixOutcomeUnknownError):
        _update(client)
    assert _statuses(sim, "$updateImage") == [500]
    assert sim.catalog(FINANCE)["state"] == "Active"


@pytest.mark.parametrize("apply", [True, False])
def test_post_answer_lost_is_outcome_unknown(start_sim, connect, scenario, apply):
    """A POST whose connection is closed without an answer is not repeated: outcome_unknown."""
    scenario["faults"] = [
        {"method": "POST", "path": UPDATE, "action": "drop", "applyUpdate": apply}
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixOutcomeUnknownError):
        _update(client)
    assert sim.count("POST", UPDATE) == 1
    assert sim.catalog(FINANCE)["state"] == ("Processing" if apply else "Active")


def test_post_timeout_is_outcome_unknown(start_sim, connect, scenario):
    """A POST that times out waiting for its answer is outcome_unknown and not repeated."""
    scenario["faults"] = [
        {"method": "POST", "path": UPDATE, "action": "hang", "hangSeconds": 2, "applyUpdate": True}
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim, timeout_seconds=0.3)
    with pytest.raises(CitrixOutcomeUnknownError) as info:
        _update(client)
    assert "timed out" in info.value.message
    assert sim.count("POST", UPDATE) == 1


def test_get_timeout_and_drop_are_retried(start_sim, connect, scenario):
    """A GET that times out or loses its connection is retried and then succeeds."""
    scenario["faults"] = [
        {"method": "GET", "path": CATALOGS, "calls": [1], "action": "hang", "hangSeconds": 2},
        {"method": "GET", "path": CATALOGS, "calls": [2], "action": "drop"},
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim, timeout_seconds=0.3)
    assert len(client.list_catalogs(SITE)) == 3
    assert _statuses(sim, "/catalogs") == [None, None, 200]


def test_unreachable_window_is_ridden_out(start_sim, connect, scenario):
    """During a 'simulator unreachable' window (connections closed unanswered) GETs back off
    on the clock and succeed once the window has passed."""
    scenario["faults"] = [
        {
            "method": "*",
            "path": "/catalogservice/*",
            "action": "drop",
            "window": {"fromMinutes": 0, "toMinutes": 1},
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim, retry_budget_seconds=300)
    assert len(client.list_catalogs(SITE)) == 3
    statuses = _statuses(sim, "/catalogs")
    assert statuses[-1] == 200 and set(statuses[:-1]) == {None}
    assert sim.requests[-1]["time"] - sim.requests[0]["time"] >= 60


def test_refused_post_is_retried_and_applied_once(connect, clock, scenario):
    """A POST refused before it was sent (nothing listening) is retried once the API is back."""
    sim = CitrixSimulator(scenario, clock=clock)

    class RestartingClock(VirtualClock):
        """The shared clock, but the first retry sleep brings the simulator back on its port."""

        def time(self) -> float:
            return float(clock.time())

        def sleep(self, seconds: float) -> None:
            clock.sleep(seconds)
            if sim.base_url and not sim_running[0]:
                sim.start(port=port)
                sim_running[0] = True

    sim.start()
    sim_running = [True]
    try:
        port = int(sim.base_url.rsplit(":", 1)[1])
        client, provider = connect(sim)
        provider.get_token()
        sim.stop()
        sim_running[0] = False
        with socket.socket() as probe:  # nothing listens now: connect is refused
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        client._sender.clock = RestartingClock()
        submission = _update(client)
        assert submission.catalog_id == FINANCE
        assert sim.count("POST", UPDATE) == 1  # the refused attempt never reached the server
        assert len(sim.catalog(FINANCE)["updateRequests"]) == 1
    finally:
        sim.stop()


def test_refused_everywhere_is_a_connection_error(connect, clock):
    """With nothing listening, reads end as a retryable connection error within the budget."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    client, _ = connect(f"http://127.0.0.1:{port}", retry_budget_seconds=30)
    start = clock.time()
    with pytest.raises(CitrixRequestError) as info:
        client.get_site_id()
    assert info.value.category == "connection" and info.value.retryable
    assert clock.time() - start <= 30


def test_short_token_lifetime_during_a_long_update(start_sim, connect, clock, scenario):
    """With 10-minute tokens, polling a 90-minute update every 5 minutes never sees a 401 and
    asks for at most one token per lifetime."""
    scenario["token"] = {"lifetimeSeconds": 600}
    sim = start_sim(scenario)
    client, _ = connect(sim, safety_margin_seconds=60)
    submission = _update(client)
    for _ in range(19):
        clock.advance(300)
        client.get_update_status(SITE, FINANCE, submission.location)
    assert client.get_catalog(SITE, FINANCE).image_id == "img-v2"
    assert all(e["status"] != 401 for e in sim.requests)
    elapsed = sim.requests[-1]["time"] - sim.requests[0]["time"]
    assert sim.tokens_issued <= elapsed // 540 + 1


def test_fault_nth_call_and_body_override(start_sim, connect, scenario):
    """A fault on the 2nd matching call only, with a custom header and text body."""
    scenario["faults"] = [
        {
            "method": "GET",
            "path": f"*/catalogs/{FINANCE}",
            "calls": [2],
            "status": 400,
            "headers": {"X-Sim": "yes"},
            "bodyText": "plain words",
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    client.get_catalog(SITE, FINANCE)
    with pytest.raises(CitrixBadRequestError) as info:
        client.get_catalog(SITE, FINANCE)
    assert info.value.detail is None and info.value.status == 400
    client.get_catalog(SITE, FINANCE)
    assert [e["fault"] for e in sim.requests if e["path"].endswith(FINANCE)] == [
        None,
        "fault-0",
        None,
    ]
