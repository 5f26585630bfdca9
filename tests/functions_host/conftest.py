"""Fixtures for the local functions host tests: the sample app, a started host, leak checks."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from local.functions_host import FunctionsHost

HERE = Path(__file__).parent
FUNCTION_KEY = "test-function-key"
MASTER_KEY = "test-master-key"
#: Process-wide daemon threads third-party libraries start once and keep by design: pycares
#: (aiohttp's DNS resolver, used by the Durable SDK client) destroys channels on this one.
PROCESS_SINGLETONS = ("_run_safe_shutdown_loop",)


def _load(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_app() -> Callable[[str], ModuleType]:
    """Import a module from this folder by file name (``tests`` is not a package here)."""
    return lambda filename: _load(HERE / filename, f"functions_host_{Path(filename).stem}")


@pytest.fixture
def sample(load_app: Callable[[str], ModuleType]) -> ModuleType:
    module = load_app("sample_app.py")
    module.RECEIVED.clear()
    module.CALLS.clear()
    return module


@pytest.fixture
def host(sample: ModuleType) -> Iterator[FunctionsHost]:
    functions_host = FunctionsHost(
        sample.app, function_key=FUNCTION_KEY, master_key=MASTER_KEY, max_body_bytes=4096
    )
    functions_host.start()
    try:
        yield functions_host
    finally:
        functions_host.stop()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test in this folder must stop the servers and loops it started."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not any(n in t.name for n in PROCESS_SINGLETONS)
    ]
    assert not leaked, f"threads left running: {leaked}"
