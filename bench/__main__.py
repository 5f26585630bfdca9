"""``python -m bench``: run every benchmark and write bench/RESULTS.md (machine and date included).

    python -m bench                                   all five, RESULTS.md next to this file
    python -m bench --only polling,events --output /tmp/results.md
    python -m bench --quick --output /tmp/smoke.md    tiny inputs: checks the plumbing only

A benchmark that raises is recorded as an error in the results and makes the exit code 1; the
others still run and the file is still written.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from bench.common import machine
from bench.report import BenchResults, render, summary_rows

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
NAMES = ("polling", "events", "cold", "fanout", "replay")


def _say(text: str) -> None:
    print(text, flush=True)


def _polling(results: BenchResults, quick: bool) -> None:
    from bench.polling import run_polling

    results.polling = run_polling(durations=(2,), offsets=(0.0, 20.0)) if quick else run_polling()


def _events(results: BenchResults, quick: bool) -> None:
    from bench.event_latency import run_event_latency

    count = 2 if quick else 20
    results.events = run_event_latency(count, spacing_seconds=0.2 if quick else 1.0)
    results.event_burst = run_event_latency(count, spacing_seconds=0)


def _cold(results: BenchResults, quick: bool) -> None:
    from bench.cold_start import run_cold_start

    results.cold = run_cold_start(1, heavy_repeats=1) if quick else run_cold_start(7)


def _fanout(results: BenchResults, quick: bool) -> None:
    from bench.fanout import run_fanout

    if quick:
        results.fanout = [run_fanout(6, batch=3, limit_per_second=2, max_parallel=3)]
        return
    # Cap raised so the rate limit, not the per-request cap, is what is measured; the same run
    # with pacing off and the run with the default cap are kept for comparison.
    results.fanout = [
        run_fanout(200, max_parallel=50),
        run_fanout(200, max_parallel=50, pacing_per_second=0),
        run_fanout(200, max_parallel=None),
    ]


def _replay(results: BenchResults, quick: bool) -> None:
    from bench.replay import run_replay

    results.replay = run_replay(20.0, polls_per_execution=5) if quick else run_replay(360.0)


RUNNERS: dict[str, tuple[str, Callable[[BenchResults, bool], None]]] = {
    "polling": ("1. Polling efficiency", _polling),
    "events": ("2. Event-to-submit latency", _events),
    "cold": ("3. Cold start", _cold),
    "fanout": ("4. Fan-out", _fanout),
    "replay": ("5. Replay cost", _replay),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}"
    )
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="where to write")
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs (a smoke run; numbers mean little)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO to stderr")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in RUNNERS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    started = time.monotonic()
    results = BenchResults(
        machine=machine(), date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    )
    for name in chosen:
        title, runner = RUNNERS[name]
        _say(f"running {title} ...")
        began = time.monotonic()
        try:
            runner(results, args.quick)
        except Exception as exc:
            traceback.print_exc()
            results.errors[title] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        _say(f"  done in {time.monotonic() - began:.0f} s")
    results.seconds = time.monotonic() - started
    text = render(results)
    Path(args.output).write_text(text, encoding="utf-8")
    _say(f"\nwrote {args.output} ({results.seconds:.0f} s)\n")
    for row in summary_rows(results):
        _say(f"  {row[0]}: {row[1]} -> {row[3].replace('**', '')}")
    return 1 if results.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
