"""Citrix Cloud bearer tokens (OAuth2 client credentials), cached per process.

``POST {api_base}/cctrustoauth2/{customerId}/tokens/clients`` with a form body
``grant_type=client_credentials&client_id=...&client_secret=...`` answers
``{"token_type": "bearer", "access_token": "...", "expires_in": "3600"}`` (a number or a
string). Tokens cannot be refreshed; a new one is requested a safety margin before expiry or
when an API call answers 401 (:meth:`CitrixTokenProvider.invalidate`).

The token and the client secret never reach a log line, an exception message or a return value
other than :meth:`CitrixTokenProvider.get_token`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, urlencode

import requests

from shared.citrix.errors import CitrixAuthError, CitrixResponseError, validate_id
from shared.citrix.http import HttpResult, HttpSender, error_from_response, new_transaction_id
from shared.citrix.pacing import shared_pacer
from shared.clock import Clock, SystemClock
from shared.credentials import ClientCredentials

__all__ = ["CitrixTokenProvider", "TokenProvider"]

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
REJECTED_MESSAGE = (
    "Citrix rejected the API client id/secret (invalid_client): check the values stored in "
    "Key Vault and that the API client still exists in Citrix Cloud (Identity and Access "
    "Management > API Access)"
)


class TokenProvider(Protocol):
    """What the Catalog Service client needs from a token source."""

    def get_token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class CitrixTokenProvider:
    """Thread-safe bearer-token cache for one customer and API client."""

    def __init__(
        self,
        api_base: str,
        customer_id: str,
        credentials: Callable[[], ClientCredentials],
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        safety_margin_seconds: float = 300,
        timeout_seconds: float = 30,
        retry_budget_seconds: float = 60,
        on_credentials_rejected: Callable[[], None] | None = None,
        rng: random.Random | None = None,
        max_requests_per_second: float = 0.0,
    ) -> None:
        self._customer_id = validate_id(customer_id, "customer id")
        self._url = (
            f"{api_base.rstrip('/')}/cctrustoauth2/{quote(self._customer_id, safe='')}"
            "/tokens/clients"
        )
        self._credentials = credentials
        self._clock: Clock = clock or SystemClock()
        self._margin = max(0.0, float(safety_margin_seconds))
        self._on_rejected = on_credentials_rejected
        self._sender = HttpSender(
            session or requests.Session(),
            self._clock,
            timeout_seconds=timeout_seconds,
            retry_budget_seconds=retry_budget_seconds,
            rng=rng,
            pacer=shared_pacer(api_base, max_requests_per_second, self._clock),
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"CitrixTokenProvider(customer_id={self._customer_id!r})"

    def get_token(self) -> str:
        """A valid bearer token; requests one only when the cached one is due for renewal."""
        with self._lock:
            if self._token is not None and self._clock.time() < self._renew_at:
                return self._token
            token, lifetime = self._request_token()
            now = self._clock.time()
            # A margin larger than half the lifetime would renew on every call.
            margin = min(self._margin, lifetime / 2)
            self._token = token
            self._expires_at = now + lifetime
            self._renew_at = self._expires_at - margin
            logger.info(
                "citrix token obtained for customer %s (valid %.0f s, renew after %.0f s)",
                self._customer_id,
                lifetime,
                lifetime - margin,
            )
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (after a 401) unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token == token:
                self._token = None
                self._renew_at = 0.0

    def _request_token(self) -> tuple[str, float]:
        result = self._post_credentials(self._credentials())
        if _is_invalid_client(result) and self._on_rejected is not None:
            logger.warning(
                "citrix token endpoint rejected the API client; re-reading credentials once"
            )
            self._on_rejected()
            result = self._post_credentials(self._credentials())
        if _is_invalid_client(result):
            raise CitrixAuthError(
                REJECTED_MESSAGE,
                status=result.status,
                error_type="invalid_client",
                transaction_id=result.transaction_id,
            )
        if not result.ok:
            error = error_from_response(result, context="token request", now=self._clock.time())
            raise error
        return _parse_token(result)

    def _post_credentials(self, credentials: ClientCredentials) -> HttpResult:
        self.token_requests += 1
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.secret,
            }
        )
        return self._sender.send(
            "POST",
            self._url,
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"},
            data=body.encode("ascii"),
            transaction_id=new_transaction_id(),
            # Asking for a token changes nothing on the server: repeating it is safe.
            idempotent=True,
            deadline=self._sender.deadline(),
        )


def _is_invalid_client(result: HttpResult) -> bool:
    if not isinstance(result.body, dict):
        return False
    error = result.body.get("error")
    if isinstance(error, str) and error.lower() == "invalid_client":
        return result.status in (400, 401) or result.ok
    return False


def _parse_token(result: HttpResult) -> tuple[str, float]:
    body = result.body
    if not isinstance(body, dict):
        raise CitrixResponseError(
            "token endpoint answer is not a JSON object", transaction_id=result.transaction_id
        )
    if isinstance(body.get("error"), str) and body["error"]:
        raise CitrixAuthError(
            f"token endpoint answered with error {body['error'][:80]!r}",
            status=result.status,
            error_type=body["error"][:80],
            transaction_id=result.transaction_id,
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise CitrixResponseError(
            "token endpoint answer has no access_token", transaction_id=result.transaction_id
        )
    raw = body.get("expires_in")
    lifetime: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        lifetime = float(raw)
    elif isinstance(raw, str):
        try:
            lifetime = float(raw.strip())
        except ValueError:
            lifetime = None
    if lifetime is None or not math.isfinite(lifetime) or lifetime <= 0:
        raise CitrixResponseError(
            "token endpoint answer has no usable expires_in", transaction_id=result.transaction_id
        )
    return token.strip(), lifetime
