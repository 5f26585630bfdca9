"""Builders for whole-stack tests (fault suite, fuzzing): scenarios, one-call runs, log queries.

Test files run under ``--import-mode=importlib`` and cannot import each other or a conftest, so
what several of them share lives here. Everything runs on :class:`local.stack.LocalStack` in
virtual time: a 90-minute update takes well under a second.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.citrix_simulator.testing import base_scenario
from local.stack import LocalStack

__all__ = [
    "CATALOG_PATH",
    "POST_UPDATE",
    "STATUS_PATH",
    "TOKEN_PATH",
    "StackRun",
    "calls",
    "fault_scenario",
    "gaps_after_429",
    "run_update",
    "start_update",
]

logger = logging.getLogger(__name__)

TOKEN_PATH = "/cctrustoauth2/*/tokens/clients"
POST_UPDATE = "*/$updateImage"
STATUS_PATH = "*/updateStatus"
CATALOG_PATH = "/catalogservice/*/*/catalogs/*"

DEFAULT_REQUEST: dict[str, Any] = {"catalog": "Finance-Desktops", "image": "win11-23h2-v2"}


def fault_scenario(
    *,
    faults: list[dict[str, Any]] | None = None,
    update: Mapping[str, Any] | None = None,
    token_lifetime_seconds: int = 86400,
    rate_limit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The small test tenant (``local.citrix_simulator.testing.base_scenario``) with
    Finance-Desktops' update plan, a token lifetime (long by default, so token requests are
    exactly one unless a test shortens it), optional faults and rate limit."""
    scenario = copy.deepcopy(base_scenario())
    scenario["token"] = {"lifetimeSeconds": token_lifetime_seconds}
    scenario["faults"] = list(faults or [])
    if rate_limit is not None:
        scenario["rateLimit"] = dict(rate_limit)
    if update is not None:
        scenario["catalogs"][0]["update"] = dict(update)
    return scenario


def calls(
    requests: list[dict[str, Any]], method: str = "*", path: str = "*"
) -> list[dict[str, Any]]:
    """Simulator log entries matching ``method`` (``*`` = any) and the glob ``path``."""
    return [
        r
        for r in requests
        if method in ("*", r["method"]) and fnmatch.fnmatchcase(str(r["path"]), path)
    ]


def gaps_after_429(requests: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """For every 429 answer from the Catalog Service: (seconds until the client's next Catalog
    Service request, seconds the answer asked for). Token requests are not rate limited by the
    Catalog Service and are skipped. The last 429 of a run has no follower and is left out."""
    service = [r for r in requests if str(r["path"]).startswith("/catalogservice/")]
    pairs: list[tuple[float, float]] = []
    for index, entry in enumerate(service[:-1]):
        if entry["status"] == 429:
            told = float(entry.get("told") or 0.0)
            pairs.append((float(service[index + 1]["time"]) - float(entry["time"]), told))
    return pairs


@dataclass
class StackRun:
    """What one run produced: the HTTP answer, the final status and the simulator's log."""

    http_status: int
    body: dict[str, Any]
    instance_id: str | None
    runtime_status: str | None
    output: Any
    custom_status: Any
    requests: list[dict[str, Any]]
    elapsed_seconds: float
    update_requests: list[dict[str, Any]] = field(default_factory=list)
    vault_reads: dict[str, int] = field(default_factory=dict)

    @property
    def outcome(self) -> str | None:
        return self.output.get("outcome") if isinstance(self.output, dict) else None

    @property
    def error(self) -> dict[str, Any]:
        if isinstance(self.output, dict) and isinstance(self.output.get("error"), dict):
            return dict(self.output["error"])
        return {}

    def calls(self, method: str = "*", path: str = "*") -> list[dict[str, Any]]:
        return calls(self.requests, method, path)


def start_update(stack: LocalStack, body: Any) -> tuple[int, dict[str, Any]]:
    """``POST /api/updates`` in-process through the functions host; (status, JSON body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    status, _, answer = stack.functions.invoke_http(
        "POST",
        "/api/updates",
        body=raw,
        headers={"x-functions-key": stack.function_key, "Content-Type": "application/json"},
    )
    try:
        parsed = json.loads(answer) if answer else {}
    except ValueError:
        parsed = {"raw": answer.decode("utf-8", "replace")}
    return status, parsed if isinstance(parsed, dict) else {"value": parsed}


def run_update(
    scenario: Mapping[str, Any],
    request: Any = None,
    *,
    app_settings: Mapping[str, str] | None = None,
    keyvault_faults: list[dict[str, Any]] | None = None,
    between: Callable[[LocalStack], None] | None = None,
    catalog_id: str | None = None,
) -> StackRun:
    """Start one update through the HTTP API, run the durable host until idle on virtual time
    and collect the result. ``between`` runs after the request and before running (to steer
    the simulator); ``catalog_id`` names the simulator catalog whose received ``$updateImage``
    requests are reported."""
    with LocalStack(
        scenario, app_settings=dict(app_settings or {}), keyvault_faults=keyvault_faults
    ) as stack:
        status, body = start_update(stack, DEFAULT_REQUEST if request is None else request)
        if between is not None:
            between(stack)
        stack.run_until_idle()
        instance_id = body.get("instanceId") if status == 202 else None
        full = stack.durable.get_status(instance_id) if instance_id else None
        assert stack.simulator is not None and stack.vault is not None
        requests = _with_told(stack.citrix_requests(), scenario)
        updates = stack.simulator.catalog(catalog_id)["updateRequests"] if catalog_id else []
        reads = {
            name: stack.vault.secret_reads(name)
            for name in ("citrix-client-id", "citrix-client-secret")
        }
        return StackRun(
            http_status=status,
            body=body,
            instance_id=instance_id,
            runtime_status=(full or {}).get("runtimeStatus"),
            output=(full or {}).get("output"),
            custom_status=(full or {}).get("customStatus"),
            requests=requests,
            elapsed_seconds=stack.clock.time() - stack.started_at,
            update_requests=updates,
            vault_reads=reads,
        )


def _with_told(requests: list[dict[str, Any]], scenario: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Annotate 429 entries with the wait their answer asked for (``told``), from the fault or
    rate-limit definition that produced them (the log does not keep response headers)."""
    told_by_fault: dict[str, float] = {}
    for index, fault in enumerate(scenario.get("faults") or []):
        if fault.get("status") != 429:
            continue
        name = str(fault.get("name") or f"fault-{index}")
        header = (fault.get("headers") or {}).get("Retry-After")
        delay = float(header) if header is not None else 1.0
        for parameter in (fault.get("body") or {}).get("parameters") or []:
            if str(parameter.get("name", "")).lower() == "retrydelay":
                delay = max(delay, float(parameter["value"]))
        told_by_fault[name] = delay
    limit = scenario.get("rateLimit") or {}
    limit_delay = float(limit.get("retryDelaySeconds", 1))
    out = []
    for entry in requests:
        entry = dict(entry)
        if entry["status"] == 429:
            fault = entry.get("fault")
            entry["told"] = told_by_fault.get(str(fault), 1.0) if fault else limit_delay
        out.append(entry)
    return out
