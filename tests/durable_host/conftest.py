"""Fixtures for the local durable host tests: the sample DFApp and hosts that always stop."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.clock import VirtualClock
from local.durable_host import DurableHost

_SAMPLE_PATH = Path(__file__).with_name("sample_app.py")
_MODULE_NAME = "durable_host_sample_app"


def _load_sample() -> ModuleType:
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, _SAMPLE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sample() -> Iterator[ModuleType]:
    """The sample app module with fresh call counters and behaviours."""
    module = _load_sample()
    module.reset()
    module.FLIP["value"] = False
    yield module
    module.reset()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def make_host(sample: ModuleType, clock: VirtualClock) -> Iterator[Callable[..., DurableHost]]:
    """Factory for hosts on the sample app (virtual clock); every host is stopped at teardown."""
    hosts: list[DurableHost] = []

    def factory(**kwargs: Any) -> DurableHost:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("overridable_existing_instance_states", "AnyState")
        host = DurableHost(sample.app, **kwargs)
        hosts.append(host)
        return host

    yield factory
    for host in hosts:
        host.stop()


@pytest.fixture
def host(make_host: Callable[..., DurableHost]) -> DurableHost:
    return make_host()
