"""Property-based fuzzing of Event Grid deliveries (Event Grid schema and CloudEvents) through
the local functions host's webhook: a malformed delivery is a 400 with a reason, a well-formed
one is always accepted (202), and each of its events either asks for an update or is logged as
ignored with a reason; never a 500 or an unhandled exception."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.stack import LocalStack
from shared.events import CUSTOM_EVENT_TYPE

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUNCTION = "on_image_version_event"
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
OPERATION = "Microsoft.Compute/galleries/images/versions/write"

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)
segment = st.one_of(
    st.sampled_from(["acg_citrix", "win11-23h2", "1.0.2", "..", "a/b", "%2F", "x?y#z", ""]),
    st.text(max_size=12),
)


@st.composite
def resource_ids(draw: st.DrawFn) -> str:
    """Gallery image version ids, mostly well-formed, with odd segments."""
    gallery, definition, version = draw(segment), draw(segment), draw(segment)
    rid = (
        f"/subscriptions/{draw(segment)}/resourceGroups/rg/providers/Microsoft.Compute/"
        f"galleries/{gallery}/images/{definition}/versions/{version}"
    )
    return draw(st.one_of(st.just(rid), st.just(rid.upper()), st.text(max_size=40)))


version_text = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="/"),
    min_size=1,
    max_size=12,
)
matching_ids = st.builds(
    lambda definition, version: (
        "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Compute/galleries/acg_citrix/"
        f"images/win11-{definition}/versions/{version}"
    ),
    version_text,
    version_text,
)
matching = st.one_of(
    st.tuples(
        st.just(WRITE),
        st.fixed_dictionaries(
            {
                "operationName": st.just(OPERATION),
                "status": st.just("Succeeded"),
                "resourceUri": matching_ids,
            }
        ),
    ),
    st.tuples(
        st.just(CUSTOM_EVENT_TYPE),
        st.fixed_dictionaries({"catalog": st.text(max_size=30), "image": st.text(max_size=30)}),
    ),
    st.tuples(st.just(CUSTOM_EVENT_TYPE), st.fixed_dictionaries({"resourceId": matching_ids})),
)
write_data = st.fixed_dictionaries(
    {},
    optional={
        "operationName": st.one_of(st.just(OPERATION), st.text(max_size=20), junk),
        "status": st.one_of(st.sampled_from(["Succeeded", "Failed"]), junk),
        "resourceUri": st.one_of(resource_ids(), junk),
    },
)
custom_data = st.fixed_dictionaries(
    {},
    optional={
        "catalog": st.one_of(st.sampled_from(["Finance-Desktops", "../x", "a\x00b"]), junk),
        "catalogs": st.one_of(st.lists(st.text(max_size=10), max_size=3), junk),
        "image": st.one_of(st.sampled_from(["win11-23h2-v2", "a/../b"]), junk),
        "resourceId": st.one_of(resource_ids(), junk),
        "vdaUpdateDelay": junk,
        "surprise": junk,
    },
)
event_types = st.one_of(
    st.sampled_from([WRITE, CUSTOM_EVENT_TYPE]),
    st.sampled_from([WRITE.lower(), "Microsoft.Storage.BlobCreated"]),
    st.text(min_size=1, max_size=20),
)
data = st.one_of(write_data, custom_data, junk)
type_and_data = st.one_of(matching, st.tuples(event_types, data))
times = st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.1234567Z"])


@st.composite
def event_grid_events(draw: st.DrawFn) -> dict[str, Any]:
    subject = draw(st.one_of(resource_ids(), st.text(min_size=1, max_size=30)))
    kind, payload = draw(type_and_data)
    return {
        "id": draw(st.text(min_size=1, max_size=20)),
        "topic": "/subscriptions/0/resourceGroups/rg-images",
        "subject": subject or "x",
        "eventType": kind,
        "eventTime": draw(times),
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": payload,
    }


@st.composite
def cloud_events(draw: st.DrawFn) -> dict[str, Any]:
    kind, payload = draw(type_and_data)
    return {
        "specversion": "1.0",
        "id": draw(st.text(min_size=1, max_size=20)),
        "source": "/subscriptions/0/resourceGroups/rg-images",
        "type": kind,
        "subject": draw(resource_ids()),
        "time": draw(times),
        "data": payload,
    }


def _events_logged(caplog: pytest.LogCaptureFixture) -> tuple[int, list[str]]:
    """(update requests logged, reasons of ignored events logged) since the last clear."""
    requested = 0
    reasons: list[str] = []
    for record in caplog.records:
        message = record.getMessage()
        if " update.requested " in message:
            requested += 1
        elif " event.ignored " in message:
            fields = json.loads(message.split(" event.ignored ", 1)[1])
            reasons.append(str(fields.get("reason") or ""))
    return requested, reasons


@FUZZ
@given(one=st.one_of(event_grid_events(), cloud_events()), batch=st.booleans())
def test_well_formed_events_are_accepted_and_either_start_or_are_ignored_with_a_reason(
    stack: LocalStack, caplog: pytest.LogCaptureFixture, one: dict[str, Any], batch: bool
):
    """Any well-formed event (either schema, odd subjects/types/data): 202, and exactly one of
    "update requested" or "ignored: <reason>" is logged for it."""
    caplog.clear()
    caplog.set_level(logging.INFO, logger="shared")
    cloud = "specversion" in one
    payload: Any = [one] if batch or not cloud else one
    status, body = stack.functions.deliver_event_grid(FUNCTION, payload, cloud_events=cloud)
    assert status == 202, body
    requested, reasons = _events_logged(caplog)
    event("started" if requested else "ignored")
    assert requested + len(reasons) == 1, (requested, reasons)
    assert all(reason.strip() for reason in reasons)


@FUZZ
@given(
    doc=st.recursive(
        junk,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "id",
                        "subject",
                        "eventType",
                        "eventTime",
                        "data",
                        "specversion",
                        "type",
                        "source",
                        "x",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=10,
    ),
    cloud=st.booleans(),
)
def test_any_json_delivery_is_202_or_a_400_with_a_reason(stack: LocalStack, doc: Any, cloud: bool):
    """Arbitrary JSON at the webhook: a 400 naming what is wrong, or 202; never a 500."""
    raw = json.dumps(doc).encode("utf-8")
    status, body = stack.functions.deliver_event_grid(FUNCTION, raw, cloud_events=cloud)
    event(f"HTTP {status}")
    assert status in (202, 400), body
    if status == 400:
        assert json.loads(body)["error"].strip()


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_at_the_webhook_are_refused(stack: LocalStack, raw: bytes):
    """Random bytes at the webhook: 400 with a reason (or 202 if they happen to be events)."""
    status, body = stack.functions.deliver_event_grid(FUNCTION, raw)
    assert status in (202, 400), body
    if status == 400:
        assert json.loads(body)["error"].strip()


def test_oversized_delivery_is_refused_with_413(stack: LocalStack):
    """A delivery over the host's 1 MiB body limit: 413, nothing started."""
    before = len(stack.durable.list_instances())
    big = [
        {
            "id": "1",
            "subject": "s",
            "eventType": WRITE,
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {"pad": "x" * (1024 * 1024)},
        }
    ]
    status, _ = stack.functions.deliver_event_grid(FUNCTION, big)
    assert status == 413
    assert len(stack.durable.list_instances()) == before
