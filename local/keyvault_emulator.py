"""A Key Vault emulator on loopback, so the real ``SecretClient`` and the real
``DefaultAzureCredential`` run unchanged on one machine.

Two servers run in daemon threads:

* the **vault**: HTTPS on ``127.0.0.1`` with a certificate signed by the emulator's own CA (made
  with ``cryptography`` at start; trust it with ``connection_verify=emulator.ca_cert_path``). It
  speaks the Key Vault secrets REST protocol: ``GET``/``PUT /secrets/{name}[/{version}]`` and
  ``GET /secrets`` with ``?api-version=...``, JSON ``{value, id, attributes}``. Any request without
  a valid bearer token gets the ``401`` challenge
  ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"``, exactly what ``ChallengeAuthPolicy`` expects.
* an **App Service-style managed identity endpoint** (plain HTTP, like the real one): ``GET
  ?api-version=2019-08-01&resource=...[&client_id=...]`` with ``X-IDENTITY-HEADER``, answering
  ``{access_token, expires_on, resource, token_type}``. Point ``IDENTITY_ENDPOINT`` and
  ``IDENTITY_HEADER`` at it (:meth:`KeyVaultEmulator.identity_env`) and azure-identity's
  ``ManagedIdentityCredential`` (inside ``DefaultAzureCredential``) uses it: azure-identity 1.27
  hands App Service to ``msal.ManagedIdentityClient``, which reads those two variables, sends the
  header and converts ``expires_on`` with the wall clock (so token expiry here uses wall time; the
  injected clock drives secret timestamps and fault windows).

Faults come from configuration, each a dict::

    {"secret": "citrix-client-secret",  # name, or "*" / missing for every secret
     "method": "GET",                    # optional
     "status": 429,                      # 403, 404, 429, 500, 503 ...
     "retry_after": 5,                   # optional Retry-After header (seconds)
     "calls": [1, 2],                    # which matching calls (1-based), or
     "first": 2,                         # the first N matching calls, or
     "window": [0, 60],                  # clock seconds since start(): [from, until)
     "code": "Throttled", "message": "..."}  # optional error body

A fault without ``calls``/``first``/``window`` applies to every matching call. Only authorised
requests count. The identity endpoint can model a user-assigned identity: with
``system_identity=False`` and ``user_assigned_client_ids=[...]``, a token request without a known
``client_id`` is refused the way App Service does ("Unable to load the proper Managed Identity.").

The request log (:attr:`KeyVaultEmulator.requests`) holds method, path, status and whether the
request was authorised, never a value or a header. Run standalone with
``python -m local.keyvault_emulator --port 8443 --secret citrix-client-id=... ...``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import secrets as _random
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.clock import Clock, SystemClock

__all__ = ["KeyVaultEmulator", "main"]

logger = logging.getLogger(__name__)

VAULT_RESOURCE = "https://vault.azure.net"
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000e0e0"
_TOKEN_LIFETIME_SECONDS = 3600
_MAX_BODY = 256 * 1024
_SECRET_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadParameter", "The request is invalid."),
    401: ("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
    403: (
        "Forbidden",
        "Caller is not authorized to perform action on resource. If role assignments, deny "
        "assignments or role definitions were changed recently, please observe propagation time. "
        "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
    ),
    404: ("SecretNotFound", "A secret with (name/id) {name} was not found in this key vault."),
    429: ("Throttled", "Request was not allowed because application is over the rate limit."),
    500: ("InternalServerError", "The server encountered an internal error."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
}


@dataclass
class _Version:
    version: str
    value: str
    content_type: str | None
    created: int
    enabled: bool = True


@dataclass
class _Fault:
    secret: str
    method: str
    status: int
    retry_after: float | None
    calls: frozenset[int] | None
    first: int | None
    window: tuple[float, float] | None
    code: str | None
    message: str | None
    seen: int = 0

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> _Fault:
        known = {"secret", "method", "status", "retry_after", "calls", "first", "window"}
        unknown = set(raw) - known - {"code", "message"}
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        status = int(raw["status"])
        if not 400 <= status <= 599:
            raise ValueError(f"fault status must be 4xx/5xx, got {status}")
        window = raw.get("window")
        calls = raw.get("calls")
        return cls(
            secret=str(raw.get("secret") or "*"),
            method=str(raw.get("method") or "*").upper(),
            status=status,
            retry_after=None if raw.get("retry_after") is None else float(raw["retry_after"]),
            calls=None if calls is None else frozenset(int(c) for c in calls),
            first=None if raw.get("first") is None else int(raw["first"]),
            window=None if window is None else (float(window[0]), float(window[1])),
            code=None if raw.get("code") is None else str(raw["code"]),
            message=None if raw.get("message") is None else str(raw["message"]),
        )

    def matches(self, method: str, name: str) -> bool:
        return self.secret in ("*", name) and self.method in ("*", method)

    def fires(self, call_number: int, elapsed: float) -> bool:
        if self.calls is not None:
            return call_number in self.calls
        if self.first is not None:
            return call_number <= self.first
        if self.window is not None:
            return self.window[0] <= elapsed < self.window[1]
        return True


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


class KeyVaultEmulator:
    """Key Vault secrets over HTTPS on loopback plus a managed identity endpoint (module doc)."""

    def __init__(
        self,
        secrets: dict[str, str] | None = None,
        *,
        faults: list[dict[str, Any]] | None = None,
        clock: Clock | None = None,
        tenant_id: str = DEFAULT_TENANT,
        system_identity: bool = True,
        user_assigned_client_ids: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        identity_port: int = 0,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._store: dict[str, list[_Version]] = {}
        self._faults = [_Fault.parse(f) for f in faults or []]
        self._requests: list[dict[str, Any]] = []
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (wall expiry, identity)
        self.tenant_id = tenant_id
        self.system_identity = system_identity
        self.user_assigned_client_ids = tuple(user_assigned_client_ids)
        self.identity_header = _random.token_urlsafe(24)
        self._host = host
        self._port = port
        self._identity_port = identity_port
        self._started_at = 0.0
        self._tmpdir: str | None = None
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.vault_url = ""
        self.identity_endpoint = ""
        self._ca_cert_path = ""
        for name, value in (secrets or {}).items():
            self.set_secret(name, value)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        """Create the CA and server certificate, start both servers; return the vault URL."""
        if self._servers:
            return self.vault_url
        self._tmpdir = tempfile.mkdtemp(prefix="kv-emulator-")
        ca_path, cert_path, key_path = _make_certificates(Path(self._tmpdir))
        self._ca_cert_path = str(ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert_path), str(key_path))

        vault = _Server((self._host, self._port), _VaultHandler, self)
        vault.socket = context.wrap_socket(vault.socket, server_side=True)
        identity = _Server((self._host, self._identity_port), _IdentityHandler, self)
        self._servers = [vault, identity]
        self.vault_url = f"https://{self._host}:{vault.server_address[1]}"
        self.identity_endpoint = f"http://{self._host}:{identity.server_address[1]}/msi/token"
        self._started_at = self._clock.time()
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        logger.info(
            "Key Vault emulator at %s (identity %s)", self.vault_url, self.identity_endpoint
        )
        return self.vault_url

    def stop(self) -> None:
        """Stop both servers, join their threads and delete the certificate files."""
        for server in self._servers:
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> KeyVaultEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration and inspection ------------------------------------------------------------

    @property
    def ca_cert_path(self) -> str:
        """PEM file of the emulator's own CA (valid after :meth:`start`)."""
        if not self._ca_cert_path:
            raise RuntimeError("the emulator is not started")
        return self._ca_cert_path

    def identity_env(self) -> dict[str, str]:
        """Environment variables that make azure-identity use this managed identity endpoint."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }

    def set_secret(self, name: str, value: str, *, content_type: str | None = None) -> str:
        """Store a new version of ``name``; returns the version id."""
        _check_name(name)
        version = uuid.uuid4().hex
        with self._lock:
            self._store.setdefault(name, []).append(
                _Version(version, value, content_type, int(self._clock.time()))
            )
        return version

    def delete_secret(self, name: str) -> None:
        """Remove every version of ``name`` (reads then get 404)."""
        with self._lock:
            self._store.pop(name, None)

    def disable_secret(self, name: str) -> None:
        """Disable the latest version: reads get 403 "Operation get is not allowed on a disabled
        secret", as in Azure."""
        with self._lock:
            self._store[name][-1].enabled = False

    def add_fault(self, fault: dict[str, Any]) -> None:
        """Add one fault (see module doc) while running."""
        parsed = _Fault.parse(fault)
        with self._lock:
            self._faults.append(parsed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copy of the vault request log: ``{"method", "path", "status", "authorized"}``."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def secret_reads(self, name: str) -> int:
        """Authorised GETs of ``name`` (any version) so far, whatever their status."""
        prefix = f"/secrets/{name}"
        return sum(
            1
            for r in self.requests
            if r["method"] == "GET"
            and r["authorized"]
            and (r["path"] == prefix or r["path"].startswith(prefix + "/"))
        )

    @property
    def issued_tokens(self) -> list[str]:
        """Bearer tokens handed out so far (for leak tests only)."""
        with self._lock:
            return list(self._tokens)

    def issue_token(self, identity: str = "test") -> tuple[str, int]:
        """Mint a vault access token directly (for a minimal TokenCredential); returns
        ``(token, expires_on)`` in wall-clock epoch seconds."""
        expires_on = int(time.time()) + _TOKEN_LIFETIME_SECONDS
        token = _jwt_shaped(self.tenant_id, identity, expires_on)
        with self._lock:
            self._tokens[token] = (float(expires_on), identity)
        return token, expires_on

    # -- request handling (called from handler threads) ------------------------------------------

    def _token_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[len("Bearer ") :].strip()
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] > time.time()

    def _log(self, method: str, path: str, status: int, authorized: bool) -> None:
        with self._lock:
            self._requests.append(
                {"method": method, "path": path, "status": status, "authorized": authorized}
            )
        logger.debug("kv-emulator %s %s -> %d", method, path, status)

    def _handle_vault(
        self, method: str, raw_path: str, authorization: str | None, body: bytes
    ) -> _Reply:
        split = urlsplit(raw_path)
        path = split.path.rstrip("/") or "/"
        query = parse_qs(split.query)
        authorized = self._token_valid(authorization)
        if not authorized:
            reply = self._challenge()
        elif "api-version" not in query:
            reply = _error(400, "MissingApiVersionParameter", "The api-version query is required.")
        else:
            reply = self._route(method, path, body)
        self._log(method, path, reply.status, authorized)
        return reply

    def _challenge(self) -> _Reply:
        header = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
            f'resource="{VAULT_RESOURCE}"'
        )
        code, message = _DEFAULT_ERRORS[401]
        return _Reply(
            401, {"error": {"code": code, "message": message}}, (("WWW-Authenticate", header),)
        )

    def _route(self, method: str, path: str, body: bytes) -> _Reply:
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts or parts[0] != "secrets" or len(parts) > 3:
            return _error(404, "NotFound", "The requested resource does not exist.")
        if len(parts) == 1:
            if method != "GET":
                return _error(405, "MethodNotAllowed", "Only GET is supported on /secrets.")
            return _Reply(200, self._list())
        name = parts[1]
        if any(c not in _SECRET_NAME_CHARS for c in name) or not 1 <= len(name) <= 127:
            return _error(400, "BadParameter", "Secret name is invalid.")
        version = parts[2] if len(parts) == 3 else None
        fault = self._fault_for(method, name)
        if fault is not None:
            return fault
        if method == "GET":
            return self._get(name, version)
        if method == "PUT" and version is None:
            return self._put(name, body)
        return _error(405, "MethodNotAllowed", f"{method} is not supported on this path.")

    def _fault_for(self, method: str, name: str) -> _Reply | None:
        elapsed = self._clock.time() - self._started_at
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, name):
                    continue
                fault.seen += 1
                if fault.fires(fault.seen, elapsed):
                    code, message = _DEFAULT_ERRORS.get(fault.status, ("Error", "Injected fault."))
                    headers: tuple[tuple[str, str], ...] = ()
                    if fault.retry_after is not None:
                        headers = (("Retry-After", f"{fault.retry_after:g}"),)
                    text = (fault.message or message).replace("{name}", name)
                    return _Reply(
                        fault.status,
                        {"error": {"code": fault.code or code, "message": text}},
                        headers,
                    )
        return None

    def _bundle(self, name: str, entry: _Version) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "value": entry.value,
            "id": f"{self.vault_url}/secrets/{name}/{entry.version}",
            "attributes": {
                "enabled": entry.enabled,
                "created": entry.created,
                "updated": entry.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }
        if entry.content_type:
            bundle["contentType"] = entry.content_type
        return bundle

    def _get(self, name: str, version: str | None) -> _Reply:
        with self._lock:
            versions = list(self._store.get(name, ()))
        found = [v for v in versions if version is None or v.version == version]
        if not found:
            code, message = _DEFAULT_ERRORS[404]
            return _error(404, code, message.replace("{name}", name))
        entry = found[-1]
        if not entry.enabled:
            return _error(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
        return _Reply(200, self._bundle(name, entry))

    def _put(self, name: str, body: bytes) -> _Reply:
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return _error(400, "BadParameter", "The request body is not valid JSON.")
        if not isinstance(payload, dict) or not isinstance(payload.get("value"), str):
            return _error(400, "BadParameter", "Property 'value' is required.")
        content_type = payload.get("contentType")
        self.set_secret(name, payload["value"], content_type=content_type)
        with self._lock:
            entry = self._store[name][-1]
        return _Reply(200, self._bundle(name, entry))

    def _list(self) -> dict[str, Any]:
        with self._lock:
            latest = {name: versions[-1] for name, versions in self._store.items() if versions}
        items = []
        for name, entry in sorted(latest.items()):
            bundle = self._bundle(name, entry)
            bundle.pop("value")
            bundle["id"] = f"{self.vault_url}/secrets/{name}"
            items.append(bundle)
        return {"value": items, "nextLink": None}

    def _handle_identity(self, raw_path: str, identity_header: str | None) -> _Reply:
        split = urlsplit(raw_path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        if identity_header != self.identity_header:
            return _Reply(
                401, {"statusCode": 401, "message": "Missing or invalid identity header."}
            )
        if query.get("api-version") != "2019-08-01":
            return _Reply(400, {"statusCode": 400, "message": "Unsupported api-version."})
        resource = query.get("resource", "").rstrip("/")
        if resource != VAULT_RESOURCE:
            return _Reply(
                400, {"statusCode": 400, "message": f"Unsupported resource {resource!r}."}
            )
        client_id = query.get("client_id")
        if client_id:
            known = client_id in self.user_assigned_client_ids
            identity = f"user-assigned:{client_id}"
        else:
            known = self.system_identity
            identity = "system-assigned"
        if not known:
            # What App Service answers when the requested identity is not assigned to the app
            # (e.g. only user-assigned identities and no client_id in the request).
            return _Reply(
                400,
                {
                    "statusCode": 400,
                    "message": "Unable to load the proper Managed Identity.",
                    "correlationId": str(uuid.uuid4()),
                },
            )
        token, expires_on = self.issue_token(identity)
        return _Reply(
            200,
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": VAULT_RESOURCE,
                "token_type": "Bearer",
                "client_id": client_id or "00000000-0000-0000-0000-00000000a11e",
            },
        )


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _jwt_shaped(tenant_id: str, identity: str, expires_on: int) -> str:
    """An unsigned JWT-shaped token (azure-identity decodes the claims to log the account at
    DEBUG); the random signature part makes every token unique and unguessable."""
    header = {"alg": "none", "typ": "JWT"}
    claims = {
        "aud": VAULT_RESOURCE,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "tid": tenant_id,
        "appid": identity.removeprefix("user-assigned:"),
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, identity)),
        "exp": expires_on,
    }
    return f"{_b64url(header)}.{_b64url(claims)}.{_random.token_urlsafe(32)}"


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}})


def _check_name(name: str) -> None:
    if not 1 <= len(name) <= 127 or any(c not in _SECRET_NAME_CHARS for c in name):
        raise ValueError(f"invalid Key Vault secret name {name!r} (1-127 of a-z A-Z 0-9 -)")


class _Server(ThreadingHTTPServer):
    """Tracks open connections so :meth:`close_connections` can end keep-alive handler threads,
    which ``server_close`` then joins (no thread outlives :meth:`KeyVaultEmulator.stop`)."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: KeyVaultEmulator,
    ) -> None:
        super().__init__(address, handler)
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _BaseHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = 30  # an idle keep-alive connection does not pin a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib access log (the emulator keeps its own, value-free log)."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _VaultHandler(_BaseHandler):
    def _dispatch(self) -> None:
        try:
            body = self._body()
        except ValueError:
            self._send(_error(413, "RequestTooLarge", "The request body is too large."))
            return
        reply = self.server.emulator._handle_vault(
            self.command, self.path, self.headers.get("Authorization"), body
        )
        self._send(reply)

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()


class _IdentityHandler(_BaseHandler):
    def do_GET(self) -> None:
        reply = self.server.emulator._handle_identity(
            self.path, self.headers.get("X-IDENTITY-HEADER")
        )
        self._send(reply)


def _make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA certificate and a server certificate for 127.0.0.1 / localhost / ::1 signed by it."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "catalog-updater local Key Vault CA")]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    cert_path = folder / "server.pem"
    key_path = folder / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted; print one JSON line with the URLs and CA path."""
    parser = argparse.ArgumentParser(prog="python -m local.keyvault_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="vault HTTPS port (0 = any free port)")
    parser.add_argument("--identity-port", type=int, default=0, help="identity endpoint port")
    parser.add_argument(
        "--secret", action="append", default=[], metavar="NAME=VALUE", help="initial secret"
    )
    parser.add_argument("--faults", help="JSON file with a list of faults")
    args = parser.parse_args(argv)
    initial: dict[str, str] = {}
    for item in args.secret:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--secret expects NAME=VALUE, got a value without '=' for {name!r}")
        initial[name] = value
    faults = json.loads(Path(args.faults).read_text()) if args.faults else None
    emulator = KeyVaultEmulator(
        initial, faults=faults, port=args.port, identity_port=args.identity_port
    )
    emulator.start()
    info = {
        "vaultUrl": emulator.vault_url,
        "caCertPath": emulator.ca_cert_path,
        "identityEndpoint": emulator.identity_endpoint,
        "identityHeader": emulator.identity_header,
        "secrets": sorted(initial),
    }
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    try:
        while not stopped.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
