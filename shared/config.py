"""One frozen Settings object, read once from the environment.

Every app setting the code reads is named here (``ENV_*`` constants) and nowhere else, so the
Bicep settings test can compare this list with what ``infra/`` sets. Orchestrators never read
settings: the starters copy what an orchestration needs (polling policy, deadline) into its input.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "REGION_PRESETS",
    "SETTING_NAMES",
    "ConfigError",
    "Settings",
    "resolve_api_base",
]

logger = logging.getLogger(__name__)

# Citrix Cloud API hosts per onboarding region. Any https URL (or a loopback http URL for the
# simulator) may be given instead of a preset name.
REGION_PRESETS: dict[str, str] = {
    "us": "https://api-us.cloud.com",
    "eu": "https://api-eu.cloud.com",
    "ap-s": "https://api-ap-s.cloud.com",
    "jp": "https://api.citrixcloud.jp",
}

ENV_CITRIX_API_BASE = "CITRIX_API_BASE"
ENV_CITRIX_CUSTOMER_ID = "CITRIX_CUSTOMER_ID"
ENV_CITRIX_SITE_ID = "CITRIX_SITE_ID"
ENV_KEY_VAULT_URL = "KEY_VAULT_URL"
ENV_SECRET_NAME_CLIENT_ID = "CITRIX_CLIENT_ID_SECRET_NAME"
ENV_SECRET_NAME_CLIENT_SECRET = "CITRIX_CLIENT_SECRET_SECRET_NAME"
ENV_SECRET_NAME_CUSTOMER_ID = "CITRIX_CUSTOMER_ID_SECRET_NAME"
ENV_SECRET_CACHE_TTL = "SECRET_CACHE_TTL_SECONDS"
ENV_AZURE_CLIENT_ID = "AZURE_CLIENT_ID"
ENV_TOKEN_SAFETY_MARGIN = "CITRIX_TOKEN_SAFETY_MARGIN_SECONDS"
ENV_HTTP_TIMEOUT = "CITRIX_HTTP_TIMEOUT_SECONDS"
ENV_RETRY_BUDGET = "CITRIX_RETRY_BUDGET_SECONDS"
ENV_MAX_RPS = "CITRIX_MAX_REQUESTS_PER_SECOND"
ENV_VDA_UPDATE_DELAY = "DEFAULT_VDA_UPDATE_DELAY_MINUTES"
ENV_POLL_MIN = "POLL_MIN_INTERVAL_SECONDS"
ENV_POLL_MAX = "POLL_MAX_INTERVAL_SECONDS"
ENV_DEADLINE = "UPDATE_DEADLINE_MINUTES"
ENV_BUSY_WAIT = "BUSY_CATALOG_WAIT_MINUTES"
ENV_IMAGE_WAIT = "IMAGE_READY_WAIT_MINUTES"
ENV_POLLS_PER_EXECUTION = "POLLS_PER_EXECUTION"
ENV_MAX_POLL_FAILURES = "MAX_CONSECUTIVE_POLL_FAILURES"
ENV_MAX_PARALLEL = "MAX_PARALLEL_CATALOGS"
ENV_ROUTES = "EVENT_ROUTES"
ENV_MAX_BODY = "MAX_REQUEST_BODY_BYTES"

SETTING_NAMES: tuple[str, ...] = (
    ENV_CITRIX_API_BASE,
    ENV_CITRIX_CUSTOMER_ID,
    ENV_CITRIX_SITE_ID,
    ENV_KEY_VAULT_URL,
    ENV_SECRET_NAME_CLIENT_ID,
    ENV_SECRET_NAME_CLIENT_SECRET,
    ENV_SECRET_NAME_CUSTOMER_ID,
    ENV_SECRET_CACHE_TTL,
    ENV_AZURE_CLIENT_ID,
    ENV_TOKEN_SAFETY_MARGIN,
    ENV_HTTP_TIMEOUT,
    ENV_RETRY_BUDGET,
    ENV_MAX_RPS,
    ENV_VDA_UPDATE_DELAY,
    ENV_POLL_MIN,
    ENV_POLL_MAX,
    ENV_DEADLINE,
    ENV_BUSY_WAIT,
    ENV_IMAGE_WAIT,
    ENV_POLLS_PER_EXECUTION,
    ENV_MAX_POLL_FAILURES,
    ENV_MAX_PARALLEL,
    ENV_ROUTES,
    ENV_MAX_BODY,
)

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting and never its value
    when the value could be secret."""


def resolve_api_base(value: str) -> str:
    """Turn a region preset (``us``, ``eu``, ``ap-s``, ``jp``) or a URL into an API base URL."""
    text = value.strip()
    preset = REGION_PRESETS.get(text.lower())
    if preset:
        return preset
    parsed = urlsplit(text)
    loopback = parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS
    if (parsed.scheme == "https" or loopback) and parsed.hostname:
        return text.rstrip("/")
    raise ConfigError(
        f"{ENV_CITRIX_API_BASE} must be one of {', '.join(REGION_PRESETS)} or an https:// URL"
    )


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with safe defaults. Build with :meth:`from_env`."""

    citrix_api_base: str = REGION_PRESETS["us"]
    citrix_customer_id: str = ""
    citrix_site_id: str = ""
    key_vault_url: str = ""
    secret_name_client_id: str = "citrix-client-id"
    secret_name_client_secret: str = "citrix-client-secret"
    secret_name_customer_id: str = ""
    secret_cache_ttl_seconds: float = 300.0
    azure_client_id: str = ""
    token_safety_margin_seconds: float = 300.0
    http_timeout_seconds: float = 30.0
    retry_budget_seconds: float = 120.0
    # Client-side pacing per worker process, below the tenant's gateway limit; 0 turns it off.
    max_requests_per_second: float = 8.0
    # -1: machines take the new image at their next natural restart (no forced reboot).
    default_vda_update_delay: int = -1
    poll_min_interval_seconds: int = 30
    poll_max_interval_seconds: int = 600
    deadline_minutes: int = 360
    busy_catalog_wait_minutes: int = 120
    image_ready_wait_minutes: int = 60
    polls_per_execution: int = 40
    max_consecutive_poll_failures: int = 5
    max_parallel_catalogs: int = 5
    max_request_body_bytes: int = 64 * 1024
    routes: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    problems: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``). Malformed values raise
        :class:`ConfigError`; soft problems (for ``/api/health``) land in ``problems``."""
        source = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str, default: str = "") -> str:
            raw = source.get(name, default).strip()
            if raw.lower().startswith(_KEY_VAULT_REFERENCE):
                problems.append(
                    f"{name} holds an unresolved Key Vault reference: the app identity cannot "
                    "read it (check keyVaultReferenceIdentity and the vault role assignment)"
                )
                return default
            return raw

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = text(name)
            if not raw:
                return default
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
            if not low <= number <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {number}")
            return number

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = text(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if not low <= value <= high:  # also refuses nan
                raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw}")
            return value

        routes_raw = text(ENV_ROUTES)
        routes: tuple[dict[str, Any], ...] = ()
        if routes_raw:
            try:
                parsed = json.loads(routes_raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{ENV_ROUTES} is not valid JSON: {exc.msg}") from None
            if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
                raise ConfigError(f"{ENV_ROUTES} must be a JSON array of route objects")
            routes = tuple(parsed)

        poll_min = integer(ENV_POLL_MIN, 30, 5, 3600)
        poll_max = integer(ENV_POLL_MAX, 600, 5, 6 * 3600)
        if poll_max < poll_min:
            raise ConfigError(f"{ENV_POLL_MAX} must be >= {ENV_POLL_MIN}")

        settings = cls(
            citrix_api_base=resolve_api_base(text(ENV_CITRIX_API_BASE, "us") or "us"),
            citrix_customer_id=text(ENV_CITRIX_CUSTOMER_ID),
            citrix_site_id=text(ENV_CITRIX_SITE_ID),
            key_vault_url=text(ENV_KEY_VAULT_URL).rstrip("/"),
            secret_name_client_id=text(ENV_SECRET_NAME_CLIENT_ID, "citrix-client-id"),
            secret_name_client_secret=text(ENV_SECRET_NAME_CLIENT_SECRET, "citrix-client-secret"),
            secret_name_customer_id=text(ENV_SECRET_NAME_CUSTOMER_ID),
            secret_cache_ttl_seconds=float(integer(ENV_SECRET_CACHE_TTL, 300, 0, 86400)),
            azure_client_id=text(ENV_AZURE_CLIENT_ID),
            token_safety_margin_seconds=float(integer(ENV_TOKEN_SAFETY_MARGIN, 300, 0, 1800)),
            http_timeout_seconds=float(integer(ENV_HTTP_TIMEOUT, 30, 1, 300)),
            retry_budget_seconds=float(integer(ENV_RETRY_BUDGET, 120, 0, 1800)),
            max_requests_per_second=number(ENV_MAX_RPS, 8.0, 0.0, 1000.0),
            default_vda_update_delay=integer(ENV_VDA_UPDATE_DELAY, -1, -1, 10080),
            poll_min_interval_seconds=poll_min,
            poll_max_interval_seconds=poll_max,
            deadline_minutes=integer(ENV_DEADLINE, 360, 1, 7 * 24 * 60),
            busy_catalog_wait_minutes=integer(ENV_BUSY_WAIT, 120, 0, 24 * 60),
            image_ready_wait_minutes=integer(ENV_IMAGE_WAIT, 60, 0, 24 * 60),
            polls_per_execution=integer(ENV_POLLS_PER_EXECUTION, 40, 1, 1000),
            max_consecutive_poll_failures=integer(ENV_MAX_POLL_FAILURES, 5, 1, 100),
            max_parallel_catalogs=integer(ENV_MAX_PARALLEL, 5, 1, 100),
            max_request_body_bytes=integer(ENV_MAX_BODY, 64 * 1024, 1024, 4 * 1024 * 1024),
            routes=routes,
            problems=(),
        )
        if not settings.key_vault_url:
            problems.append(f"{ENV_KEY_VAULT_URL} is not set: Citrix credentials cannot be read")
        if not settings.citrix_customer_id and not settings.secret_name_customer_id:
            problems.append(
                f"neither {ENV_CITRIX_CUSTOMER_ID} nor {ENV_SECRET_NAME_CUSTOMER_ID} is set"
            )
        return _with_problems(settings, problems)


def _with_problems(settings: Settings, problems: list[str]) -> Settings:
    from dataclasses import replace

    return replace(settings, problems=tuple(problems))
