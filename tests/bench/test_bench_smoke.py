"""Smoke tests for bench/: every benchmark runs on tiny inputs and produces numbers (no timing
assertions: speed targets live in bench/RESULTS.md)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

from bench.__main__ import main as bench_main
from bench.clock import OverlappingVirtualClock
from bench.common import peak_per_second, percentile
from bench.event_latency import run_event_latency
from bench.fanout import run_fanout
from bench.polling import BASELINES, OURS, go_sdk_interval, run_polling
from bench.replay import run_replay
from bench.report import BenchResults, render, summary_rows


def test_peak_per_second_counts_the_busiest_one_second_window() -> None:
    """The peak is the most events in any half-open 1 s window, wherever it starts."""
    assert peak_per_second([]) == 0
    assert peak_per_second([0.0, 0.5, 0.99, 1.0, 1.2, 5.0]) == 4
    assert peak_per_second([3.0, 1.0, 2.0]) == 1


def test_percentile_is_nearest_rank() -> None:
    """p95 of 20 values is the 19th smallest; p50 of 4 values the 2nd."""
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == 19.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert math.isnan(percentile([], 95))


def test_go_sdk_baseline_polls_every_10_s_then_every_30_s() -> None:
    """The Go SDK baseline switches from 10 s to 30 s after the first 30 s."""
    assert [go_sdk_interval(t) for t in (0, 20, 29.9, 30, 600)] == [10, 10, 10, 30, 30]


def test_overlapping_clock_wakes_concurrent_sleepers_together() -> None:
    """Two threads sleeping 5 s at the same moment move the clock by 5 s, not 10 s."""
    clock = OverlappingVirtualClock(start=100.0, grace_seconds=0.5)
    start = threading.Barrier(2)
    woke: list[float] = []

    def sleeper() -> None:
        start.wait()
        clock.sleep(5.0)
        woke.append(clock.time())

    threads = [threading.Thread(target=sleeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert woke == [105.0, 105.0]
    clock.advance_to(200.0)
    clock.sleep(1.0)
    assert clock.time() == 201.0


def test_polling_benchmark_measures_every_policy() -> None:
    """A 2-minute update is watched by our policy and each baseline; all see it succeed."""
    result = run_polling(durations=(2,), offsets=(0.0, 20.0))
    assert {r.policy for r in result.runs} == {OURS, *BASELINES}
    assert len(result.runs) == 2 * (1 + len(BASELINES))
    assert not result.failures()
    for run in result.runs:
        assert run.status_checks >= 1
        assert run.all_calls >= run.status_checks + 1  # at least the submit besides
        assert 0 <= run.latency_seconds < 120
    assert result.mean_calls("fixed 15 s (community scripts)", 2) > result.mean_calls(OURS, 2)


def test_event_latency_benchmark_times_each_event() -> None:
    """Two events on the real clock each reach the simulator as one $updateImage."""
    result = run_event_latency(2, warmup=1, spacing_seconds=0.2)
    assert result.missing == 0
    assert len(result.latencies) == 2
    assert all(value > 0 for value in result.latencies)
    assert result.p95 >= result.median > 0


def test_fanout_benchmark_counts_requests_under_a_rate_limit() -> None:
    """Six catalogs in two requests under 2 requests/s: all succeed and the log is counted."""
    result = run_fanout(6, batch=3, limit_per_second=2, max_parallel=3)
    assert result.failures == 0
    assert result.outcomes == {"succeeded": 6}
    assert result.accepted >= 6 * 2  # at least a submit and a status check per catalog
    assert result.peak_accepted <= 2
    assert result.requests == result.accepted + result.throttled
    assert result.makespan_seconds >= result.bound_seconds > 0


def test_replay_benchmark_sees_continue_as_new_bound_the_history() -> None:
    """A 20-minute update polled every 30 s with 5 polls per execution restarts its history."""
    fixed = {"POLL_MIN_INTERVAL_SECONDS": "30", "POLL_MAX_INTERVAL_SECONDS": "30"}
    result = run_replay(20.0, (("fixed 30 s", fixed),), polls_per_execution=5)
    (case,) = result.cases
    assert case.outcome == "succeeded"
    assert case.polls >= 39
    assert case.executions >= 7
    assert case.bounded()
    assert case.max_history() > 0


def test_report_renders_a_summary_with_targets(tmp_path: Path) -> None:
    """RESULTS.md text carries machine, date, the summary table and the replay section."""
    fixed = {"POLL_MIN_INTERVAL_SECONDS": "30", "POLL_MAX_INTERVAL_SECONDS": "30"}
    results = BenchResults(
        machine={"cpu": "test CPU", "cores": "2", "python": "CPython", "os": "x", "commit": "c"},
        date="2026-01-01 00:00 UTC",
        replay=run_replay(10.0, (("fixed 30 s", fixed),), polls_per_execution=5),
        errors={"3. Cold start": "RuntimeError: example"},
    )
    text = render(results)
    assert "test CPU, 2 cores" in text and "2026-01-01 00:00 UTC" in text
    assert "| benchmark | measured | target | verdict |" in text
    assert "## 5. Replay cost" in text
    assert [row[3] for row in summary_rows(results)] == ["**met**", "**error**"]


def test_command_line_quick_run_writes_every_section(tmp_path: Path) -> None:
    """`python -m bench --quick --output FILE` runs all five benchmarks and writes FILE."""
    output = tmp_path / "RESULTS.md"
    code = bench_main(["--quick", "--output", str(output)])
    assert code == 0
    text = output.read_text(encoding="utf-8")
    for section in ("## 1. Polling", "## 2. Event", "## 3. Cold", "## 4. Fan-out", "## 5. Replay"):
        assert section in text
    assert "**error**" not in text
    assert "function_app total beyond the floor" in text  # the cold-start import breakdown
