"""The body of ``GET /api/health``: configuration problems, Key Vault access and the Citrix
token exchange, each reported by category and message, never by value.

``check_health`` returns ``(200, body)`` when everything works and ``(503, body)`` otherwise.
It never raises for an expected failure. Messages from foreign exceptions go through the secret
source's ``redact`` (when it has one) and are truncated, as a safety net on top of every module's
own rule of never putting a secret into an exception message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from shared.config import Settings

__all__ = ["SecretSourceHealth", "check_health"]

logger = logging.getLogger(__name__)

_MAX_MESSAGE = 500


class SecretSourceHealth(Protocol):
    """What the health check needs from a secret source (``KeyVaultSecretSource`` has it)."""

    def check(self) -> dict[str, Any]: ...


def _redactor(secret_source: object) -> Callable[[str], str]:
    redact = getattr(secret_source, "redact", None)
    if callable(redact):
        return lambda text: str(redact(text))
    return lambda text: text


def _describe_failure(exc: BaseException, redact: Callable[[str], str]) -> dict[str, Any]:
    category = getattr(exc, "category", None)
    message = getattr(exc, "message", None)
    if not isinstance(category, str):
        category = "error"
    if not isinstance(message, str) or not message:
        message = f"{type(exc).__name__}: {exc}"
    return {"ok": False, "category": category, "message": redact(message)[:_MAX_MESSAGE]}


def check_health(
    settings: Settings,
    secret_source: SecretSourceHealth | None,
    token_check: Callable[[], object] | None,
) -> tuple[int, dict[str, Any]]:
    """Run the checks; ``token_check()`` performs a Citrix token exchange and raises on failure.

    The token check is skipped when the vault check failed (it would fail the same way, after
    the vault retry bound)."""
    redact = _redactor(secret_source)
    checks: dict[str, Any] = {
        "configuration": {"ok": not settings.problems, "problems": list(settings.problems)}
    }

    vault_ok = False
    if secret_source is None:
        checks["keyVault"] = {"ok": False, "message": "no secret source is configured"}
    else:
        try:
            vault = secret_source.check()
        except Exception as exc:  # a health check reports, it does not crash
            logger.warning("Key Vault health check raised %s", type(exc).__name__)
            vault = _describe_failure(exc, redact)
        vault_ok = bool(vault.get("ok"))
        checks["keyVault"] = vault

    if token_check is None:
        checks["citrixToken"] = {"ok": None, "skipped": "no token check configured"}
    elif not vault_ok:
        checks["citrixToken"] = {"ok": None, "skipped": "Key Vault check failed"}
    else:
        try:
            token_check()
        except Exception as exc:  # a health check reports, it does not crash
            logger.info("Citrix token check failed: %s", type(exc).__name__)
            checks["citrixToken"] = _describe_failure(exc, redact)
        else:
            checks["citrixToken"] = {"ok": True}

    healthy = all(check.get("ok") is not False for check in checks.values()) and vault_ok
    body = {"status": "healthy" if healthy else "unhealthy", "checks": checks}
    return (200 if healthy else 503), body
