"""Citrix Catalog Service (Managed Desktops / DaaS Standard for Azure / Quick Deploy) client.

Paths (relative to ``{api_base}/catalogservice``)::

    GET  /{customerId}/sites
    GET  /{customerId}/{siteId}/catalogs[/{catalogId}]
    GET  /{customerId}/{siteId}/images?includeCustomerPrepared=true&includeCitrixPrepared=true
    GET  /{customerId}/{siteId}/images/{imageId}
    POST /{customerId}/{siteId}/catalogs/{catalogId}/$updateImage?async=true
    GET  <location>   (.../catalogs/{catalogId}/updateStatus, same scheme/host/port only)

Every public method is one logical operation with one ``Citrix-TransactionId``. Reads are
retried within ``retry_budget_seconds``; ``$updateImage`` is only repeated when it certainly
was not processed (429, connection refused) and otherwise raises
:class:`~shared.citrix.errors.CitrixOutcomeUnknownError`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from shared.citrix.auth import TokenProvider
from shared.citrix.errors import (
    CitrixAuthError,
    CitrixError,
    CitrixImageNotReadyError,
    CitrixInvalidInputError,
    CitrixLookupError,
    CitrixNotFoundError,
    CitrixResponseError,
    CitrixUnsafeLocationError,
    validate_id,
)
from shared.citrix.http import HttpResult, HttpSender, error_from_response, new_transaction_id
from shared.citrix.models import Catalog, Image, UpdateSubmission, items_of
from shared.citrix.pacing import shared_pacer
from shared.clock import Clock, SystemClock

__all__ = ["CatalogServiceClient", "same_origin"]

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_MAX_LISTED = 20


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(url: str, api_base: str) -> bool:
    """True when ``url`` has the same scheme, host and port as ``api_base`` (no credentials)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return False
    origin = _origin(url)
    return bool(origin[1]) and origin == _origin(api_base)


def _listing(names: list[str]) -> str:
    shown = names[:_MAX_LISTED]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return ", ".join(shown) + more if shown else "none"


class CatalogServiceClient:
    """Client for one customer's Catalog Service API. Thread-safe if the session is."""

    def __init__(
        self,
        api_base: str,
        customer_id: str,
        token_provider: TokenProvider,
        *,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        timeout_seconds: float = 30,
        retry_budget_seconds: float = 120,
        rng: random.Random | None = None,
        max_requests_per_second: float = 0.0,
        listing_cache_seconds: float = 0.0,
    ) -> None:
        base = api_base.strip().rstrip("/")
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
            raise CitrixInvalidInputError("api_base must be an http(s) URL with a host")
        self.api_base = base
        self.customer_id = validate_id(customer_id, "customer id")
        self._tokens = token_provider
        self._clock: Clock = clock or SystemClock()
        self._sender = HttpSender(
            session or requests.Session(),
            self._clock,
            timeout_seconds=timeout_seconds,
            retry_budget_seconds=retry_budget_seconds,
            rng=rng,
            pacer=shared_pacer(base, max_requests_per_second, self._clock),
        )
        self._root = f"{base}/catalogservice/{quote(self.customer_id, safe='')}"
        # A customer has one site for good; listings are reused briefly so the catalogs of one
        # multi-catalog update, prepared together, share one look-up instead of one each.
        self._site_id: str | None = None
        self._listing_ttl = max(0.0, float(listing_cache_seconds))
        self._listings: dict[str, tuple[float, list[Any]]] = {}
        self._listing_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CatalogServiceClient(api_base={self.api_base!r}, customer_id={self.customer_id!r})"

    # ------------------------------------------------------------------ plumbing

    def _site_url(self, site_id: str, *segments: str) -> str:
        site = validate_id(site_id, "site id")
        return "/".join([self._root, quote(site, safe=""), *segments])

    def _headers(self, token: str, *, json_body: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"CwsAuth Bearer={token}", "Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = JSON_CONTENT_TYPE
        return headers

    def _call(
        self,
        method: str,
        url: str,
        *,
        transaction_id: str | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        what: str = "",
    ) -> HttpResult:
        """One logical operation: token, send with retries, one renewal on 401, error mapping."""
        tid = transaction_id or new_transaction_id()
        deadline = self._sender.deadline()
        data = json.dumps(body).encode("utf-8") if body is not None else None
        token = self._tokens.get_token()
        current = {"token": token}

        def fresh_headers() -> dict[str, str]:
            current["token"] = self._tokens.get_token()
            return self._headers(current["token"], json_body=data is not None)

        def send() -> HttpResult:
            return self._sender.send(
                method,
                url,
                headers=self._headers(current["token"], json_body=data is not None),
                transaction_id=tid,
                idempotent=idempotent,
                deadline=deadline,
                data=data,
                params=params,
                on_retry=fresh_headers,
            )

        result = send()
        if result.status == 401:
            logger.info("citrix %s answered 401: renewing the token once", what or method)
            self._tokens.invalidate(current["token"])
            current["token"] = self._tokens.get_token()
            result = send()
            if result.status == 401:
                error = error_from_response(result, context="still 401 after renewing the token")
                raise CitrixAuthError(
                    error.message,
                    status=401,
                    error_type=getattr(error, "error_type", None),
                    detail=getattr(error, "detail", None),
                    transaction_id=result.transaction_id,
                )
        if not result.ok:
            raise self._error(result, what)
        return result

    def _error(self, result: HttpResult, what: str) -> CitrixError:
        context = what
        if result.status == 403:
            context = (
                f"{what}: the API client may not use customer id {self.customer_id!r} here; "
                "check that the client belongs to that customer and that the API base URL "
                f"({self.api_base}) is the customer's region (us, eu, ap-s, jp)"
            ).lstrip(": ")
        return error_from_response(result, context=context, now=self._clock.time())

    @staticmethod
    def _body(result: HttpResult) -> Any:
        if result.body is None:
            raise CitrixResponseError(
                f"{result.method} {urlsplit(result.url).path}: answer is not JSON",
                status=result.status,
                transaction_id=result.transaction_id,
            )
        return result.body

    # ------------------------------------------------------------------ operations

    def _listed(
        self, key: str, load: Callable[[], list[Any]], *, fresh: bool = False
    ) -> tuple[list[Any], bool]:
        """``load()``, reused for ``listing_cache_seconds`` (one loader at a time per key).
        Returns the items and whether they came from the cache; ``fresh`` skips the cache."""
        if self._listing_ttl <= 0:
            return load(), False
        with self._listing_lock:
            cached = self._listings.get(key)
            if not fresh and cached is not None and self._clock.time() < cached[0]:
                return list(cached[1]), True
            items = load()
            self._listings[key] = (self._clock.time() + self._listing_ttl, items)
            return list(items), False

    def get_site_id(self) -> str:
        """The customer's (single) site id, looked up once per client."""
        if self._site_id is not None:
            return self._site_id
        result = self._call("GET", f"{self._root}/sites", what="list sites")
        sites = items_of(self._body(result), "sites")
        for site in sites:
            for key in ("id", "Id", "siteId"):
                value = site.get(key)
                if isinstance(value, str) and value:
                    self._site_id = value
                    return value
        raise CitrixLookupError(
            f"customer {self.customer_id!r} has no Catalog Service site",
            transaction_id=result.transaction_id,
        )

    def list_catalogs(self, site_id: str) -> list[Catalog]:
        """All catalogs of the site."""
        return self._catalogs(site_id)[0]

    def _catalogs(self, site_id: str, *, fresh: bool = False) -> tuple[list[Catalog], bool]:
        def load() -> list[Catalog]:
            result = self._call("GET", self._site_url(site_id, "catalogs"), what="list catalogs")
            return [
                Catalog.from_api(item).with_transaction_id(result.transaction_id)
                for item in items_of(self._body(result), "catalogs")
            ]

        return self._listed(f"catalogs:{site_id}", load, fresh=fresh)

    def get_catalog(self, site_id: str, catalog_id: str) -> Catalog:
        """One catalog by id."""
        cid = validate_id(catalog_id, "catalog id")
        result = self._call(
            "GET", self._site_url(site_id, "catalogs", quote(cid, safe="")), what="get catalog"
        )
        return Catalog.from_api(self._body(result), catalog_id=cid).with_transaction_id(
            result.transaction_id
        )

    def find_catalog(self, site_id: str, id_or_name: str, *, fresh: bool = False) -> Catalog:
        """A catalog by exact id, else by case-insensitive name (exactly one must match).

        A reused listing is trusted only for a catalog it shows ready for an update; anything
        else (no match, busy, error) is looked up again before it is reported. ``fresh`` skips
        the reused listing (the caller knows the catalog changed)."""
        if not isinstance(id_or_name, str) or not id_or_name.strip():
            raise CitrixInvalidInputError("catalog id or name must be a non-empty string")
        catalogs, cached = self._catalogs(site_id, fresh=fresh)
        if cached:
            try:
                found = self._match_catalog(catalogs, id_or_name.strip())
            except CitrixLookupError:
                found = None
            if found is not None and found.accepts_update:
                return found
            catalogs, _ = self._catalogs(site_id, fresh=True)
        return self._match_catalog(catalogs, id_or_name.strip())

    @staticmethod
    def _match_catalog(catalogs: list[Catalog], wanted: str) -> Catalog:
        by_id = [c for c in catalogs if c.id == wanted] or [
            c for c in catalogs if c.id.lower() == wanted.lower()
        ]
        if len(by_id) == 1:
            return by_id[0]
        matches = [c for c in catalogs if c.name.strip().lower() == wanted.lower()]
        if len(matches) == 1:
            return matches[0]
        described = [f"{c.name} ({c.id})" for c in (matches or catalogs)]
        if matches:
            raise CitrixLookupError(
                f"{len(matches)} catalogs are named {wanted!r}: {_listing(described)}; "
                "use the catalog id instead",
                ambiguous=True,
                candidates=[c.id for c in matches],
            )
        raise CitrixLookupError(
            f"no catalog has the id or name {wanted!r}; existing catalogs: {_listing(described)}",
            candidates=[c.name for c in catalogs],
        )

    def list_images(self, site_id: str) -> list[Image]:
        """All images of the site, own (customer-prepared) and Citrix-prepared."""
        return self._images(site_id)[0]

    def _images(self, site_id: str, *, fresh: bool = False) -> tuple[list[Image], bool]:
        def load() -> list[Image]:
            result = self._call(
                "GET",
                self._site_url(site_id, "images"),
                params={"includeCustomerPrepared": "true", "includeCitrixPrepared": "true"},
                what="list images",
            )
            return [Image.from_api(item) for item in items_of(self._body(result), "overviews")]

        return self._listed(f"images:{site_id}", load, fresh=fresh)

    def get_image(self, site_id: str, image_id: str) -> Image:
        """One image by id."""
        iid = validate_id(image_id, "image id")
        result = self._call(
            "GET", self._site_url(site_id, "images", quote(iid, safe="")), what="get image"
        )
        return Image.from_api(self._body(result))

    def find_image(self, site_id: str, id_or_name: str, *, require_ready: bool = True) -> Image:
        """An image by exact id, else by case-insensitive id or name; with ``require_ready``
        an image that is not ``Ready`` raises CitrixImageNotReadyError naming its state.

        A reused listing is trusted only when it settles the question; a missing or not-ready
        image (say, one published seconds ago) is looked up again before it is reported."""
        if not isinstance(id_or_name, str) or not id_or_name.strip():
            raise CitrixInvalidInputError("image id or name must be a non-empty string")
        images, cached = self._images(site_id)
        if cached:
            try:
                return self._match_image(images, id_or_name.strip(), require_ready)
            except (CitrixLookupError, CitrixImageNotReadyError):
                images, _ = self._images(site_id, fresh=True)
        return self._match_image(images, id_or_name.strip(), require_ready)

    @staticmethod
    def _match_image(images: list[Image], wanted: str, require_ready: bool) -> Image:
        found = [i for i in images if i.id == wanted] or [
            i for i in images if i.id.lower() == wanted.lower()
        ]
        if len(found) != 1:
            found = [i for i in images if i.name.strip().lower() == wanted.lower()]
        if not found:
            raise CitrixLookupError(
                f"no image has the id or name {wanted!r}; existing images: "
                f"{_listing([f'{i.name} ({i.id}, {i.state})' for i in images])}",
                candidates=[i.name for i in images],
            )
        if len(found) > 1:
            raise CitrixLookupError(
                f"{len(found)} images are named {wanted!r}: "
                f"{_listing([f'{i.name} ({i.id}, {i.state})' for i in found])}; "
                "use the image id instead",
                ambiguous=True,
                candidates=[i.id for i in found],
            )
        image = found[0]
        if require_ready and not image.ready:
            detail = f" ({image.sub_state})" if image.sub_state else ""
            message = f": {image.status_message}" if image.status_message else ""
            raise CitrixImageNotReadyError(
                f"image {image.name or image.id!r} ({image.id}) is in state "
                f"{image.state}{detail}, not Ready{message}",
                state=image.state,
                image_id=image.id,
            )
        return image

    def update_image(
        self,
        site_id: str,
        catalog_id: str,
        *,
        template_id: str,
        citrix_prepared: bool,
        vda_update_delay: int,
        warning_title: str | None = None,
        warning_message: str | None = None,
        transaction_id: str | None = None,
    ) -> UpdateSubmission:
        """Submit ``$updateImage?async=true``. Not repeated once it may have been processed:
        a lost answer, timeout or 5xx raises CitrixOutcomeUnknownError."""
        cid = validate_id(catalog_id, "catalog id")
        validate_id(template_id, "image id")
        if isinstance(vda_update_delay, bool) or not isinstance(vda_update_delay, int):
            raise CitrixInvalidInputError("vda_update_delay must be an integer number of minutes")
        if vda_update_delay < -1:
            raise CitrixInvalidInputError(
                "vda_update_delay must be -1 (next natural restart), 0 (now) or a positive "
                "number of minutes"
            )
        if not isinstance(citrix_prepared, bool):
            raise CitrixInvalidInputError("citrix_prepared must be true or false")
        body: dict[str, Any] = {
            "TemplateId": template_id,
            "CitrixPrepared": citrix_prepared,
            "VdaUpdateDelay": vda_update_delay,
        }
        if warning_title is not None:
            body["WarningTitle"] = warning_title
        if warning_message is not None:
            body["WarningMessage"] = warning_message
        url = self._site_url(site_id, "catalogs", quote(cid, safe=""), "$updateImage")
        result = self._call(
            "POST",
            url,
            params={"async": "true"},
            body=body,
            idempotent=False,
            transaction_id=transaction_id,
            what="update catalog image",
        )
        answered_id = result.body if isinstance(result.body, str) and result.body else cid
        location = result.headers.get("location")
        if location:
            location = urljoin(result.url, location.strip())
        logger.info(
            "citrix image update accepted for catalog %s (HTTP %d, transaction %s)",
            cid,
            result.status,
            result.transaction_id,
        )
        return UpdateSubmission(
            catalog_id=answered_id, transaction_id=result.transaction_id, location=location
        )

    def get_update_status(
        self, site_id: str, catalog_id: str, location: str | None = None
    ) -> Catalog:
        """The catalog's status: GET ``location`` (only on the API's own scheme/host/port) or,
        without one, GET the catalog. A status overview without ``imageId`` in a success state
        is completed from the catalog so the caller can verify the image switched; a 404 or an
        answer that is not a status overview falls back to the catalog."""
        cid = validate_id(catalog_id, "catalog id")
        validate_id(site_id, "site id")
        if location is None:
            return self.get_catalog(site_id, cid)
        target = urljoin(self.api_base + "/", location.strip())
        if not same_origin(target, self.api_base):
            parts = urlsplit(target)
            raise CitrixUnsafeLocationError(
                f"refusing to follow the location URL to {parts.scheme}://{parts.hostname}: it is "
                f"not the configured Citrix API host ({self.api_base}) and the bearer token "
                "would be sent there"
            )
        # The location is used as given; only its query is dropped from logs by the sender.
        # Its answer's shape is not documented: one that is missing (404) or not a catalog
        # status (no state) is not a reason to lose the update; the catalog itself tells.
        try:
            result = self._call("GET", target, what="get update status")
            catalog = Catalog.from_api(self._body(result), catalog_id=cid).with_transaction_id(
                result.transaction_id
            )
        except (CitrixNotFoundError, CitrixResponseError) as exc:
            logger.info("update status URL gave no usable answer (%s); reading the catalog", exc)
            return self.get_catalog(site_id, cid)
        if catalog.image_id is None and catalog.accepts_update:
            full = self.get_catalog(site_id, cid)
            catalog = replace(
                catalog,
                image_id=full.image_id,
                template_image_name=catalog.template_image_name or full.template_image_name,
                name=catalog.name or full.name,
            )
        return catalog
