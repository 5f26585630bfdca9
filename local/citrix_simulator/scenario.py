"""Scenario files for the Citrix simulator: parsing, defaults and validation.

The format is documented in ``docs/scenario-format.md``. Times on the scenario's timeline are
minutes after the simulator was created (``...Minutes`` fields, fractions allowed); HTTP-level
values (token lifetime, retry delays, hangs) are in seconds (``...Seconds`` fields).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOG_STATES",
    "DEFAULT_STEPS",
    "ApiClientSpec",
    "CatalogSpec",
    "FaultSpec",
    "Glitch",
    "ImageSpec",
    "RateLimitSpec",
    "Scenario",
    "ScenarioError",
    "UpdatePlan",
    "load_scenario",
    "parse_scenario",
]

CATALOG_STATES = (
    "PreDeployment",
    "Active",
    "Processing",
    "InputRequired",
    "Error",
    "Deleting",
    "Unknown",
    "NotFound",
)
UPDATE_OUTCOMES = ("Active", "InputRequired", "Error")
IMAGE_STATES = (
    "Pending",
    "Ready",
    "Enumerating",
    "Failed",
    "NotStarted",
    "AzureResourcesNotFound",
    "BuilderProvisioning",
    "BuilderActive",
    "BuilderStopped",
    "BuilderVerifying",
    "BuilderRestarting",
    "Importing",
)
# Sub-state while Processing, until the given completion percentage.
DEFAULT_STEPS: tuple[tuple[str, int], ...] = (
    ("ProcessingVdaCopyingMasterImage", 30),
    ("ProcessingProvisioningMasterImage", 70),
    ("ProcessingVdaUpdatingCitrixServers", 100),
)
FAULT_ACTIONS = ("respond", "drop", "hang")


class ScenarioError(ValueError):
    """The scenario is malformed; the message names the offending field."""


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where} must be a JSON object")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}.{key} must be a non-empty string")
    return value


def _opt_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScenarioError(f"{where}.{key} must be a string")
    return value


def _num(
    data: Mapping[str, Any], key: str, where: str, default: float | None, low: float = 0.0
) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ScenarioError(f"{where}.{key} must be a number >= {low:g}")
    return float(value)


def _choice(value: str, allowed: tuple[str, ...], where: str) -> str:
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise ScenarioError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class ApiClientSpec:
    client_id: str
    secret: str = field(repr=False)
    customers: tuple[str, ...]


@dataclass(frozen=True)
class Glitch:
    """During an update, the catalog reports ``state`` (Unknown/NotFound) from ``at_minutes``
    for ``for_minutes`` (None: for good, the update never finishes). ``as_404`` answers
    GET catalog with HTTP 404 instead of a body with that state."""

    at_minutes: float
    state: str
    for_minutes: float | None
    as_404: bool = False


@dataclass(frozen=True)
class UpdatePlan:
    duration_minutes: float = 30.0
    outcome: str = "Active"
    sub_state: str | None = None
    status_message: str | None = None
    steps: tuple[tuple[str, int], ...] = DEFAULT_STEPS
    warnings: tuple[dict[str, Any], ...] = ()
    glitch: Glitch | None = None


@dataclass(frozen=True)
class CatalogSpec:
    id: str
    name: str
    state: str
    image_id: str | None
    template_image_name: str | None
    sub_state: str | None = None
    status_message: str | None = None
    busy_until_minutes: float | None = None
    state_after_busy: str = "Active"
    updates: tuple[UpdatePlan, ...] = (UpdatePlan(),)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageSpec:
    id: str
    name: str
    state: str
    citrix_prepared: bool = False
    sub_state: str | None = None
    status_message: str | None = None
    appear_after_minutes: float = 0.0
    ready_after_minutes: float | None = None
    state_before_ready: str = "Importing"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimitSpec:
    requests_per_second: float
    retry_delay_seconds: float = 1.0
    retry_after_header: bool = False
    path: str = "/catalogservice/*"


@dataclass(frozen=True)
class FaultSpec:
    index: int
    name: str
    method: str
    path: str
    calls: frozenset[int] | None
    window: tuple[float, float] | None
    action: str
    status: int | None
    headers: dict[str, str]
    body: Any
    has_body: bool
    apply: bool
    hang_seconds: float


@dataclass(frozen=True)
class Scenario:
    customer_id: str
    site_id: str
    site_name: str
    api_clients: tuple[ApiClientSpec, ...]
    catalogs: tuple[CatalogSpec, ...]
    images: tuple[ImageSpec, ...]
    token_lifetime_seconds: float = 3600.0
    expires_in_as_string: bool = True
    rate_limit: RateLimitSpec | None = None
    faults: tuple[FaultSpec, ...] = ()
    strict_accept: bool = True
    description: str = ""


def _parse_plan(data: object, where: str) -> UpdatePlan:
    plan = _obj(data, where)
    outcome = _choice(str(plan.get("outcome", "Active")), UPDATE_OUTCOMES, f"{where}.outcome")
    steps: tuple[tuple[str, int], ...] = DEFAULT_STEPS
    if "steps" in plan:
        raw_steps = plan["steps"]
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ScenarioError(f"{where}.steps must be a non-empty list")
        parsed: list[tuple[str, int]] = []
        for i, step in enumerate(raw_steps):
            s = _obj(step, f"{where}.steps[{i}]")
            until = _num(s, "untilPercent", f"{where}.steps[{i}]", None)
            if until is None or until > 100:
                raise ScenarioError(f"{where}.steps[{i}].untilPercent must be 0..100")
            parsed.append((_str(s, "subState", f"{where}.steps[{i}]"), int(until)))
        steps = tuple(parsed)
    glitch = None
    if plan.get("glitch") is not None:
        g = _obj(plan["glitch"], f"{where}.glitch")
        glitch = Glitch(
            at_minutes=_num(g, "atMinutes", f"{where}.glitch", 0.0) or 0.0,
            state=_choice(_str(g, "state", f"{where}.glitch"), ("Unknown", "NotFound"), where),
            for_minutes=_num(g, "forMinutes", f"{where}.glitch", None),
            as_404=bool(g.get("as404", False)),
        )
    warnings = plan.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, dict) for w in warnings):
        raise ScenarioError(f"{where}.warnings must be a list of objects")
    sub_state = _opt_str(plan, "subState", where)
    if outcome == "Error" and sub_state is None:
        sub_state = "ErrorVdaUpdateCitrixServersFailed"
    status_message = _opt_str(plan, "statusMessage", where)
    if outcome == "Error" and status_message is None:
        status_message = "Updating the VDAs on the Citrix servers failed."
    return UpdatePlan(
        duration_minutes=_num(plan, "durationMinutes", where, 30.0) or 0.0,
        outcome=outcome,
        sub_state=sub_state,
        status_message=status_message,
        steps=steps,
        warnings=tuple(dict(w) for w in warnings),
        glitch=glitch,
    )


_CATALOG_KEYS = {
    "id",
    "name",
    "state",
    "subState",
    "statusMessage",
    "imageId",
    "templateImageName",
    "busyUntilMinutes",
    "stateAfterBusy",
    "update",
    "updates",
    "fields",
}


def _parse_catalog(data: object, where: str, images: Mapping[str, ImageSpec]) -> CatalogSpec:
    c = _obj(data, where)
    unknown = set(c) - _CATALOG_KEYS
    if unknown:
        raise ScenarioError(f"{where} has unknown keys {sorted(unknown)} (use 'fields' for extras)")
    image_id = _opt_str(c, "imageId", where)
    name_default = images[image_id].name if image_id is not None and image_id in images else None
    plans: tuple[UpdatePlan, ...]
    if "updates" in c:
        raw = c["updates"]
        if not isinstance(raw, list) or not raw:
            raise ScenarioError(f"{where}.updates must be a non-empty list")
        plans = tuple(_parse_plan(p, f"{where}.updates[{i}]") for i, p in enumerate(raw))
    else:
        plans = (_parse_plan(c.get("update", {}), f"{where}.update"),)
    extra = c.get("fields", {})
    return CatalogSpec(
        id=_str(c, "id", where),
        name=_str(c, "name", where),
        state=_choice(str(c.get("state", "Active")), CATALOG_STATES, f"{where}.state"),
        image_id=image_id,
        template_image_name=_opt_str(c, "templateImageName", where) or name_default,
        sub_state=_opt_str(c, "subState", where),
        status_message=_opt_str(c, "statusMessage", where),
        busy_until_minutes=_num(c, "busyUntilMinutes", where, None),
        state_after_busy=_choice(
            str(c.get("stateAfterBusy", "Active")), UPDATE_OUTCOMES, f"{where}.stateAfterBusy"
        ),
        updates=plans,
        extra=dict(_obj(extra, f"{where}.fields")),
    )


def _parse_image(data: object, where: str) -> ImageSpec:
    i = _obj(data, where)
    extra = i.get("fields", {})
    return ImageSpec(
        id=_str(i, "id", where),
        name=_str(i, "name", where),
        state=_choice(str(i.get("state", "Ready")), IMAGE_STATES, f"{where}.state"),
        citrix_prepared=bool(i.get("citrixPrepared", False)),
        sub_state=_opt_str(i, "subState", where),
        status_message=_opt_str(i, "statusMessage", where),
        appear_after_minutes=_num(i, "appearAfterMinutes", where, 0.0) or 0.0,
        ready_after_minutes=_num(i, "readyAfterMinutes", where, None),
        state_before_ready=_choice(
            str(i.get("stateBeforeReady", "Importing")), IMAGE_STATES, f"{where}.stateBeforeReady"
        ),
        extra=dict(_obj(extra, f"{where}.fields")),
    )


def _parse_fault(data: object, index: int) -> FaultSpec:
    where = f"faults[{index}]"
    f = _obj(data, where)
    calls: frozenset[int] | None = None
    if "calls" in f and f["calls"] != "all":
        raw = f["calls"]
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = [raw]
        if not isinstance(raw, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in raw
        ):
            raise ScenarioError(f"{where}.calls must be 'all', a call number or a list (1-based)")
        calls = frozenset(raw)
    window = None
    if f.get("window") is not None:
        w = _obj(f["window"], f"{where}.window")
        start = _num(w, "fromMinutes", f"{where}.window", 0.0) or 0.0
        end = _num(w, "toMinutes", f"{where}.window", float("inf"))
        window = (start, float("inf") if end is None else end)
    action = _choice(str(f.get("action", "respond")), FAULT_ACTIONS, f"{where}.action")
    status = f.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ScenarioError(f"{where}.status must be an HTTP status code")
    apply = bool(f.get("applyUpdate", False))
    if action == "respond" and status is None and not apply:
        raise ScenarioError(f"{where} needs a status (or applyUpdate: true)")
    headers = _obj(f.get("headers", {}), f"{where}.headers")
    if "body" in f and "bodyText" in f:
        raise ScenarioError(f"{where} has both body and bodyText")
    has_body = "body" in f or "bodyText" in f
    body: Any = f["body"] if "body" in f else f.get("bodyText")
    return FaultSpec(
        index=index,
        name=str(f.get("name", f"fault-{index}")),
        method=str(f.get("method", "*")).upper(),
        path=_str(f, "path", where, "*"),
        calls=calls,
        window=window,
        action=action,
        status=status,
        headers={str(k): str(v) for k, v in headers.items()},
        body=json.dumps(body) if "body" in f else body,
        has_body=has_body,
        apply=apply,
        hang_seconds=_num(f, "hangSeconds", where, 1.0) or 0.0,
    )


def parse_scenario(data: object) -> Scenario:
    """Validate a scenario document (already loaded from JSON)."""
    s = _obj(data, "scenario")
    customer_id = _str(s, "customerId", "scenario")
    images = tuple(_parse_image(i, f"images[{n}]") for n, i in enumerate(s.get("images", [])))
    by_id = {i.id: i for i in images}
    if len(by_id) != len(images):
        raise ScenarioError("images: ids must be unique")
    catalogs = tuple(
        _parse_catalog(c, f"catalogs[{n}]", by_id) for n, c in enumerate(s.get("catalogs", []))
    )
    if len({c.id for c in catalogs}) != len(catalogs):
        raise ScenarioError("catalogs: ids must be unique")
    clients = []
    for n, raw in enumerate(s.get("apiClients", [])):
        c = _obj(raw, f"apiClients[{n}]")
        customers = c.get("customers", [customer_id])
        if not isinstance(customers, list) or not all(isinstance(x, str) for x in customers):
            raise ScenarioError(f"apiClients[{n}].customers must be a list of customer ids")
        clients.append(
            ApiClientSpec(
                client_id=_str(c, "clientId", f"apiClients[{n}]"),
                secret=_str(c, "secret", f"apiClients[{n}]"),
                customers=tuple(customers),
            )
        )
    if not clients:
        raise ScenarioError("apiClients must list at least one API client")
    token = _obj(s.get("token", {}), "token")
    rate_limit = None
    if s.get("rateLimit") is not None:
        r = _obj(s["rateLimit"], "rateLimit")
        rps = _num(r, "requestsPerSecond", "rateLimit", None, low=0.001)
        if rps is None:
            raise ScenarioError("rateLimit.requestsPerSecond is required")
        rate_limit = RateLimitSpec(
            requests_per_second=rps,
            retry_delay_seconds=_num(r, "retryDelaySeconds", "rateLimit", 1.0) or 0.0,
            retry_after_header=bool(r.get("retryAfterHeader", False)),
            path=str(r.get("path", "/catalogservice/*")),
        )
    faults = tuple(_parse_fault(f, n) for n, f in enumerate(s.get("faults", [])))
    return Scenario(
        customer_id=customer_id,
        site_id=_str(s, "siteId", "scenario"),
        site_name=str(s.get("siteName", "Citrix DaaS Standard for Azure")),
        api_clients=tuple(clients),
        catalogs=catalogs,
        images=images,
        token_lifetime_seconds=_num(token, "lifetimeSeconds", "token", 3600.0, low=1.0) or 3600.0,
        expires_in_as_string=bool(token.get("expiresInAsString", True)),
        rate_limit=rate_limit,
        faults=faults,
        strict_accept=bool(s.get("strictAccept", True)),
        description=str(s.get("description", "")),
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_scenario(data)
