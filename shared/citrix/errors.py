"""One exception hierarchy for everything the Citrix client can fail with.

::

    CitrixError                      base; .category .retryable .status .transaction_id, to_dict()
     ├ CitrixRequestError            "connection"       request not sent / connection failed
     ├ CitrixResponseError           "protocol"         a response came back but was not understood
     ├ CitrixOutcomeUnknownError     "outcome_unknown"  a POST was sent, its answer was lost or 5xx
     ├ CitrixHTTPError               (by status)        a non-2xx answer with the Citrix error body
     │  ├ CitrixAuthError            "auth"             401 after one renewal; token endpoint 400
     │  ├ CitrixPermissionError      "permission"       403
     │  ├ CitrixNotFoundError        "not_found"        404
     │  ├ CitrixBadRequestError      "bad_request"      400/409/422/other 4xx (never retried)
     │  ├ CitrixRateLimitError       "rate_limited"     429 after the retry budget
     │  └ CitrixServerError          "server"           5xx after the retry budget
     ├ CitrixLookupError             "not_found" | "ambiguous"  name look-up with 0 or >1 matches
     ├ CitrixImageNotReadyError      "image_not_ready"  image exists but is not Ready
     ├ CitrixUnsafeLocationError     "unsafe_location"  location URL on another scheme/host/port
     └ CitrixInvalidInputError       "invalid_input"    bad argument, refused before any request
        └ CitrixInvalidIdError                          an id that is unsafe in a URL path

Messages never contain a client secret, a bearer token or an Authorization header: only ids,
names, statuses, Citrix error types/details and transaction ids. The translation from
``requests`` exceptions lives in exactly one function:
``shared.citrix.http.translate_requests_exception``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "TRANSITIONAL_IMAGE_STATES",
    "CitrixAuthError",
    "CitrixBadRequestError",
    "CitrixError",
    "CitrixHTTPError",
    "CitrixImageNotReadyError",
    "CitrixInvalidIdError",
    "CitrixInvalidInputError",
    "CitrixLookupError",
    "CitrixNotFoundError",
    "CitrixOutcomeUnknownError",
    "CitrixPermissionError",
    "CitrixRateLimitError",
    "CitrixRequestError",
    "CitrixResponseError",
    "CitrixServerError",
    "CitrixUnsafeLocationError",
    "http_error_class",
    "validate_id",
]

# Image states that can still turn into Ready by themselves (worth waiting for).
TRANSITIONAL_IMAGE_STATES = frozenset(
    {
        "Pending",
        "Enumerating",
        "NotStarted",
        "Importing",
        "BuilderProvisioning",
        "BuilderActive",
        "BuilderVerifying",
        "BuilderRestarting",
    }
)


class CitrixError(Exception):
    """Base of every Citrix client error."""

    category: str = "error"
    default_retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transaction_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transaction_id = transaction_id
        self.retryable = self.default_retryable if retryable is None else retryable

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary for activity results and API answers (no secrets by design)."""
        return {
            "category": self.category,
            "message": self.message,
            "retryable": self.retryable,
            "status": self.status,
            "transactionId": self.transaction_id,
        }


class CitrixRequestError(CitrixError):
    """The request was not sent, or the connection failed before an answer (safe to retry
    for reads; for a POST only when it was certainly not sent)."""

    category = "connection"
    default_retryable = True


class CitrixResponseError(CitrixError):
    """An answer arrived but could not be understood (bad JSON, missing fields, redirect)."""

    category = "protocol"


class CitrixOutcomeUnknownError(CitrixError):
    """A state-changing POST was sent but its answer was lost, timed out or was a 5xx.

    The change may or may not have happened: re-read the catalog before resubmitting."""

    category = "outcome_unknown"


class CitrixHTTPError(CitrixError):
    """A non-2xx answer. Carries the Citrix error envelope ``{type, detail, parameters}``."""

    category = "http"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        detail: str | None = None,
        parameters: Mapping[str, str] | None = None,
        transaction_id: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, status=status, transaction_id=transaction_id, retryable=retryable)
        self.error_type = error_type
        self.detail = detail
        self.parameters: dict[str, str] = dict(parameters or {})
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.error_type:
            data["errorType"] = self.error_type
        return data


class CitrixAuthError(CitrixHTTPError):
    """Citrix did not accept the caller: credentials rejected, or 401 after one renewal."""

    category = "auth"


class CitrixPermissionError(CitrixHTTPError):
    """403: the API client is known but may not do this (wrong customer id or region)."""

    category = "permission"


class CitrixNotFoundError(CitrixHTTPError):
    """404: the customer, site, catalog or image id does not exist."""

    category = "not_found"


class CitrixBadRequestError(CitrixHTTPError):
    """400/409/422 and other 4xx: the request must be fixed; never retried."""

    category = "bad_request"


class CitrixRateLimitError(CitrixHTTPError):
    """429 that outlasted the retry budget."""

    category = "rate_limited"
    default_retryable = True


class CitrixServerError(CitrixHTTPError):
    """5xx that outlasted the retry budget (or was not retryable for this method)."""

    category = "server"
    default_retryable = True


class CitrixLookupError(CitrixError):
    """A name look-up found no match (``not_found``) or several (``ambiguous``)."""

    category = "not_found"

    def __init__(
        self,
        message: str,
        *,
        ambiguous: bool = False,
        candidates: Sequence[str] = (),
        transaction_id: str | None = None,
    ) -> None:
        super().__init__(message, transaction_id=transaction_id, retryable=False)
        self.category = "ambiguous" if ambiguous else "not_found"
        self.candidates: tuple[str, ...] = tuple(candidates)


class CitrixImageNotReadyError(CitrixError):
    """The image exists but is not ``Ready`` (retryable while it may still become Ready)."""

    category = "image_not_ready"

    def __init__(
        self,
        message: str,
        *,
        state: str,
        image_id: str | None = None,
        transaction_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            transaction_id=transaction_id,
            retryable=state in TRANSITIONAL_IMAGE_STATES,
        )
        self.state = state
        self.image_id = image_id


class CitrixUnsafeLocationError(CitrixError):
    """A ``location`` URL points to another scheme/host/port: following it would leak the token."""

    category = "unsafe_location"


class CitrixInvalidInputError(CitrixError):
    """An argument is invalid; raised before any request is made."""

    category = "invalid_input"


class CitrixInvalidIdError(CitrixInvalidInputError):
    """An id that is empty or unsafe in a URL path segment."""


def http_error_class(status: int) -> type[CitrixHTTPError]:
    """The exception class for a non-2xx HTTP status."""
    if status == 401:
        return CitrixAuthError
    if status == 403:
        return CitrixPermissionError
    if status == 404:
        return CitrixNotFoundError
    if status == 429:
        return CitrixRateLimitError
    if status >= 500:
        return CitrixServerError
    return CitrixBadRequestError


_ID_MAX_LENGTH = 200
# Unreserved URL characters (RFC 3986) only: letters, digits, "-", ".", "_", "~".
_ID_ALLOWED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _describe(value: str) -> str:
    shown = value if len(value) <= 60 else value[:60] + "..."
    return ascii(shown)


def validate_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is safe as one URL path segment, else raise CitrixInvalidIdError.

    Only unreserved URL characters are allowed (no ``/ ? # \\ %``, no whitespace or control
    characters, no dot-segments), so no id can change the path it is put into."""
    if not isinstance(value, str) or not value:
        raise CitrixInvalidIdError(f"{what} must be a non-empty string")
    if len(value) > _ID_MAX_LENGTH:
        raise CitrixInvalidIdError(f"{what} is longer than {_ID_MAX_LENGTH} characters")
    bad = sorted({ch for ch in value if ch not in _ID_ALLOWED})
    if bad:
        names = ", ".join(
            unicodedata.name(ch, f"U+{ord(ch):04X}") if not ch.isprintable() else repr(ch)
            for ch in bad[:5]
        )
        raise CitrixInvalidIdError(
            f"{what} {_describe(value)} contains characters that are not allowed in an id "
            f"({names}); allowed are letters, digits, '-', '.', '_' and '~'"
        )
    if set(value) == {"."} or ".." in value:
        raise CitrixInvalidIdError(f"{what} {_describe(value)} must not contain '..'")
    return value
