"""`python -m local run` and `python -m local demo` as a user runs them: a subprocess, the demo
files, one JSON document (the DESIGN §5 contract), exit codes, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "local" / "scenarios"


def _local(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _submits(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["citrixRequests"] if str(r["path"]).endswith("$updateImage")]


def test_run_with_the_demo_request_succeeds_and_prints_one_document():
    """The demo request ends succeeded; stdout is one JSON document with the contract's keys
    and every simulator call (one $updateImage)."""
    done = _local(
        "run", "--scenario", SCENARIOS / "demo.json", "--request", SCENARIOS / "request.json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"runtimeStatus", "output", "customStatus", "citrixRequests"} <= set(report)
    assert report["runtimeStatus"] == "Completed"
    assert report["output"]["outcome"] == "succeeded"
    assert all({"method", "path", "status"} <= set(r) for r in report["citrixRequests"])
    assert [r["status"] for r in _submits(report)] == [202]


def test_run_with_the_demo_event_updates_the_routed_catalog():
    """The demo's gallery event is routed and its catalog updated once."""
    done = _local("run", "--scenario", SCENARIOS / "demo.json", "--event", SCENARIOS / "event.json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["output"]["outcome"] == "succeeded"
    assert len(_submits(report)) == 1


def test_run_with_a_refused_request_exits_1_and_still_reports(tmp_path):
    """A request the API refuses (400) starts nothing: exit 1, the answer names the field."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"catalog": "Finance-Desktops", "image": "x", "vdaUpdateDelay": "60"})
    )
    done = _local("run", "--scenario", SCENARIOS / "demo.json", "--request", bad)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["trigger"]["httpStatus"] == 400
    assert report["trigger"]["body"]["error"]["field"] == "vdaUpdateDelay"
    assert report["runtimeStatus"] is None and _submits(report) == []


def test_run_with_a_malformed_setting_is_a_clean_error():
    """--setting without NAME=VALUE exits 2 with one line naming it, no traceback."""
    done = _local(
        "run",
        "--scenario",
        SCENARIOS / "demo.json",
        "--request",
        SCENARIOS / "request.json",
        "--setting",
        "FOO",
    )
    assert done.returncode == 2
    assert "--setting 'FOO' must be NAME=VALUE" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_with_a_broken_scenario_is_a_clean_error(tmp_path):
    """A scenario that is not JSON exits 2 with an error line, no traceback."""
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = _local("run", "--scenario", broken, "--request", SCENARIOS / "request.json")
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_demo_runs_both_updates_to_a_summary():
    """`python -m local demo` shows progress and ends with one summary line per update."""
    done = _local("demo")
    assert done.returncode == 0, done.stderr
    assert "Processing" in done.stdout and "%" in done.stdout
    summary = [line for line in done.stdout.splitlines() if " -> " in line and "succeeded" in line]
    assert len(summary) >= 2, done.stdout
