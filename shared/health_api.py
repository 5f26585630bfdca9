"""``GET /api/health``: configuration, Key Vault access and the Citrix token exchange.

Glue between the HTTP function and :func:`shared.health.check_health`; reports what is wrong by
name and category, never a secret or token value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import azure.functions as func

from shared.api import json_response
from shared.config import ConfigError, Settings
from shared.events import parse_routes
from shared.runtime import get_services, get_settings

__all__ = ["health_response"]

logger = logging.getLogger(__name__)


def health_response() -> func.HttpResponse:
    """Run the health checks and answer 200 (healthy) or 503 with what is wrong."""
    from shared.citrix import CitrixError
    from shared.health import check_health
    from shared.secrets import KeyVaultSecretSource, SecretError

    try:
        settings = get_settings()
    except ConfigError as exc:
        body = {
            "status": "unhealthy",
            "checks": {"configuration": {"ok": False, "problems": [str(exc)]}},
        }
        return json_response(body, 503)
    route_problem = _route_problem(settings)
    if route_problem:
        settings = replace(settings, problems=(*settings.problems, route_problem))
    token_check: Callable[[], None] | None = None
    source: KeyVaultSecretSource
    try:
        services = get_services()
        source = services.secrets

        def check_token() -> None:
            services.token_provider.get_token()

        token_check = check_token
    except (SecretError, ConfigError, CitrixError) as exc:
        # E.g. the customer id secret is missing or malformed: still check the vault itself.
        logger.warning("health: services could not be built: %s", exc)
        fallback = KeyVaultSecretSource(settings)
        try:
            report: dict[str, Any] = check_health(settings, fallback, None)[1]
        finally:
            fallback.close()
        checks: dict[str, Any] = dict(report.get("checks") or {})
        checks["services"] = {"ok": False, "message": str(exc)[:500]}
        return json_response({**report, "status": "unhealthy", "checks": checks}, 503)
    status, body = check_health(settings, source, token_check)
    return json_response(body, status)


def _route_problem(settings: Settings) -> str | None:
    try:
        parse_routes(settings.routes)
    except ConfigError as exc:
        return str(exc)
    return None
