"""Structured log events: the contract between the code and the portal workbook.

Every event is one log line ``catalog-updater <event> <json>`` at INFO (WARNING for failures).
Application Insights stores it in ``traces.message``; the workbook parses the JSON after the
first ``{``. ``EVENT_FIELDS`` lists the fields each event may carry; the workbook test checks
that its queries use only these, and :func:`log_event` refuses fields not declared here, so the
list cannot drift from what is logged. Never pass a secret or token as a field.
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["EVENT_FIELDS", "EVENT_PREFIX", "format_event", "log_event"]

EVENT_PREFIX = "catalog-updater"

_COMMON = ("instanceId", "catalogId", "catalogName", "imageId", "imageName")

EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    # A trigger accepted a request or event (or found a duplicate).
    "update.requested": (*_COMMON, "source", "duplicate", "dryRun", "catalogCount"),
    # The orchestration moved to another phase or saw another catalog state.
    "update.phase": (*_COMMON, "phase", "state", "subState", "progress", "polls"),
    # $updateImage accepted by Citrix.
    "update.submitted": (*_COMMON, "transactionId", "vdaUpdateDelay"),
    # A catalog update reached its outcome.
    "update.completed": (
        *_COMMON,
        "outcome",
        "errorCategory",
        "errorMessage",
        "transactionId",
        "subState",
        "durationSeconds",
        "polls",
    ),
    # An Event Grid event that starts nothing (no route, other operation, delete...).
    "event.ignored": ("eventId", "eventType", "subject", "reason"),
}


def format_event(event: str, **fields: Any) -> str:
    """The log message for ``event``; unknown events or fields are a programming error."""
    allowed = EVENT_FIELDS.get(event)
    if allowed is None:
        raise ValueError(f"unknown telemetry event {event!r}")
    unknown = set(fields) - set(allowed)
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} are not declared for event {event!r}")
    payload = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    return f"{EVENT_PREFIX} {event} {json.dumps(payload, sort_keys=True, default=str)}"


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event line through ``logger``."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", format_event(event, **fields))
