"""Zero leakage: DEBUG logging over full Key Vault reads, a rotation, errors, the Citrix token
exchange and the health check contains no secret value, no bearer token, no identity header."""

from __future__ import annotations

import json
import logging

import pytest

from shared.citrix.auth import CitrixTokenProvider
from shared.health import check_health
from shared.secrets import SecretError


def test_debug_logs_carry_no_secret_or_token(
    caplog, start_emulator, make_source, token_endpoint, clock, citrix_client
):
    """Every log record at DEBUG is free of secrets, vault tokens, Citrix tokens and the
    identity header, while azure-core did log the (redacted) Authorization header."""
    caplog.set_level(logging.DEBUG)
    emulator = start_emulator(
        faults=[{"secret": "citrix-client-secret", "status": 429, "retry_after": 1, "calls": [2]}]
    )
    source = make_source(emulator)
    provider = CitrixTokenProvider(
        token_endpoint.url,
        "cust1",
        source.get_citrix_credentials,
        clock=clock,
        on_credentials_rejected=source.invalidate,
    )
    first = provider.get_token()
    rotated = "rotated-Secret-value-9@#"
    emulator.set_secret("citrix-client-secret", rotated)
    token_endpoint.accepted = (citrix_client[0], rotated)
    provider.invalidate(first)
    provider.get_token()  # rejected once, re-read (429 then 200), accepted
    status, body = check_health(source._settings, source, provider.get_token)
    assert status == 200
    emulator.add_fault({"secret": "citrix-client-id", "status": 403})
    source.invalidate()
    with pytest.raises(SecretError) as forbidden:
        source.get_citrix_credentials()
    emulator.delete_secret("citrix-client-id")
    emulator.clear_faults()
    with pytest.raises(SecretError) as missing:
        source.get_citrix_credentials()

    # The run really handled the values we search for.
    assert token_endpoint.results == [200, 400, 200]  # health reused the cached token
    assert clock.sleeps == [1.0]
    sensitive = [
        citrix_client[1],
        rotated,
        emulator.identity_header,
        *emulator.issued_tokens,
        *token_endpoint.issued,
    ]
    assert len(emulator.issued_tokens) >= 1 and len(token_endpoint.issued) >= 2

    records = caplog.records
    assert any(r.name.startswith("azure.core") for r in records)
    assert any(r.name.startswith("urllib3") and r.levelno == logging.DEBUG for r in records)
    text = caplog.text
    assert "'Authorization': 'REDACTED'" in text
    assert "'X-IDENTITY-HEADER': 'REDACTED'" in text
    outputs = [
        text,
        json.dumps(body),
        forbidden.value.message,
        missing.value.message,
        repr(forbidden.value),
    ]
    for record in records:
        outputs.append(record.getMessage())
        outputs.append(repr(record.args))
        outputs.append(record.exc_text or "")
    for value in sensitive:
        leaks = [o for o in outputs if value in o]
        assert leaks == [], f"a sensitive value leaked into {len(leaks)} output(s)"
