"""HTTP plumbing shared by the token provider and the Catalog Service client.

* :func:`translate_requests_exception` is the ONE place where ``requests`` (and the urllib3 /
  socket errors it may let through) become :class:`~shared.citrix.errors.CitrixError`.
* :func:`error_from_response` turns a non-2xx answer with a Citrix error body into the right
  :class:`~shared.citrix.errors.CitrixHTTPError` subclass.
* :class:`HttpSender` sends one logical operation with an explicit timeout, a per-operation
  transaction id and jittered exponential backoff within a time budget measured on the injected
  clock. It retries only what is safe: connection errors where the request was not processed,
  429 (never sooner than ``Retry-After`` / ``retryDelay``), and 502/503/504 for idempotent calls.

One INFO line per HTTP request (method, path without query, status, elapsed, transaction id).
Headers are never logged.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from shared.citrix.errors import (
    CitrixError,
    CitrixOutcomeUnknownError,
    CitrixRequestError,
    CitrixResponseError,
    http_error_class,
)
from shared.citrix.pacing import RequestPacer
from shared.clock import Clock

__all__ = [
    "RETRYABLE_GET_STATUSES",
    "HttpResult",
    "HttpSender",
    "error_from_response",
    "new_transaction_id",
    "parse_citrix_error_body",
    "parse_retry_after",
    "translate_requests_exception",
]

logger = logging.getLogger(__name__)

RETRYABLE_GET_STATUSES = frozenset({502, 503, 504})
TRANSACTION_HEADER = "Citrix-TransactionId"

_BACKOFF_BASE_SECONDS = 1.0
_BACKOFF_CAP_SECONDS = 30.0
# Upper bound on any single wait, even when the server asks for more.
_MAX_TOLD_DELAY_SECONDS = 600.0

# Errors raised below requests that it may not wrap (or we may see from other code paths).
_LOW_LEVEL_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    requests.exceptions.RequestsWarning,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

_NOT_SENT_URLLIB3 = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.NameResolutionError,
)


def new_transaction_id() -> str:
    """A fresh Citrix-TransactionId (UUID4)."""
    return str(uuid.uuid4())


def _path_of(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "<invalid url>"


def _connection_never_opened(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was refused / not resolved / not opened in time."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.ProxyError):
        return True
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    if isinstance(reason, _NOT_SENT_URLLIB3):
        return True
    return isinstance(reason, ConnectionRefusedError)


def translate_requests_exception(
    exc: BaseException,
    *,
    method: str,
    url: str,
    transaction_id: str | None,
    idempotent: bool,
) -> CitrixError:
    """Map an exception raised while sending a request to a CitrixError (the only such place).

    ``idempotent`` says whether repeating the request is harmless. For a non-idempotent call
    (``POST $updateImage``) anything that may have reached the server becomes
    :class:`CitrixOutcomeUnknownError`; only errors that prove nothing was sent stay
    retryable :class:`CitrixRequestError`."""
    where = f"{method} {_path_of(url)}"
    tid = transaction_id

    def not_sent(why: str, retryable: bool = True) -> CitrixError:
        return CitrixRequestError(
            f"{where}: request not sent: {why}", transaction_id=tid, retryable=retryable
        )

    def maybe_sent(why: str) -> CitrixError:
        if idempotent:
            return CitrixRequestError(
                f"{where}: no usable answer: {why}", transaction_id=tid, retryable=True
            )
        return CitrixOutcomeUnknownError(
            f"{where}: the request was sent but its answer was lost ({why}); the change may "
            "or may not have been applied: re-read the catalog before submitting again",
            transaction_id=tid,
        )

    def not_understood(why: str) -> CitrixError:
        if idempotent:
            return CitrixResponseError(f"{where}: answer not understood: {why}", transaction_id=tid)
        return maybe_sent(why)

    name = type(exc).__name__
    # Order matters: most specific requests classes first.
    if isinstance(exc, requests.exceptions.RequestsWarning):
        return not_sent(f"client library warning raised as an error ({name})", retryable=False)
    if isinstance(exc, requests.exceptions.SSLError):
        return not_sent("TLS handshake or certificate verification failed", retryable=False)
    if isinstance(exc, requests.exceptions.ProxyError):
        return not_sent("the proxy refused or failed the connection")
    if isinstance(exc, requests.ConnectTimeout):
        return not_sent("timed out while connecting")
    if isinstance(exc, requests.ReadTimeout):
        return maybe_sent("timed out waiting for the answer")
    if isinstance(exc, requests.Timeout):
        return maybe_sent("timed out")
    if isinstance(exc, requests.ConnectionError):
        if _connection_never_opened(exc):
            return not_sent("connection refused or host unreachable")
        return maybe_sent("connection closed or reset")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return not_understood("the body is not valid JSON")
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return not_sent("the request body is not valid JSON", retryable=False)
    if isinstance(
        exc,
        requests.exceptions.URLRequired
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidURL
        | requests.exceptions.InvalidHeader,
    ):
        return not_sent(f"invalid URL or header ({name})", retryable=False)
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return maybe_sent("the answer was cut off or could not be decoded")
    if isinstance(exc, requests.TooManyRedirects):
        return not_understood("too many redirects")
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        error = not_understood(f"unexpected HTTP error status {status}")
        error.status = status
        return error
    if isinstance(exc, requests.exceptions.RetryError):
        return maybe_sent("the transport gave up retrying")
    if isinstance(
        exc, requests.exceptions.StreamConsumedError | requests.exceptions.UnrewindableBodyError
    ):
        return maybe_sent(f"the body could not be re-sent ({name})")
    if isinstance(exc, requests.RequestException):
        return maybe_sent(f"request failed ({name})")
    if isinstance(exc, ConnectionRefusedError):
        return not_sent("connection refused")
    if isinstance(exc, urllib3.exceptions.HTTPError | http.client.HTTPException | OSError):
        return maybe_sent(f"transport error ({name})")
    return not_understood(f"unexpected error ({name})")


@dataclass(frozen=True)
class HttpResult:
    """A received answer: status, headers (case-insensitive), parsed JSON body (or None)."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str
    transaction_id: str | None
    method: str
    url: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def parse_citrix_error_body(body: Any) -> tuple[str | None, str | None, dict[str, str]]:
    """``(type, detail, parameters)`` from any Citrix error body shape.

    Shapes seen: ``{type, detail, parameters: [{name, value}] | {k: v}}`` (camel or Pascal),
    ``{"Error": {"Message", "Type"}}``, ``{"message": ...}``, OAuth ``{error, ...}``."""
    if not isinstance(body, dict):
        return None, None, {}
    lowered = {str(k).lower(): v for k, v in body.items()}
    inner = lowered.get("error")
    if isinstance(inner, dict):
        inner_lc = {str(k).lower(): v for k, v in inner.items()}
        return _opt_str(inner_lc.get("type")), _opt_str(inner_lc.get("message")), {}
    error_type = _opt_str(lowered.get("type")) or _opt_str(lowered.get("error"))
    detail = (
        _opt_str(lowered.get("detail"))
        or _opt_str(lowered.get("message"))
        or _opt_str(lowered.get("errormessage"))
    )
    parameters: dict[str, str] = {}
    raw = lowered.get("parameters")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                item_lc = {str(k).lower(): v for k, v in item.items()}
                key = _opt_str(item_lc.get("name"))
                if key is not None:
                    parameters[key] = "" if item_lc.get("value") is None else str(item_lc["value"])
    elif isinstance(raw, dict):
        parameters = {str(k): "" if v is None else str(v) for k, v in raw.items()}
    return error_type, detail, parameters


def _opt_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_retry_after(
    headers: Mapping[str, str], parameters: Mapping[str, str], now: float
) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or the ``retryDelay``
    parameter of a Citrix error body, whichever asks for longer; None when neither is usable."""
    candidates: list[float] = []
    header = headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            candidates.append(float(header))
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                candidates.append(parsedate_to_datetime(header).timestamp() - now)
    for key, value in parameters.items():
        if key.lower() == "retrydelay":
            with contextlib.suppress(ValueError):
                candidates.append(float(value))
    usable = [max(0.0, c) for c in candidates if c == c]  # drop NaN
    return min(max(usable), _MAX_TOLD_DELAY_SECONDS) if usable else None


def error_from_response(
    result: HttpResult, *, context: str = "", now: float | None = None
) -> CitrixError:
    """The CitrixError for a non-2xx (or unexpected 3xx) answer."""
    where = f"{result.method} {_path_of(result.url)}"
    error_type, detail, parameters = parse_citrix_error_body(result.body)
    tid = result.transaction_id
    if result.status < 400:
        return CitrixResponseError(
            f"{where}: unexpected HTTP {result.status} (redirects are not followed)",
            status=result.status,
            transaction_id=tid,
        )
    reason = http.client.responses.get(result.status, "")
    parts = [f"{where}: HTTP {result.status} {reason}".rstrip()]
    if error_type:
        parts.append(f"[{error_type}]")
    if detail:
        parts.append(f"- {detail[:500]}")
    if context:
        parts.append(f"- {context}")
    if tid:
        parts.append(f"(Citrix transaction {tid})")
    cls = http_error_class(result.status)
    return cls(
        " ".join(parts),
        status=result.status,
        error_type=error_type,
        detail=detail,
        parameters=parameters,
        transaction_id=tid,
        retry_after=parse_retry_after(
            result.headers, parameters, time.time() if now is None else now
        ),
    )


class HttpSender:
    """Sends requests for one service with timeouts, logging and a bounded retry policy."""

    def __init__(
        self,
        session: requests.Session,
        clock: Clock,
        *,
        timeout_seconds: float,
        retry_budget_seconds: float,
        rng: random.Random | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self.session = session
        self.clock = clock
        self.timeout_seconds = float(timeout_seconds)
        self.retry_budget_seconds = max(0.0, float(retry_budget_seconds))
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.pacer = pacer

    def deadline(self) -> float:
        """Clock time after which no further retry may start."""
        return self.clock.time() + self.retry_budget_seconds

    def send_once(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        transaction_id: str,
        idempotent: bool,
        data: str | bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """One HTTP exchange; transport failures come back as CitrixError (raised)."""
        all_headers = dict(headers)
        all_headers[TRANSACTION_HEADER] = transaction_id
        if self.pacer is not None:
            self.pacer.wait_turn()
        started = time.perf_counter()
        path = _path_of(url)
        try:
            response = self.session.request(
                method,
                url,
                headers=all_headers,
                data=data,
                params=params,
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
            text = response.text
        except _LOW_LEVEL_ERRORS as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            error = translate_requests_exception(
                exc,
                method=method,
                url=url,
                transaction_id=transaction_id,
                idempotent=idempotent,
            )
            logger.info(
                "citrix http %s %s -> %s after %.0f ms (transaction %s)",
                method,
                path,
                error.category,
                elapsed_ms,
                transaction_id,
            )
            raise error from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        headers_ci: CaseInsensitiveDict[str] = CaseInsensitiveDict(response.headers)
        tid = headers_ci.get(TRANSACTION_HEADER) or transaction_id
        logger.info(
            "citrix http %s %s -> %d in %.0f ms (transaction %s)",
            method,
            path,
            response.status_code,
            elapsed_ms,
            tid,
        )
        body: Any = None
        if text.strip():
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        return HttpResult(
            status=response.status_code,
            headers=headers_ci,
            body=body,
            text=text,
            transaction_id=tid,
            method=method,
            url=url,
        )

    def backoff_delay(self, attempt: int, told: float | None) -> float:
        """Jittered exponential delay for retry ``attempt`` (1-based), never below ``told``."""
        ceiling: float = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * (2 ** (attempt - 1)))
        jittered: float = ceiling * (0.5 + 0.5 * self.rng.random())
        if told is not None:
            # Never sooner than told; a little jitter on top spreads synchronized clients.
            return told + min(1.0, told * 0.1) * self.rng.random() if told > 0 else jittered
        return jittered

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        transaction_id: str,
        idempotent: bool,
        deadline: float,
        data: str | bytes | None = None,
        params: Mapping[str, str] | None = None,
        on_retry: Callable[[], Mapping[str, str]] | None = None,
    ) -> HttpResult:
        """Send with retries until success, a non-retryable answer, or the deadline.

        Returns the final HttpResult (any status: mapping statuses to errors is the caller's
        job, except 5xx or 3xx on a non-idempotent call, which raises CitrixOutcomeUnknownError).
        ``on_retry`` may supply fresh headers before each repeat."""
        attempt = 0
        current_headers = headers
        while True:
            attempt += 1
            try:
                result = self.send_once(
                    method,
                    url,
                    headers=current_headers,
                    transaction_id=transaction_id,
                    idempotent=idempotent,
                    data=data,
                    params=params,
                )
            except CitrixError as error:
                if not error.retryable or isinstance(error, CitrixOutcomeUnknownError):
                    raise
                if not self._sleep_before_retry(attempt, None, deadline, method, url):
                    raise
                if on_retry is not None:
                    current_headers = on_retry()
                continue
            if result.status == 429 or (idempotent and result.status in RETRYABLE_GET_STATUSES):
                _, _, parameters = parse_citrix_error_body(result.body)
                told = parse_retry_after(result.headers, parameters, self.clock.time())
                if result.status == 429 and told is not None and self.pacer is not None:
                    self.pacer.hold(told)
                if self._sleep_before_retry(attempt, told, deadline, method, url):
                    if on_retry is not None:
                        current_headers = on_retry()
                    continue
                return result
            # A 5xx, or a redirect we do not follow, to a state-changing POST: it may have been
            # applied before the answer was made, so the caller must reconcile, not retry.
            if not idempotent and (result.status >= 500 or 300 <= result.status < 400):
                failure = error_from_response(result, now=self.clock.time())
                raise CitrixOutcomeUnknownError(
                    f"{failure.message}; the request was sent, so the change may or may not have "
                    "been applied: re-read the catalog before submitting again",
                    status=result.status,
                    transaction_id=result.transaction_id,
                )
            return result

    def _sleep_before_retry(
        self, attempt: int, told: float | None, deadline: float, method: str, url: str
    ) -> bool:
        delay = self.backoff_delay(attempt, told)
        if self.clock.time() + delay > deadline:
            logger.info(
                "citrix http %s %s: retry budget exhausted after %d attempt(s)",
                method,
                _path_of(url),
                attempt,
            )
            return False
        logger.debug("citrix http %s %s: retrying in %.1f s", method, _path_of(url), delay)
        self.clock.sleep(delay)
        return True
