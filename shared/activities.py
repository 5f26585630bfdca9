"""Activity bodies: all I/O lives here. Each takes and returns a plain JSON dict.

Expected failures come back as values (``{"ok": false, "category", "message", "retryable",
...}``) because the Durable SDK reduces activity exceptions to a bare message. Only bugs raise.
Credentials are fetched here, inside the activity, and never returned.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.citrix import (
    Catalog,
    CitrixError,
    CitrixHTTPError,
    CitrixImageNotReadyError,
    map_catalog_status,
    same_origin,
)
from shared.config import ConfigError
from shared.runtime import Services, get_services
from shared.secrets import SecretError

__all__ = ["check_catalog", "prepare_update", "submit_update"]

logger = logging.getLogger(__name__)


def _failure(exc: Exception, **extra: Any) -> dict[str, Any]:
    """An expected failure as a JSON value (no secrets: messages are built to be safe)."""
    if isinstance(exc, CitrixError):
        value: dict[str, Any] = dict(exc.to_dict())
        if isinstance(exc, CitrixHTTPError) and exc.retry_after is not None:
            value["retryAfter"] = exc.retry_after
    elif isinstance(exc, SecretError):
        value = dict(exc.to_dict())
    elif isinstance(exc, ConfigError):
        value = {"category": "config", "message": str(exc), "retryable": False}
    else:  # pragma: no cover - callers only pass the types above
        raise exc
    value["ok"] = False
    value.update({k: v for k, v in extra.items() if v is not None})
    return value


def _services() -> Services:
    return get_services()


def _site_id(services: Services) -> str:
    return services.settings.citrix_site_id or services.citrix.get_site_id()


def prepare_update(payload: dict[str, Any]) -> dict[str, Any]:
    """Resolve site, catalog (id or name) and image (id or name, must be Ready)."""
    ctx = {"instanceId": payload.get("instanceId"), "catalog": payload.get("catalog")}
    try:
        services = _services()
        site_id = _site_id(services)
    except (CitrixError, SecretError, ConfigError) as exc:
        logger.warning("prepare failed before lookup: %s", exc, extra=ctx)
        return _failure(exc)
    try:
        catalog = services.citrix.find_catalog(
            site_id, str(payload.get("catalog") or ""), fresh=bool(payload.get("fresh"))
        )
    except CitrixError as exc:
        logger.info("catalog look-up failed: %s", exc, extra=ctx)
        return _failure(exc, subject="catalog", siteId=site_id)
    try:
        image = services.citrix.find_image(
            site_id, str(payload.get("image") or ""), require_ready=True
        )
    except CitrixImageNotReadyError as exc:
        logger.info("image not ready: %s", exc, extra=ctx)
        return _failure(
            exc,
            subject="image",
            imageState=exc.state,
            siteId=site_id,
            catalog=catalog.to_dict(),
        )
    except CitrixError as exc:
        logger.info("image look-up failed: %s", exc, extra=ctx)
        return _failure(exc, subject="image", siteId=site_id, catalog=catalog.to_dict())
    logger.info(
        "prepared instance=%s catalog=%s (%s, %s) image=%s (%s)",
        payload.get("instanceId"),
        catalog.name,
        catalog.id,
        catalog.state,
        image.name,
        image.id,
    )
    return {
        "ok": True,
        "siteId": site_id,
        "catalog": catalog.to_dict(),
        "image": image.to_dict(),
    }


_submit_locks: dict[str, threading.Lock] = {}
_submit_locks_guard = threading.Lock()


def _submit_lock(catalog_id: str) -> threading.Lock:
    """One lock per catalog in this worker: its check and its POST go together."""
    with _submit_locks_guard:
        return _submit_locks.setdefault(catalog_id.lower(), threading.Lock())


def _ready_for(catalog: Catalog, target_image_id: str) -> bool:
    return catalog.accepts_update and (catalog.image_id or "").lower() != target_image_id.lower()


def _changed(catalog: Catalog, target_image_id: str, cause: str | None = None) -> dict[str, Any]:
    """The catalog is no longer ready for this update; nothing was sent (or Citrix refused)."""
    on_target = (catalog.image_id or "").lower() == target_image_id.lower()
    message = (
        f"catalog '{catalog.name or catalog.id}' is {catalog.state}"
        + (" on the new image already" if on_target else "")
        + "; the update was not submitted"
        + (f" (Citrix answered: {cause})" if cause else "")
    )
    return {
        "ok": False,
        "category": "catalog_changed",
        "retryable": False,
        "message": message,
        "catalog": catalog.to_dict(),
    }


def submit_update(payload: dict[str, Any]) -> dict[str, Any]:
    """Re-read the catalog, then POST $updateImage once if it is still ready for the update.

    The catalog is read afresh (not from a reused listing) right before the POST, under a
    per-catalog lock, so two updates of one catalog in this worker cannot both send: the second
    sees it busy and answers ``catalog_changed``. A 400/409 from Citrix on a catalog that turns
    out busy answers the same (another worker's update got there first). A lost or 5xx answer
    comes back as ``outcome_unknown``."""
    body = payload.get("body") or {}
    site_id, catalog_id = str(payload["siteId"]), str(payload["catalogId"])
    target = str(payload.get("targetImageId") or body.get("TemplateId") or "")
    ctx = (payload.get("instanceId"), catalog_id)
    try:
        services = _services()
        with _submit_lock(catalog_id):
            current = services.citrix.get_catalog(site_id, catalog_id)
            if not _ready_for(current, target):
                logger.info(
                    "not submitting instance=%s catalog=%s: it is %s on image %s now",
                    *ctx,
                    current.state,
                    current.image_id,
                )
                return _changed(current, target)
            try:
                submission = services.citrix.update_image(
                    site_id,
                    catalog_id,
                    template_id=str(body["TemplateId"]),
                    citrix_prepared=bool(body.get("CitrixPrepared", False)),
                    vda_update_delay=int(body["VdaUpdateDelay"]),
                    warning_title=body.get("WarningTitle"),
                    warning_message=body.get("WarningMessage"),
                    transaction_id=payload.get("transactionId"),
                )
            except CitrixHTTPError as exc:
                if exc.status not in (400, 409):
                    raise
                after = _read_quietly(services, site_id, catalog_id)
                if after is None or _ready_for(after, target):
                    raise
                logger.info("submit refused instance=%s catalog=%s: it is busy now", *ctx)
                return _changed(after, target, cause=exc.detail or exc.message)
    except (CitrixError, SecretError, ConfigError) as exc:
        logger.warning("submit failed instance=%s catalog=%s: %s", *ctx, exc)
        return _failure(exc)
    logger.info(
        "submitted instance=%s catalog=%s image=%s transaction=%s",
        *ctx,
        body.get("TemplateId"),
        submission.transaction_id,
    )
    location = submission.location
    if location and not same_origin(location, services.citrix.api_base):
        # Never follow it (the bearer token would go there), but the update was accepted: watch
        # the catalog through the API itself instead of failing every status check.
        logger.warning(
            "ignoring the location header of the image update for catalog %s: it is not on the "
            "Citrix API host %s; the catalog is polled directly (transaction %s)",
            catalog_id,
            services.citrix.api_base,
            submission.transaction_id,
        )
        location = None
    return {
        "ok": True,
        "catalogId": submission.catalog_id,
        "transactionId": submission.transaction_id,
        "location": location,
    }


def _read_quietly(services: Services, site_id: str, catalog_id: str) -> Catalog | None:
    try:
        return services.citrix.get_catalog(site_id, catalog_id)
    except CitrixError as exc:
        logger.info("could not re-read catalog %s after a refused submit: %s", catalog_id, exc)
        return None


def check_catalog(payload: dict[str, Any]) -> dict[str, Any]:
    """Read the catalog (or its ``location`` status URL) and map it to a normalized status.

    A ``location`` no longer on the configured API host (the setting changed since the update
    was submitted) is never followed: the catalog is read directly instead."""
    try:
        services = _services()
        location = payload.get("location")
        if location and not same_origin(str(location), services.citrix.api_base):
            logger.warning(
                "not following the stored update status URL of catalog %s: it is not on the "
                "Citrix API host %s; reading the catalog directly",
                payload.get("catalogId"),
                services.citrix.api_base,
            )
            location = None
        catalog = services.citrix.get_update_status(
            str(payload["siteId"]), str(payload["catalogId"]), location
        )
    except (CitrixError, SecretError, ConfigError) as exc:
        logger.info(
            "status check failed instance=%s catalog=%s: %s",
            payload.get("instanceId"),
            payload.get("catalogId"),
            exc,
        )
        return _failure(exc)
    status = map_catalog_status(catalog, target_image_id=payload.get("targetImageId"))
    logger.info(
        "checked instance=%s catalog=%s state=%s subState=%s progress=%s -> %s",
        payload.get("instanceId"),
        catalog.id,
        catalog.state,
        catalog.sub_state,
        catalog.progress,
        status.status,
    )
    return {
        "ok": True,
        "catalog": catalog.to_dict(),
        "status": {
            "status": status.status,
            "state": status.state,
            "subState": status.sub_state,
            "progress": status.progress,
            "etaMinutes": status.eta_minutes,
            "message": status.message,
        },
    }
