"""Helpers for code that drives the real ``DurableOrchestrationClient`` against the local host."""

from __future__ import annotations

import logging

from azure.durable_functions import DurableOrchestrationClient

logger = logging.getLogger(__name__)

__all__ = ["close_sdk_http_session", "make_client"]


def make_client(binding_json: str) -> DurableOrchestrationClient:
    """The SDK's client, exactly as the ``durable_client_input`` middleware builds it."""
    return DurableOrchestrationClient(binding_json)


async def close_sdk_http_session() -> None:
    """Close the durable SDK's process-wide aiohttp session.

    azure-functions-durable 1.7 keeps one ``aiohttp.ClientSession`` per process, bound to the
    event loop that created it. Code that calls the client from ``asyncio.run`` more than once
    (tests, the local functions host) must close it before its loop ends, or the next loop
    inherits a session whose loop is closed.
    """
    from azure.durable_functions.models.utils import http_utils

    await http_utils._close_session()
