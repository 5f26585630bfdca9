"""HTTP API: request validation, starting or finding orchestrations, response shaping.

Invalid input gets a 400 naming the field and the reason, and starts nothing. The same update
asked again while it runs (or after it succeeded) returns the existing instance with
``"duplicate": true``; ``force`` re-runs a finished one.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from shared.config import Settings
from shared.ids import instance_id_for, is_safe_instance_id
from shared.orchestration import CHILD_SUFFIX, EVENT_CANCEL, ORCH_UPDATE, OUTCOMES
from shared.polling import MAX_UNKNOWN_POLLS, MIN_UNKNOWN_MINUTES
from shared.telemetry import log_event

__all__ = [
    "REQUEST_FIELDS",
    "RUNNING_STATES",
    "RequestError",
    "StartError",
    "StartResult",
    "UpdateRequest",
    "cancel_update",
    "describe_status",
    "error_response",
    "get_update",
    "json_response",
    "list_updates",
    "orchestration_input",
    "parse_update_request",
    "start_update",
    "start_update_from_http",
]

logger = logging.getLogger(__name__)

MAX_NAME = 256
MAX_CATALOGS = 50
MAX_WARNING_TITLE = 256
MAX_WARNING_MESSAGE = 2048
MAX_DELAY_MINUTES = 10080  # one week
MAX_DEADLINE_MINUTES = 10080
RETRY_AFTER_SECONDS = 10

RUNNING_STATES = frozenset({"Running", "Pending", "ContinuedAsNew"})
_SUCCESS_OUTCOMES = frozenset({"succeeded", "already_current"})

# Field -> (JSON type names for the OpenAPI document, description). The OpenAPI test checks this
# table, the validator and the published document agree.
REQUEST_FIELDS: dict[str, tuple[str, str]] = {
    "catalog": ("string", "Catalog id or name (give this or `catalogs`)."),
    "catalogs": ("array", "Several catalog ids or names, updated in parallel up to a cap."),
    "image": ("string", "Citrix image id or name; the image must be Ready."),
    "vdaUpdateDelay": (
        "integer",
        "Minutes: -1 = machines take the image at their next natural restart (no forced reboot), "
        "0 = restart all machines now, N = restart within N minutes (users are warned). "
        "Default: the DEFAULT_VDA_UPDATE_DELAY_MINUTES setting (-1).",
    ),
    "citrixPrepared": (
        "boolean",
        "Whether the image is Citrix-prepared; default: the image's own flag.",
    ),
    "warningTitle": ("string", "Title of the warning users see before a restart."),
    "warningMessage": ("string", "Warning text; %m% is replaced by the minutes left."),
    "deadlineMinutes": ("integer", "Stop monitoring after this many minutes (default 360)."),
    "dryRun": ("boolean", "Resolve and check everything, return the plan, submit nothing."),
    "force": ("boolean", "Run again even if the same update already finished."),
}


class RequestError(ValueError):
    """Bad input: ``field`` is the JSON path of the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class UpdateRequest:
    """A validated update request."""

    catalogs: tuple[str, ...]
    image: str
    vda_update_delay: int
    citrix_prepared: bool | None = None
    warning_title: str | None = None
    warning_message: str | None = None
    deadline_minutes: int = 360
    dry_run: bool = False
    force: bool = False
    wait_for_image: bool = False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse an object that names a key twice (which value was meant is anyone's guess)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RequestError(key[:100] or "body", "appears more than once in the same object")
        result[key] = value
    return result


# Characters no catalog or image name needs and that hide what a name really is: C0/C1 control
# characters, DEL, bidirectional overrides and marks, and lone UTF-16 surrogates.
FORBIDDEN_TEXT_CHARS = "\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_FORBIDDEN = re.compile(f"[{FORBIDDEN_TEXT_CHARS}]")


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise RequestError(field, "must be a string")
    text = value.strip()
    if not text:
        raise RequestError(field, "must not be empty")
    if len(value) > limit:  # as sent, like the OpenAPI maxLength (not after trimming)
        raise RequestError(field, f"must be at most {limit} characters")
    if _FORBIDDEN.search(text):
        raise RequestError(
            field, "must not contain control characters, bidirectional marks or lone surrogates"
        )
    return text


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(field, "must be an integer")
    if not low <= value <= high:
        raise RequestError(field, f"must be between {low} and {high}")
    return value


def _boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise RequestError(field, "must be true or false")
    return value


def parse_update_request(body: bytes, settings: Settings) -> UpdateRequest:
    """Validate a ``POST /api/updates`` body; raises :class:`RequestError`."""
    if len(body) > settings.max_request_body_bytes:
        raise RequestError(
            "body", f"is larger than {settings.max_request_body_bytes} bytes", status=413
        )
    try:
        data = json.loads(
            body.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_unique_keys
        )
    except RequestError:
        raise  # a duplicate key, already named
    except UnicodeDecodeError:
        raise RequestError("body", "must be UTF-8 encoded JSON") from None
    except RecursionError:
        raise RequestError("body", "is nested too deeply") from None
    except ValueError as exc:
        raise RequestError("body", f"is not valid JSON ({str(exc).splitlines()[0]})") from None
    return validate_update_request(data, settings)


def validate_update_request(data: Any, settings: Settings) -> UpdateRequest:
    """Validate an already-parsed request object."""
    if not isinstance(data, dict):
        raise RequestError("body", "must be a JSON object")
    for key in data:
        if key not in REQUEST_FIELDS:
            raise RequestError(str(key)[:100], "is not a known field")
    if "catalog" in data and "catalogs" in data:
        raise RequestError("catalogs", "give either `catalog` or `catalogs`, not both")
    if "catalog" in data:
        catalogs: tuple[str, ...] = (_text(data["catalog"], "catalog", MAX_NAME),)
    elif "catalogs" in data:
        raw = data["catalogs"]
        if not isinstance(raw, list) or not raw:
            raise RequestError("catalogs", "must be a non-empty array of catalog ids or names")
        if len(raw) > MAX_CATALOGS:
            raise RequestError("catalogs", f"must list at most {MAX_CATALOGS} catalogs")
        catalogs = tuple(_text(v, f"catalogs[{i}]", MAX_NAME) for i, v in enumerate(raw))
        seen: set[str] = set()
        for i, name in enumerate(catalogs):
            if name.lower() in seen:
                raise RequestError(f"catalogs[{i}]", "is listed twice")
            seen.add(name.lower())
    else:
        raise RequestError("catalog", "is required (or `catalogs`)")
    if "image" not in data:
        raise RequestError("image", "is required")
    image = _text(data["image"], "image", MAX_NAME)
    delay = (
        _integer(data["vdaUpdateDelay"], "vdaUpdateDelay", -1, MAX_DELAY_MINUTES)
        if "vdaUpdateDelay" in data
        else settings.default_vda_update_delay
    )
    prepared = (
        _boolean(data["citrixPrepared"], "citrixPrepared")
        if data.get("citrixPrepared") is not None
        else None
    )
    title = (
        _text(data["warningTitle"], "warningTitle", MAX_WARNING_TITLE)
        if data.get("warningTitle") is not None
        else None
    )
    message = (
        _text(data["warningMessage"], "warningMessage", MAX_WARNING_MESSAGE)
        if data.get("warningMessage") is not None
        else None
    )
    deadline = (
        _integer(data["deadlineMinutes"], "deadlineMinutes", 1, MAX_DEADLINE_MINUTES)
        if "deadlineMinutes" in data
        else settings.deadline_minutes
    )
    dry_run = _boolean(data["dryRun"], "dryRun") if "dryRun" in data else False
    force = _boolean(data["force"], "force") if "force" in data else False
    return UpdateRequest(
        catalogs=catalogs,
        image=image,
        vda_update_delay=delay,
        citrix_prepared=prepared,
        warning_title=title,
        warning_message=message,
        deadline_minutes=deadline,
        dry_run=dry_run,
        force=force,
    )


def orchestration_input(request: UpdateRequest, settings: Settings, source: str) -> dict[str, Any]:
    """The JSON input of ``update_orchestrator``: the request plus the policy from settings
    (orchestrators may not read settings). Holds no secret."""
    return {
        "catalogs": list(request.catalogs),
        "image": request.image,
        "source": source,
        "deadlineMinutes": request.deadline_minutes,
        "waitForImage": request.wait_for_image,
        "options": {
            "vdaUpdateDelay": request.vda_update_delay,
            "citrixPrepared": request.citrix_prepared,
            "warningTitle": request.warning_title,
            "warningMessage": request.warning_message,
            "dryRun": request.dry_run,
        },
        "policy": {
            "minInterval": settings.poll_min_interval_seconds,
            "maxInterval": settings.poll_max_interval_seconds,
            "pollsPerExecution": settings.polls_per_execution,
            "maxPollFailures": settings.max_consecutive_poll_failures,
            "maxUnknownPolls": MAX_UNKNOWN_POLLS,
            "minUnknownMinutes": MIN_UNKNOWN_MINUTES,
            "busyWaitMinutes": settings.busy_catalog_wait_minutes,
            "imageWaitMinutes": settings.image_ready_wait_minutes,
            "maxParallel": settings.max_parallel_catalogs,
        },
    }


def _runtime_status(status: Any) -> str:
    value = getattr(status, "runtime_status", None)
    return str(getattr(value, "value", value) or "")


def _exists(status: Any) -> bool:
    return bool(status) and bool(_runtime_status(status))


class StartError(RuntimeError):
    """The Durable runtime refused to start the orchestration (storage or host trouble)."""


@dataclass(frozen=True)
class StartResult:
    """What starting an update did: started, found a duplicate, or found a conflict."""

    instance_id: str
    duplicate: bool
    conflict: RequestError | None = None


# Request options that change what Citrix is asked to do (compared for running duplicates).
_OPTION_FIELDS = ("vdaUpdateDelay", "citrixPrepared", "warningTitle", "warningMessage")


def _conflict(existing: Any, request: UpdateRequest, settings: Settings) -> RequestError | None:
    """A running instance for the same catalogs and image, asked with other options."""
    if request.force:
        return RequestError(
            "force", "cannot restart an update that is still running; cancel it first", 409
        )
    raw = getattr(existing, "input_", None)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    running = (raw or {}).get("options") if isinstance(raw, dict) else None
    if not isinstance(running, dict):
        return None
    wanted = orchestration_input(request, settings, "http")["options"]
    for name in _OPTION_FIELDS:
        if running.get(name) != wanted.get(name):
            return RequestError(
                name,
                f"the same update is already running with {name}={running.get(name)!r}; "
                "cancel it first, or repeat the request with the running options",
                409,
            )
    return None


async def start_update(
    client: Any, request: UpdateRequest, settings: Settings, *, source: str
) -> StartResult:
    """Start the update, or find the instance already doing it.

    Running instance: a duplicate (or a 409 conflict when asked with other options or
    ``force``). Finished successfully: a duplicate unless ``force``; a dry run is always
    run afresh, since the catalog may have changed since the last plan."""
    customer = settings.citrix_customer_id or "default"
    instance_id = instance_id_for(
        customer, request.catalogs, request.image, dry_run=request.dry_run
    )
    existing = await client.get_status(instance_id, show_input=True)
    duplicate = False
    if _exists(existing):
        runtime = _runtime_status(existing)
        output = existing.output if isinstance(existing.output, dict) else {}
        finished_ok = runtime == "Completed" and output.get("outcome") in _SUCCESS_OUTCOMES
        if runtime in RUNNING_STATES:
            conflict = _conflict(existing, request, settings)
            if conflict is not None:
                return StartResult(instance_id, duplicate=False, conflict=conflict)
            duplicate = True
        else:
            duplicate = finished_ok and not request.force and not request.dry_run
    if not duplicate:
        try:
            await client.start_new(
                ORCH_UPDATE, instance_id, orchestration_input(request, settings, source)
            )
        except Exception as exc:
            # With overridableExistingInstanceStates=NonRunningStates the runtime refuses to
            # replace a running instance: a concurrent duplicate won the race.
            again = await client.get_status(instance_id)
            if _exists(again) and _runtime_status(again) in RUNNING_STATES:
                duplicate = True
            else:
                raise StartError(f"could not start update {instance_id}: {exc}") from exc
    log_event(
        logger,
        "update.requested",
        instanceId=instance_id,
        catalogName=", ".join(request.catalogs),
        imageName=request.image,
        source=source,
        duplicate=duplicate,
        dryRun=request.dry_run,
        catalogCount=len(request.catalogs),
    )
    return StartResult(instance_id, duplicate)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    """A JSON HTTP response."""
    return func.HttpResponse(
        json.dumps(body, default=str),
        status_code=status,
        headers=headers or {},
        mimetype="application/json",
    )


def error_response(status: int, field: str | None, reason: str) -> func.HttpResponse:
    """``{"error": {"field", "reason"}}`` with ``status``."""
    error: dict[str, Any] = {"reason": reason}
    if field is not None:  # an empty key ("") is still the field at fault
        error["field"] = field
    return json_response({"error": error}, status)


def _origin(req: func.HttpRequest) -> str:
    url = req.url or ""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return ""
    path_start = url.find("/", scheme_end + 3)
    return url if path_start < 0 else url[:path_start]


def _status_url(req: func.HttpRequest, instance_id: str) -> str:
    return f"{_origin(req)}/api/updates/{instance_id}"


async def start_update_from_http(
    req: func.HttpRequest, client: Any, settings: Settings
) -> func.HttpResponse:
    """``POST /api/updates``."""
    try:
        request = parse_update_request(req.get_body() or b"", settings)
    except RequestError as exc:
        return error_response(exc.status, exc.field, exc.reason)
    try:
        started = await start_update(client, request, settings, source="http")
    except StartError as exc:
        logger.error("%s", exc)
        return error_response(503, None, "the update could not be started; try again shortly")
    instance_id, duplicate = started.instance_id, started.duplicate
    url = _status_url(req, instance_id)
    if started.conflict is not None:
        return json_response(
            {
                "error": {"field": started.conflict.field, "reason": started.conflict.reason},
                "instanceId": instance_id,
                "statusUrl": url,
            },
            409,
        )
    body = {
        "instanceId": instance_id,
        "statusUrl": url,
        "cancelUrl": f"{url}/cancel",
        "duplicate": duplicate,
        "catalogs": list(request.catalogs),
        "image": request.image,
        "dryRun": request.dry_run,
    }
    return json_response(body, 202, {"Location": url, "Retry-After": str(RETRY_AFTER_SECONDS)})


def describe_status(status: Any) -> dict[str, Any]:
    """A status in plain words: runtime status, outcome, phase and progress, per-catalog
    results. Never includes the orchestration input."""
    runtime = _runtime_status(status)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    output = status.output
    result = output if isinstance(output, dict) else None
    outcome = result.get("outcome") if result else None
    error = result.get("error") if result else None
    if runtime == "Failed":
        outcome = "failed"
        text = str(output or "the orchestration failed").splitlines()[0][:500]
        error = {"category": "internal", "message": text}
    elif runtime == "Terminated":
        outcome = "cancelled"
        error = {"category": "terminated", "message": f"terminated: {output or 'no reason given'}"}
    described: dict[str, Any] = {
        "instanceId": status.instance_id,
        "runtimeStatus": runtime,
        "createdTime": _iso(status.created_time),
        "lastUpdatedTime": _iso(status.last_updated_time),
        "outcome": outcome,
        "phase": custom.get("phase"),
        "message": custom.get("message"),
        "catalog": custom.get("catalog"),
        "image": custom.get("image"),
        "state": custom.get("state"),
        "subState": custom.get("subState"),
        "progress": custom.get("progress"),
        "etaMinutes": custom.get("etaMinutes"),
        "polls": custom.get("polls"),
        "lastCheck": custom.get("lastCheck"),
        "nextCheck": custom.get("nextCheck"),
        "transactionId": custom.get("transactionId"),
        "error": error,
        "results": (result.get("results") if result and "results" in result else [result])
        if result
        else [],
    }
    if custom.get("total") is not None:
        described["catalogs"] = custom.get("catalogs")
        described["done"] = custom.get("done")
        described["total"] = custom.get("total")
    return described


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


async def get_update(client: Any, instance_id: str) -> func.HttpResponse:
    """``GET /api/updates/{instanceId}``."""
    if not is_safe_instance_id(instance_id):
        return error_response(400, "instanceId", "is not a valid update id")
    status = await client.get_status(instance_id)
    if not _exists(status):
        return error_response(404, "instanceId", f"no update with id {instance_id}")
    described = describe_status(status)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    children = [str(c) for c in custom.get("children") or []]
    if children and described["outcome"] is None:
        described["catalogUpdates"] = await _catalog_updates(client, children, status.created_time)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if described["outcome"] is None else {}
    return json_response(described, 200, headers)


# What a running multi-catalog update shows of each catalog's own update.
_CATALOG_UPDATE_FIELDS = (
    "instanceId",
    "runtimeStatus",
    "outcome",
    "phase",
    "message",
    "catalog",
    "state",
    "subState",
    "progress",
    "etaMinutes",
    "polls",
    "nextCheck",
    "transactionId",
)


async def _catalog_updates(client: Any, children: list[str], since: Any) -> list[dict[str, Any]]:
    """The live status of each started per-catalog update of a multi-catalog update. Catalogs
    still queued behind the concurrency cap have none yet; a re-run reuses the child ids, so a
    child older than this run of the parent is an earlier run's and is left out."""
    shown = []
    for child in children:
        status = await client.get_status(child)
        created = getattr(status, "created_time", None)
        if _exists(status) and not (since and created and created < since):
            brief = describe_status(status)
            shown.append({k: brief.get(k) for k in _CATALOG_UPDATE_FIELDS})
    return shown


_CHILD_ID = re.compile(re.escape(CHILD_SUFFIX) + r"\d+$")

# status filter -> which outcomes it lists (None = still running).
_LIST_FILTERS: dict[str, frozenset[str | None]] = {
    "running": frozenset({None}),
    "completed": frozenset(OUTCOMES),
    "succeeded": frozenset({"succeeded", "already_current"}),
    "failed": frozenset({"failed", "timed_out", "cancelled", "rejected"}),
}


async def list_updates(client: Any, params: dict[str, str]) -> func.HttpResponse:
    """``GET /api/updates?status=all|running|completed|succeeded|failed&top=N``: filters go by
    outcome (an update that ended ``rejected`` is ``failed`` even though its orchestration
    completed normally)."""
    import azure.durable_functions as df

    wanted = (params.get("status") or "all").lower()
    if wanted != "all" and wanted not in _LIST_FILTERS:
        return error_response(400, "status", f"must be one of all, {', '.join(_LIST_FILTERS)}")
    raw_top = params.get("top", "50")
    if not re.fullmatch(r"[0-9]{1,6}", raw_top.strip()):
        return error_response(400, "top", "must be an integer")
    top = int(raw_top)
    if not 1 <= top <= 500:
        return error_response(400, "top", "must be between 1 and 500")
    if wanted == "running":
        runtime = [df.OrchestrationRuntimeStatus(s) for s in sorted(RUNNING_STATES)]
        statuses = await client.get_status_by(runtime_status=runtime)
    else:
        statuses = await client.get_status_all()
    described = [describe_status(s) for s in statuses if _exists(s)]
    # Sub-orchestrations of multi-catalog updates show up in their parent's results.
    described = [d for d in described if not _CHILD_ID.search(str(d["instanceId"]))]
    if wanted != "all":
        described = [d for d in described if d["outcome"] in _LIST_FILTERS[wanted]]
    described.sort(key=lambda d: d.get("createdTime") or "", reverse=True)
    return json_response({"updates": described[:top], "count": len(described)})


async def cancel_update(client: Any, instance_id: str, req: func.HttpRequest) -> func.HttpResponse:
    """``POST /api/updates/{instanceId}/cancel``: stop monitoring (the Citrix update itself
    cannot be cancelled through the Catalog Service API)."""
    if not is_safe_instance_id(instance_id):
        return error_response(400, "instanceId", "is not a valid update id")
    status = await client.get_status(instance_id)
    if not _exists(status):
        return error_response(404, "instanceId", f"no update with id {instance_id}")
    runtime = _runtime_status(status)
    if runtime not in RUNNING_STATES:
        return json_response(
            {
                "error": {"field": "instanceId", "reason": f"the update already ended ({runtime})"},
                "status": describe_status(status),
            },
            409,
        )
    payload = {"reason": "cancel requested through the API"}
    await client.raise_event(instance_id, EVENT_CANCEL, payload)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    for child in custom.get("children") or []:
        try:
            await client.raise_event(str(child), EVENT_CANCEL, payload)
        except Exception:  # a child that already finished or never started
            logger.info("cancel: child %s not running", child)
    url = _status_url(req, instance_id)
    return json_response(
        {
            "instanceId": instance_id,
            "statusUrl": url,
            "message": "cancel requested: monitoring stops; the Citrix update itself cannot be "
            "cancelled through the Catalog Service API and may still complete",
        },
        202,
        {"Location": url, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )
