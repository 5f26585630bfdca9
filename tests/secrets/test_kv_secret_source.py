"""KeyVaultSecretSource through the real SecretClient and DefaultAzureCredential against the
Key Vault emulator over verified TLS."""

from __future__ import annotations

import socket
import threading

import pytest

from shared.config import Settings
from shared.secrets import KeyVaultSecretSource, SecretError, is_loopback_url


def test_reads_citrix_credentials_through_challenge_and_managed_identity(
    emulator, make_source, citrix_client
):
    """Happy path: 401 challenge, managed identity token, then both secrets over verified TLS."""
    source = make_source(emulator)
    credentials = source.get_citrix_credentials()
    assert (credentials.client_id, credentials.secret) == citrix_client
    log = emulator.requests
    assert log[0]["status"] == 401 and not log[0]["authorized"]
    assert [(r["path"], r["status"]) for r in log[1:]] == [
        ("/secrets/citrix-client-id", 200),
        ("/secrets/citrix-client-secret", 200),
    ]
    assert len(emulator.issued_tokens) == 1


def test_tls_is_verified_against_the_trusted_cas(emulator, clock):
    """Without the emulator CA the self-signed server is refused at once: TLS is never off."""
    settings = Settings(key_vault_url=emulator.vault_url, citrix_customer_id="c")
    source = KeyVaultSecretSource(settings, clock=clock)  # default: system CA store
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    source.close()
    assert info.value.category == "vault_unavailable"
    assert "certificate" in info.value.message and not info.value.retryable
    assert clock.sleeps == []
    assert emulator.requests == []


def test_disabling_tls_verification_is_refused():
    """connection_verify=False is rejected; only a CA bundle path or True is accepted."""
    with pytest.raises(ValueError, match="TLS"):
        KeyVaultSecretSource(
            Settings(key_vault_url="https://v.vault.azure.net"), connection_verify=False
        )


def test_values_are_cached_for_the_ttl(emulator, make_source, clock):
    """Within the TTL a second read makes no request; after it, one GET per secret again."""
    source = make_source(emulator, secret_cache_ttl_seconds=300.0)
    first = source.get_citrix_credentials()
    assert source.get_citrix_credentials() == first
    assert emulator.secret_reads("citrix-client-secret") == 1
    clock.advance(299)
    source.get_citrix_credentials()
    assert emulator.secret_reads("citrix-client-secret") == 1
    clock.advance(2)
    source.get_citrix_credentials()
    assert emulator.secret_reads("citrix-client-secret") == 2
    assert emulator.secret_reads("citrix-client-id") == 2


def test_zero_ttl_reads_every_time(emulator, make_source):
    """SECRET_CACHE_TTL_SECONDS=0 disables the cache."""
    source = make_source(emulator, secret_cache_ttl_seconds=0.0)
    source.get_citrix_credentials()
    source.get_citrix_credentials()
    assert emulator.secret_reads("citrix-client-secret") == 2


def test_rotation_takes_effect_after_invalidate(emulator, make_source, citrix_client):
    """A rotated secret is served from cache until invalidate(); then the new value is read."""
    source = make_source(emulator)
    assert source.get_citrix_credentials().secret == citrix_client[1]
    emulator.set_secret("citrix-client-secret", "rotated-secret-value-2")
    assert source.get_citrix_credentials().secret == citrix_client[1]
    source.invalidate()
    assert source.get_citrix_credentials().secret == "rotated-secret-value-2"
    assert emulator.secret_reads("citrix-client-secret") == 2


def test_concurrent_readers_share_one_vault_read(emulator, make_source, citrix_client):
    """Eight threads asking at once get the same value from one GET per secret."""
    source = make_source(emulator)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def read() -> None:
        barrier.wait()
        results.append(source.get_citrix_credentials())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert emulator.secret_reads("citrix-client-secret") == 1


def test_missing_secret_names_vault_and_secret(start_emulator, make_source):
    """A missing secret is secret_missing, not retried, naming the vault URL and the secret."""
    emulator = start_emulator({"citrix-client-id": "only-the-id"})
    source = make_source(emulator)
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    error = info.value
    assert error.category == "secret_missing" and not error.retryable
    assert emulator.vault_url in error.message and "'citrix-client-secret'" in error.message
    assert "only-the-id" not in error.message
    assert error.to_dict() == {
        "category": "secret_missing",
        "message": error.message,
        "retryable": False,
    }
    assert emulator.secret_reads("citrix-client-secret") == 1


def test_empty_secret_is_reported_as_missing(start_emulator, make_source):
    """An empty secret value is secret_missing, saying it is empty."""
    emulator = start_emulator({"citrix-client-id": "", "citrix-client-secret": "x1234"})
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    assert info.value.category == "secret_missing" and "is empty" in info.value.message


def test_disabled_secret_is_reported_as_missing(emulator, make_source):
    """A disabled secret (Key Vault answers 403) says it is disabled, not a role problem."""
    emulator.disable_secret("citrix-client-secret")
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    assert info.value.category == "secret_missing" and "disabled" in info.value.message


def test_forbidden_explains_the_role_assignment(start_emulator, make_source):
    """403 is vault_forbidden naming the vault and the "Key Vault Secrets User" role."""
    emulator = start_emulator(faults=[{"secret": "*", "status": 403}])
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    error = info.value
    assert error.category == "vault_forbidden" and not error.retryable
    assert '"Key Vault Secrets User" role' in error.message
    assert emulator.vault_url in error.message
    assert "AZURE_CLIENT_ID" in error.message  # hint for a user-assigned identity
    assert emulator.secret_reads("citrix-client-id") == 1


def test_forbidden_with_user_assigned_identity_names_azure_client_id(start_emulator, make_source):
    """With AZURE_CLIENT_ID set, the 403 message points at that user-assigned identity."""
    uami = "8d0f3c57-0000-4000-8000-0000000000a1"
    emulator = start_emulator(
        system_identity=False,
        user_assigned_client_ids=[uami],
        faults=[{"secret": "citrix-client-id", "status": 403}],
    )
    with pytest.raises(SecretError) as info:
        make_source(emulator, azure_client_id=uami).get_citrix_credentials()
    assert info.value.category == "vault_forbidden"
    assert "user-assigned identity named by AZURE_CLIENT_ID" in info.value.message


def test_firewall_403_points_at_network_rules(start_emulator, make_source):
    """A 403 ForbiddenByFirewall explains the network rules instead of the role."""
    emulator = start_emulator(
        faults=[
            {
                "status": 403,
                "code": "Forbidden",
                "message": "Client address is not authorized and caller is not a trusted "
                "service. (ForbiddenByFirewall)",
            }
        ]
    )
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    assert info.value.category == "vault_forbidden" and "network rules" in info.value.message


def test_throttling_then_success_honours_retry_after(start_emulator, make_source, clock):
    """Two 429s with Retry-After 7 are waited out exactly (virtual clock), then the read works."""
    emulator = start_emulator(
        faults=[{"secret": "citrix-client-secret", "status": 429, "retry_after": 7, "first": 2}]
    )
    credentials = make_source(emulator).get_citrix_credentials()
    assert credentials.client_id
    assert clock.sleeps == [7.0, 7.0]
    statuses = [r["status"] for r in emulator.requests if r["path"].endswith("client-secret")]
    assert statuses[-3:] == [429, 429, 200]


def test_endless_throttling_is_bounded(start_emulator, make_source, clock):
    """Permanent 429 stops after max_attempts with a retryable vault_throttled error."""
    emulator = start_emulator(faults=[{"status": 429, "retry_after": 2}])
    with pytest.raises(SecretError) as info:
        make_source(emulator, max_attempts=3).get_citrix_credentials()
    assert info.value.category == "vault_throttled" and info.value.retryable
    assert "after 3 attempts" in info.value.message
    assert clock.sleeps == [2.0, 2.0]
    assert emulator.secret_reads("citrix-client-id") == 3


def test_retry_after_beyond_the_bound_fails_fast(start_emulator, make_source, clock):
    """A Retry-After longer than max_delay_seconds is not slept: the error comes at once."""
    emulator = start_emulator(faults=[{"status": 429, "retry_after": 3600}])
    with pytest.raises(SecretError) as info:
        make_source(emulator, max_delay_seconds=30.0).get_citrix_credentials()
    assert info.value.category == "vault_throttled"
    assert "3600 s" in info.value.message
    assert clock.sleeps == []


def test_retry_budget_caps_total_waiting(start_emulator, make_source, clock):
    """The sum of waits never exceeds retry_budget_seconds."""
    emulator = start_emulator(faults=[{"status": 503, "retry_after": 20}])
    with pytest.raises(SecretError) as info:
        make_source(emulator, max_attempts=10, retry_budget_seconds=50).get_citrix_credentials()
    assert info.value.category == "vault_unavailable" and info.value.retryable
    assert clock.sleeps == [20.0, 20.0]


def test_server_errors_back_off_exponentially_then_succeed(start_emulator, make_source, clock):
    """500s without Retry-After are retried after 1 s, 2 s; the third call succeeds."""
    emulator = start_emulator(
        faults=[{"secret": "citrix-client-id", "status": 500, "calls": [1, 2]}]
    )
    assert make_source(emulator).get_citrix_credentials().client_id
    assert clock.sleeps == [1.0, 2.0]


def test_unreachable_vault_is_bounded_and_clear(emulator, make_source, clock):
    """A closed port gives vault_unavailable after max_attempts, naming the vault URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    source = make_source(emulator, key_vault_url=url, max_attempts=4)
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    error = info.value
    assert error.category == "vault_unavailable" and error.retryable
    assert url in error.message and "unreachable" in error.message
    assert "after 4 attempts" in error.message
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_missing_vault_url_is_a_config_error(make_source):
    """No KEY_VAULT_URL: a config error naming the setting, without any network call."""
    source = make_source(None, key_vault_url="")
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    assert info.value.category == "config" and "KEY_VAULT_URL is not set" in info.value.message


def test_non_https_vault_url_is_a_config_error(make_source):
    """An http:// vault URL is refused before the SDK sees it."""
    with pytest.raises(SecretError) as info:
        make_source(None, key_vault_url="http://127.0.0.1:1").get_citrix_credentials()
    assert info.value.category == "config" and "https://" in info.value.message


def test_key_vault_reference_left_in_a_setting_is_surfaced(make_source):
    """An unresolved @Microsoft.KeyVault(...) value is named in the error and in check()."""
    settings = Settings.from_env(
        {
            "KEY_VAULT_URL": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/u/)",
            "CITRIX_CUSTOMER_ID": "cust1",
        }
    )
    source = make_source(None, settings)
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    assert info.value.category == "config"
    assert "KEY_VAULT_URL holds an unresolved Key Vault reference" in info.value.message
    report = source.check()
    assert report["ok"] is False
    assert any("KEY_VAULT_URL holds an unresolved" in p for p in report["problems"])


def test_reference_in_secret_name_setting_is_named_on_missing_secret(start_emulator, make_source):
    """A Key Vault reference in the secret-name setting is named when the read then fails."""
    emulator = start_emulator({"citrix-client-id": "id-1"})
    settings = Settings.from_env(
        {
            "KEY_VAULT_URL": emulator.vault_url,
            "CITRIX_CUSTOMER_ID": "cust1",
            "CITRIX_CLIENT_SECRET_SECRET_NAME": "@Microsoft.KeyVault(VaultName=v;SecretName=n)",
        }
    )
    with pytest.raises(SecretError) as info:
        make_source(emulator, settings).get_citrix_credentials()
    assert info.value.category == "secret_missing"
    assert "CITRIX_CLIENT_SECRET_SECRET_NAME holds an unresolved Key Vault reference" in (
        info.value.message
    )


def test_user_assigned_identity_without_azure_client_id_is_explained(start_emulator, make_source):
    """Only a user-assigned identity and no AZURE_CLIENT_ID: a config error telling to set it."""
    uami = "8d0f3c57-0000-4000-8000-0000000000a1"
    emulator = start_emulator(system_identity=False, user_assigned_client_ids=[uami])
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    error = info.value
    assert error.category == "config" and not error.retryable
    assert "user-assigned managed identity" in error.message
    assert "Set the app setting AZURE_CLIENT_ID" in error.message
    assert emulator.issued_tokens == []


def test_user_assigned_identity_with_azure_client_id_works(
    start_emulator, make_source, citrix_client
):
    """With AZURE_CLIENT_ID set, DefaultAzureCredential asks for that identity and reads work."""
    uami = "8d0f3c57-0000-4000-8000-0000000000a1"
    emulator = start_emulator(
        {"citrix-client-id": citrix_client[0], "citrix-client-secret": citrix_client[1]},
        system_identity=False,
        user_assigned_client_ids=[uami],
    )
    source = make_source(emulator, azure_client_id=uami)
    assert source.get_citrix_credentials().client_id == citrix_client[0]
    assert "user-assigned" in source.check()["identity"]


def test_wrong_azure_client_id_is_explained(start_emulator, make_source):
    """An AZURE_CLIENT_ID that is not assigned to the app is reported as such."""
    emulator = start_emulator(
        system_identity=False, user_assigned_client_ids=["8d0f3c57-0000-4000-8000-0000000000a1"]
    )
    source = make_source(emulator, azure_client_id="00000000-dead-4000-8000-000000000000")
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    assert info.value.category == "config"
    assert "check that this user-assigned identity is assigned" in info.value.message


def test_no_identity_at_all_is_a_config_error(emulator, make_source, monkeypatch):
    """With no managed identity environment, the error says how to provide an identity."""
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    with pytest.raises(SecretError) as info:
        make_source(emulator).get_citrix_credentials()
    assert info.value.category == "config"
    assert "No Azure identity could get a token" in info.value.message


def test_customer_id_from_setting_or_secret(emulator, make_source):
    """CITRIX_CUSTOMER_ID wins; else the named secret is read (and cached); else config error."""
    assert (
        make_source(emulator, citrix_customer_id="fromsetting").get_customer_id() == "fromsetting"
    )
    emulator.set_secret("citrix-customer-id", "fromvault\n")
    source = make_source(
        emulator, citrix_customer_id="", secret_name_customer_id="citrix-customer-id"
    )
    assert source.get_customer_id() == "fromvault"
    assert source.get_customer_id() == "fromvault"
    assert emulator.secret_reads("citrix-customer-id") == 1
    with pytest.raises(SecretError) as info:
        make_source(emulator, citrix_customer_id="", secret_name_customer_id="").get_customer_id()
    assert info.value.category == "config" and "CITRIX_CUSTOMER_ID" in info.value.message


def test_invalid_secret_name_setting_is_a_config_error(emulator, make_source):
    """A secret name Key Vault cannot hold is a config error naming the setting."""
    source = make_source(emulator, secret_name_client_id="bad/name")
    with pytest.raises(SecretError) as info:
        source.get_citrix_credentials()
    assert info.value.category == "config"
    assert "CITRIX_CLIENT_ID_SECRET_NAME" in info.value.message
    assert emulator.requests == []


def test_check_reports_presence_never_values(start_emulator, make_source):
    """check() says present/missing per secret and carries no value."""
    emulator = start_emulator({"citrix-client-id": "visible-id-123"})
    report = make_source(emulator).check()
    assert report["ok"] is False
    assert report["vault"] == emulator.vault_url
    assert report["secrets"] == {"citrix-client-id": "present", "citrix-client-secret": "missing"}
    assert report["error"]["category"] == "secret_missing"
    assert "visible-id-123" not in repr(report)


def test_check_does_not_retry(start_emulator, make_source, clock):
    """check() makes one attempt per secret, so a health probe never sleeps."""
    emulator = start_emulator(faults=[{"status": 429, "retry_after": 5}])
    report = make_source(emulator).check()
    assert report["secrets"]["citrix-client-id"] == "throttled"
    assert clock.sleeps == []


def test_redact_masks_every_value_read(emulator, make_source, citrix_client):
    """redact() replaces values the source has read, for messages built from foreign errors."""
    source = make_source(emulator)
    source.get_citrix_credentials()
    text = f"boom {citrix_client[1]} and {citrix_client[0]}"
    assert source.redact(text) == "boom *** and ***"


def test_is_loopback_url():
    """Challenge-resource verification is relaxed only for loopback hosts."""
    assert is_loopback_url("https://127.0.0.1:8443")
    assert is_loopback_url("https://localhost:1")
    assert is_loopback_url("https://[::1]:1")
    assert not is_loopback_url("https://myvault.vault.azure.net")
    assert not is_loopback_url("https://127.0.0.1.evil.example")


def test_client_options_relax_challenge_check_only_for_loopback(emulator, clock):
    """The SecretClient gets verify_challenge_resource=False only for a loopback vault, TLS
    verification always, and no SDK-level retries (they go through the injected clock)."""
    seen: list[dict[str, object]] = []

    class Captured(Exception):
        pass

    def factory(url, credential, **kwargs):
        seen.append({"url": url, **kwargs})
        raise Captured  # no request leaves the machine

    for url in (emulator.vault_url, "https://myvault.vault.azure.net"):
        source = KeyVaultSecretSource(
            Settings(key_vault_url=url),
            clock=clock,
            connection_verify=emulator.ca_cert_path,
            secret_client_factory=factory,
        )
        with pytest.raises(Captured):
            source.get_citrix_credentials()
        source.close()
    loopback, remote = seen
    assert loopback["verify_challenge_resource"] is False
    assert remote["verify_challenge_resource"] is True
    assert loopback["connection_verify"] == remote["connection_verify"] == emulator.ca_cert_path
    assert loopback["retry_total"] == remote["retry_total"] == 0
    assert "logging_enable" not in loopback
