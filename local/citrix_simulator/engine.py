"""The simulator's brain: scenario state, clock-driven state machine, auth, faults, routing.

Transport-free: :meth:`Engine.handle` takes a :class:`SimRequest` and returns a
:class:`SimResponse`; the HTTP server in ``server.py`` only moves bytes. Everything happens
under one lock, and time comes only from the injected clock, so runs are deterministic on a
virtual clock.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qs, quote

from local.citrix_simulator.scenario import (
    CatalogSpec,
    FaultSpec,
    Glitch,
    ImageSpec,
    Scenario,
    UpdatePlan,
)
from shared.clock import Clock

__all__ = ["Engine", "SimRequest", "SimResponse"]

logger = logging.getLogger(__name__)

ERRORS_BASE = "https://errors-api.cloud.com"
JSON_TYPE = "application/json; charset=utf-8"
_AUTH_RE = re.compile(r"^\s*cwsauth\s+bearer\s*=\s*(\S+)\s*$", re.IGNORECASE)
_SUCCESS_STATES = ("Active", "InputRequired")


@dataclass(frozen=True)
class SimRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    host: str


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    action: str = "respond"  # respond | drop | hang
    hang_seconds: float = 0.0
    fault: str | None = None


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> SimResponse:
    out = {"Content-Type": JSON_TYPE}
    out.update(headers or {})
    return SimResponse(status, out, json.dumps(payload).encode("utf-8"))


def citrix_error(status: int, kind: str, detail: str, **parameters: str) -> SimResponse:
    """A Citrix Cloud error envelope ``{type, detail, parameters: [{name, value}]}``."""
    body = {
        "type": f"{ERRORS_BASE}/{kind}",
        "detail": detail,
        "parameters": [{"name": k, "value": v} for k, v in parameters.items()],
    }
    return _json_response(status, body)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Job:
    kind: str  # "update" | "busy"
    start: float
    end: float
    plan: UpdatePlan
    new_image_id: str | None
    new_image_name: str | None
    transaction_id: str


@dataclass
class _Catalog:
    spec: CatalogSpec
    state: str
    sub_state: str | None
    status_message: str | None
    image_id: str | None
    template_image_name: str | None
    warnings: list[dict[str, Any]]
    transaction_id: str | None = None
    job: _Job | None = None
    gone: bool = False  # answers 404
    updates_started: int = 0
    update_requests: list[dict[str, Any]] = field(default_factory=list)
    last_modified: float = 0.0
    started_at: float | None = None


@dataclass
class _Image:
    spec: ImageSpec
    override_state: str | None = None
    override_sub_state: str | None = None
    override_message: str | None = None
    deleted: bool = False


@dataclass
class _Token:
    client_id: str
    customers: tuple[str, ...]
    expires_at: float


class Engine:
    """All simulator state and behaviour, driven by ``clock``."""

    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self.origin = clock.time()
        self.lock = threading.RLock()
        self.log: list[dict[str, Any]] = []
        self.tokens: dict[str, _Token] = {}
        self.tokens_issued = 0
        self.secrets = {c.client_id: c.secret for c in scenario.api_clients}
        self.client_customers = {c.client_id: c.customers for c in scenario.api_clients}
        self.fault_counts = [0] * len(scenario.faults)
        self.recent: deque[float] = deque()
        self.images: dict[str, _Image] = {i.id: _Image(i) for i in scenario.images}
        self.catalogs: dict[str, _Catalog] = {}
        for spec in scenario.catalogs:
            catalog = _Catalog(
                spec=spec,
                state=spec.state,
                sub_state=spec.sub_state,
                status_message=spec.status_message,
                image_id=spec.image_id,
                template_image_name=spec.template_image_name,
                warnings=[],
                last_modified=self.origin,
            )
            if spec.busy_until_minutes is not None:
                # Busy with an earlier job (e.g. another image update) until that time.
                busy_plan = UpdatePlan(
                    duration_minutes=spec.busy_until_minutes, outcome=spec.state_after_busy
                )
                catalog.state = "Processing"
                catalog.job = _Job(
                    kind="busy",
                    start=self.origin,
                    end=self.origin + spec.busy_until_minutes * 60,
                    plan=busy_plan,
                    new_image_id=None,
                    new_image_name=None,
                    transaction_id=str(uuid.uuid4()),
                )
                catalog.started_at = self.origin
            self.catalogs[spec.id] = catalog

    # ------------------------------------------------------------------ time & state

    def minutes(self, now: float | None = None) -> float:
        return ((self.clock.time() if now is None else now) - self.origin) / 60.0

    def _settle(self, catalog: _Catalog, now: float) -> None:
        job = catalog.job
        if job is None:
            return
        glitch = job.plan.glitch
        if glitch is not None and glitch.for_minutes is None:
            if now >= job.start + glitch.at_minutes * 60:
                # For good: the update never reports an end.
                catalog.job = None
                catalog.state = glitch.state
                catalog.sub_state = "Unknown" if glitch.state == "Unknown" else None
                catalog.status_message = (
                    "Unable to determine the catalog state. Please contact support"
                    if glitch.state == "Unknown"
                    else None
                )
                catalog.gone = glitch.as_404
                catalog.last_modified = now
            return
        if now < job.end:
            return
        plan = job.plan
        catalog.job = None
        catalog.state = plan.outcome
        catalog.last_modified = job.end
        catalog.warnings = [dict(w) for w in plan.warnings]
        if plan.outcome in _SUCCESS_STATES:
            catalog.sub_state = plan.sub_state
            catalog.status_message = plan.status_message
            if job.new_image_id is not None:
                catalog.image_id = job.new_image_id
                catalog.template_image_name = job.new_image_name
        else:
            catalog.sub_state = plan.sub_state
            catalog.status_message = plan.status_message

    def _progress(self, job: _Job, now: float) -> tuple[str, int, int]:
        """(sub-state, percent, ETA minutes) of a running job."""
        total = max(job.end - job.start, 1e-9)
        fraction = min(max((now - job.start) / total, 0.0), 1.0)
        percent = min(99, int(fraction * 100))
        sub_state = job.plan.steps[-1][0]
        for name, until in job.plan.steps:
            if percent < until:
                sub_state = name
                break
        eta = max(0, math.ceil((job.end - now) / 60.0))
        return sub_state, percent, eta

    def _glitch_now(self, job: _Job, now: float) -> Glitch | None:
        glitch = job.plan.glitch
        if glitch is None or glitch.for_minutes is None:
            return None
        start = job.start + glitch.at_minutes * 60
        if start <= now < start + glitch.for_minutes * 60:
            return glitch
        return None

    def catalog_view(
        self, catalog: _Catalog, now: float, *, overview: bool = True
    ) -> dict[str, Any]:
        """CatalogOverview (``overview``) or CatalogStatusOverview, camelCase."""
        self._settle(catalog, now)
        state = catalog.state
        sub_state = catalog.sub_state
        message = catalog.status_message
        percent: int | None = None
        eta: int | None = None
        job = catalog.job
        if job is not None:
            glitch = self._glitch_now(job, now)
            if glitch is not None:
                state = glitch.state
                sub_state = "Unknown" if glitch.state == "Unknown" else None
                message = (
                    "Unable to determine the catalog state. Please contact support"
                    if glitch.state == "Unknown"
                    else None
                )
            else:
                state = "Processing"
                sub_state, percent, eta = self._progress(job, now)
                message = None
        view: dict[str, Any] = {"id": catalog.spec.id}
        if overview:
            view.update(
                {
                    "name": catalog.spec.name,
                    "sessionSupport": "MultiSession",
                    "allocationType": "Random",
                    "region": "eastus",
                    "resourceGroup": "rg-citrix-catalogs",
                    "subscriptionName": "Citrix Managed",
                    "vNetName": "vnet-citrix",
                    "deliveryGroupId": f"dg-{catalog.spec.id}",
                    "offeringId": "",
                    "offeringIdApp": "",
                    "offeringIdDesktop": "",
                    "advanced": False,
                    "totalMachinesInCatalog": 2,
                    "templateImageOs": "Windows 11 Enterprise multi-session",
                }
            )
            view.update(catalog.spec.extra)
        view.update(
            {
                "state": state,
                "subState": sub_state,
                "statusMessage": message,
                "warnings": list(catalog.warnings),
                "transactionId": catalog.transaction_id,
                "imageId": catalog.image_id,
                "templateImageName": catalog.template_image_name,
            }
        )
        if percent is not None:
            view["taskCompletionPercentage"] = percent
        if overview:
            view["lastModifiedTime"] = _iso(catalog.last_modified)
        else:
            view["estimatedTimeInMinute"] = eta
            view["startedAt"] = _iso(catalog.started_at) if catalog.started_at else None
            view["catalogErrorDetails"] = None
            view["extraInfo"] = None
        return view

    def image_visible(self, image: _Image, now: float) -> bool:
        return not image.deleted and now >= self.origin + image.spec.appear_after_minutes * 60

    def image_view(self, image: _Image, now: float, *, details: bool = False) -> dict[str, Any]:
        spec = image.spec
        state = spec.state
        sub_state = spec.sub_state
        message = spec.status_message
        if spec.ready_after_minutes is not None and now < self.origin + (
            spec.ready_after_minutes * 60
        ):
            state = spec.state_before_ready
            sub_state = "ProcessingImportingImageVhdFile" if state == "Importing" else None
            message = None
        if image.override_state is not None:
            state = image.override_state
            sub_state = image.override_sub_state
            message = image.override_message
        linked = [c for c in self.catalogs.values() if c.image_id == spec.id]
        view: dict[str, Any] = {
            "id": spec.id,
            "name": spec.name,
            "sessionSupport": "MultiSession",
            "state": state,
            "subState": sub_state,
            "status": message,
            "statusMessage": message,
            "region": "eastus",
            "subscriptionName": "Citrix Managed",
            "citrixPrepared": spec.citrix_prepared,
            "isDeprecated": False,
            "osName": "Windows 11 Enterprise multi-session",
            "linkedCatalogs": len(linked),
            "linkedCatalogsNames": [c.spec.name for c in linked],
            "createdDate": _iso(self.origin + spec.appear_after_minutes * 60),
        }
        view.update(spec.extra)
        if details:
            view["catalogs"] = [
                {
                    "catalogId": c.spec.id,
                    "catalogName": c.spec.name,
                    "state": c.state,
                    "azureSubscription": "Citrix Managed",
                }
                for c in linked
            ]
            view["applications"] = []
        return view

    # ------------------------------------------------------------------ request handling

    def handle(self, request: SimRequest) -> SimResponse:
        """Answer one request and record it in the log."""
        with self.lock:
            now = self.clock.time()
            tid = request.headers.get("citrix-transactionid") or str(uuid.uuid4())
            response = self._handle(request, now, tid)
            response.headers.setdefault("citrix-transactionId", tid)
            if not request.path.startswith("/_sim/"):
                self.log.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "query": request.query,
                        "status": response.status if response.action == "respond" else None,
                        "time": now,
                        "fault": response.fault,
                    }
                )
            return response

    def _matching_fault(self, request: SimRequest, now: float) -> FaultSpec | None:
        chosen: FaultSpec | None = None
        for fault in self.scenario.faults:
            if fault.method not in ("*", request.method):
                continue
            if not fnmatchcase(request.path, fault.path):
                continue
            self.fault_counts[fault.index] += 1
            if fault.calls is not None and self.fault_counts[fault.index] not in fault.calls:
                continue
            if fault.window is not None and not (
                fault.window[0] <= self.minutes(now) < fault.window[1]
            ):
                continue
            if chosen is None:
                chosen = fault
        return chosen

    def _rate_limited(self, request: SimRequest, now: float) -> SimResponse | None:
        limit = self.scenario.rate_limit
        if limit is None or not fnmatchcase(request.path, limit.path):
            return None
        while self.recent and self.recent[0] <= now - 1.0:
            self.recent.popleft()
        if len(self.recent) >= limit.requests_per_second:
            delay = limit.retry_delay_seconds
            shown = f"{delay:g}"
            response = citrix_error(
                429,
                "common/rateLimitExceeded",
                f"Rate limit exceeded; try again in {shown} seconds",
                retryDelay=shown,
            )
            if limit.retry_after_header:
                response.headers["Retry-After"] = str(math.ceil(delay))
            return response
        self.recent.append(now)
        return None

    def _handle(self, request: SimRequest, now: float, tid: str) -> SimResponse:
        if request.path.startswith("/_sim/"):
            return self._admin(request, now)
        fault = self._matching_fault(request, now)
        if fault is not None:
            return self._apply_fault(fault, request, now, tid)
        limited = self._rate_limited(request, now)
        if limited is not None:
            return limited
        return self._route(request, now, tid)

    def _apply_fault(
        self, fault: FaultSpec, request: SimRequest, now: float, tid: str
    ) -> SimResponse:
        base = self._route(request, now, tid) if fault.apply else None
        if fault.action in ("drop", "hang"):
            return SimResponse(
                0, action=fault.action, hang_seconds=fault.hang_seconds, fault=fault.name
            )
        if base is not None:
            response = base
            if fault.status is not None:
                response.status = fault.status
        else:
            assert fault.status is not None
            response = self._default_fault_body(fault.status)
        response.headers.update(fault.headers)
        if fault.has_body:
            response.body = (fault.body or "").encode("utf-8")
        response.fault = fault.name
        return response

    @staticmethod
    def _default_fault_body(status: int) -> SimResponse:
        if status == 429:
            return citrix_error(
                429,
                "common/rateLimitExceeded",
                "Rate limit exceeded; try again in 1 seconds",
                retryDelay="1",
            )
        if status == 503:
            return citrix_error(
                503, "common/serviceUnavailable", "Service unavailable", retryDelay="1"
            )
        if status == 502:
            # Gateway-level answer: HTML, no Citrix body (as seen in public issues).
            return SimResponse(
                502,
                {"Content-Type": "text/html"},
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
        if status >= 500:
            return citrix_error(status, "common/internalServerError", "Internal server error")
        return citrix_error(status, "common/simulatedFault", f"Simulated HTTP {status}")

    # ------------------------------------------------------------------ routes

    def _route(self, request: SimRequest, now: float, tid: str) -> SimResponse:
        parts = [p for p in request.path.split("/") if p != ""]
        if (
            len(parts) == 4
            and parts[0] == "cctrustoauth2"
            and parts[2] == "tokens"
            and parts[3] == "clients"
        ):
            if request.method != "POST":
                return citrix_error(405, "common/methodNotAllowed", "Use POST")
            return self._token(request, now)
        if parts and parts[0] == "catalogservice" and len(parts) >= 3:
            return self._catalog_service(request, parts[1], parts[2:], now, tid)
        return citrix_error(404, "common/notFound", "No such resource", path=request.path)

    def _token(self, request: SimRequest, now: float) -> SimResponse:
        content_type = request.headers.get("content-type", "")
        if content_type.strip().lower() != "application/x-www-form-urlencoded":
            return _json_response(
                400,
                {
                    "error": "invalid_request",
                    "error_description": (
                        "Content-Type must be exactly application/x-www-form-urlencoded"
                    ),
                },
            )
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)

        def one(name: str) -> str:
            values = form.get(name, [])
            return values[0] if len(values) == 1 else ""

        if one("grant_type") != "client_credentials":
            return _json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        client_id = one("client_id")
        expected = self.secrets.get(client_id)
        if expected is None or not secrets.compare_digest(expected, one("client_secret")):
            return _json_response(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid client id or client secret.",
                },
            )
        token = "sim." + secrets.token_urlsafe(24)
        lifetime = self.scenario.token_lifetime_seconds
        self.tokens[token] = _Token(client_id, self.client_customers[client_id], now + lifetime)
        self.tokens_issued += 1
        expires: str | int = (
            str(int(lifetime)) if self.scenario.expires_in_as_string else int(lifetime)
        )
        return _json_response(
            200, {"token_type": "bearer", "access_token": token, "expires_in": expires}
        )

    def _authenticate(self, request: SimRequest, now: float) -> _Token | SimResponse:
        header = request.headers.get("authorization")
        if header is None or not header.strip():
            return citrix_error(
                401,
                "common/authentication",
                "Missing or invalid authentication details",
                reason="missing",
            )
        match = _AUTH_RE.match(header)
        if match is None:
            return _json_response(
                401,
                {
                    "Error": {
                        "Message": "Missing or invalid CWSAuth header.",
                        "Type": "CWSAuthException",
                    }
                },
            )
        record = self.tokens.get(match.group(1))
        if record is None or now >= record.expires_at:
            return citrix_error(
                401,
                "common/authentication",
                "Missing or invalid authentication details",
                reason="invalid",
            )
        return record

    def _catalog_service(
        self, request: SimRequest, customer: str, rest: list[str], now: float, tid: str
    ) -> SimResponse:
        auth = self._authenticate(request, now)
        if isinstance(auth, SimResponse):
            return auth
        if customer not in auth.customers:
            return citrix_error(
                403, "common/authorization", "Access denied", entityType="Customer", id=customer
            )
        if customer != self.scenario.customer_id:
            return citrix_error(
                404, "common/notFound", "Customer not found", entityType="Customer", id=customer
            )
        if self.scenario.strict_accept:
            accept = request.headers.get("accept", "")
            if "application/json" not in accept.lower():
                return citrix_error(
                    406, "common/notAcceptable", "Must accept application/json media type"
                )
        if rest == ["sites"]:
            if request.method != "GET":
                return citrix_error(405, "common/methodNotAllowed", "Use GET")
            site = {"id": self.scenario.site_id, "displayName": self.scenario.site_name}
            return _json_response(200, {"items": [site], "sites": [site]})
        site_id, rest = rest[0], rest[1:]
        if site_id != self.scenario.site_id:
            return citrix_error(
                404, "common/notFound", "Site not found", entityType="Site", id=site_id
            )
        query = parse_qs(request.query)
        if rest == ["catalogs"] and request.method == "GET":
            ids_only = query.get("catalogIdsOnly", ["false"])[0].lower() == "true"
            items = [
                {"id": c.spec.id} if ids_only else self.catalog_view(c, now)
                for c in self.catalogs.values()
                if not c.gone
            ]
            return _json_response(200, {"items": items, "catalogs": items, "staleData": False})
        if len(rest) >= 2 and rest[0] == "catalogs":
            catalog = self.catalogs.get(rest[1])
            if catalog is not None:
                self._settle(catalog, now)
            if catalog is None or catalog.gone or self._glitch_404(catalog, now):
                return citrix_error(
                    404, "common/notFound", "Catalog not found", entityType="Catalog", id=rest[1]
                )
            if len(rest) == 2 and request.method == "GET":
                return _json_response(200, self.catalog_view(catalog, now))
            if rest[2:] == ["updateStatus"] and request.method == "GET":
                return _json_response(200, self.catalog_view(catalog, now, overview=False))
            if rest[2:] in (["$updateImage"], ["updateImage"]) and request.method == "POST":
                asynchronous = query.get("async", ["false"])[0].lower() == "true"
                return self._update_image(request, catalog, now, tid, asynchronous)
        if rest == ["images"] and request.method == "GET":
            customer_prepared = query.get("includeCustomerPrepared", ["false"])[0] == "true"
            citrix_prepared = query.get("includeCitrixPrepared", ["true"])[0] != "false"
            items = [
                self.image_view(i, now)
                for i in self.images.values()
                if self.image_visible(i, now)
                and (citrix_prepared if i.spec.citrix_prepared else customer_prepared)
            ]
            return _json_response(200, {"items": items, "overviews": items, "staleData": False})
        if len(rest) == 2 and rest[0] == "images" and request.method == "GET":
            image = self.images.get(rest[1])
            if image is None or not self.image_visible(image, now):
                return citrix_error(
                    404, "common/notFound", "Image not found", entityType="Image", id=rest[1]
                )
            return _json_response(200, self.image_view(image, now, details=True))
        return citrix_error(404, "common/notFound", "No such resource", path=request.path)

    def _glitch_404(self, catalog: _Catalog, now: float) -> bool:
        if catalog.job is None:
            return False
        glitch = self._glitch_now(catalog.job, now)
        return glitch is not None and glitch.as_404

    def _update_image(
        self, request: SimRequest, catalog: _Catalog, now: float, tid: str, asynchronous: bool
    ) -> SimResponse:
        content_type = request.headers.get("content-type", "").lower()
        if not content_type.startswith("application/json"):
            return citrix_error(
                415,
                "common/unsupportedMediaType",
                "Must use application/json; charset=utf-8 media type",
            )
        try:
            raw = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return citrix_error(400, "common/invalidJson", "The request body is not valid JSON")
        if not isinstance(raw, dict):
            return citrix_error(400, "common/invalidJson", "The request body must be an object")
        body = {str(k).lower(): v for k, v in raw.items()}  # ASP.NET binds case-insensitively
        template_id = body.get("templateid")
        if not isinstance(template_id, str) or not template_id:
            return citrix_error(400, "common/missing", "TemplateId is required", name="TemplateId")
        delay = body.get("vdaupdatedelay", 0)
        if isinstance(delay, str) and re.fullmatch(r"-?\d+", delay.strip()):
            delay = int(delay.strip())
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < -1:
            return citrix_error(
                400, "common/outOfRange", "VdaUpdateDelay must be -1 or more", name="VdaUpdateDelay"
            )
        state = self.catalog_view(catalog, now)["state"]
        if state not in _SUCCESS_STATES:
            return citrix_error(
                400,
                "catalogservice/invalidCatalogState",
                f"Catalog '{catalog.spec.name}' is in state {state}; an image update requires "
                "state Active or InputRequired",
                state=str(state),
            )
        image = self.images.get(template_id)
        if image is None or not self.image_visible(image, now):
            return citrix_error(
                400,
                "catalogservice/imageNotFound",
                f"Image '{template_id}' was not found",
                name="TemplateId",
            )
        image_state = self.image_view(image, now)["state"]
        if image_state != "Ready":
            return citrix_error(
                400,
                "catalogservice/imageNotReady",
                f"Image '{image.spec.name}' is in state {image_state}; "
                "only Ready images can be used",
                state=str(image_state),
            )
        plans = catalog.spec.updates
        plan = plans[min(catalog.updates_started, len(plans) - 1)]
        catalog.updates_started += 1
        catalog.update_requests.append(
            {
                "templateId": template_id,
                "citrixPrepared": body.get("citrixprepared"),
                "vdaUpdateDelay": delay,
                "warningTitle": body.get("warningtitle"),
                "warningMessage": body.get("warningmessage"),
                "transactionId": tid,
                "time": now,
                "keys": sorted(str(k) for k in raw),
            }
        )
        catalog.job = _Job(
            kind="update",
            start=now,
            end=now + plan.duration_minutes * 60,
            plan=plan,
            new_image_id=image.spec.id,
            new_image_name=image.spec.name,
            transaction_id=tid,
        )
        catalog.transaction_id = tid
        catalog.started_at = now
        catalog.state = "Processing"
        catalog.last_modified = now
        catalog.warnings = []
        logger.info(
            "simulated image update of catalog %s to image %s (%.0f min, outcome %s)",
            catalog.spec.id,
            image.spec.id,
            plan.duration_minutes,
            plan.outcome,
        )
        self._settle(catalog, now)  # a zero-minute update finishes at once
        host = request.host or "127.0.0.1"
        location = (
            f"http://{host}/catalogservice/{quote(self.scenario.customer_id)}/"
            f"{quote(self.scenario.site_id)}/catalogs/{quote(catalog.spec.id)}/updateStatus"
        )
        headers = {"location": location} if asynchronous else {}
        return _json_response(202 if asynchronous else 200, catalog.spec.id, headers)

    # ------------------------------------------------------------------ admin

    def state(self) -> dict[str, Any]:
        with self.lock:
            now = self.clock.time()
            return {
                "time": now,
                "minutes": self.minutes(now),
                "customerId": self.scenario.customer_id,
                "siteId": self.scenario.site_id,
                "tokensIssued": self.tokens_issued,
                "catalogs": [
                    {
                        **self.catalog_view(c, now),
                        "gone": c.gone,
                        "updateRequests": c.update_requests,
                    }
                    for c in self.catalogs.values()
                ],
                "images": [
                    {**self.image_view(i, now), "visible": self.image_visible(i, now)}
                    for i in self.images.values()
                ],
            }

    def _admin(self, request: SimRequest, now: float) -> SimResponse:
        if request.path == "/_sim/requests" and request.method == "GET":
            return _json_response(200, {"items": list(self.log)})
        if request.path == "/_sim/state" and request.method == "GET":
            return _json_response(200, self.state())
        if request.path == "/_sim/reset-log" and request.method == "POST":
            self.log.clear()
            return SimResponse(204)
        return _json_response(404, {"detail": "unknown admin route"})
