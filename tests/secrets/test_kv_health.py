"""check_health and credential rotation with the real CitrixTokenProvider reading through
KeyVaultSecretSource from the emulator."""

from __future__ import annotations

import json

from shared.citrix.auth import CitrixTokenProvider
from shared.config import Settings
from shared.health import check_health


def _provider(source, endpoint, clock):
    return CitrixTokenProvider(
        endpoint.url,
        "cust1",
        source.get_citrix_credentials,
        clock=clock,
        on_credentials_rejected=source.invalidate,
    )


def test_rotation_in_the_vault_is_used_by_the_next_token_request(
    emulator, make_source, token_endpoint, clock, citrix_client
):
    """After a rotation, the rejected cached secret triggers one vault re-read and the new secret
    gets the token."""
    source = make_source(emulator)
    provider = _provider(source, token_endpoint, clock)
    first = provider.get_token()
    emulator.set_secret("citrix-client-secret", "rotated-secret-value-2")
    token_endpoint.accepted = (citrix_client[0], "rotated-secret-value-2")
    provider.invalidate(first)  # as after a 401 from the Catalog Service
    second = provider.get_token()
    assert second != first
    assert token_endpoint.results == [200, 400, 200]
    assert emulator.secret_reads("citrix-client-secret") == 2


def test_healthy_report_has_no_values(emulator, make_source, token_endpoint, clock, citrix_client):
    """All good: 200, every check ok, and the body holds no secret and no token."""
    source = make_source(emulator)
    provider = _provider(source, token_endpoint, clock)
    status, body = check_health(source._settings, source, provider.get_token)
    assert status == 200 and body["status"] == "healthy"
    assert body["checks"]["keyVault"]["secrets"] == {
        "citrix-client-id": "present",
        "citrix-client-secret": "present",
    }
    assert body["checks"]["citrixToken"] == {"ok": True}
    text = json.dumps(body)
    for value in (citrix_client[1], *token_endpoint.issued, *emulator.issued_tokens):
        assert value not in text
    assert token_endpoint.issued  # the token exchange really happened


def test_rejected_credentials_are_reported_by_category(
    emulator, make_source, token_endpoint, clock, citrix_client
):
    """Citrix refusing the stored client gives 503 with category "auth", and no secret."""
    token_endpoint.accepted = (citrix_client[0], "some-other-secret")
    source = make_source(emulator)
    status, body = check_health(
        source._settings, source, _provider(source, token_endpoint, clock).get_token
    )
    assert status == 503
    citrix = body["checks"]["citrixToken"]
    assert citrix["ok"] is False and citrix["category"] == "auth"
    assert "Key Vault" in citrix["message"]
    assert citrix_client[1] not in json.dumps(body)
    assert token_endpoint.results == [400, 400]  # one re-read after the rejection, then failure


def test_foreign_exception_text_is_redacted(emulator, make_source, citrix_client):
    """A token check whose exception text contains the secret is reported redacted."""
    source = make_source(emulator)

    def leaky() -> None:
        credentials = source.get_citrix_credentials()
        raise RuntimeError(f"cannot use {credentials.secret}")

    status, body = check_health(source._settings, source, leaky)
    assert status == 503
    citrix = body["checks"]["citrixToken"]
    assert citrix == {"ok": False, "category": "error", "message": "RuntimeError: cannot use ***"}
    assert citrix_client[1] not in json.dumps(body)


def test_vault_failure_skips_the_token_check(start_emulator, make_source):
    """A missing secret makes the vault check fail (503) and the token check is skipped."""
    emulator = start_emulator({"citrix-client-id": "id-only-1"})
    source = make_source(emulator)
    calls: list[int] = []
    status, body = check_health(source._settings, source, lambda: calls.append(1))
    assert status == 503 and calls == []
    assert body["checks"]["keyVault"]["secrets"]["citrix-client-secret"] == "missing"
    assert body["checks"]["keyVault"]["error"]["category"] == "secret_missing"
    assert body["checks"]["citrixToken"]["skipped"] == "Key Vault check failed"


def test_configuration_problems_make_it_unhealthy(make_source):
    """Settings problems (unset vault, Key Vault references) are listed and give 503."""
    settings = Settings.from_env({"KEY_VAULT_URL": "@Microsoft.KeyVault(VaultName=v;SecretName=u)"})
    source = make_source(None, settings)
    status, body = check_health(settings, source, None)
    assert status == 503
    problems = body["checks"]["configuration"]["problems"]
    assert any("KEY_VAULT_URL holds an unresolved Key Vault reference" in p for p in problems)
    assert any("CITRIX_CUSTOMER_ID" in p for p in problems)
    assert body["checks"]["keyVault"]["error"]["category"] == "config"


def test_no_secret_source_is_unhealthy():
    """Without a secret source the report says so and answers 503."""
    status, body = check_health(Settings(), None, None)
    assert status == 503 and body["checks"]["keyVault"]["ok"] is False
