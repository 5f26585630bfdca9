"""Benchmark 3: cold start. Import time of ``function_app`` against the floor that any Durable
Functions app pays (``azure.functions`` + ``azure.durable_functions``), each in a fresh
interpreter, interleaved (floor, app, floor, app, ...) so both see the same machine state.

Also reports the heaviest modules under ``function_app`` from ``python -X importtime`` (cumulative
microseconds, top-level imports of the app's own modules and of third-party packages that the
floor does not already import).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import median

__all__ = ["FLOOR_MODULES", "ColdStartResult", "heavy_imports", "run_cold_start"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
FLOOR_MODULES = ("azure.functions", "azure.durable_functions")
APP_MODULES = ("function_app",)

_TIMER = (
    "import time, importlib, sys\n"
    "t = time.perf_counter()\n"
    "for name in sys.argv[1:]:\n"
    "    importlib.import_module(name)\n"
    "print(time.perf_counter() - t)\n"
)


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caches as a deployed app has them
    return env


def _time_import(modules: tuple[str, ...]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMER, *modules],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=_environment(),
        timeout=120,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


@dataclass
class ColdStartResult:
    floor_seconds: list[float] = field(default_factory=list)
    app_seconds: list[float] = field(default_factory=list)
    heavy: list[tuple[str, float]] = field(default_factory=list)

    @property
    def floor_median(self) -> float:
        return median(self.floor_seconds)

    @property
    def app_median(self) -> float:
        return median(self.app_seconds)

    @property
    def ratio(self) -> float:
        return self.app_median / self.floor_median if self.floor_median else float("nan")


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _importtime_once() -> list[tuple[int, str, int]]:
    out = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import azure.functions, azure.durable_functions; import function_app",
        ],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=_environment(),
        timeout=120,
        check=True,
    )
    entries: list[tuple[int, str, int]] = []
    for line in out.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            entries.append((len(match.group(3)), match.group(4), int(match.group(2))))
    return entries


def _own(name: str) -> bool:
    return name == "function_app" or name == "shared" or name.startswith("shared.")


def heavy_imports(limit: int = 8, repeats: int = 3) -> list[tuple[str, float]]:
    """Third-party modules that the app's own modules import beyond the floor, heaviest first
    (median cumulative seconds over ``repeats`` runs of ``-X importtime``), then the app's
    total beyond the floor."""
    samples: dict[str, list[int]] = {}
    totals: list[int] = []
    for _ in range(repeats):
        entries = _importtime_once()
        # -X importtime prints a module after everything it imported; the floor comes first.
        start = next((i for i, e in enumerate(entries) if e[1] == "azure.durable_functions"), -1)
        tail = entries[start + 1 :]
        for index, (level, name, micros) in enumerate(tail):
            if name == "function_app":
                totals.append(micros)
            if _own(name):
                continue
            parent = next((e for e in tail[index + 1 :] if e[0] < level), None)
            if parent is not None and _own(parent[1]):
                samples.setdefault(f"{name} (from {parent[1]})", []).append(micros)
    ranked = sorted(
        ((name, median([float(v) for v in values])) for name, values in samples.items()),
        key=lambda item: item[1],
        reverse=True,
    )[:limit]
    found = [(name, micros / 1e6) for name, micros in ranked]
    found.append(("function_app total beyond the floor", median([float(t) for t in totals]) / 1e6))
    return found


def run_cold_start(runs: int = 7, *, heavy_repeats: int = 3) -> ColdStartResult:
    """``runs`` fresh-interpreter imports of each side, interleaved; plus the heavy list."""
    result = ColdStartResult()
    # One warm-up of each so the bytecode caches exist (a deployed app ships them).
    _time_import(FLOOR_MODULES)
    _time_import(APP_MODULES)
    for _ in range(runs):
        result.floor_seconds.append(_time_import(FLOOR_MODULES))
        result.app_seconds.append(_time_import(APP_MODULES))
    result.heavy = heavy_imports(repeats=heavy_repeats)
    return result
