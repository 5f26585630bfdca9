"""Fixtures for the bad-input tests: one whole local stack per test module (starting one takes
about half a second; hypothesis then sends hundreds of requests through it in-process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from local.testing_stack import fault_scenario

ROUTE = {
    "name": "win11",
    "gallery": "acg_citrix",
    "imageDefinition": "win11-*",
    "catalogs": ["Finance-Desktops"],
    "imageNameTemplate": "{definition}-{version}",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The simulator tenant of the fault suite with one Event Grid route, on virtual time."""
    scenario = fault_scenario()
    scenario["appSettings"] = {"EVENT_ROUTES": [ROUTE]}
    with LocalStack(scenario) as running:
        yield running
