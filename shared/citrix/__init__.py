"""Citrix Cloud Catalog Service API: token cache, client, models, errors and status mapping."""

from __future__ import annotations

from shared.citrix.auth import CitrixTokenProvider, TokenProvider
from shared.citrix.client import CatalogServiceClient, same_origin
from shared.citrix.errors import (
    CitrixAuthError,
    CitrixBadRequestError,
    CitrixError,
    CitrixHTTPError,
    CitrixImageNotReadyError,
    CitrixInvalidIdError,
    CitrixInvalidInputError,
    CitrixLookupError,
    CitrixNotFoundError,
    CitrixOutcomeUnknownError,
    CitrixPermissionError,
    CitrixRateLimitError,
    CitrixRequestError,
    CitrixResponseError,
    CitrixServerError,
    CitrixUnsafeLocationError,
    validate_id,
)
from shared.citrix.http import translate_requests_exception
from shared.citrix.models import Catalog, Image, UpdateSubmission
from shared.citrix.status import UpdateStatus, decide_unknown, map_catalog_status

__all__ = [
    "Catalog",
    "CatalogServiceClient",
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
    "CitrixTokenProvider",
    "CitrixUnsafeLocationError",
    "Image",
    "TokenProvider",
    "UpdateStatus",
    "UpdateSubmission",
    "decide_unknown",
    "map_catalog_status",
    "same_origin",
    "translate_requests_exception",
    "validate_id",
]
