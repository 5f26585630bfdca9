"""Event Grid: recognise "gallery image version written" events and route them to catalogs.

Accepted: ``Microsoft.Resources.ResourceWriteSuccess`` whose ``data.operationName`` is
``Microsoft.Compute/galleries/images/versions/write`` (Event Grid or CloudEvents schema), and the
custom type ``CatalogUpdater.ImageVersionPublished`` for pipelines publishing to a custom topic.
Routes (setting ``EVENT_ROUTES``, a JSON array) map gallery + image definition (wildcards allowed)
to catalogs, a Citrix image-name template and per-route update options. Anything else is
ignored with a reason, never an error: Event Grid would only redeliver it.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import string
from dataclasses import dataclass, field
from typing import Any

from shared.api import RequestError, UpdateRequest, validate_update_request
from shared.config import ConfigError, Settings

__all__ = [
    "CUSTOM_EVENT_TYPE",
    "WRITE_SUCCESS",
    "EventPlan",
    "ImageVersion",
    "Route",
    "event_to_dict",
    "parse_image_version_id",
    "parse_routes",
    "plan_event",
]

logger = logging.getLogger(__name__)

WRITE_SUCCESS = "microsoft.resources.resourcewritesuccess"
CUSTOM_EVENT_TYPE = "CatalogUpdater.ImageVersionPublished"
_VERSION_WRITE = "microsoft.compute/galleries/images/versions/write"
_VERSION_ID = re.compile(
    r"^/subscriptions/(?P<subscriptionId>[^/]+)/resourcegroups/(?P<resourceGroup>[^/]+)"
    r"/providers/microsoft\.compute/galleries/(?P<gallery>[^/]+)/images/(?P<definition>[^/]+)"
    r"/versions/(?P<version>[^/]+)/?$",
    re.IGNORECASE,
)
_TEMPLATE_FIELDS = frozenset(
    {"subscriptionId", "resourceGroup", "gallery", "definition", "version"}
)
_ROUTE_KEYS = frozenset(
    {
        "name",
        "subscriptionId",
        "resourceGroup",
        "gallery",
        "imageDefinition",
        "catalogs",
        "imageNameTemplate",
        "options",
    }
)
_OPTION_KEYS = frozenset(
    {
        "vdaUpdateDelay",
        "citrixPrepared",
        "warningTitle",
        "warningMessage",
        "deadlineMinutes",
        "dryRun",
    }
)


@dataclass(frozen=True)
class ImageVersion:
    """A gallery image version, from its ARM resource id."""

    subscription_id: str
    resource_group: str
    gallery: str
    definition: str
    version: str

    def fields(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "gallery": self.gallery,
            "definition": self.definition,
            "version": self.version,
        }


@dataclass(frozen=True)
class Route:
    """Gallery/definition patterns -> catalogs, image-name template, update options."""

    name: str
    gallery: str
    image_definition: str
    catalogs: tuple[str, ...]
    image_name_template: str = "{definition}-{version}"
    subscription_id: str = "*"
    resource_group: str = "*"
    options: dict[str, Any] = field(default_factory=dict)

    def matches(self, version: ImageVersion) -> bool:
        pairs = (
            (self.subscription_id, version.subscription_id),
            (self.resource_group, version.resource_group),
            (self.gallery, version.gallery),
            (self.image_definition, version.definition),
        )
        return all(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern, value in pairs)


@dataclass(frozen=True)
class EventPlan:
    """What to do with one event: update requests (one per matching route) or why not."""

    event_id: str
    event_type: str
    subject: str
    requests: tuple[UpdateRequest, ...] = ()
    ignored: str | None = None


def parse_image_version_id(resource_id: str) -> ImageVersion | None:
    """Parse ``/subscriptions/../galleries/{g}/images/{d}/versions/{v}`` (any letter case)."""
    match = _VERSION_ID.match(resource_id.strip())
    if not match:
        return None
    return ImageVersion(
        subscription_id=match["subscriptionId"],
        resource_group=match["resourceGroup"],
        gallery=match["gallery"],
        definition=match["definition"],
        version=match["version"],
    )


def parse_routes(raw: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> list[Route]:
    """Validate the ``EVENT_ROUTES`` setting; errors name the route and the key."""
    routes: list[Route] = []
    for index, item in enumerate(raw):
        where = f"EVENT_ROUTES[{index}]"
        unknown = set(item) - _ROUTE_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
        catalogs = item.get("catalogs")
        if (
            not isinstance(catalogs, list)
            or not catalogs
            or not all(isinstance(c, str) and c.strip() for c in catalogs)
        ):
            raise ConfigError(f"{where}.catalogs must be a non-empty array of catalog names or ids")
        for key in ("gallery", "imageDefinition"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ConfigError(f"{where}.{key} is required (wildcards * and ? allowed)")
        template = item.get("imageNameTemplate", "{definition}-{version}")
        if not isinstance(template, str) or not template.strip():
            raise ConfigError(f"{where}.imageNameTemplate must be a non-empty string")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        except ValueError as exc:
            raise ConfigError(f"{where}.imageNameTemplate is malformed: {exc}") from None
        unknown_fields = sorted(names - _TEMPLATE_FIELDS)
        if unknown_fields:
            raise ConfigError(
                f"{where}.imageNameTemplate uses unknown placeholders {unknown_fields}; "
                f"known: {sorted(_TEMPLATE_FIELDS)}"
            )
        options = item.get("options") or {}
        if not isinstance(options, dict) or set(options) - _OPTION_KEYS:
            raise ConfigError(f"{where}.options may only hold {sorted(_OPTION_KEYS)}")
        _check_route_request(where, catalogs, template, options)
        routes.append(
            Route(
                name=str(item.get("name") or f"route-{index}"),
                gallery=item["gallery"].strip(),
                image_definition=item["imageDefinition"].strip(),
                catalogs=tuple(c.strip() for c in catalogs),
                image_name_template=template,
                subscription_id=str(item.get("subscriptionId") or "*"),
                resource_group=str(item.get("resourceGroup") or "*"),
                options=dict(options),
            )
        )
    return routes


def _check_route_request(
    where: str, catalogs: list[str], template: str, options: dict[str, Any]
) -> None:
    """The request a route makes must pass the HTTP API's own rules (option values, names),
    or every event it matches would be dropped: refuse the setting instead, by name."""
    probe = {"catalogs": catalogs, "image": template, **options}
    try:
        validate_update_request(probe, Settings())
    except RequestError as exc:
        if exc.field == "image":
            name = "imageNameTemplate"
        elif exc.field.startswith("catalogs"):
            name = exc.field
        else:
            name = f"options.{exc.field}"
        raise ConfigError(f"{where}.{name} {exc.reason}") from None


def event_to_dict(event: Any) -> dict[str, Any]:
    """A plain dict from an ``azure.functions.EventGridEvent`` (or a CloudEvent-like object,
    or a dict already): id, type, subject, topic/source, data."""
    if isinstance(event, dict):
        source = event
        return {
            "id": str(source.get("id") or ""),
            "type": str(source.get("eventType") or source.get("type") or ""),
            "subject": str(source.get("subject") or ""),
            "source": str(source.get("topic") or source.get("source") or ""),
            "data": source.get("data"),
        }
    data: Any
    try:
        data = event.get_json()
    except (AttributeError, ValueError):
        data = getattr(event, "data", None)
    return {
        "id": str(getattr(event, "id", "") or ""),
        "type": str(getattr(event, "event_type", None) or getattr(event, "type", "") or ""),
        "subject": str(getattr(event, "subject", "") or ""),
        "source": str(getattr(event, "topic", None) or getattr(event, "source", "") or ""),
        "data": data,
    }


def plan_event(event: dict[str, Any], settings: Settings, routes: list[Route]) -> EventPlan:
    """Decide what one event asks for. Never raises on bad event content: it is ignored with a
    reason instead."""
    event_id = str(event.get("id") or "")[:200]
    event_type = str(event.get("type") or "")[:200]
    subject = str(event.get("subject") or "")[:1000]
    data = event.get("data")
    base = (event_id, event_type, subject)

    if event_type == CUSTOM_EVENT_TYPE:
        return _plan_custom(base, data, settings, routes)
    if event_type.lower() != WRITE_SUCCESS:
        return EventPlan(*base, ignored=f"event type {event_type or '(none)'} is not handled")
    if not isinstance(data, dict):
        return EventPlan(*base, ignored="event has no data object")
    operation = str(data.get("operationName") or "")
    if operation.lower() != _VERSION_WRITE:
        return EventPlan(
            *base, ignored=f"operation {operation or '(none)'} is not an image version write"
        )
    status = str(data.get("status") or "Succeeded")
    if status.lower() != "succeeded":
        return EventPlan(*base, ignored=f"operation status is {status}")
    resource_id = str(data.get("resourceUri") or subject)
    version = parse_image_version_id(resource_id)
    if version is None:
        return EventPlan(*base, ignored="subject is not a gallery image version resource id")
    return _route(base, version, settings, routes)


def _plan_custom(
    base: tuple[str, str, str], data: Any, settings: Settings, routes: list[Route]
) -> EventPlan:
    if not isinstance(data, dict):
        return EventPlan(*base, ignored="custom event has no data object")
    if "catalogs" in data or "catalog" in data:
        try:
            request = validate_update_request(data, settings)
        except RequestError as exc:
            return EventPlan(*base, ignored=f"custom event data.{exc.field} {exc.reason}")
        return EventPlan(*base, requests=(_with_wait(request),))
    resource_id = data.get("resourceId")
    version = parse_image_version_id(resource_id) if isinstance(resource_id, str) else None
    if version is None:
        return EventPlan(
            *base,
            ignored="custom event needs data.resourceId (an image version id) or data.catalog(s)"
            " + data.image",
        )
    return _route(base, version, settings, routes)


def _with_wait(request: UpdateRequest) -> UpdateRequest:
    from dataclasses import replace

    return replace(request, wait_for_image=True)


def _route(
    base: tuple[str, str, str], version: ImageVersion, settings: Settings, routes: list[Route]
) -> EventPlan:
    requests: list[UpdateRequest] = []
    invalid: list[str] = []
    for route in routes:
        if not route.matches(version):
            continue
        image = route.image_name_template.format_map(version.fields())
        body: dict[str, Any] = {"catalogs": list(route.catalogs), "image": image, **route.options}
        try:
            request = validate_update_request(body, settings)
        except RequestError as exc:
            # Routes are checked when parsed, so only the event's own values (the image name
            # built from them) can make the request invalid.
            logger.warning("route %s produced an invalid request: %s", route.name, exc)
            invalid.append(f"route {route.name} made an invalid request ({exc})")
            continue
        requests.append(_with_wait(request))
    if not requests:
        return EventPlan(
            *base,
            ignored="; ".join(invalid)
            or f"no route matches gallery {version.gallery} image {version.definition}",
        )
    return EventPlan(*base, requests=tuple(requests))


async def handle_event(event: Any, client: Any, settings: Settings) -> list[tuple[str, bool]]:
    """Start (or find) one orchestration per matching route. Returns (instance id, duplicate)
    pairs; an ignored event returns ``[]`` after one log line."""
    from shared.api import start_update
    from shared.telemetry import log_event

    as_dict = event_to_dict(event)
    try:
        routes = parse_routes(settings.routes)
    except ConfigError as exc:
        # Fail the delivery rather than drop the event: Event Grid retries it (and dead-letters
        # it when configured) while the operator fixes the setting; /api/health names it.
        logger.error("EVENT_ROUTES is invalid, event %s not processed: %s", as_dict.get("id"), exc)
        raise RuntimeError(f"EVENT_ROUTES is invalid: {exc}") from None
    plan = plan_event(as_dict, settings, routes)
    if plan.ignored is not None:
        log_event(
            logger,
            "event.ignored",
            eventId=plan.event_id,
            eventType=plan.event_type,
            subject=plan.subject,
            reason=plan.ignored,
        )
        return []
    started: list[tuple[str, bool]] = []
    for request in plan.requests:
        result = await start_update(client, request, settings, source="eventgrid")
        if result.conflict is not None:
            # The same catalogs are already being updated to this image with other options
            # (the route changed meanwhile): leave the running update alone.
            logger.warning(
                "event %s: %s (instance %s)", plan.event_id, result.conflict, result.instance_id
            )
        started.append((result.instance_id, result.duplicate or result.conflict is not None))
    return started
