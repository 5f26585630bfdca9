"""The Key Vault emulator itself: protocol, challenge, identity endpoint, faults, CLI, cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from azure.keyvault.secrets import SecretClient

from local.keyvault_emulator import KeyVaultEmulator


def _get(emulator, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{emulator.vault_url}{path}",
        headers=headers,
        verify=emulator.ca_cert_path,
        timeout=5,
        **kwargs,
    )


def test_unauthenticated_request_gets_the_bearer_challenge(emulator):
    """No bearer token: 401 with authorization= and resource= in WWW-Authenticate."""
    response = _get(emulator, "/secrets/citrix-client-id?api-version=7.5")
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization="https://login.microsoftonline.com/')
    assert 'resource="https://vault.azure.net"' in challenge
    assert "value" not in response.json()


def test_unknown_token_is_challenged(emulator):
    """A bearer the identity endpoint never issued is refused like a missing one."""
    response = _get(emulator, "/secrets/citrix-client-id?api-version=7.5", token="forged")
    assert response.status_code == 401


def test_secret_bundle_shape_and_api_version(emulator, citrix_client):
    """GET returns {value, id, attributes}; id is {vault}/secrets/{name}/{version}; api-version is
    required."""
    token, _ = emulator.issue_token()
    body = _get(emulator, "/secrets/citrix-client-id?api-version=7.5", token).json()
    assert body["value"] == citrix_client[0]
    assert body["id"].startswith(f"{emulator.vault_url}/secrets/citrix-client-id/")
    assert body["attributes"]["enabled"] is True
    missing_version = _get(emulator, "/secrets/citrix-client-id", token)
    assert missing_version.status_code == 400


def test_put_creates_versions_readable_through_secret_client(emulator, clock):
    """PUT (real SecretClient) adds a version; the latest and older versions are readable."""
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    client = SecretClient(
        emulator.vault_url,
        credential,
        connection_verify=emulator.ca_cert_path,
        verify_challenge_resource=False,
    )
    try:
        first = client.get_secret("citrix-client-secret")
        updated = client.set_secret("citrix-client-secret", "second-value-xyz")
        assert updated.properties.version != first.properties.version
        assert client.get_secret("citrix-client-secret").value == "second-value-xyz"
        older = client.get_secret("citrix-client-secret", first.properties.version)
        assert older.value == first.value
        names = sorted(str(p.name) for p in client.list_properties_of_secrets())
        assert names == ["citrix-client-id", "citrix-client-secret"]
    finally:
        client.close()
        credential.close()


def test_identity_endpoint_requires_the_header(emulator):
    """The managed identity endpoint refuses a request without X-IDENTITY-HEADER."""
    params = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
    refused = requests.get(emulator.identity_endpoint, params=params, timeout=5)
    assert refused.status_code == 401
    granted = requests.get(
        emulator.identity_endpoint,
        params=params,
        headers={"X-IDENTITY-HEADER": emulator.identity_header},
        timeout=5,
    )
    assert granted.status_code == 200
    assert granted.json()["access_token"] in emulator.issued_tokens


def test_fault_on_nth_call_for_one_secret(emulator):
    """A fault with calls=[2] hits only the second read of that secret, with its Retry-After."""
    emulator.add_fault(
        {"secret": "citrix-client-id", "status": 429, "retry_after": 3, "calls": [2]}
    )
    token, _ = emulator.issue_token()
    path = "/secrets/citrix-client-id?api-version=7.5"
    statuses = [_get(emulator, path, token).status_code for _ in range(3)]
    assert statuses == [200, 429, 200]
    assert _get(emulator, "/secrets/citrix-client-secret?api-version=7.5", token).status_code == 200
    emulator.clear_faults()
    emulator.add_fault({"secret": "citrix-client-id", "status": 429, "retry_after": 3})
    assert _get(emulator, path, token).headers["Retry-After"] == "3"


def test_fault_window_follows_the_clock(emulator, clock):
    """A window fault is active only between its start and end (seconds on the shared clock)."""
    emulator.add_fault({"status": 503, "window": [100, 200]})
    token, _ = emulator.issue_token()
    path = "/secrets/citrix-client-id?api-version=7.5"
    assert _get(emulator, path, token).status_code == 200
    clock.advance(150)
    assert _get(emulator, path, token).status_code == 503
    clock.advance(100)
    assert _get(emulator, path, token).status_code == 200


def test_bad_fault_config_is_rejected():
    """Unknown fault fields and non-error statuses fail at construction."""
    with pytest.raises(ValueError, match="unknown fault fields"):
        KeyVaultEmulator({}, faults=[{"status": 429, "retry": 3}])
    with pytest.raises(ValueError, match="4xx/5xx"):
        KeyVaultEmulator({}, faults=[{"status": 200}])


def test_request_log_holds_no_values(emulator, citrix_client):
    """The request log has method, path, status, authorized, and never a value or token."""
    token, _ = emulator.issue_token()
    _get(emulator, "/secrets/citrix-client-secret?api-version=7.5", token)
    log = emulator.requests
    assert log == [
        {
            "method": "GET",
            "path": "/secrets/citrix-client-secret",
            "status": 200,
            "authorized": True,
        }
    ]
    assert citrix_client[1] not in repr(log) and token not in repr(log)


def test_stop_leaves_no_thread_behind(clock):
    """After stop() no emulator thread is alive, even with a keep-alive connection open."""
    before = set(threading.enumerate())
    emulator = KeyVaultEmulator({"a-b": "value-1"}, clock=clock)
    emulator.start()
    session = requests.Session()
    token, _ = emulator.issue_token()
    response = session.get(
        f"{emulator.vault_url}/secrets/a-b?api-version=7.5",
        headers={"Authorization": f"Bearer {token}"},
        verify=emulator.ca_cert_path,
        timeout=5,
    )
    assert response.status_code == 200
    emulator.stop()
    session.close()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_command_line_serves_until_terminated():
    """`python -m local.keyvault_emulator` prints its URLs and serves the given secrets."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local.keyvault_emulator", "--secret", "cli-name=cli-value-1"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert "cli-value-1" not in json.dumps(info)
        token = requests.get(
            info["identityEndpoint"],
            params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
            headers={"X-IDENTITY-HEADER": info["identityHeader"]},
            timeout=5,
        ).json()["access_token"]
        response = requests.get(
            f"{info['vaultUrl']}/secrets/cli-name?api-version=7.5",
            headers={"Authorization": f"Bearer {token}"},
            verify=info["caCertPath"],
            timeout=5,
        )
        assert response.json()["value"] == "cli-value-1"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
