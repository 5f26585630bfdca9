"""Local durable host: runs azure-functions-durable 1.x orchestrations on one machine.

See ``local/durable_host/host.py`` for the engine and ``server.py`` for the Durable client RPC /
webhook endpoints. Public entry point: :class:`DurableHost`.
"""

from __future__ import annotations

from local.durable_host.client import close_sdk_http_session, make_client
from local.durable_host.errors import (
    DurableHostError,
    InstanceGoneError,
    InstanceNotFoundError,
    InvalidArgumentError,
    NotTerminalError,
    OrchestrationAlreadyExistsError,
)
from local.durable_host.host import DurableHost, read_overridable_states
from local.durable_host.registry import app_functions

__all__ = [
    "DurableHost",
    "DurableHostError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "InvalidArgumentError",
    "NotTerminalError",
    "OrchestrationAlreadyExistsError",
    "app_functions",
    "close_sdk_http_session",
    "make_client",
    "read_overridable_states",
]
