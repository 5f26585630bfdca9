"""Loopback HTTP endpoints of the local durable host.

Two route families answer the same handlers, as in the real extension:

* ``/durabletask/...`` - the *RPC* base the Python SDK's ``DurableOrchestrationClient`` talks to
  (``rpcBaseUrl`` of the client binding);
* ``/runtime/webhooks/durabletask/...`` - the webhook URLs that ``create_check_status_response``
  hands out (``statusQueryGetUri``, ``sendEventPostUri``, ...).

Status codes mirror the extension's ``HttpApiHandler``: start 202 (409 when
``NonRunningStates`` refuses, 400 for an unknown orchestrator), status 202 while running and 200
when terminal (500 for Failed only with ``returnInternalServerErrorOnFailure=true``), 404 with a
JSON body when there is no instance, raise event 202/404/410/400, terminate 202/404/410, purge
200/404/412. Every body is JSON.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.durable_host.errors import DurableHostError
from local.durable_host.protocol import RuntimeStatus

if TYPE_CHECKING:
    from local.durable_host.host import DurableHost

logger = logging.getLogger(__name__)

__all__ = ["RPC_PREFIX", "WEBHOOK_PREFIX", "DurableHttpServer", "HttpReply", "handle_request"]

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
_RUNNING = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})


@dataclass
class HttpReply:
    """Status, headers and JSON body of one answer."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode("utf-8")


def _error(status: int, message: str, exc: BaseException | None = None) -> HttpReply:
    body: dict[str, Any] = {"Message": message}
    if exc is not None:
        body["ExceptionMessage"] = str(exc)
        body["ExceptionType"] = type(exc).__name__
    return HttpReply(status, body)


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    values = query.get(name)
    if not values:
        return default
    text = values[-1].strip().lower()
    if text in ("true", "false"):
        return text == "true"
    return default


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def handle_request(
    host: DurableHost,
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> HttpReply:
    """Answer one RPC or webhook request; ``url`` may be absolute or a path with query.

    Other local servers (the functions host) can call this in-process to serve the
    ``/runtime/webhooks/durabletask/...`` routes on their own origin.
    """
    headers = {key.lower(): value for key, value in (headers or {}).items()}
    parts = urlsplit(url)
    path = unquote(parts.path)
    query = parse_qs(parts.query, keep_blank_values=True)
    if path.startswith(WEBHOOK_PREFIX):
        rest = path[len(WEBHOOK_PREFIX) :]
    elif path.startswith(RPC_PREFIX):
        rest = path[len(RPC_PREFIX) :]
    else:
        return _error(404, f"No durable route for {parts.path}")
    origin = headers.get("host")
    request_origin = f"http://{origin}" if origin else None
    segments = [segment for segment in rest.split("/") if segment != ""]
    method = method.upper()
    try:
        return _route(host, method, segments, query, body, headers, request_origin, url)
    except DurableHostError as exc:
        return _error(exc.status_code, str(exc), exc)
    except Exception as exc:  # pragma: no cover - defensive, mirrors the extension's 500
        logger.exception("durable HTTP handler failed for %s %s", method, parts.path)
        return _error(500, "Something went wrong while processing your request", exc)


def _route(
    host: DurableHost,
    method: str,
    segments: list[str],
    query: dict[str, list[str]],
    body: bytes,
    headers: dict[str, str],
    request_origin: str | None,
    url: str,
) -> HttpReply:
    if segments and segments[0] == "orchestrators" and len(segments) in (2, 3):
        if method != "POST":
            return _error(404, "Only POST starts orchestrations")
        return _start(host, segments, query, body, request_origin)
    if not segments or segments[0] != "instances":
        return _error(404, "Unknown durable route")
    if len(segments) == 1:
        if method == "GET":
            return _list(host, query)
        if method == "DELETE":
            return _purge_by_filter(host, query)
        return _error(404, "Unsupported method")
    instance_id = segments[1]
    if len(segments) == 2:
        if method == "GET":
            return _status(host, instance_id, query, url)
        if method == "DELETE":
            inst = host.get_status(instance_id)
            if inst is None:
                return _error(404, f"No instance with ID '{instance_id}' found.")
            return HttpReply(200, {"instancesDeleted": host.purge(instance_id)})
        return _error(404, "Unsupported method")
    operation = segments[2].lower()
    if method != "POST":
        return _error(404, "Unsupported method")
    if operation == "raiseevent" and len(segments) == 4:
        return _raise_event(host, instance_id, segments[3], body, headers)
    if operation == "terminate" and len(segments) == 3:
        reason = (query.get("reason") or [""])[-1]
        host.terminate(instance_id, reason)
        return HttpReply(202, {})
    if operation in ("rewind", "suspend", "resume", "restart"):
        return _error(501, f"'{operation}' is not supported by the local durable host")
    return _error(404, "Unknown instance operation")


def _start(
    host: DurableHost,
    segments: list[str],
    query: dict[str, list[str]],
    body: bytes,
    request_origin: str | None,
) -> HttpReply:
    name = segments[1]
    instance_id = segments[2] if len(segments) == 3 else None
    text = body.decode("utf-8") if body else ""
    input_text: str | None = None
    if text.strip():
        try:
            json.loads(text)
        except ValueError as exc:
            return _error(400, "Invalid JSON content", exc)
        input_text = text
    version = _last(query, "version")
    new_id = host._start(name, instance_id, input_text, version=version)
    payload = host.management_payload(new_id, request_origin)
    return HttpReply(
        202,
        payload,
        {"Location": payload["statusQueryGetUri"], "Retry-After": "10"},
    )


def _status(
    host: DurableHost, instance_id: str, query: dict[str, list[str]], url: str
) -> HttpReply:
    show_history = _flag(query, "showHistory", False)
    status = host.get_status(instance_id, show_history=show_history)
    if status is None:
        return _error(404, f"No instance with ID '{instance_id}' found.")
    if not _flag(query, "showInput", True):
        status["input"] = None
    runtime = status["runtimeStatus"]
    if runtime in _RUNNING:
        return HttpReply(202, status, {"Location": url, "Retry-After": "5"})
    if runtime == RuntimeStatus.FAILED and _flag(
        query, "returnInternalServerErrorOnFailure", False
    ):
        return HttpReply(500, status)
    return HttpReply(200, status)


def _list(host: DurableHost, query: dict[str, list[str]]) -> HttpReply:
    statuses: list[str] = []
    for value in query.get("runtimeStatus", []):
        statuses.extend(part for part in value.split(",") if part)
    documents = host.list_instances(
        runtime_status=statuses or None,
        created_from=_last(query, "createdTimeFrom"),
        created_to=_last(query, "createdTimeTo"),
        instance_id_prefix=_last(query, "instanceIdPrefix"),
        show_input=_flag(query, "showInput", True),
    )
    return HttpReply(200, documents)


def _purge_by_filter(host: DurableHost, query: dict[str, list[str]]) -> HttpReply:
    created_from = _last(query, "createdTimeFrom")
    if not created_from:
        return _error(400, "Please provide value for 'createdTimeFrom' parameter.")
    statuses: list[str] = []
    for value in query.get("runtimeStatus", []):
        statuses.extend(part for part in value.split(",") if part)
    deleted = 0
    for status in host.list_instances(
        runtime_status=statuses or None,
        created_from=created_from,
        created_to=_last(query, "createdTimeTo"),
    ):
        if status["runtimeStatus"] in RuntimeStatus.TERMINAL:
            deleted += host.purge(status["instanceId"])
    if deleted == 0:
        return _error(404, "No instances matched the filter")
    return HttpReply(200, {"instancesDeleted": deleted})


def _raise_event(
    host: DurableHost, instance_id: str, event_name: str, body: bytes, headers: dict[str, str]
) -> HttpReply:
    status = host.get_status(instance_id)
    if status is None:
        return _error(404, f"No instance with ID '{instance_id}' found.")
    if status["runtimeStatus"] in RuntimeStatus.TERMINAL:
        return _error(410, f"Instance with ID {instance_id} is gone: either completed or failed")
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _error(400, "Only application/json request content is supported")
    text = body.decode("utf-8") if body else "null"
    try:
        token = json.loads(text)
    except ValueError as exc:
        return _error(400, "Invalid JSON content", exc)
    # Like the extension: the body is parsed to one JSON token and stored as its JSON text, so the
    # SDK's raise_event (which JSON-encodes its data twice) delivers a JSON *string*; see
    # Azure/azure-functions-durable-python#295.
    host._raise_event_text(instance_id, event_name, json.dumps(token))
    return HttpReply(202, {})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = handle_request(
            self.server.durable_host, self.command, self.path, body, dict(self.headers.items())
        )
        payload = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("durable http: %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    durable_host: DurableHost


class DurableHttpServer:
    """The durable host's loopback server on an ephemeral port."""

    def __init__(self, host: DurableHost, port: int = 0) -> None:
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.durable_host = host
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def rpc_base_url(self) -> str:
        return f"{self.origin}{RPC_PREFIX}"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="durable-http",
                daemon=True,
            )
            self._thread.start()
            logger.info("durable host listening on %s", self.rpc_base_url)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()
