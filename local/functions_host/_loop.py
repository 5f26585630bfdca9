"""One process-wide asyncio loop thread for async function invocations.

The Python worker runs every ``async def`` function on one event loop. That matters here: the
Durable SDK keeps a module-global aiohttp ``ClientSession`` (``models/utils/http_utils.py``) that
is bound to the loop it was created on, so ``asyncio.run`` per call would break the second
durable-client invocation. Hosts share this loop (reference-counted); when the last host stops,
the SDK session is closed inside the loop and the thread ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["SharedLoop"]

logger = logging.getLogger(__name__)


async def _close_durable_session() -> None:
    http_utils = sys.modules.get("azure.durable_functions.models.utils.http_utils")
    close = getattr(http_utils, "_close_session", None)
    if close is not None:
        await close()


class SharedLoop:
    """Reference-counted event loop running in a daemon thread."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _users = 0

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            cls._users += 1
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="functions-host-loop", daemon=True)
                thread.start()
                ready.wait()
                cls._loop, cls._thread = loop, thread

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users = max(0, cls._users - 1)
            if cls._users or cls._loop is None:
                return
            loop, thread = cls._loop, cls._thread
            cls._loop, cls._thread = None, None
        try:
            asyncio.run_coroutine_threadsafe(_close_durable_session(), loop).result(timeout=10)
        except Exception:
            logger.warning("closing the Durable SDK HTTP session failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run ``coro`` on the shared loop and wait for its result (raises its exception)."""
        loop = cls._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the functions host event loop is not running")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
