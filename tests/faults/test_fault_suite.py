"""Fault suite: whole updates through the HTTP API, the durable host and the Citrix simulator on
virtual time, each under one kind of bad day. Every case checks the outcome AND the exact Citrix
calls the simulator received (token requests, $updateImage, status reads, spacing after 429)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.citrix_simulator.testing import FINANCE
from local.testing_stack import (
    CATALOG_PATH,
    POST_UPDATE,
    STATUS_PATH,
    TOKEN_PATH,
    StackRun,
    fault_scenario,
    gaps_after_429,
    run_update,
)

# One status read per poll and no retries inside the HTTP layer: every fault is one failed check.
NO_HTTP_RETRY = {"CITRIX_RETRY_BUDGET_SECONDS": "0"}
PREPARE = ["/catalogservice/*/sites", "/catalogservice/*/*/catalogs", "/catalogservice/*/*/images"]


def _prepared_normally(run: StackRun) -> None:
    """The run starts with one token and one site/catalog/image look-up each (then the
    submit's own read of the catalog, and the POST)."""
    service = [r for r in run.requests if r["path"].startswith("/catalogservice/")]
    assert len(run.calls("POST", TOKEN_PATH)) >= 1
    for pattern, entry in zip(PREPARE, service[:3], strict=True):
        assert run.calls("GET", pattern)[0] is entry
        assert entry["status"] == 200


def _assert_spacing(run: StackRun) -> None:
    """After every 429, the next Catalog Service call came no sooner than the answer asked."""
    for gap, told in gaps_after_429(run.requests):
        assert gap >= told - 1e-3, f"called again after {gap:.1f} s, told to wait {told:g} s"


# ---------------------------------------------------------------------------------- 429 storms


def test_429_storm_with_retry_after_completes_and_waits_as_told() -> None:
    """A 12-minute 429 storm (Retry-After: 45) on every Catalog Service read: the update
    completes, one $updateImage, and no call comes sooner than 45 s after a 429."""
    storm = {
        "name": "storm",
        "method": "GET",
        "path": "/catalogservice/*",
        "window": {"fromMinutes": 0.3, "toMinutes": 12},
        "status": 429,
        "headers": {"Retry-After": "45"},
    }
    run = run_update(fault_scenario(faults=[storm]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    _prepared_normally(run)
    throttled = [r for r in run.requests if r["status"] == 429]
    assert len(throttled) >= 10  # the storm really hit, repeatedly
    assert all(r["fault"] == "storm" for r in throttled)
    _assert_spacing(run)
    assert min(gap for gap, _ in gaps_after_429(run.requests)) >= 45 - 1e-3
    assert len(run.calls("POST", POST_UPDATE)) == 1
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", TOKEN_PATH)) == 1
    assert run.calls("GET", STATUS_PATH)[-1]["status"] == 200


def test_rate_limit_retry_delay_in_body_is_honoured_for_reads_and_the_submit() -> None:
    """The simulator's 1 request/s limit answers 429 with only a body retryDelay of 3 s: every
    throttled call (look-ups and the POST) is repeated no sooner than 3 s later, once."""
    scenario = fault_scenario(rate_limit={"requestsPerSecond": 1, "retryDelaySeconds": 3})
    run = run_update(scenario, catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    throttled = [r for r in run.requests if r["status"] == 429]
    assert throttled, "the rate limit never triggered: the test proves nothing"
    _assert_spacing(run)
    posts = run.calls("POST", POST_UPDATE)
    assert [p["status"] for p in posts] in ([202], [429, 202])
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", TOKEN_PATH)) == 1


def test_429_on_the_submit_is_retried_after_the_told_delay_and_applied_once() -> None:
    """$updateImage answered 429 twice (Retry-After: 10) is sent again after 10 s each time and
    applied exactly once (a 429 means it was not processed)."""
    fault = {
        "name": "busy-api",
        "method": "POST",
        "path": POST_UPDATE,
        "calls": [1, 2],
        "status": 429,
        "headers": {"Retry-After": "10"},
    }
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert [p["status"] for p in run.calls("POST", POST_UPDATE)] == [429, 429, 202]
    _assert_spacing(run)
    assert len(run.update_requests) == 1


# ------------------------------------------------------------------- 5xx and timeouts on polls


def test_mixed_failure_burst_below_the_limit_is_survived() -> None:
    """Three status checks in a row fail (503, a dropped connection, a read timeout) with a limit
    of four: monitoring carries on and the update succeeds with one $updateImage."""
    faults: list[dict[str, Any]] = [
        {"name": "503", "method": "GET", "path": STATUS_PATH, "calls": [1], "status": 503},
        {"name": "drop", "method": "GET", "path": STATUS_PATH, "calls": [2], "action": "drop"},
        {
            "name": "hang",
            "method": "GET",
            "path": STATUS_PATH,
            "calls": [3],
            "action": "hang",
            "hangSeconds": 3,
        },
    ]
    settings = {
        **NO_HTTP_RETRY,
        "MAX_CONSECUTIVE_POLL_FAILURES": "4",
        "CITRIX_HTTP_TIMEOUT_SECONDS": "1",
    }
    run = run_update(fault_scenario(faults=faults), app_settings=settings, catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    statuses = [r["status"] for r in run.calls("GET", STATUS_PATH)]
    assert statuses[:4] == [503, None, None, 200]
    assert all(s == 200 for s in statuses[3:])
    assert [r["fault"] for r in run.calls("GET", STATUS_PATH)[:3]] == ["503", "drop", "hang"]
    assert len(run.calls("POST", POST_UPDATE)) == 1
    assert len(run.update_requests) == 1
    assert run.output["polls"] == len(statuses)


def test_gateway_errors_inside_one_check_are_absorbed_by_http_retries() -> None:
    """With the default retry budget, a burst of three 502s on a status read is retried inside
    the same check (backoff, never a tight loop) and never counts as a failed check."""
    fault = {"name": "gw", "method": "GET", "path": STATUS_PATH, "calls": [1, 2, 3], "status": 502}
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    reads = run.calls("GET", STATUS_PATH)
    assert [r["status"] for r in reads[:4]] == [502, 502, 502, 200]
    assert all(b["time"] > a["time"] for a, b in itertools.pairwise(reads[:4]))
    assert run.output["polls"] == len(reads) - 3  # three HTTP retries, one check
    assert len(run.update_requests) == 1


def test_consecutive_failures_past_the_limit_report_monitoring_lost_with_transaction() -> None:
    """Status checks answering 503 for good: after MAX_CONSECUTIVE_POLL_FAILURES (4) checks the
    outcome is failed/monitoring_lost naming the transaction id, not update_failed; exactly four
    status reads and one $updateImage were made."""
    fault = {"name": "down", "method": "GET", "path": STATUS_PATH, "status": 503}
    settings = {**NO_HTTP_RETRY, "MAX_CONSECUTIVE_POLL_FAILURES": "4"}
    run = run_update(fault_scenario(faults=[fault]), app_settings=settings, catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "monitoring_lost"
    assert "monitoring lost" in run.error["message"]
    assert "may still be running" in run.error["message"]
    transaction = run.output["transactionId"]
    assert transaction and transaction in run.error["message"]
    assert [r["status"] for r in run.calls("GET", STATUS_PATH)] == [503] * 4
    assert len(run.calls("POST", POST_UPDATE)) == 1
    assert len(run.update_requests) == 1
    # The catalog update itself went on in the simulator: it was never the update that failed.
    assert run.update_requests[0]["transactionId"] == transaction


# ------------------------------------------------------------------------------------- tokens


def test_short_token_lifetime_is_renewed_before_expiry_at_most_once_per_renewal_window() -> None:
    """Tokens live 10 minutes during a 90-minute update: they are renewed (several requests),
    never used expired (no 401), and never requested sooner than lifetime minus margin apart."""
    lifetime, margin = 600, 60
    scenario = fault_scenario(token_lifetime_seconds=lifetime)
    settings = {"CITRIX_TOKEN_SAFETY_MARGIN_SECONDS": str(margin)}
    run = run_update(scenario, app_settings=settings, catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    tokens = run.calls("POST", TOKEN_PATH)
    assert len(tokens) >= 2
    assert all(r["status"] != 401 for r in run.requests)
    times = [float(t["time"]) for t in tokens]
    assert all(b - a >= lifetime - margin for a, b in itertools.pairwise(times))
    assert len(tokens) <= 1 + run.elapsed_seconds // (lifetime - margin)
    assert len(run.update_requests) == 1


def test_token_revoked_mid_update_is_renewed_once_and_the_check_repeated() -> None:
    """A status read answered 401 (token revoked early): one new token, the same read repeated
    once with it, and the update completes."""
    fault = {"name": "revoked", "method": "GET", "path": STATUS_PATH, "calls": [2], "status": 401}
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.calls("POST", TOKEN_PATH)) == 2
    reads = run.calls("GET", STATUS_PATH)
    assert [r["status"] for r in reads[:3]] == [200, 401, 200]
    # Repeated right away with the new token (client pacing aside), not at the next poll.
    assert reads[2]["time"] - reads[1]["time"] < 30
    assert run.output["polls"] == len(reads) - 1


# ------------------------------------------------------------------- the submit's lost answers


def test_submit_answered_502_but_applied_is_reconciled_without_a_second_update() -> None:
    """$updateImage applied but answered 502: the catalog is re-read, shows the update running,
    and monitoring starts; exactly one POST and one update."""
    fault = {
        "name": "502-applied",
        "method": "POST",
        "path": POST_UPDATE,
        "calls": [1],
        "status": 502,
        "applyUpdate": True,
    }
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    posts = run.calls("POST", POST_UPDATE)
    assert [p["status"] for p in posts] == [502]
    assert len(run.update_requests) == 1
    # Reconciliation: a plain catalog read right after the POST, before any status read.
    after = run.requests[run.requests.index(posts[0]) + 1]
    assert after["method"] == "GET" and after["path"].endswith(FINANCE)


def test_submit_answer_lost_after_apply_is_reconciled_without_a_second_update() -> None:
    """$updateImage applied but the connection dropped before the answer: same as a 502, one
    POST, one update, success."""
    fault = {
        "name": "lost-answer",
        "method": "POST",
        "path": POST_UPDATE,
        "calls": [1],
        "action": "drop",
        "applyUpdate": True,
    }
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert [p["status"] for p in run.calls("POST", POST_UPDATE)] == [None]
    assert len(run.update_requests) == 1


def test_submit_answered_502_and_not_applied_is_resubmitted_exactly_once() -> None:
    """$updateImage answered 502 without applying: the catalog still shows the old image and
    Active, so the request is sent once more; two POSTs, one update, success."""
    fault = {"name": "502", "method": "POST", "path": POST_UPDATE, "calls": [1], "status": 502}
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert [p["status"] for p in run.calls("POST", POST_UPDATE)] == [502, 202]
    assert len(run.calls("GET", CATALOG_PATH)) >= 1
    assert len(run.update_requests) == 1


def test_submit_failing_twice_unapplied_stops_after_one_resubmission() -> None:
    """Two unapplied 502s: the resubmission happens once only, then the outcome is failed /
    outcome_unknown telling the admin to check the catalog; two POSTs, no update."""
    fault = {"name": "502", "method": "POST", "path": POST_UPDATE, "calls": [1, 2], "status": 502}
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "outcome_unknown"
    assert "check catalog 'Finance-Desktops'" in run.error["message"]
    assert [p["status"] for p in run.calls("POST", POST_UPDATE)] == [502, 502]
    assert run.update_requests == []
    assert run.calls("GET", STATUS_PATH) == []


def test_submit_answered_400_is_rejected_and_never_retried() -> None:
    """$updateImage answered 400: outcome rejected with Citrix's reason, one POST, no polling."""
    fault = {
        "name": "400",
        "method": "POST",
        "path": POST_UPDATE,
        "status": 400,
        "body": {
            "type": "https://errors-api.cloud.com/catalogservice/invalidCatalogState",
            "detail": "Catalog is being deleted",
            "parameters": [],
        },
    }
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert run.outcome == "rejected"
    assert run.error["category"] == "bad_request"
    assert "Catalog is being deleted" in run.error["message"]
    assert [p["status"] for p in run.calls("POST", POST_UPDATE)] == [400]
    assert run.calls("GET", STATUS_PATH) == []
    assert run.update_requests == []


# ---------------------------------------------------------------------------------- Key Vault


def test_key_vault_throttling_then_success_completes_the_update() -> None:
    """Key Vault answers 429 (Retry-After: 5) to the first two reads of the client secret: the
    read is retried, the update completes, Citrix sees the normal calls and one token request."""
    vault_fault = {"secret": "citrix-client-secret", "status": 429, "retry_after": 5, "first": 2}
    run = run_update(fault_scenario(), keyvault_faults=[vault_fault], catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert run.vault_reads["citrix-client-secret"] == 3
    _prepared_normally(run)
    assert len(run.calls("POST", TOKEN_PATH)) == 1
    assert len(run.update_requests) == 1


def test_key_vault_forbidden_fails_clearly_before_any_citrix_call() -> None:
    """Key Vault answers 403: failed / vault_forbidden naming the missing role; Citrix never
    called (no token request, no update)."""
    run = run_update(
        fault_scenario(), keyvault_faults=[{"secret": "*", "status": 403}], catalog_id=FINANCE
    )
    assert run.outcome == "failed"
    assert run.error["category"] == "vault_forbidden"
    assert "Key Vault Secrets User" in run.error["message"]
    assert run.requests == []
    assert run.update_requests == []


# -------------------------------------------------------------- catalog state and reachability


def test_catalog_unknown_for_good_mid_update_ends_explained_after_three_checks() -> None:
    """The catalog reports Unknown from minute 30 on: after three Unknown checks in a row the
    outcome is failed / catalog_state_unknown quoting Citrix's message and the transaction."""
    update = {"durationMinutes": 90, "glitch": {"atMinutes": 30, "state": "Unknown"}}
    run = run_update(fault_scenario(update=update), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "catalog_state_unknown"
    assert "Unknown" in run.error["message"]
    assert run.output["transactionId"] in run.error["message"]
    assert len(run.update_requests) == 1
    assert len(run.calls("POST", POST_UPDATE)) == 1
    reads = run.calls("GET", STATUS_PATH)
    assert all(r["status"] == 200 for r in reads)
    assert run.elapsed_seconds < 90 * 60  # ended before the update's own (never coming) end


@pytest.mark.parametrize(
    ("duration", "at"),
    [(90, 30), (30, 10)],  # mid-update, and early on when checks are close together
    ids=["mid-update", "early"],
)
def test_catalog_unknown_for_a_short_while_is_ridden_out(duration: int, at: int) -> None:
    """A 5-minute Unknown glitch is not an outcome: the update succeeds."""
    update = {
        "durationMinutes": duration,
        "glitch": {"atMinutes": at, "state": "Unknown", "forMinutes": 5},
    }
    run = run_update(fault_scenario(update=update), catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    assert len(run.update_requests) == 1


def test_catalog_reported_not_found_state_ends_explained() -> None:
    """The catalog reports state NotFound from minute 20 on: a bounded, explained failure
    (catalog_state_unknown naming NotFound), one update, no resubmission."""
    update = {"durationMinutes": 90, "glitch": {"atMinutes": 20, "state": "NotFound"}}
    run = run_update(fault_scenario(update=update), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "catalog_state_unknown"
    assert "NotFound" in run.error["message"]
    assert len(run.calls("POST", POST_UPDATE)) == 1
    assert run.elapsed_seconds < 90 * 60


def test_catalog_vanishing_mid_update_ends_as_monitoring_lost_naming_the_404() -> None:
    """GET answers 404 for the catalog from minute 30 on: after the failure limit the outcome is
    monitoring_lost quoting Citrix's 'Catalog not found' and the transaction id."""
    update = {
        "durationMinutes": 90,
        "glitch": {"atMinutes": 30, "state": "NotFound", "as404": True},
    }
    settings = {**NO_HTTP_RETRY, "MAX_CONSECUTIVE_POLL_FAILURES": "3"}
    run = run_update(fault_scenario(update=update), app_settings=settings, catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "monitoring_lost"
    assert "404" in run.error["message"] and "Catalog not found" in run.error["message"]
    assert run.output["transactionId"] in run.error["message"]
    reads = run.calls("GET", STATUS_PATH)
    assert [r["status"] for r in reads[-3:]] == [404, 404, 404]
    assert len(run.calls("POST", POST_UPDATE)) == 1


def test_api_unreachable_for_ten_minutes_mid_update_is_ridden_out() -> None:
    """Every Catalog Service connection is dropped from minute 1 to 11: retries back off inside
    the budget, monitoring survives, the update succeeds with one $updateImage."""
    outage = {
        "name": "outage",
        "method": "*",
        "path": "/catalogservice/*",
        "action": "drop",
        "window": {"fromMinutes": 1, "toMinutes": 11},
    }
    update = {"durationMinutes": 20}
    scenario = fault_scenario(faults=[outage], update=update)
    # Poll every 30-60 s so the outage is actually met (the default would sleep through it).
    settings = {"POLL_MIN_INTERVAL_SECONDS": "30", "POLL_MAX_INTERVAL_SECONDS": "60"}
    run = run_update(scenario, app_settings=settings, catalog_id=FINANCE)
    assert run.outcome == "succeeded", run.error
    dropped = [r for r in run.requests if r["fault"] == "outage"]
    assert len(dropped) >= 5
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(dropped)]
    assert min(gaps) > 0  # backed off, never a tight loop
    assert len(run.calls("POST", POST_UPDATE)) == 1
    assert len(run.update_requests) == 1


def test_api_unreachable_for_good_ends_bounded_as_monitoring_lost() -> None:
    """Connections dropped for good after the submit: a bounded number of attempts, then failed /
    monitoring_lost with the transaction id, long before the deadline."""
    outage = {
        "name": "outage",
        "method": "*",
        "path": "/catalogservice/*",
        "action": "drop",
        "window": {"fromMinutes": 0.2, "toMinutes": 100000},
    }
    run = run_update(fault_scenario(faults=[outage]), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "monitoring_lost"
    assert run.output["transactionId"] in run.error["message"]
    dropped = [r for r in run.requests if r["fault"] == "outage"]
    # Five failed checks, each retrying inside the 120 s budget: jittered backoff of at least
    # 0.5, 1, 2, 4, 8 then 15 s allows at most 12 attempts per check.
    assert 5 <= len(dropped) <= 5 * 12
    assert run.elapsed_seconds < 60 * 60
    assert len(run.update_requests) == 1


def test_api_unreachable_before_the_submit_fails_without_submitting() -> None:
    """The API drops every connection from the start: the look-ups are retried a bounded number
    of times, then failed / connection; nothing is submitted."""
    outage = {"name": "outage", "method": "*", "path": "/catalogservice/*", "action": "drop"}
    run = run_update(fault_scenario(faults=[outage]), catalog_id=FINANCE)
    assert run.outcome == "failed"
    assert run.error["category"] == "connection"
    assert run.calls("POST", POST_UPDATE) == []
    assert run.update_requests == []
    assert 4 <= len(run.calls("GET", "/catalogservice/*/sites")) <= 4 * 12


# ------------------------------------------------------------------ location on another host


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def other_host() -> Iterator[tuple[str, list[str]]]:
    """A second loopback server standing in for "another host"; yields (origin, paths seen)."""
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_location_on_another_host_is_never_followed_and_monitoring_continues(other_host) -> None:
    """$updateImage answers with a location on another host (port): nothing is ever sent there,
    the catalog is watched through the API itself, and the update succeeds."""
    origin, seen = other_host
    fault = {
        "name": "foreign-location",
        "method": "POST",
        "path": POST_UPDATE,
        "applyUpdate": True,
        "headers": {"location": f"{origin}/catalogservice/x/y/catalogs/z/updateStatus"},
    }
    run = run_update(fault_scenario(faults=[fault]), catalog_id=FINANCE)
    assert seen == []
    assert run.outcome == "succeeded", run.error
    assert len(run.update_requests) == 1
    reads = run.calls("GET", f"/catalogservice/*/*/catalogs/{FINANCE}")
    # the submit's own read of the catalog right before the POST, then every poll
    assert len(reads) == run.output["polls"] + 1 >= 3
    assert reads[0]["time"] <= run.calls("POST", POST_UPDATE)[0]["time"] < reads[1]["time"]
