"""The whole app on one machine: simulator + Key Vault emulator + durable host + functions host.

``LocalStack`` starts every part on loopback, points the app's settings at them, injects the
shared clock into the app's services and hands back the URLs. In virtual-time mode one clock
drives the simulator's state machine, the Citrix client's retry sleeps and the durable timers,
so a 90-minute image update runs in well under a second.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.citrix_simulator import CitrixSimulator
from local.clock import RealClock, VirtualClock
from local.keyvault_emulator import KeyVaultEmulator
from shared.clock import Clock
from shared.config import Settings
from shared.runtime import build_services, set_services

__all__ = ["SECRET_CLIENT_ID", "SECRET_CLIENT_SECRET", "LocalStack", "load_json"]

logger = logging.getLogger(__name__)

SECRET_CLIENT_ID = "citrix-client-id"
SECRET_CLIENT_SECRET = "citrix-client-secret"

# Only one stack per process: the app's services and the managed identity env vars are global.
_ACTIVE = threading.Lock()


def load_json(path: str | Path) -> Any:
    """Read a JSON file (scenario, request body, event array)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class LocalStack:
    """Start with :meth:`start` (or use as a context manager); stop with :meth:`stop`."""

    def __init__(
        self,
        scenario: Mapping[str, Any],
        *,
        virtual: bool = True,
        speed: float = 1.0,
        store_path: str = ":memory:",
        app_settings: Mapping[str, str] | None = None,
        keyvault_faults: list[dict[str, Any]] | None = None,
    ) -> None:
        self.scenario = dict(scenario)
        self.virtual = virtual
        self.clock: Clock = VirtualClock() if virtual else RealClock(speed)
        self.store_path = store_path
        self._extra_settings = dict(app_settings or {})
        self._keyvault_faults = keyvault_faults
        self.simulator: CitrixSimulator | None = None
        self.vault: KeyVaultEmulator | None = None
        self.durable: Any = None
        self.functions: Any = None
        self.settings: Settings | None = None
        self.citrix_url = ""
        self.vault_url = ""
        self.functions_url = ""
        self._saved_env: dict[str, str | None] = {}
        self.started_at = 0.0
        self._locked = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        if not _ACTIVE.acquire(blocking=False):
            raise RuntimeError("another LocalStack is running in this process")
        self._locked = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import function_app
        from local.durable_host import DurableHost
        from local.functions_host import FunctionsHost

        self.started_at = self.clock.time()
        self.simulator = CitrixSimulator(self.scenario, clock=self.clock)
        self.citrix_url = self.simulator.start()
        client = (self.scenario.get("apiClients") or [{}])[0]
        self.vault = KeyVaultEmulator(
            {
                SECRET_CLIENT_ID: str(client.get("clientId", "")),
                SECRET_CLIENT_SECRET: str(client.get("secret", "")),
            },
            faults=self._keyvault_faults,
            clock=self.clock,
        )
        self.vault_url = self.vault.start()
        # azure-identity's managed identity credential finds its endpoint through these; a
        # developer's own Azure credentials in the environment must not answer instead.
        self._set_env(
            {
                **self.vault.identity_env(),
                "AZURE_TOKEN_CREDENTIALS": "prod",
                "AZURE_CLIENT_ID": "",
                "AZURE_CLIENT_SECRET": "",
                "AZURE_TENANT_ID": "",
                "AZURE_FEDERATED_TOKEN_FILE": "",
            }
        )
        self.settings = Settings.from_env(self.app_environment())
        set_services(
            build_services(
                self.settings, clock=self.clock, connection_verify=self.vault.ca_cert_path
            )
        )
        self.durable = DurableHost(function_app.app, store_path=self.store_path, clock=self.clock)
        self.durable.start_server()
        self.functions = FunctionsHost(function_app.app, durable_host=self.durable)
        self.functions_url = self.functions.start()
        if not self.virtual:
            self.durable.run_in_background()

    def app_environment(self) -> dict[str, str]:
        """The app settings the local run uses (what Bicep sets in Azure)."""
        env = {
            "CITRIX_API_BASE": self.citrix_url,
            "CITRIX_CUSTOMER_ID": str(self.scenario.get("customerId", "")),
            "KEY_VAULT_URL": self.vault_url,
            "CITRIX_CLIENT_ID_SECRET_NAME": SECRET_CLIENT_ID,
            "CITRIX_CLIENT_SECRET_SECRET_NAME": SECRET_CLIENT_SECRET,
        }
        for key, value in (self.scenario.get("appSettings") or {}).items():
            env[str(key)] = value if isinstance(value, str) else json.dumps(value)
        env.update(self._extra_settings)
        return env

    def stop(self) -> None:
        for part in (self.functions, self.durable, self.vault, self.simulator):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stopping is best effort; report and go on
                    logger.exception("could not stop %s", type(part).__name__)
        self.functions = self.durable = self.vault = self.simulator = None
        set_services(None)
        self._restore_env()
        if self._locked:
            self._locked = False
            _ACTIVE.release()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------------

    def _set_env(self, values: Mapping[str, str]) -> None:
        """Set (or, for empty values, remove) process environment variables until stop()."""
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    @property
    def function_key(self) -> str:
        return str(self.functions.function_key)

    def run_until_idle(self) -> None:
        """Virtual time: run every instance until it ends or waits for an external event."""
        self.durable.run_until_idle()

    def citrix_requests(self) -> list[dict[str, Any]]:
        """The simulator's request log."""
        assert self.simulator is not None
        return list(self.simulator.requests)


@contextmanager
def local_stack(scenario: Mapping[str, Any], **kwargs: Any) -> Iterator[LocalStack]:
    """``with local_stack(scenario) as stack: ...``"""
    stack = LocalStack(scenario, **kwargs)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
