"""``make demo``: a gallery event and a pipeline request through the whole app, on virtual time.

It starts the Citrix simulator, the Key Vault emulator, the durable host and the functions host,
delivers ``local/scenarios/event.json`` to the Event Grid endpoint and posts
``local/scenarios/request.json`` to ``POST /api/updates``, prints progress as the simulated
updates advance, asks again to show de-duplication, and ends with a summary of each update.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from local.stack import LocalStack, load_json

__all__ = ["run_demo"]

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
STEP_SECONDS = 120.0


def _say(text: str = "") -> None:
    print(text, flush=True)


def _progress_line(minutes: float, status: dict[str, Any]) -> str:
    custom = status.get("customStatus") or {}
    name = custom.get("catalog") or "?"
    text = custom.get("message") or custom.get("phase") or status.get("runtimeStatus")
    return f"  [{minutes:6.1f} min] {name:<20} {custom.get('phase', ''):<20} {text}"


def _drive(stack: LocalStack, started: float, seen: dict[str, str]) -> None:
    """Advance virtual time step by step, printing each instance's custom status changes."""
    for _ in range(10_000):
        stack.durable.run_until_idle(max_virtual_seconds=STEP_SECONDS)
        minutes = (stack.clock.time() - started) / 60
        running = False
        for status in stack.durable.list_instances():
            line = _progress_line(minutes, status)
            key = str(status.get("instanceId"))
            marker = json.dumps(status.get("customStatus"), sort_keys=True, default=str)
            if seen.get(key) != marker and status.get("customStatus"):
                seen[key] = marker
                if str(status.get("name")) != "update_orchestrator" or not _is_parent(status):
                    _say(line)
            if status.get("runtimeStatus") in ("Running", "Pending", "ContinuedAsNew"):
                running = True
        if not running:
            return


def _is_parent(status: dict[str, Any]) -> bool:
    custom = status.get("customStatus") or {}
    return bool(custom.get("children"))


def _summary(stack: LocalStack) -> list[dict[str, Any]]:
    rows = []
    for status in stack.durable.list_instances():
        if str(status.get("name")) != "update_orchestrator":
            continue
        output = status.get("output") or {}
        results = output.get("results") or [output]
        for result in results:
            catalog = result.get("catalog") or {}
            image = result.get("image") or {}
            error = result.get("error") or {}
            rows.append(
                {
                    "update": status.get("instanceId"),
                    "catalog": catalog.get("name") or catalog.get("ref"),
                    "image": image.get("name") or image.get("ref"),
                    "outcome": result.get("outcome"),
                    "minutes": round(float(result.get("durationSeconds") or 0) / 60, 1),
                    "polls": result.get("polls"),
                    "transaction": result.get("transactionId"),
                    "detail": error.get("message") or result.get("message"),
                }
            )
    return rows


def run_demo() -> int:
    """Run the demo; returns the process exit code (0 when both updates succeeded)."""
    scenario = load_json(SCENARIOS / "demo.json")
    event = load_json(SCENARIOS / "event.json")
    request = load_json(SCENARIOS / "request.json")
    _say("catalog-updater demo: everything runs on this machine against the Citrix simulator,")
    _say("on virtual time (a 90-minute image update takes a few seconds).")
    with LocalStack(scenario) as stack:
        key = stack.function_key
        started = stack.clock.time()
        seen: dict[str, str] = {}
        _say(f"\nFunctions host {stack.functions_url} · simulator {stack.citrix_url}")
        _say(f"Key Vault emulator {stack.vault_url} (Citrix credentials are read from it)\n")

        _say("1) Azure Compute Gallery publishes a new image version -> Event Grid event")
        answer = requests.post(
            stack.functions.eventgrid_url("on_image_version_event"),
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
            timeout=30,
        )
        _say(f"   Event Grid delivery answered {answer.status_code}")
        _drive(stack, started, seen)

        _say("\n2) A pipeline calls POST /api/updates")
        headers = {"x-functions-key": key, "Content-Type": "application/json"}
        url = f"{stack.functions_url}/api/updates"
        first = requests.post(url, data=json.dumps(request).encode(), headers=headers, timeout=30)
        body = first.json()
        _say(f"   {first.status_code} instance {body.get('instanceId')}")
        _drive(stack, started, seen)

        again = requests.post(url, data=json.dumps(request).encode(), headers=headers, timeout=30)
        _say(
            f"\n3) The same request again -> {again.status_code}, duplicate="
            f"{again.json().get('duplicate')} (no second update is submitted)"
        )
        status = requests.get(body["statusUrl"], headers=headers, timeout=30).json()
        shown = urlsplit(body["statusUrl"]).path
        _say(f"   GET {shown} -> outcome {status.get('outcome')}")

        rows = _summary(stack)
        calls = stack.citrix_requests()
        submits = [c for c in calls if c["path"].endswith("$updateImage")]
        _say("\nSummary")
        width = max([20, *(len(str(r["catalog"])) for r in rows)])
        image_width = max([22, *(len(str(r["image"])) for r in rows)])
        for row in rows:
            _say(
                f"  {row['catalog']:<{width}} -> {row['image']:<{image_width}} "
                f"{row['outcome']:<16} {row['minutes']:>6} min  {row['polls']} status checks  "
                f"transaction {row['transaction']}"
            )
            if row["detail"]:
                _say(f"  {'':<{width}}    {row['detail']}")
        _say(
            f"\n  Citrix API calls: {len(calls)} in all, {len(submits)} $updateImage; "
            f"virtual time elapsed {(stack.clock.time() - started) / 60:.0f} min"
        )
        ok = bool(rows) and all(r["outcome"] in ("succeeded", "already_current") for r in rows)
        _say(
            "\nDemo finished: "
            + ("every update succeeded." if ok else "some update did not succeed.")
        )
        return 0 if ok else 1
