"""Fixtures for end-to-end tests: the whole app on one virtual clock (LocalStack)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack

DEMO = json.loads((Path(__file__).parents[2] / "local/scenarios/demo.json").read_text())
FINANCE = "0c9a7e52-3f4b-4d8e-a1c6-7b2d9e4f5a10"


class Client:
    """Talks to the local functions host over real HTTP."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        status, _headers, content = self.stack.functions.invoke_http(
            method, path, body=raw, headers={"x-functions-key": self.stack.function_key}
        )
        try:
            return status, json.loads(content or b"null")
        except ValueError:
            return status, content

    def start(self, body: Any) -> dict[str, Any]:
        status, answer = self.call("POST", "/api/updates", body)
        assert status == 202, answer
        return dict(answer)

    def status(self, instance_id: str) -> dict[str, Any]:
        status, answer = self.call("GET", f"/api/updates/{instance_id}")
        assert status == 200, answer
        return dict(answer)

    def updates_submitted(self, catalog_id: str | None = None) -> int:
        return sum(
            1
            for r in self.stack.citrix_requests()
            if r["method"] == "POST"
            and r["path"].endswith("$updateImage")
            and (catalog_id is None or f"/catalogs/{catalog_id}/" in r["path"])
        )


@pytest.fixture
def make_stack() -> Iterator[Callable[..., tuple[LocalStack, Client]]]:
    """Start a LocalStack on the demo scenario, changed by ``tweak(scenario)``."""
    stacks: list[LocalStack] = []

    def factory(
        tweak: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any
    ) -> tuple[LocalStack, Client]:
        scenario = copy.deepcopy(DEMO)
        if tweak is not None:
            tweak(scenario)
        stack = LocalStack(scenario, **kwargs)
        stack.start()
        stacks.append(stack)
        return stack, Client(stack)

    yield factory
    for stack in stacks:
        stack.stop()
