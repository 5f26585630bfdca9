"""The collaborators activities use, built once per worker process from Settings.

Production builds them lazily on first use (so importing ``function_app`` stays cheap); the local
runtime and tests inject their own with :func:`set_services` (a virtual clock, the Key Vault
emulator's CA bundle, the simulator's URL).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.clock import Clock, SystemClock
from shared.config import Settings

if TYPE_CHECKING:
    from shared.citrix import CatalogServiceClient, CitrixTokenProvider
    from shared.secrets import KeyVaultSecretSource

__all__ = ["Services", "build_services", "get_services", "get_settings", "set_services"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Everything an activity needs, wired together."""

    settings: Settings
    clock: Clock
    secrets: KeyVaultSecretSource
    token_provider: CitrixTokenProvider
    citrix: CatalogServiceClient


# How long a catalog/image listing is reused: long enough for the catalogs of one multi-catalog
# update to share it, shorter than the minimum poll interval so waits always see fresh state.
_LISTING_CACHE_SECONDS = 15.0

_lock = threading.Lock()
_services: Services | None = None
_settings: Settings | None = None


def get_settings() -> Settings:
    """Settings read once per process (or the injected services' settings)."""
    global _settings
    if _services is not None:
        return _services.settings
    with _lock:
        if _settings is None:
            _settings = Settings.from_env()
        return _settings


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    connection_verify: bool | str = True,
    credential: Any = None,
) -> Services:
    """Wire the secret source, token provider and Citrix client for ``settings``."""
    from shared.citrix import CatalogServiceClient, CitrixTokenProvider
    from shared.secrets import KeyVaultSecretSource

    the_clock = clock or SystemClock()
    secrets = KeyVaultSecretSource(
        settings, credential=credential, clock=the_clock, connection_verify=connection_verify
    )

    # The customer id is a setting, or a Key Vault secret: reading it here is why services are
    # built on first use inside an activity, never at import time.
    customer_id = secrets.get_customer_id()

    token_provider = CitrixTokenProvider(
        settings.citrix_api_base,
        customer_id,
        secrets.get_citrix_credentials,
        clock=the_clock,
        safety_margin_seconds=settings.token_safety_margin_seconds,
        timeout_seconds=settings.http_timeout_seconds,
        retry_budget_seconds=settings.retry_budget_seconds,
        on_credentials_rejected=secrets.invalidate,
        max_requests_per_second=settings.max_requests_per_second,
    )
    citrix = CatalogServiceClient(
        settings.citrix_api_base,
        customer_id,
        token_provider,
        clock=the_clock,
        timeout_seconds=settings.http_timeout_seconds,
        retry_budget_seconds=settings.retry_budget_seconds,
        max_requests_per_second=settings.max_requests_per_second,
        listing_cache_seconds=_LISTING_CACHE_SECONDS,
    )
    return Services(
        settings=settings,
        clock=the_clock,
        secrets=secrets,
        token_provider=token_provider,
        citrix=citrix,
    )


def get_services() -> Services:
    """The process-wide services, built on first use."""
    global _services
    with _lock:
        if _services is None:
            settings = _settings or Settings.from_env()
            _services = build_services(settings)
        return _services


def set_services(services: Services | None) -> None:
    """Inject services (local runtime, tests); ``None`` resets to lazy production wiring."""
    global _services, _settings
    with _lock:
        _services = services
        _settings = services.settings if services is not None else None
