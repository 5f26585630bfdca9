"""Local functions host: the Event Grid webhook (handshakes, delivery, refusal of bad payloads)."""

from __future__ import annotations

import datetime as dt
import json
from types import ModuleType
from typing import Any

import azure.functions as func
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.functions_host import FunctionsHost

IMAGE_VERSION = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-images/providers/"
    "Microsoft.Compute/galleries/gallery1/images/win11-avd/versions/1.2.3"
)


def eg_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "5f3c9f0e-0000-4000-8000-000000000001",
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-images",
        "subject": IMAGE_VERSION,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-03-01T10:15:30.1234567Z",
        "data": {
            "operationName": "Microsoft.Compute/galleries/images/versions/write",
            "resourceUri": IMAGE_VERSION,
            "status": "Succeeded",
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }
    event.update(overrides)
    return event


def cloud_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-images",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "subject": IMAGE_VERSION,
        "time": "2026-03-01T10:15:30Z",
        "datacontenttype": "application/json",
        "data": {"resourceUri": IMAGE_VERSION},
        "traceparent": "00-abc-def-01",
    }
    event.update(overrides)
    return event


def test_notification_invokes_once_per_event_with_real_event_grid_events(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """A Notification array invokes the function once per event with a real EventGridEvent."""
    second = eg_event(id="second", subject=IMAGE_VERSION.replace("1.2.3", "1.2.4"))
    response = requests.post(
        host.eventgrid_url("on_event"),
        json=[eg_event(), second],
        headers={"aeg-event-type": "Notification"},
        timeout=10,
    )
    assert response.status_code == 202
    assert len(sample.RECEIVED) == 2
    first = sample.RECEIVED[0]
    assert isinstance(first, func.EventGridEvent)
    assert first.id == "5f3c9f0e-0000-4000-8000-000000000001"
    assert first.topic.endswith("/resourceGroups/rg-images")
    assert first.subject == IMAGE_VERSION
    assert first.event_type == "Microsoft.Resources.ResourceWriteSuccess"
    assert first.event_time == dt.datetime(2026, 3, 1, 10, 15, 30, 123456, tzinfo=dt.timezone.utc)
    assert first.data_version == "2"
    assert first.get_json()["operationName"] == "Microsoft.Compute/galleries/images/versions/write"
    assert sample.RECEIVED[1].id == "second"


def test_subscription_validation_answers_the_code_without_invoking(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """The SubscriptionValidation handshake (with the empty subject Event Grid sends) echoes
    data.validationCode and runs no function."""
    event = eg_event(
        subject="",
        eventType="Microsoft.EventGrid.SubscriptionValidationEvent",
        data={"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "x"},
    )
    response = requests.post(
        host.eventgrid_url("on_event"),
        json=[event],
        headers={"aeg-event-type": "SubscriptionValidation"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert sample.RECEIVED == []
    status, body = host.deliver_event_grid(
        "on_event", [eg_event(data={})], aeg_event_type="SubscriptionValidation"
    )
    assert status == 400
    assert "validationCode" in json.loads(body)["error"]


def test_cloudevents_abuse_protection_handshake(host: FunctionsHost, sample: ModuleType) -> None:
    """OPTIONS with WebHook-Request-Origin answers 200 + WebHook-Allowed-Origin; without it 400."""
    url = host.eventgrid_url("on_event")
    ok = requests.options(
        url, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10
    )
    assert ok.status_code == 200
    assert ok.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert requests.options(url, timeout=10).status_code == 400
    assert sample.RECEIVED == []


def test_cloudevents_single_and_batch_decode_like_azure_functions(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """CloudEvents (single and batch) reach the function as azure.functions' CloudEvent objects."""
    status, _ = host.deliver_event_grid("on_event", cloud_event(), cloud_events=True)
    assert status == 202
    response = requests.post(
        host.eventgrid_url("on_event"),
        data=json.dumps([cloud_event(id="ce-2"), cloud_event(id="ce-3")]),
        headers={"Content-Type": "application/cloudevents-batch+json; charset=utf-8"},
        timeout=10,
    )
    assert response.status_code == 202
    assert [e.id for e in sample.RECEIVED] == ["ce-1", "ce-2", "ce-3"]
    first = sample.RECEIVED[0]
    assert isinstance(first, func.CloudEvent)
    assert first.source.endswith("/rg-images")
    assert first.type == "Microsoft.Resources.ResourceWriteSuccess"
    assert first.subject == IMAGE_VERSION
    assert first.time == dt.datetime(2026, 3, 1, 10, 15, 30, tzinfo=dt.timezone.utc)
    assert first.get_json() == {"resourceUri": IMAGE_VERSION}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"42", "JSON array"),
        (b'"text"', "JSON array"),
        (b"[]", "empty array"),
        (b"[1]", "must be a JSON object"),
        (json.dumps([{"id": "x"}]).encode(), "missing required field(s): subject, eventType"),
        (json.dumps([eg_event(eventTime="yesterday")]).encode(), "RFC 3339"),
        (json.dumps([eg_event(), eg_event(subject=7)]).encode(), "event 1: field(s) must be"),
        (json.dumps([cloud_event(specversion="0.3")]).encode(), "specversion"),
        (json.dumps([cloud_event(source=None)]).encode(), "source"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_payloads_are_400_and_invoke_nothing(
    host: FunctionsHost, sample: ModuleType, body: bytes, fragment: str
) -> None:
    """Bad JSON, non-arrays, non-objects or missing/invalid fields give 400 naming the problem."""
    status, response = host.deliver_event_grid("on_event", body)
    assert status == 400
    assert fragment in json.loads(response)["error"]
    assert sample.RECEIVED == []


def test_oversized_delivery_is_413(host: FunctionsHost, sample: ModuleType) -> None:
    """A delivery over max_body_bytes is refused with 413 over HTTP and in-process."""
    events = [eg_event(data={"pad": "x" * 5000})]
    response = requests.post(
        host.eventgrid_url("on_event"),
        json=events,
        headers={"aeg-event-type": "Notification"},
        timeout=10,
    )
    assert response.status_code == 413
    assert host.deliver_event_grid("on_event", events)[0] == 413
    assert sample.RECEIVED == []


def test_webhook_auth_name_method_and_header_errors(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """Wrong key 401, no functionName 400, unknown function 404, GET 405, bad aeg-event-type 400."""
    base = host.eventgrid_url("on_event").split("?")[0]
    body = json.dumps([eg_event()])
    notification = {"aeg-event-type": "Notification"}

    def post(query: str, headers: dict[str, str] = notification) -> int:
        return requests.post(f"{base}?{query}", data=body, headers=headers, timeout=10).status_code

    assert post("functionName=on_event&code=wrong") == 401
    assert post("functionName=on_event") == 401
    assert post(f"code={host.function_key}") == 400
    assert post(f"functionName=missing&code={host.function_key}") == 404
    assert post(f"functionName=on_event&code={host.function_key}", {}) == 400
    assert post(f"functionName=on_event&code={host.function_key}", {"aeg-event-type": "X"}) == 400
    assert (
        post(f"functionName=on_event&code={host.function_key}", {"aeg-event-type": "Unsubscribe"})
        == 202
    )
    assert requests.get(host.eventgrid_url("on_event"), timeout=10).status_code == 405
    assert sample.RECEIVED == []
    assert post(f"functionName=ON_EVENT&code={host.function_key}") == 202
    assert len(sample.RECEIVED) == 1


def test_failing_function_gives_500_generic_and_other_events_still_run(
    host: FunctionsHost, sample: ModuleType
) -> None:
    """If one event's invocation raises, the delivery answers a generic 500 (Event Grid retries)."""
    events = [eg_event(id="a", subject="please fail"), eg_event(id="b")]
    status, body = host.deliver_event_grid("on_event_fails", events)
    assert status == 500
    assert "cannot handle" not in body.decode()
    assert json.loads(body)["error"].startswith("1 of 2 event(s) failed")
    assert [e.id for e in sample.RECEIVED] == ["a", "b"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["id", "subject", "eventType", "eventTime", "specversion", "data", "x"]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


_FIELDS = ["id", "subject", "eventType", "eventTime", "dataVersion", "topic", "data"]
_FIELDS += ["specversion", "source", "type", "time"]


def _mutate(base: dict[str, Any], drop: set[str], replace: dict[str, Any]) -> dict[str, Any]:
    event = {k: v for k, v in base.items() if k not in drop}
    event.update(replace)
    return event


mutated_events = st.builds(
    _mutate,
    st.sampled_from([eg_event(), cloud_event()]),
    st.sets(st.sampled_from(_FIELDS), max_size=2),
    st.dictionaries(st.sampled_from(_FIELDS), json_values, max_size=2),
)
payloads = st.one_of(json_values, mutated_events, st.lists(mutated_events, max_size=3))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=payloads)
def test_fuzzed_payloads_are_either_delivered_or_refused_cleanly(
    sample: ModuleType, payload: Any
) -> None:
    """Any JSON payload gives 202 (every event delivered) or 400 (nothing delivered), never 5xx."""
    functions_host = FunctionsHost(sample.app)
    sample.RECEIVED.clear()
    status, body = functions_host.deliver_event_grid("on_event", json.dumps(payload).encode())
    if status == 202:
        expected = payload if isinstance(payload, list) else [payload]
        assert len(sample.RECEIVED) == len(expected)
    else:
        assert status == 400, body
        assert json.loads(body)["error"]
        assert sample.RECEIVED == []
