"""Event Grid webhook payloads: parsing, validation and decoding into the worker's objects.

Event Grid schema deliveries are JSON arrays of events; CloudEvents 1.0 deliveries are one event
(``application/cloudevents+json``) or an array (``application/cloudevents-batch+json``). Each event
is decoded by azure.functions' own ``EventGridEventInConverter`` (the code the Python worker runs),
which yields an ``EventGridEvent`` for the Event Grid schema and a ``CloudEvent`` when
``specversion`` is present.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

__all__ = [
    "SUBSCRIPTION_VALIDATION_EVENT",
    "EventGridPayloadError",
    "decode_event",
    "is_cloud_event",
    "parse_events",
    "validation_code",
]

logger = logging.getLogger(__name__)

SUBSCRIPTION_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
_EG_REQUIRED = ("id", "subject", "eventType", "eventTime")
_CE_REQUIRED = ("id", "source", "specversion", "type")


class EventGridPayloadError(ValueError):
    """The delivery cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_cloud_event(event: dict[str, Any]) -> bool:
    return "specversion" in event


# Present but possibly empty: Event Grid's own SubscriptionValidationEvent has "subject": "".
_MAY_BE_EMPTY = frozenset({"subject"})


def _check_string_fields(index: int, event: dict[str, Any], required: tuple[str, ...]) -> None:
    missing = [
        k
        for k in required
        if k not in event or event[k] is None or (event[k] == "" and k not in _MAY_BE_EMPTY)
    ]
    if missing:
        raise EventGridPayloadError(
            f"event {index}: missing required field(s): {', '.join(missing)}"
        )
    wrong = [k for k in required if not isinstance(event[k], str)]
    if wrong:
        raise EventGridPayloadError(f"event {index}: field(s) must be strings: {', '.join(wrong)}")


def _check_time(index: int, field: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise EventGridPayloadError(f"event {index}: {field} must be an RFC 3339 string")
    try:
        EventGridEventInConverter._parse_datetime(value)
    except Exception as exc:
        raise EventGridPayloadError(
            f"event {index}: {field} is not an RFC 3339 timestamp: {value[:64]!r}"
        ) from exc


def _validate_event(index: int, event: Any) -> None:
    if not isinstance(event, dict):
        raise EventGridPayloadError(f"event {index}: must be a JSON object")
    if is_cloud_event(event):
        _check_string_fields(index, event, _CE_REQUIRED)
        if event["specversion"] != "1.0":
            raise EventGridPayloadError(
                f"event {index}: unsupported CloudEvents specversion {event['specversion']!r}"
            )
        _check_time(index, "time", event.get("time"))
    else:
        _check_string_fields(index, event, _EG_REQUIRED)
        _check_time(index, "eventTime", event["eventTime"])
        for optional in ("topic", "dataVersion", "metadataVersion"):
            if event.get(optional) is not None and not isinstance(event[optional], str):
                raise EventGridPayloadError(f"event {index}: {optional} must be a string")


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """Parse and validate a delivery body; every event is checked before any is delivered."""
    if not body.strip():
        raise EventGridPayloadError("request body is empty; expected a JSON array of events")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EventGridPayloadError(f"request body is not valid JSON: {exc}") from exc
    if isinstance(doc, dict):
        events = [doc]
    elif isinstance(doc, list):
        events = doc
    else:
        raise EventGridPayloadError(
            f"request body must be a JSON array of events (or one event object), "
            f"not {type(doc).__name__}"
        )
    if not events:
        raise EventGridPayloadError("request body is an empty array; expected at least one event")
    for index, event in enumerate(events):
        _validate_event(index, event)
    return events


def validation_code(events: list[dict[str, Any]]) -> str:
    """The ``validationCode`` of a SubscriptionValidation delivery."""
    data = events[0].get("data")
    code = data.get("validationCode") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        raise EventGridPayloadError("subscription validation event has no data.validationCode")
    return code


def decode_event(event: dict[str, Any]) -> Any:
    """Decode one event dict exactly as the worker does for an ``eventGridTrigger`` binding."""
    datum = meta.Datum(type="json", value=json.dumps(event))
    return EventGridEventInConverter.decode(datum, trigger_metadata={})
