"""HTTP front of the Citrix simulator: a ThreadingHTTPServer on loopback in a daemon thread."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from local.citrix_simulator.engine import Engine, SimRequest, SimResponse
from local.citrix_simulator.scenario import Scenario, parse_scenario
from local.clock import VirtualClock
from shared.clock import Clock

__all__ = ["CitrixSimulator"]

logger = logging.getLogger(__name__)

_MAX_BODY = 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server_version = "CitrixSimulator/1.0"
    sim: CitrixSimulator  # set on the subclass made per simulator

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulator: %s", format % args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, _MAX_BODY)) if length > 0 else b""
        request = SimRequest(
            method=self.command.upper(),
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            host=self.headers.get("Host", ""),
        )
        response = self.sim.engine.handle(request)
        if response.action == "hang":
            self.sim.stopping.wait(response.hang_seconds)
        if response.action in ("drop", "hang"):
            # Close without a single byte of answer: the client sees the connection die.
            self.close_connection = True
            return
        self._write(response)

    def _write(self, response: SimResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve


class CitrixSimulator:
    """The Citrix Cloud token endpoint and Catalog Service API, on loopback, from a scenario.

    ``clock`` defaults to a fresh VirtualClock; share one clock with the client (and the
    durable host) so retries, token expiry and the update state machine agree on time."""

    def __init__(
        self, scenario: Mapping[str, Any] | Scenario, *, clock: Clock | None = None
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.engine = Engine(self.scenario, self.clock)
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---------------------------------------------------------------- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; returns the base URL ``http://127.0.0.1:<port>``."""
        if self._server is not None:
            return self.base_url
        handler = type("BoundHandler", (_Handler,), {"sim": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        self._server = server
        self.stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name="citrix-simulator",
        )
        self._thread.start()
        bound_host, bound_port = server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}"
        logger.info("Citrix simulator listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port (safe to call twice)."""
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CitrixSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Request log: ``{"method", "path", "query", "status", "time", "fault"}`` per call."""
        with self.engine.lock:
            return [dict(entry) for entry in self.engine.log]

    def count(self, method: str = "*", path: str = "*") -> int:
        """How many logged requests match ``method`` and the glob ``path``."""
        return sum(
            1
            for e in self.requests
            if method in ("*", e["method"]) and fnmatch.fnmatchcase(e["path"], path)
        )

    def reset_log(self) -> None:
        with self.engine.lock:
            self.engine.log.clear()

    @property
    def tokens_issued(self) -> int:
        return self.engine.tokens_issued

    def state(self) -> dict[str, Any]:
        """Everything (catalogs, images, time) as the admin route ``/_sim/state`` shows it."""
        return self.engine.state()

    def catalog(self, catalog_id: str) -> dict[str, Any]:
        """The catalog as GET catalog would answer now, plus ``updateRequests`` received."""
        with self.engine.lock:
            catalog = self.engine.catalogs[catalog_id]
            view = self.engine.catalog_view(catalog, self.clock.time())
            return {**view, "gone": catalog.gone, "updateRequests": list(catalog.update_requests)}

    def image(self, image_id: str) -> dict[str, Any]:
        with self.engine.lock:
            return self.engine.image_view(self.engine.images[image_id], self.clock.time())

    # ---------------------------------------------------------------- steering

    def set_image_state(
        self,
        image_id: str,
        state: str,
        *,
        sub_state: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Force an image's state from now on (e.g. Ready, Failed)."""
        with self.engine.lock:
            image = self.engine.images[image_id]
            image.override_state = state
            image.override_sub_state = sub_state
            image.override_message = status_message

    def set_catalog_state(
        self,
        catalog_id: str,
        state: str,
        *,
        sub_state: str | None = None,
        status_message: str | None = None,
    ) -> None:
        """Force a catalog's state now (any running job is dropped)."""
        with self.engine.lock:
            catalog = self.engine.catalogs[catalog_id]
            catalog.job = None
            catalog.state = state
            catalog.sub_state = sub_state
            catalog.status_message = status_message
            catalog.last_modified = self.clock.time()

    def set_client_secret(self, client_id: str, secret: str) -> None:
        """Rotate an API client's secret (old one stops working at once)."""
        with self.engine.lock:
            if client_id not in self.engine.secrets:
                raise KeyError(client_id)
            self.engine.secrets[client_id] = secret

    def expire_tokens(self) -> None:
        """Make every issued token expired now (as if its hour had passed)."""
        with self.engine.lock:
            now = self.clock.time()
            for token in self.engine.tokens.values():
                token.expires_at = min(token.expires_at, now)
