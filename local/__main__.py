"""Command line of the local runtime.

python -m local run --scenario FILE (--request FILE | --event FILE)   one JSON document out
python -m local demo                                                  the guided demo
python -m local serve [--scenario FILE] [--speed N]                   everything on loopback
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from local.citrix_simulator import ScenarioError
from local.stack import LocalStack, load_json
from shared.config import ConfigError

logger = logging.getLogger(__name__)

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TERMINAL = frozenset({"Completed", "Failed", "Terminated"})


def _post_request(stack: LocalStack, body: Any) -> dict[str, Any]:
    response = requests.post(
        f"{stack.functions_url}/api/updates",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "x-functions-key": stack.function_key},
        timeout=30,
    )
    answer: dict[str, Any] = {"httpStatus": response.status_code}
    try:
        answer["body"] = response.json()
    except ValueError:
        answer["body"] = response.text
    return answer


def _post_event(stack: LocalStack, events: Any) -> dict[str, Any]:
    url = stack.functions.eventgrid_url("on_image_version_event")
    cloud = isinstance(events, dict) or (
        isinstance(events, list) and bool(events) and "specversion" in events[0]
    )
    headers = (
        {"Content-Type": "application/cloudevents-batch+json; charset=utf-8"}
        if cloud
        else {"Content-Type": "application/json", "aeg-event-type": "Notification"}
    )
    response = requests.post(
        url, data=json.dumps(events).encode("utf-8"), headers=headers, timeout=30
    )
    return {"httpStatus": response.status_code, "body": response.text}


def _top_level_instances(stack: LocalStack) -> list[dict[str, Any]]:
    from shared.orchestration import ORCH_UPDATE

    found = [s for s in stack.durable.list_instances() if str(s.get("name")) == ORCH_UPDATE]
    found.sort(key=lambda s: str(s.get("createdTime")))
    return found


def run_once(
    scenario: dict[str, Any],
    *,
    request: Any = None,
    event: Any = None,
    app_settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one request or event through the whole chain on virtual time; return the report."""
    with LocalStack(scenario, app_settings=app_settings) as stack:
        trigger = (
            _post_request(stack, request) if request is not None else _post_event(stack, event)
        )
        stack.run_until_idle()
        instances = []
        for status in _top_level_instances(stack):
            full = stack.durable.get_status(status["instanceId"]) or status
            instances.append(
                {
                    "instanceId": full.get("instanceId"),
                    "runtimeStatus": full.get("runtimeStatus"),
                    "output": full.get("output"),
                    "customStatus": full.get("customStatus"),
                }
            )
        first = instances[0] if instances else {}
        return {
            "trigger": trigger,
            "instanceId": first.get("instanceId"),
            "runtimeStatus": first.get("runtimeStatus"),
            "output": first.get("output"),
            "customStatus": first.get("customStatus"),
            "instances": instances,
            "citrixRequests": [
                {"method": r["method"], "path": r["path"], "status": r["status"]}
                for r in stack.citrix_requests()
            ],
            "virtualMinutes": round((stack.clock.time() - stack.started_at) / 60, 1),
        }


def _settings(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--setting {item!r} must be NAME=VALUE")
        settings[name.strip()] = value
    return settings


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = load_json(args.scenario)
    settings = _settings(args.setting or [])
    report = run_once(
        scenario,
        request=load_json(args.request) if args.request else None,
        event=load_json(args.event) if args.event else None,
        app_settings=settings,
    )
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    # 1: the trigger refused the request or event (a 4xx/5xx answer), so nothing ran.
    return 1 if int(report["trigger"]["httpStatus"]) >= 400 else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one request or event on virtual time")
    run.add_argument("--scenario", required=True, help="simulator scenario (JSON)")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--request", help="body of POST /api/updates (JSON)")
    which.add_argument("--event", help="Event Grid event array or CloudEvent(s) (JSON)")
    run.add_argument("--setting", action="append", help="app setting override NAME=VALUE")
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser("demo", help="the guided demo on the simulator")
    demo.set_defaults(handler=_cmd_demo)

    serve = commands.add_parser("serve", help="run everything on loopback for curl")
    serve.add_argument("--scenario", default=str(SCENARIOS / "demo.json"))
    serve.add_argument("--speed", type=float, default=60.0, help="virtual seconds per second")
    serve.add_argument("--db", default=":memory:", help="SQLite file for durable state")
    serve.set_defaults(handler=_cmd_serve)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Any = args.handler
    try:
        return int(handler(args))
    except (ConfigError, ScenarioError, OSError, json.JSONDecodeError) as exc:
        # A bad scenario, setting or file: say what, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _cmd_demo(args: argparse.Namespace) -> int:
    from local.demo import run_demo

    return run_demo()


def _cmd_serve(args: argparse.Namespace) -> int:
    scenario = load_json(args.scenario)
    with LocalStack(scenario, virtual=False, speed=args.speed, store_path=args.db) as stack:
        key = stack.function_key
        print(f"Citrix API simulator : {stack.citrix_url}")
        print(f"Key Vault emulator   : {stack.vault_url}")
        print(f"Functions host       : {stack.functions_url}  (function key: {key})")
        print(f"Clock speed          : x{args.speed:g}")
        print()
        print("Start an update:")
        print(
            f"  curl -s -X POST '{stack.functions_url}/api/updates' -H 'x-functions-key: {key}' "
            "-H 'Content-Type: application/json' "
            f"-d @{SCENARIOS / 'request.json'}"
        )
        print("Watch it: GET the statusUrl from the answer, or list every update:")
        print(f"  curl -s -H 'x-functions-key: {key}' '{stack.functions_url}/api/updates'")
        print("Deliver an Event Grid event (a gallery image version written) to the webhook:")
        print(
            f"  curl -s -X POST '{stack.functions.eventgrid_url('on_image_version_event')}' "
            "-H 'aeg-event-type: Notification' -H 'Content-Type: application/json' "
            f"-d @{SCENARIOS / 'event.json'}"
        )
        print(
            "Timestamps are on the sped-up clock. Durable state (--db) is kept across restarts; "
            "the simulator, ports and function key start afresh."
        )
        print("\nCtrl-C stops everything.")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
