"""``python -m local.citrix_simulator --scenario FILE --port N [--speed X]``: serve standalone.

Runs on the real clock (optionally sped up: ``--speed 60`` makes a minute pass every second)
until interrupted. Prints one line with the base URL first, so scripts can read it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from local.citrix_simulator.scenario import ScenarioError, load_scenario
from local.citrix_simulator.server import CitrixSimulator
from local.clock import RealClock

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.citrix_simulator",
        description="Citrix Cloud Catalog Service API simulator on loopback.",
    )
    parser.add_argument("--scenario", required=True, help="scenario JSON file")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--speed", type=float, default=1.0, help="clock speed-up factor")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--host must be a loopback address")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    simulator = CitrixSimulator(scenario, clock=RealClock(args.speed))
    url = simulator.start(args.host, args.port)
    print(url, flush=True)
    print(
        f"customer {scenario.customer_id}, site {scenario.site_id}; admin: {url}/_sim/state",
        file=sys.stderr,
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
