"""Benchmark 2: event-to-submit latency on a REAL clock.

A gallery "image version written" Event Grid event is POSTed to the local functions host's Event
Grid webhook; the app routes it to a catalog and starts an orchestration on the local durable host
(background worker, real clock), which resolves site, catalog and image and POSTs
``$updateImage`` to the simulator. Latency = simulator's receipt time of that ``$updateImage``
(its request log, on the same clock) minus the moment just before the event POST.

Events carry distinct image versions (so nothing is de-duplicated) and are sent one after the
other, each once the previous one's ``$updateImage`` has arrived and ``spacing_seconds`` have
passed since the previous event was sent. Updates take 0 minutes so the catalog is Active again
for the next event. The Citrix client paces all calls of a worker (CITRIX_MAX_REQUESTS_PER_SECOND),
so a spacing of about a second measures one event's path through the app, while a spacing of 0
(a burst: the next event as soon as the previous one's submit arrived) measures queueing behind
that pacing as well.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.common import catalog_id, median, percentile, tenant
from local.stack import LocalStack

__all__ = ["EventLatencyResult", "run_event_latency"]

logger = logging.getLogger(__name__)

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GALLERY = "bench_gallery"
DEFINITION = "bench-img"


def _event(version: str) -> list[dict[str, Any]]:
    resource = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-images/providers/Microsoft.Compute/"
        f"galleries/{GALLERY}/images/{DEFINITION}/versions/{version}"
    )
    return [
        {
            "id": f"bench-event-{version}",
            "topic": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-images",
            "subject": resource,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-01-01T00:00:00Z",
            "dataVersion": "2",
            "metadataVersion": "1",
            "data": {
                "operationName": "Microsoft.Compute/galleries/images/versions/write",
                "resourceProvider": "Microsoft.Compute",
                "resourceUri": resource,
                "status": "Succeeded",
                "subscriptionId": SUBSCRIPTION,
            },
        }
    ]


@dataclass
class EventLatencyResult:
    latencies: list[float] = field(default_factory=list)
    delivery_answers: list[float] = field(default_factory=list)
    missing: int = 0
    spacing_seconds: float = 0.0
    # The warm-up events: the first one also reads Key Vault and gets a Citrix token.
    warmup_latencies: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.latencies)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def delivery_median(self) -> float:
        return median(self.delivery_answers)


def run_event_latency(
    events: int = 20,
    *,
    warmup: int = 1,
    wait_seconds: float = 20.0,
    spacing_seconds: float = 1.0,
) -> EventLatencyResult:
    """``events`` measured events (after ``warmup`` unmeasured ones), each sent at least
    ``spacing_seconds`` after the previous one; returns the latencies."""
    total = events + warmup
    versions = [f"1.0.{i}" for i in range(1, total + 1)]
    catalog = {
        "id": catalog_id(1),
        "name": "bench-event-catalog",
        "state": "Active",
        "imageId": "img-v1",
        "update": {"durationMinutes": 0, "outcome": "Active"},
    }
    images = [
        {"id": f"img-e{i}", "name": f"{DEFINITION}-{v}", "state": "Ready"}
        for i, v in enumerate(versions, start=1)
    ]
    routes = [
        {
            "name": "bench-route",
            "gallery": GALLERY,
            "imageDefinition": DEFINITION,
            "catalogs": [catalog["name"]],
            "imageNameTemplate": "{definition}-{version}",
            "options": {"vdaUpdateDelay": -1},
        }
    ]
    scenario = tenant([catalog], images=images, app_settings={"EVENT_ROUTES": routes})
    result = EventLatencyResult(spacing_seconds=spacing_seconds)
    with LocalStack(scenario, virtual=False, speed=1.0) as stack:
        assert stack.simulator is not None
        url = stack.functions.eventgrid_url("on_image_version_event")
        session = requests.Session()
        previous_sent: float | None = None
        for index, version in enumerate(versions):
            if previous_sent is not None:
                pause = previous_sent + spacing_seconds - stack.clock.time()
                if pause > 0:
                    stack.clock.sleep(pause)
            seen_before = stack.simulator.count("POST", "*/$updateImage")
            body = json.dumps(_event(version)).encode("utf-8")
            sent = previous_sent = stack.clock.time()
            answer = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
                timeout=30,
            )
            answered = stack.clock.time()
            if answer.status_code >= 300:
                raise RuntimeError(f"Event Grid delivery answered {answer.status_code}")
            arrived: float | None = None
            give_up = time.monotonic() + wait_seconds
            while time.monotonic() < give_up:
                submits = [
                    e
                    for e in stack.simulator.requests
                    if e["method"] == "POST" and str(e["path"]).endswith("$updateImage")
                ]
                if len(submits) > seen_before:
                    arrived = float(submits[seen_before]["time"])
                    break
                time.sleep(0.002)
            if index < warmup:
                if arrived is not None:
                    result.warmup_latencies.append(arrived - sent)
                continue
            if arrived is None:
                result.missing += 1
                continue
            result.latencies.append(arrived - sent)
            result.delivery_answers.append(answered - sent)
        session.close()
    logger.info("event latency: %s", result)
    return result
