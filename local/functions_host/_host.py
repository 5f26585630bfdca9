"""The local functions host: serves a v2 app's HTTP routes and Event Grid webhook on loopback.

It stands in for ``func start``: functions are found through ``app.get_functions()``, loaded with
the worker's rules (:mod:`._indexing`), and invoked with the objects the Python worker builds,
decoded by azure.functions' own converters (``HttpRequestConverter``, ``HttpResponseConverter``,
``EventGridEventInConverter``, the durable client binding string). Durable management webhooks
(``/runtime/webhooks/durabletask/...``, where ``create_check_status_response`` points) are
forwarded to the attached durable host, as the real host serves them on the same origin.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import inspect
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from azure.functions import _abc as azf_abc
from azure.functions import meta
from requests.structures import CaseInsensitiveDict

from local.functions_host._eventgrid import (
    EventGridPayloadError,
    is_cloud_event,
    parse_events,
    validation_code,
)
from local.functions_host._indexing import (
    GenericBinding,
    LoadedFunction,
    get_converter,
    index_functions,
    load_function,
)
from local.functions_host._loop import SharedLoop
from local.functions_host._routes import RouteTemplate

__all__ = ["DurableHostLike", "FunctionsHost"]

logger = logging.getLogger(__name__)

_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT")
_SERVED_TRIGGERS = ("httpTrigger", "eventGridTrigger")
_SUPPORTED_BINDINGS = {"httpTrigger", "http", "eventGridTrigger", "durableClient"}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "server",
    "date",
}
_EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
_DURABLE_PREFIX = "/runtime/webhooks/durabletask/"
_CLOUDEVENTS_TYPES = ("application/cloudevents+json", "application/cloudevents-batch+json")


class DurableHostLike(Protocol):
    """The part of ``local.durable_host.DurableHost`` this host uses."""

    def start_server(self) -> str: ...

    def client_binding_json(self, function_origin: str | None = None) -> str: ...


@dataclass
class _Request:
    method: str
    path: str  # raw (percent-encoded) path, no query
    raw_query: str
    headers: dict[str, str]  # case preserved; duplicates joined with ", "
    body: bytes
    origin: str

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return None

    @property
    def query(self) -> dict[str, str]:
        """Query parameters as the Functions host passes them (repeated keys joined by ',')."""
        merged: dict[str, list[str]] = {}
        for key, value in parse_qsl(self.raw_query, keep_blank_values=True):
            merged.setdefault(key, []).append(value)
        return {k: ",".join(v) for k, v in merged.items()}

    @property
    def url(self) -> str:
        return self.origin + self.path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    return _Response(
        status,
        [("Content-Type", "application/json; charset=utf-8"), *headers],
        json.dumps(payload).encode("utf-8"),
    )


def _error(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    return _json_response(status, {"error": message, "status": status}, headers)


class _TraceContext(azf_abc.TraceContext):  # type: ignore[misc]
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _InvocationContext(azf_abc.Context):  # type: ignore[misc]
    """The ``context`` argument a function gets when it declares one (like the worker's)."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._tls = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> _TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> None:
        return None


@dataclass(frozen=True)
class _HttpRoute:
    function: LoadedFunction
    template: RouteTemplate
    methods: frozenset[str]
    auth_level: str  # "anonymous" | "function" | "admin"


class FunctionsHost:
    """Serve ``app``'s HTTP-triggered and Event Grid-triggered functions on loopback.

    ``function_key`` authorizes ``function``-level routes and the Event Grid webhook (it doubles
    as the ``eventgrid_extension`` system key); ``master_key`` authorizes every level, including
    ``admin``. Both are generated when not given and are never logged.
    """

    def __init__(
        self,
        app: Any,
        *,
        durable_host: DurableHostLike | None = None,
        function_key: str | None = None,
        max_body_bytes: int = 1_048_576,
        master_key: str | None = None,
        route_prefix: str = "api",
        function_timeout: float = 230.0,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self._durable = durable_host
        self._function_key = function_key or secrets.token_urlsafe(32)
        self._master_key = master_key or secrets.token_urlsafe(32)
        self.max_body_bytes = max_body_bytes
        self.function_timeout = function_timeout
        self._prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
        self._routes: list[_HttpRoute] = []
        self._eventgrid: dict[str, LoadedFunction] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._loop_acquired = False
        self._state_lock = threading.Lock()
        for function in index_functions(app):
            trigger = function.get_trigger()
            if trigger is None or trigger.type not in _SERVED_TRIGGERS:
                continue
            loaded = load_function(function)
            unsupported = sorted(
                {str(b.get("type")) for b in loaded.raw_bindings} - _SUPPORTED_BINDINGS
            )
            if unsupported:
                raise ValueError(
                    f"function {loaded.name!r}: binding type(s) {unsupported} are not supported "
                    "by the local functions host"
                )
            if loaded.trigger_type == "httpTrigger":
                self._routes.append(self._make_route(loaded))
            else:
                self._eventgrid[loaded.name.lower()] = loaded
        self._check_route_collisions()
        self._routes.sort(key=lambda r: r.template.precedence, reverse=True)
        logger.info(
            "functions host indexed %d HTTP route(s) and %d Event Grid function(s)",
            len(self._routes),
            len(self._eventgrid),
        )

    # ----------------------------------------------------------------------------- public API

    @property
    def function_key(self) -> str:
        return self._function_key

    @property
    def master_key(self) -> str:
        return self._master_key

    @property
    def base_url(self) -> str | None:
        """``http://127.0.0.1:<port>`` while started, else ``None``."""
        return self._base_url

    @property
    def routes(self) -> list[tuple[str, str, tuple[str, ...], str]]:
        """(function name, ``/api/...`` template, methods, auth level) for every HTTP route."""
        return [
            (
                r.function.name,
                f"{self._prefix}/{r.template.template.strip('/')}",
                tuple(sorted(r.methods)),
                r.auth_level,
            )
            for r in self._routes
        ]

    def start(self) -> str:
        """Start serving on an ephemeral loopback port; returns the base URL. Idempotent."""
        with self._state_lock:
            if self._base_url is not None:
                return self._base_url
            self._ensure_loop()
            server = _Server(("127.0.0.1", 0), _Handler, self)
            port = server.server_address[1]
            self._server = server
            self._base_url = f"http://127.0.0.1:{port}"
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"functions-host-{port}",
                daemon=True,
            )
            self._thread.start()
        if self._durable is not None:
            self._durable.start_server()
        logger.info("functions host listening on %s", self._base_url)
        return self._base_url

    def stop(self) -> None:
        """Stop the server, close open connections and release the event loop. Idempotent."""
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server, self._thread, self._base_url = None, None, None
            release = self._loop_acquired
            self._loop_acquired = False
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        if release:
            SharedLoop.release()

    def __enter__(self) -> FunctionsHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def eventgrid_url(self, function_name: str) -> str:
        """The webhook URL an Event Grid subscription would call (host must be started)."""
        if self._base_url is None:
            raise RuntimeError("the functions host is not started")
        query = urlencode({"functionName": function_name, "code": self._function_key})
        return f"{self._base_url}{_EVENTGRID_PATH}?{query}"

    def invoke_http(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, CaseInsensitiveDict[str], bytes]:
        """Handle one request in-process through the same code path as the server.

        Returns (status, headers (case-insensitive; repeated headers joined by ", "), body).
        """
        split = urlsplit(path)
        raw_query = split.query
        if params:
            extra = urlencode(list(params.items()))
            raw_query = f"{raw_query}&{extra}" if raw_query else extra
        request = _Request(
            method=method.upper(),
            path=split.path or "/",
            raw_query=raw_query,
            headers=dict(headers or {}),
            body=body,
            origin=self._origin_for(dict(headers or {})),
        )
        too_large = len(body) > self.max_body_bytes
        response = self._too_large() if too_large else self.handle(request)
        merged: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for key, value in response.headers:
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return response.status, merged, response.body

    def deliver_event_grid(
        self,
        function_name: str,
        payload: bytes | list[Any] | dict[str, Any],
        *,
        cloud_events: bool = False,
        aeg_event_type: str = "Notification",
    ) -> tuple[int, bytes]:
        """Deliver ``payload`` to the Event Grid webhook as Event Grid would (in-process)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        if cloud_events:
            batch = isinstance(payload, list) or body.lstrip().startswith(b"[")
            content_type = _CLOUDEVENTS_TYPES[1] if batch else _CLOUDEVENTS_TYPES[0]
        else:
            content_type = "application/json"
        status, _, response_body = self.invoke_http(
            "POST",
            _EVENTGRID_PATH,
            body=body,
            headers={"Content-Type": content_type, "aeg-event-type": aeg_event_type},
            params={"functionName": function_name, "code": self._function_key},
        )
        return status, response_body

    # ------------------------------------------------------------------------------ dispatch

    def handle(self, request: _Request) -> _Response:
        """Route one request; never raises (500 with a generic body on a host bug)."""
        try:
            lower = request.path.lower()
            if lower.rstrip("/") == _EVENTGRID_PATH:
                return self._handle_eventgrid(request)
            if lower.startswith(_DURABLE_PREFIX):
                return self._proxy_durable(request)
            if self._prefix and not (lower == self._prefix or lower.startswith(self._prefix + "/")):
                return _error(404, "no function matches this path")
            return self._handle_http(request, request.path[len(self._prefix) :])
        except Exception:
            logger.exception("functions host: unhandled error for %s", request.method)
            return _error(500, "internal server error")

    def _too_large(self) -> _Response:
        return _error(413, f"request body exceeds the limit of {self.max_body_bytes} bytes")

    def _origin_for(self, headers: Mapping[str, str]) -> str:
        for key, value in headers.items():
            if key.lower() == "host" and value:
                return f"http://{value}"
        return self._base_url or "http://127.0.0.1"

    def _key_matches(self, request: _Request, *candidates: str) -> bool:
        supplied = request.header("x-functions-key") or request.query.get("code") or ""
        return any(
            hmac.compare_digest(supplied.encode("utf-8"), c.encode("utf-8")) for c in candidates
        )

    # ---------------------------------------------------------------------------------- HTTP

    def _make_route(self, loaded: LoadedFunction) -> _HttpRoute:
        trigger = loaded.trigger
        route = trigger.get("route")
        template = RouteTemplate(route if isinstance(route, str) else loaded.name)
        methods = trigger.get("methods")
        allowed = frozenset(str(m).upper() for m in methods) if methods else frozenset(_ALL_METHODS)
        auth = str(trigger.get("authLevel") or "function").lower()
        if auth not in ("anonymous", "function", "admin"):
            raise ValueError(f"function {loaded.name!r}: unknown authLevel {auth!r}")
        return _HttpRoute(loaded, template, allowed, auth)

    def _check_route_collisions(self) -> None:
        for i, first in enumerate(self._routes):
            for second in self._routes[i + 1 :]:
                overlap = first.methods & second.methods
                if first.template.shape == second.template.shape and overlap:
                    raise ValueError(
                        f"functions {first.function.name!r} and {second.function.name!r} both "
                        f"serve route {first.template.template!r} for {sorted(overlap)}"
                    )

    def _handle_http(self, request: _Request, sub_path: str) -> _Response:
        matches = [(r, p) for r in self._routes if (p := r.template.match(sub_path)) is not None]
        if not matches:
            return _error(404, "no function matches this path")
        chosen = next(((r, p) for r, p in matches if request.method in r.methods), None)
        if chosen is None:
            allow = sorted({m for r, _ in matches for m in r.methods})
            return _error(
                405, f"method {request.method} is not allowed here", [("Allow", ", ".join(allow))]
            )
        route, route_params = chosen
        if route.auth_level != "anonymous":
            keys: tuple[str, ...] = (self._master_key,)
            if route.auth_level == "function":
                keys = (self._function_key, self._master_key)
            if not self._key_matches(request, *keys):
                return _error(
                    401, "a valid function key is required (x-functions-key header or code=)"
                )
        return self._invoke_http_function(route.function, request, route_params)

    def _invoke_http_function(
        self, fn: LoadedFunction, request: _Request, route_params: dict[str, str]
    ) -> _Response:
        datum = meta.Datum(
            type="http",
            value={
                "method": meta.Datum(request.method, "string"),
                "url": meta.Datum(request.url, "string"),
                "headers": {k: meta.Datum(v, "string") for k, v in request.headers.items()},
                "body": meta.Datum(request.body, "bytes"),
                "params": {k: meta.Datum(v, "string") for k, v in route_params.items()},
                "query": {k: meta.Datum(v, "string") for k, v in request.query.items()},
            },
        )
        ok, result = self._invoke(fn, datum, request.origin, reason="HTTP request")
        if not ok:
            return _error(500, "the function failed; see the host log")
        try:
            return self._http_output(fn, result)
        except Exception:
            logger.exception("function %s returned a value that cannot be sent as HTTP", fn.name)
            return _error(500, "the function failed; see the host log")

    @staticmethod
    def _http_output(fn: LoadedFunction, result: Any) -> _Response:
        if result is None or fn.return_binding is None:
            return _Response(204)
        converter = get_converter(fn.return_binding)
        try:
            datum = converter.encode(result, expected_type=fn.return_pytype)
        except NotImplementedError:
            raise TypeError(
                f"unable to encode outgoing TypedData: unsupported type {fn.return_binding!r} "
                f"for Python type {type(result).__name__!r}"
            ) from None
        if datum.type == "string":
            return _Response(
                200,
                [("Content-Type", "text/plain; charset=utf-8")],
                str(datum.value).encode("utf-8"),
            )
        if datum.type == "bytes":
            return _Response(200, [("Content-Type", "application/octet-stream")], datum.value)
        if datum.type != "http":
            raise TypeError(f"unexpected HTTP output datum type {datum.type!r}")
        value = datum.value
        status = int(str(value["status_code"].value))
        headers = [(str(k), str(v.value)) for k, v in value["headers"].items()]
        for cookie in value.get("cookies") or []:
            headers.extend(("Set-Cookie", morsel.OutputString()) for morsel in cookie.values())
        body_datum = value["body"]
        body = body_datum.value if body_datum is not None else b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        return _Response(status, headers, bytes(body or b""))

    # ---------------------------------------------------------------------------- invocation

    def _ensure_loop(self) -> None:
        if not self._loop_acquired:
            SharedLoop.acquire()
            self._loop_acquired = True

    def _client_binding(self, origin: str) -> str:
        if self._durable is None:
            raise RuntimeError(
                "this function has a durable client binding but the functions host has no "
                "durable host (pass durable_host=...)"
            )
        self._durable.start_server()
        return self._durable.client_binding_json(function_origin=origin)

    def _invoke(
        self, fn: LoadedFunction, trigger_datum: meta.Datum, origin: str, *, reason: str
    ) -> tuple[bool, Any]:
        """Call ``fn`` like the worker does; (False, None) if it raised (already logged)."""
        invocation = _InvocationContext(fn.name, _function_directory(fn))
        started = time.monotonic()
        logger.info(
            "Executing 'Functions.%s' (Reason='%s', Id=%s)",
            fn.name,
            reason,
            invocation.invocation_id,
        )
        try:
            kwargs: dict[str, Any] = {}
            for param, info in fn.input_types.items():
                if param == fn.trigger_name:
                    datum = trigger_datum
                elif info.binding_type == "durableClient":
                    datum = meta.Datum(type="string", value=self._client_binding(origin))
                else:  # refused at construction; kept as a guard
                    raise TypeError(f"unsupported input binding {info.binding_type!r}")
                converter = (
                    GenericBinding
                    if info.converter_binding == "generic"
                    else get_converter(info.binding_type)
                )
                try:
                    kwargs[param] = converter.decode(datum, trigger_metadata={})
                except NotImplementedError:
                    raise TypeError(
                        f"unable to decode incoming TypedData: unsupported combination of "
                        f"TypedData field {datum.type!r} and expected binding type "
                        f"{info.converter_binding!r}"
                    ) from None
            if fn.requires_context:
                kwargs["context"] = invocation
            if fn.is_async:
                self._ensure_loop()
                result = SharedLoop.run(fn.func(**kwargs), self.function_timeout)
            else:
                result = fn.func(**kwargs)
                if inspect.isawaitable(result):
                    self._ensure_loop()
                    result = SharedLoop.run(_await(result), self.function_timeout)
        except Exception:
            logger.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)",
                fn.name,
                invocation.invocation_id,
                (time.monotonic() - started) * 1000,
            )
            return False, None
        logger.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
            fn.name,
            invocation.invocation_id,
            (time.monotonic() - started) * 1000,
        )
        return True, result

    # ---------------------------------------------------------------------------- Event Grid

    def _handle_eventgrid(self, request: _Request) -> _Response:
        query = request.query
        name = query.get("functionName")
        if not name:
            return _error(400, "the functionName query parameter is required")
        if not self._key_matches(request, self._function_key, self._master_key):
            return _error(401, "a valid system key is required (code=)")
        fn = self._eventgrid.get(name.lower())
        if fn is None:
            return _error(404, f"cannot find Event Grid function: {name!r}")
        if request.method == "OPTIONS":
            origin = request.header("WebHook-Request-Origin")
            if not origin:
                return _error(400, "CloudEvents validation needs a WebHook-Request-Origin header")
            return _Response(
                200, [("WebHook-Allowed-Origin", origin), ("WebHook-Allowed-Rate", "*")]
            )
        if request.method != "POST":
            return _error(405, "use POST (or OPTIONS for validation)", [("Allow", "POST, OPTIONS")])
        event_type = (request.header("aeg-event-type") or "").strip()
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        try:
            events = parse_events(request.body)
            if event_type.lower() == "subscriptionvalidation":
                code = validation_code(events)
                logger.info("Event Grid subscription validated for %s", fn.name)
                return _json_response(200, {"validationResponse": code})
        except EventGridPayloadError as exc:
            return _error(exc.status, str(exc))
        if event_type.lower() == "unsubscribe":
            return _Response(202)
        if not event_type:
            if not (content_type in _CLOUDEVENTS_TYPES or all(map(is_cloud_event, events))):
                return _error(
                    400, "missing aeg-event-type header (Notification or SubscriptionValidation)"
                )
        elif event_type.lower() != "notification":
            return _error(400, f"unrecognized aeg-event-type header {event_type[:40]!r}")
        failed = 0
        for event in events:
            datum = meta.Datum(type="json", value=json.dumps(event))
            ok, _ = self._invoke(fn, datum, request.origin, reason="EventGrid")
            failed += 0 if ok else 1
        if failed:
            return _error(500, f"{failed} of {len(events)} event(s) failed; see the host log")
        return _Response(202)

    # -------------------------------------------------------------------- durable webhooks

    def _proxy_durable(self, request: _Request) -> _Response:
        if self._durable is None:
            return _error(404, "no durable host is attached to this functions host")
        target = urlsplit(self._durable.start_server())
        if not target.hostname or target.port is None:
            raise RuntimeError("the durable host returned an unusable server URL")
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        try:
            connection.request(request.method, path, body=request.body or None, headers=headers)
            upstream = connection.getresponse()
            body = upstream.read()
            durable_origin = f"{target.scheme}://{target.netloc}"
            response_headers = []
            for key, value in upstream.getheaders():
                if key.lower() in _HOP_BY_HOP:
                    continue
                if key.lower() == "location":
                    value = value.replace(durable_origin, request.origin, 1)
                response_headers.append((key, value))
            return _Response(upstream.status, response_headers, body)
        finally:
            connection.close()


_CODE_RE = re.compile(r"(code=)[^&\s'\"]+", flags=re.IGNORECASE)


def _redact(text: str) -> str:
    """Hide function keys (``code=...``) in anything that might be logged."""
    return _CODE_RE.sub(r"\1***", text)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _function_directory(fn: LoadedFunction) -> str:
    try:
        source = inspect.getsourcefile(inspect.unwrap(fn.func))
    except TypeError:
        source = None
    return str(source.rsplit("/", 1)[0]) if source else ""


# ------------------------------------------------------------------------------ HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined by server_close() on stop()
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], host: FunctionsHost
    ) -> None:
        super().__init__(address, handler)
        self.functions_host = host
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, conn: socket.socket, active: bool) -> None:
        with self._connections_lock:
            if active:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "catalog-updater-local-functions-host"
    timeout = 30
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY Nagle + delayed ACK add
        # ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it is larger than ``limit``."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    break
                total += size
                if total > limit:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        host = self.server.functions_host
        split = urlsplit(self.path)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            body = self._read_body(host.max_body_bytes)
        except ValueError:
            self.close_connection = True
            self._send(_error(400, "malformed request body framing"))
            return
        if body is None:
            self.close_connection = True
            self._send(host._too_large())
            return
        request = _Request(
            method=self.command.upper(),
            path=quote(split.path, safe="/%:@!$&'()*+,;=-._~") or "/",
            raw_query=split.query,
            headers=headers,
            body=body,
            origin=host._origin_for(headers),
        )
        self._send(host.handle(request))

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    # TRACE too: it gets the same routing (405 with Allow), not http.server's bare 501.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = _serve

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Never log the query string: it carries the function key (code=).
        path = urlsplit(getattr(self, "path", "") or "").path
        logger.debug("%s %s -> %s", getattr(self, "command", "-"), path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http server: %s", _redact(format % args))
