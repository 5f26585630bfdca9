"""Property-based fuzzing of the HTTP API through the local functions host (in-process, the same
code path as a request over the socket): never a 500, every refusal a JSON 400/413 naming the
field and the reason, and an independent oracle agrees on which bodies are valid."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.stack import LocalStack
from shared.api import REQUEST_FIELDS
from shared.ids import is_safe_instance_id
from shared.openapi import openapi_document

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MAX_NAME, MAX_TITLE, MAX_MESSAGE, MAX_MINUTES, MAX_CATALOGS = 256, 256, 2048, 10080, 50

# ------------------------------------------------------------------------------- the oracle


def _text_ok(value: Any, limit: int) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    return bool(text) and len(value) <= limit and not any(_forbidden(c) for c in text)


def _forbidden(c: str) -> bool:
    """Control characters, bidirectional marks and lone surrogates (written out, not imported)."""
    n = ord(c)
    return (
        n < 32
        or 0x7F <= n <= 0x9F
        or n in (0x200E, 0x200F)
        or 0x202A <= n <= 0x202E
        or 0x2066 <= n <= 0x2069
        or 0xD800 <= n <= 0xDFFF
    )


def _int_ok(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def problems(data: Any) -> set[str]:
    """Every top-level field of ``data`` that makes it an invalid request (written from the API
    description, independently of shared/api.py)."""
    if not isinstance(data, dict):
        return {"body"}
    bad = {str(k)[:100] for k in data if k not in REQUEST_FIELDS}
    if "catalog" in data and "catalogs" in data:
        bad.add("catalogs")
    elif "catalog" in data:
        if not _text_ok(data["catalog"], MAX_NAME):
            bad.add("catalog")
    elif "catalogs" in data:
        raw = data["catalogs"]
        if (
            not isinstance(raw, list)
            or not 1 <= len(raw) <= MAX_CATALOGS
            or not all(_text_ok(v, MAX_NAME) for v in raw)
            or len({v.strip().lower() for v in raw}) != len(raw)
        ):
            bad.add("catalogs")
    else:
        bad.add("catalog")
    if "image" not in data or not _text_ok(data["image"], MAX_NAME):
        bad.add("image")
    for key, low in (("vdaUpdateDelay", -1), ("deadlineMinutes", 1)):
        if key in data and not _int_ok(data[key], low, MAX_MINUTES):
            bad.add(key)
    for key in ("dryRun", "force"):
        if key in data and not isinstance(data[key], bool):
            bad.add(key)
    if data.get("citrixPrepared") is not None and not isinstance(data["citrixPrepared"], bool):
        bad.add("citrixPrepared")
    for key, limit in (("warningTitle", MAX_TITLE), ("warningMessage", MAX_MESSAGE)):
        if data.get(key) is not None and not _text_ok(data[key], limit):
            bad.add(key)
    return bad


# ------------------------------------------------------------------------------- strategies

TRICKY = [
    "Finance-Desktops",
    "finance-desktops ",
    "../../sites",
    "a/b?c#d",
    "%2e%2e%2f",
    "x\x00y",
    "\u202eevil",
    " ",
    "",
    "a" * 257,
]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
names = st.one_of(
    st.sampled_from(TRICKY), st.text(max_size=40), st.text(min_size=250, max_size=260)
)
minutes = st.one_of(st.integers(min_value=-5, max_value=10090), junk)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "catalog": st.one_of(names, junk),
    "catalogs": st.one_of(
        st.lists(names, max_size=4), st.lists(names, min_size=49, max_size=52), junk
    ),
    "image": st.one_of(names, junk),
    "vdaUpdateDelay": minutes,
    "citrixPrepared": st.one_of(st.booleans(), junk),
    "warningTitle": st.one_of(names, junk),
    "warningMessage": st.one_of(names, st.text(min_size=2040, max_size=2060), junk),
    "deadlineMinutes": minutes,
    "dryRun": st.one_of(st.booleans(), junk),
    "force": st.one_of(st.booleans(), junk),
}
good_name = st.text(
    st.characters(min_codepoint=32, codec="utf-8", exclude_characters="\x7f"),
    min_size=1,
    max_size=40,
).filter(str.strip)
good_values: dict[str, st.SearchStrategy[Any]] = {
    "vdaUpdateDelay": st.integers(min_value=-1, max_value=MAX_MINUTES),
    "citrixPrepared": st.one_of(st.none(), st.booleans()),
    "warningTitle": st.one_of(st.none(), good_name),
    "warningMessage": st.one_of(st.none(), good_name),
    "deadlineMinutes": st.integers(min_value=1, max_value=MAX_MINUTES),
    "dryRun": st.booleans(),
    "force": st.booleans(),
}
valid_bodies = st.builds(
    lambda target, image, rest: {**target, "image": image, **rest},
    st.one_of(
        st.fixed_dictionaries({"catalog": good_name}),
        st.fixed_dictionaries(
            {
                "catalogs": st.lists(
                    good_name, min_size=1, max_size=4, unique_by=lambda n: n.strip().lower()
                )
            }
        ),
    ),
    good_name,
    st.fixed_dictionaries({}, optional=good_values),
)
mutations = st.lists(
    st.tuples(st.sampled_from([*REQUEST_FIELDS, "unknown", "delete"]), st.integers(0, 20)),
    max_size=2,
)


@st.composite
def request_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request, then zero to two mutations: a field set to a bad or odd value, an unknown
    key added, or a field deleted (about half the bodies stay valid)."""
    body: dict[str, Any] = draw(valid_bodies)
    for key, pick in draw(mutations):
        if key == "delete":
            if body:
                body.pop(sorted(body)[pick % len(body)])
        elif key == "unknown":
            body[draw(st.text(max_size=12))] = draw(junk)
        else:
            body[key] = draw(field_values[key])
    return body


def post(stack: LocalStack, raw: bytes) -> tuple[int, Any]:
    status, headers, body = stack.functions.invoke_http(
        "POST",
        "/api/updates",
        body=raw,
        headers={"x-functions-key": stack.function_key, "Content-Type": "application/json"},
    )
    assert "application/json" in headers.get("Content-Type", "")
    return status, json.loads(body)


def assert_refusal(status: int, answer: Any, allowed: set[str] | None = None) -> str:
    """A 400/413 with ``{"error": {"field", "reason"}}``; returns the field."""
    assert status in (400, 413), (status, answer)
    error = answer["error"]
    assert isinstance(error["reason"], str) and error["reason"].strip()
    assert isinstance(error["field"], str)  # "" only for an empty key
    if allowed is not None:
        root = error["field"] if error["field"] in allowed else error["field"].split("[")[0]
        assert root in allowed, (error, allowed)
    return str(error["field"])


# ------------------------------------------------------------------------------------ tests

_CONFLICT_FIELDS = ("vdaUpdateDelay", "citrixPrepared", "warningTitle", "warningMessage")


@FUZZ
@given(body=request_bodies(), ascii_only=st.booleans())
def test_request_bodies_are_accepted_exactly_when_valid(stack: LocalStack, body, ascii_only):
    """For generated request objects, 202 (or 409 when the same update already runs with other
    options) iff the oracle finds no problem; otherwise 400 naming one of the problem fields;
    never a 500."""
    raw = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8")
    status, answer = post(stack, raw)
    expected = problems(body)
    event(
        {202: "accepted", 409: "conflict"}.get(status, "")
        or f"refused on {sorted(expected or ['?'])[0][:20]}"
    )
    if not expected:
        assert status in (202, 409), answer
        assert is_safe_instance_id(answer["instanceId"])
        if status == 409:  # valid, but the running update was asked with other options
            assert answer["error"]["field"] in ("force", *_CONFLICT_FIELDS), answer
        else:
            assert answer["duplicate"] in (True, False)
    else:
        assert_refusal(status, answer, expected)


_REQUEST_SCHEMA = openapi_document()["paths"]["/api/updates"]["post"]["requestBody"]["content"][
    "application/json"
]["schema"]


@FUZZ
@given(
    data=st.one_of(
        request_bodies(),
        st.recursive(
            junk,
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.sampled_from([*REQUEST_FIELDS, "x"]), inner, max_size=4)
            ),
            max_leaves=12,
        ),
    )
)
def test_any_json_document_gets_a_202_only_if_the_published_schema_accepts_it(stack, data):
    """Arbitrary JSON: never a 500; a 202 only for documents the OpenAPI request schema accepts,
    every refusal names its field."""
    status, answer = post(stack, json.dumps(data).encode("utf-8"))
    event(f"HTTP {status}")
    if status in (202, 409):  # 409: valid, but the same update runs with other options
        jsonschema_rs.Draft202012Validator(_REQUEST_SCHEMA).validate(data)
    else:
        assert_refusal(status, answer, problems(data))


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
def test_arbitrary_bytes_are_refused_with_a_reason(stack: LocalStack, raw: bytes):
    """Random bytes or text as the body: never a 500; 400 naming the body or a field."""
    status, answer = post(stack, raw)
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        assert_refusal(status, answer, {"body"})
        return
    if problems(parsed):
        assert_refusal(status, answer, problems(parsed))
    else:  # pragma: no cover - random bytes are practically never a valid request
        assert status == 202


def test_non_standard_json_constants_and_deep_nesting_are_refused(stack: LocalStack):
    """NaN/Infinity literals, deep nesting, a BOM and invalid UTF-8 are 400s on `body`."""
    for raw in (
        b'{"catalog": "a", "image": "b", "deadlineMinutes": NaN}',
        b'{"catalog": "a", "image": "b", "vdaUpdateDelay": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'\xef\xbb\xbf{"catalog": "a", "image": "b"}',
        b'{"catalog": "\xff\xfe", "image": "b"}',
    ):
        status, answer = post(stack, raw[:65536])
        assert assert_refusal(status, answer) == "body"


def test_oversized_bodies_are_refused_with_413(stack: LocalStack):
    """A body over MAX_REQUEST_BODY_BYTES (64 KiB) gets 413 from the app naming `body`; one over
    the host's 1 MiB limit gets 413 from the host over real HTTP."""
    padding = "x" * (64 * 1024)
    raw = json.dumps({"catalog": "a", "image": "b", "warningMessage": padding}).encode()
    status, answer = post(stack, raw)
    assert status == 413
    assert answer["error"]["field"] == "body"
    response = requests.post(
        f"{stack.functions_url}/api/updates",
        data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"x-functions-key": stack.function_key, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413


@FUZZ
@given(
    instance_id=st.one_of(
        st.text(min_size=1, max_size=60), st.sampled_from(["..", "../x", "a/b", "%2e"])
    )
)
def test_status_and_cancel_routes_never_fail_on_odd_ids(stack: LocalStack, instance_id: str):
    """GET /api/updates/{id} and POST .../cancel with any id: 400 (invalid id) or 404 (no such
    update) with a JSON reason, or a route miss; never a 500."""
    path = f"/api/updates/{quote(instance_id, safe='')}"
    headers = {"x-functions-key": stack.function_key}
    for method, target in (("GET", path), ("POST", f"{path}/cancel")):
        status, _, body = stack.functions.invoke_http(method, target, headers=headers)
        assert status in (400, 404, 405), (status, body)
        if status in (400, 404) and body.startswith(b"{"):
            assert json.loads(body)["error"]["reason"]


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["status", "top", "x"]), st.text(max_size=12), max_size=3
    )
)
def test_list_filters_never_fail(stack: LocalStack, params: dict[str, str]):
    """GET /api/updates with any status/top query: 200 or a 400 naming the parameter."""
    status, _, body = stack.functions.invoke_http(
        "GET", "/api/updates", headers={"x-functions-key": stack.function_key}, params=params
    )
    answer = json.loads(body)
    if status == 200:
        assert isinstance(answer["updates"], list)
    else:
        assert status == 400
        assert answer["error"]["field"] in ("status", "top")
