"""Fixtures for the Key Vault tests: a started emulator (stopped after the test), the process
environment that points the real DefaultAzureCredential at its identity endpoint, a recording
virtual clock and a factory for KeyVaultSecretSource wired to all of them."""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from local.clock import VirtualClock
from local.keyvault_emulator import KeyVaultEmulator
from shared.config import Settings
from shared.secrets import KeyVaultSecretSource

CLIENT_ID = "3f1c2a9e-client-id-0001"
CLIENT_SECRET = "cs-Zq8!vV2nKx0-TOP-SECRET-value=="

# Variables that would steer DefaultAzureCredential away from the emulator's identity endpoint.
_AZURE_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


class RecordingClock(VirtualClock):
    """A virtual clock that remembers every sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


@pytest.fixture
def clock() -> RecordingClock:
    return RecordingClock()


@pytest.fixture
def start_emulator(
    clock: RecordingClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., KeyVaultEmulator]]:
    """Start emulators (default secrets: the Citrix client) and point the managed identity
    environment at the last one started. All are stopped at teardown."""
    started: list[KeyVaultEmulator] = []

    def start(secrets: dict[str, str] | None = None, **kwargs: Any) -> KeyVaultEmulator:
        if secrets is None:
            secrets = {"citrix-client-id": CLIENT_ID, "citrix-client-secret": CLIENT_SECRET}
        kwargs.setdefault("clock", clock)
        emulator = KeyVaultEmulator(secrets, **kwargs)
        started.append(emulator)
        emulator.start()
        for name in _AZURE_ENV:
            monkeypatch.delenv(name, raising=False)
        # Only the "prod" credentials (environment, workload identity, managed identity): a
        # developer's `az login` must not answer in place of the emulator's identity endpoint.
        monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")
        for key, value in emulator.identity_env().items():
            monkeypatch.setenv(key, value)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: Callable[..., KeyVaultEmulator]) -> KeyVaultEmulator:
    """A running emulator holding the Citrix client id and secret."""
    return start_emulator()


@pytest.fixture
def make_source(
    clock: RecordingClock,
) -> Iterator[Callable[..., KeyVaultSecretSource]]:
    """Build a KeyVaultSecretSource for an emulator (TLS verified with the emulator's CA)."""
    sources: list[KeyVaultSecretSource] = []

    def make(
        emulator: KeyVaultEmulator | None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> KeyVaultSecretSource:
        base = settings or Settings(citrix_customer_id="cust1")
        if emulator is not None and "key_vault_url" not in overrides:
            overrides["key_vault_url"] = emulator.vault_url
        source_kwargs = {
            k: overrides.pop(k)
            for k in ("max_attempts", "max_delay_seconds", "retry_budget_seconds", "credential")
            if k in overrides
        }
        source = KeyVaultSecretSource(
            dataclasses.replace(base, **overrides),
            clock=clock,
            connection_verify=emulator.ca_cert_path if emulator else True,
            **source_kwargs,
        )
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.close()


@pytest.fixture
def citrix_client() -> tuple[str, str]:
    """The (client id, client secret) the default emulator holds."""
    return CLIENT_ID, CLIENT_SECRET


class TokenEndpoint:
    """A loopback Citrix token endpoint (POST /cctrustoauth2/{customer}/tokens/clients) that
    accepts one client id/secret pair, so the real CitrixTokenProvider can exchange what the
    secret source read. ``accepted`` can be changed to model a rotation on the Citrix side."""

    def __init__(self, client_id: str, secret: str) -> None:
        self.accepted = (client_id, secret)
        self.issued: list[str] = []
        self.results: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                pair = (form.get("client_id", [""])[0], form.get("client_secret", [""])[0])
                if pair == endpoint.accepted:
                    token = "citrix-bearer-" + secrets.token_urlsafe(16)
                    endpoint.issued.append(token)
                    status, body = (
                        200,
                        {"token_type": "bearer", "access_token": token, "expires_in": "3600"},
                    )
                else:
                    status = 400
                    body = {"error": "invalid_client", "error_description": "Invalid client."}
                endpoint.results.append(status)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    """A running TokenEndpoint accepting the default emulator's Citrix client."""
    endpoint = TokenEndpoint(CLIENT_ID, CLIENT_SECRET)
    yield endpoint
    endpoint.stop()
