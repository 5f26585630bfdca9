"""Helpers shared by the benchmarks: scenarios, statistics, the machine description, HTTP calls."""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import requests

__all__ = [
    "CUSTOMER",
    "SITE",
    "catalog_id",
    "epoch_of",
    "machine",
    "median",
    "peak_per_second",
    "percentile",
    "post_json",
    "tenant",
]

logger = logging.getLogger(__name__)

CUSTOMER = "bench-customer"
SITE = "b0000000-0000-4000-8000-00000000b001"
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-value"  # noqa: S105 - the simulator's made-up API client


def catalog_id(index: int) -> str:
    """A stable GUID-shaped catalog id for the ``index``-th benchmark catalog."""
    return f"c0000000-0000-4000-8000-{index:012d}"


def tenant(
    catalogs: Iterable[dict[str, Any]],
    *,
    images: Sequence[dict[str, Any]] = (),
    rate_limit: dict[str, Any] | None = None,
    app_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A simulator scenario: one customer and site, one API client, the given catalogs, image
    ``img-v1`` (current) and ``img-v2`` (the target) plus ``images``."""
    scenario: dict[str, Any] = {
        "description": "catalog-updater benchmark tenant",
        "customerId": CUSTOMER,
        "siteId": SITE,
        "apiClients": [{"clientId": CLIENT_ID, "secret": CLIENT_SECRET}],
        "token": {"lifetimeSeconds": 3600},
        "images": [
            {"id": "img-v1", "name": "bench-image-v1", "state": "Ready"},
            {"id": "img-v2", "name": "bench-image-v2", "state": "Ready"},
            *images,
        ],
        "catalogs": list(catalogs),
    }
    if rate_limit is not None:
        scenario["rateLimit"] = rate_limit
    if app_settings:
        scenario["appSettings"] = app_settings
    return scenario


def post_json(
    url: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 30
) -> requests.Response:
    """POST ``body`` as JSON (loopback only)."""
    return requests.post(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=timeout,
    )


def epoch_of(iso: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp (``Z`` or an offset)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return float(ordered[rank - 1])


def peak_per_second(times: Sequence[float]) -> int:
    """Most events in any window of one second ([t, t + 1)), over sorted or unsorted ``times``."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH on purpose
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": f"{platform.system()} {platform.release()}",
        "commit": _git_commit(),
    }
