"""Local durable host: runs azure-functions-durable 1.x orchestrations on one machine.

Typical use (virtual time)::

    host = DurableHost(app, store_path=":memory:", clock=VirtualClock())
    instance_id = host.start_new("update_catalog", None, {"catalogId": "..."})
    host.run_until_idle()                      # jumps the clock from timer to timer
    host.get_status(instance_id)               # {"runtimeStatus": "Completed", "output": ...}

Starter functions get a real ``DurableOrchestrationClient`` from ``host.client_binding_json()``
(the RPC server starts on demand); a functions host that serves ``/runtime/webhooks/durabletask``
on its own origin forwards those requests to :func:`handle_request`. Real time:
``host.run_in_background()`` + ``host.wait_for(id, timeout)``; always ``host.stop()``.
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
from local.durable_host.server import HttpReply, handle_request

__all__ = [
    "DurableHost",
    "DurableHostError",
    "HttpReply",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "InvalidArgumentError",
    "NotTerminalError",
    "OrchestrationAlreadyExistsError",
    "app_functions",
    "close_sdk_http_session",
    "handle_request",
    "make_client",
    "read_overridable_states",
]
