"""No Citrix client secret or bearer token anywhere a full update leaves traces."""

from __future__ import annotations

import json
import logging

SECRET = "demo-secret-value"
REQUEST = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2", "vdaUpdateDelay": 60}


def test_full_update_leaks_no_secret_or_token(make_stack, caplog):
    """With DEBUG logging, history, custom status, outputs, status API and logs hold neither the
    client secret nor any bearer token (Citrix or Key Vault)."""
    caplog.set_level(logging.DEBUG)

    def short_tokens(scenario):
        # A short token lifetime forces renewals, so there are several tokens to look for.
        scenario["token"]["lifetimeSeconds"] = 900

    stack, client = make_stack(
        short_tokens,
        app_settings={"POLLS_PER_EXECUTION": "4"},  # several executions, more history
    )
    started = client.start(REQUEST)
    stack.run_until_idle()
    status = client.status(started["instanceId"])
    assert status["outcome"] == "succeeded"

    citrix_tokens = list(stack.simulator.engine.tokens)
    vault_tokens = list(stack.vault.issued_tokens)
    assert len(citrix_tokens) >= 5 and vault_tokens
    forbidden = [SECRET, stack.vault.identity_header, *citrix_tokens, *vault_tokens]

    places = {
        "history": json.dumps(stack.durable.history(started["instanceId"]), default=str),
        "status": json.dumps(
            stack.durable.get_status(started["instanceId"], show_history=True), default=str
        ),
        "api": json.dumps(status),
        "list": json.dumps(client.call("GET", "/api/updates")[1]),
        "logs": "\n".join(
            f"{r.name} {r.getMessage()} {json.dumps(r.__dict__, default=str)}"
            for r in caplog.records
        ),
    }
    assert len(caplog.records) > 50  # DEBUG really was captured
    for where, text in places.items():
        for value in forbidden:
            assert value not in text, f"a secret or token leaked into {where}"
    assert "REDACTED" in places["logs"]  # azure-core logged (redacted) headers at DEBUG
