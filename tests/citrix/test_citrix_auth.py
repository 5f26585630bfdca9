"""Token exchange, caching, renewal and 401 handling against the simulator over real HTTP."""

from __future__ import annotations

import logging
import threading

import pytest

from local.citrix_simulator.testing import CLIENT_ID, CUSTOMER, SECRET, SITE
from shared.citrix import CitrixAuthError
from shared.credentials import ClientCredentials

TOKEN_PATH = f"/cctrustoauth2/{CUSTOMER}/tokens/clients"


def test_one_token_request_for_many_calls(start_sim, connect):
    """Within a token's lifetime, any number of API calls share one token request."""
    sim = start_sim()
    client, provider = connect(sim)
    for _ in range(5):
        client.list_catalogs(SITE)
    assert sim.count("POST", TOKEN_PATH) == 1
    assert provider.token_requests == 1


def test_token_renewed_before_expiry(start_sim, connect, clock, scenario):
    """A token is renewed a safety margin before expiry: one request per lifetime, no 401s."""
    scenario["token"] = {"lifetimeSeconds": 600}
    sim = start_sim(scenario)
    client, _ = connect(sim, safety_margin_seconds=120)
    for _ in range(20):  # 20 polls, one a minute: 20 minutes = two lifetimes
        client.get_catalog(SITE, "c0000000-0000-4000-8000-000000000001")
        clock.advance(60)
    assert sim.count("POST", TOKEN_PATH) == 3  # at 0, 480 s and 960 s
    assert all(entry["status"] != 401 for entry in sim.requests)


def test_short_lifetime_caps_margin(start_sim, connect, clock, scenario):
    """A margin longer than the token lifetime does not renew on every call."""
    scenario["token"] = {"lifetimeSeconds": 120, "expiresInAsString": False}
    sim = start_sim(scenario)
    client, _ = connect(sim, safety_margin_seconds=300)
    for _ in range(10):
        client.list_catalogs(SITE)
        clock.advance(5)
    assert sim.count("POST", TOKEN_PATH) == 1


def test_concurrent_callers_share_one_request(start_sim, connect):
    """Eight threads asking at once cause a single token request."""
    sim = start_sim()
    _, provider = connect(sim)
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        tokens.append(provider.get_token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert sim.count("POST", TOKEN_PATH) == 1


def test_expired_token_401_renews_once_and_repeats(start_sim, connect):
    """A 401 on an API call renews the token once and repeats the request, which succeeds."""
    sim = start_sim()
    client, _ = connect(sim)
    client.list_catalogs(SITE)
    sim.expire_tokens()
    catalogs = client.list_catalogs(SITE)
    assert len(catalogs) == 3
    statuses = [e["status"] for e in sim.requests if e["path"].endswith("/catalogs")]
    assert statuses == [200, 401, 200]
    assert sim.count("POST", TOKEN_PATH) == 2


def test_persistent_401_is_an_auth_error_after_one_renewal(start_sim, connect, scenario):
    """If the repeated request still gets 401, an auth error is raised (no loop)."""
    scenario["faults"] = [{"method": "GET", "path": "*/catalogs", "status": 401}]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixAuthError) as info:
        client.list_catalogs(SITE)
    assert info.value.status == 401 and info.value.category == "auth"
    assert sim.count("GET", "*/catalogs") == 2
    assert sim.count("POST", TOKEN_PATH) == 2


def test_bad_secret_is_rejected_without_echo(start_sim, connect):
    """400 invalid_client becomes an auth error that names neither the id nor the secret."""
    sim = start_sim()
    client, _ = connect(sim, secret="wrong-secret-value")
    with pytest.raises(CitrixAuthError) as info:
        client.get_site_id()
    message = str(info.value) + str(info.value.to_dict())
    assert "rejected the API client id/secret" in message
    assert "wrong-secret-value" not in message and CLIENT_ID not in message
    assert sim.count("POST", TOKEN_PATH) == 1  # no rotation hook: no pointless repeat


def test_rotation_hook_rereads_credentials_once(start_sim, connect):
    """On invalid_client the rotation hook runs and the request is repeated once with fresh
    credentials, which the simulator accepts after the secret was rotated."""
    sim = start_sim()
    current = {"secret": SECRET}
    calls: list[str] = []

    def rotated() -> None:
        calls.append("reread")
        current["secret"] = "rotated-secret"

    client, _ = connect(
        sim,
        credentials=lambda: ClientCredentials(CLIENT_ID, current["secret"]),
        on_credentials_rejected=rotated,
    )
    sim.set_client_secret(CLIENT_ID, "rotated-secret")
    assert client.get_site_id() == SITE
    assert calls == ["reread"]
    assert [e["status"] for e in sim.requests if e["path"] == TOKEN_PATH] == [400, 200]


def test_rotation_that_does_not_help_fails_after_one_retry(start_sim, connect):
    """When the re-read credentials are still wrong, exactly two token requests are made."""
    sim = start_sim()
    client, _ = connect(sim, secret="bad", on_credentials_rejected=lambda: None)
    with pytest.raises(CitrixAuthError):
        client.get_site_id()
    assert sim.count("POST", TOKEN_PATH) == 2


def test_invalidate_only_drops_the_same_token(start_sim, connect):
    """invalidate() with a stale token keeps the current one (no extra token request)."""
    sim = start_sim()
    _, provider = connect(sim)
    token = provider.get_token()
    provider.invalidate("some-older-token")
    assert provider.get_token() == token
    provider.invalidate(token)
    assert provider.get_token() != token
    assert sim.count("POST", TOKEN_PATH) == 2


def test_token_endpoint_503_is_retried(start_sim, connect, scenario):
    """A transient 503 from the token endpoint is retried (asking for a token changes nothing)."""
    scenario["faults"] = [
        {"method": "POST", "path": "/cctrustoauth2/*", "calls": [1], "status": 503}
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    assert client.get_site_id() == SITE
    assert [e["status"] for e in sim.requests if e["path"] == TOKEN_PATH] == [503, 200]


def test_root_token_path_and_form_content_type(start_sim, sessions):
    """The simulator accepts /cctrustoauth2/root and rejects a charset on the form content type."""
    sim = start_sim()
    http = sessions()
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    ok = http.post(f"{sim.base_url}/cctrustoauth2/root/tokens/clients", data=form, timeout=5)
    assert ok.status_code == 200 and ok.json()["expires_in"] == "3600"
    assert ok.json()["token_type"] == "bearer"
    charset = http.post(
        f"{sim.base_url}/cctrustoauth2/root/tokens/clients",
        data="grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        timeout=5,
    )
    assert charset.status_code == 400


@pytest.mark.parametrize(
    "scheme", ["CwsAuth Bearer=", "CWSAuth bearer=", "cwsauth BEARER=", "CWSAUTH Bearer = "]
)
def test_auth_header_any_letter_case(start_sim, sessions, scheme):
    """The CwsAuth scheme and Bearer key are accepted in any letter case."""
    sim = start_sim()
    http = sessions()
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    token = http.post(f"{sim.base_url}{TOKEN_PATH}", data=form, timeout=5).json()["access_token"]
    answer = http.get(
        f"{sim.base_url}/catalogservice/{CUSTOMER}/sites",
        headers={"Authorization": f"{scheme}{token}", "Accept": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 200


def test_missing_and_malformed_headers_get_documented_401s(start_sim, sessions):
    """No header: common/authentication reason=missing; a bad scheme: CWSAuthException."""
    sim = start_sim()
    http = sessions()
    url = f"{sim.base_url}/catalogservice/{CUSTOMER}/sites"
    missing = http.get(url, headers={"Accept": "application/json"}, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["type"].endswith("common/authentication")
    assert missing.json()["parameters"] == [{"name": "reason", "value": "missing"}]
    wrong = http.get(
        url, headers={"Authorization": "Bearer abc", "Accept": "application/json"}, timeout=5
    )
    assert wrong.status_code == 401 and wrong.json()["Error"]["Type"] == "CWSAuthException"
    unknown = http.get(
        url,
        headers={"Authorization": "CwsAuth Bearer=nope", "Accept": "application/json"},
        timeout=5,
    )
    assert unknown.json()["parameters"] == [{"name": "reason", "value": "invalid"}]


def test_nothing_secret_is_logged(start_sim, connect, caplog, clock):
    """Across success, renewal and failures no log record carries the secret or a token."""
    sim = start_sim()
    caplog.set_level(logging.DEBUG)
    client, provider = connect(sim)
    client.find_catalog(SITE, "finance-desktops")
    token = provider.get_token()
    sim.expire_tokens()
    client.list_images(SITE)
    token2 = provider.get_token()
    bad_client, _ = connect(sim, secret="another-secret-xyz")
    with pytest.raises(CitrixAuthError) as info:
        bad_client.list_catalogs(SITE)
    text = "\n".join(r.getMessage() for r in caplog.records) + str(info.value.to_dict())
    for secret in (SECRET, "another-secret-xyz", token, token2):
        assert secret not in text
    assert "authorization" not in text.lower()
    assert "citrix http GET" in text  # the per-request INFO lines are there
    assert SECRET not in repr(provider) and SECRET not in repr(client)
