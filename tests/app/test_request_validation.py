"""POST /api/updates body validation: every bad input names its field and reason."""

from __future__ import annotations

import json

import pytest

from shared.api import RequestError, UpdateRequest, parse_update_request
from shared.config import Settings
from shared.ids import instance_id_for, is_safe_instance_id

SETTINGS = Settings.from_env({})


def parse(body: object) -> UpdateRequest:
    return parse_update_request(json.dumps(body).encode(), SETTINGS)


def test_minimal_request_gets_safe_defaults():
    """A catalog and an image are enough; VDAs are not force-restarted by default."""
    request = parse({"catalog": "Finance", "image": "win11-v2"})
    assert request.catalogs == ("Finance",)
    assert request.vda_update_delay == -1
    assert request.deadline_minutes == 360
    assert not request.dry_run and not request.force


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "x"}, "catalog"),
        ({"catalog": "a"}, "image"),
        ({"catalog": "a", "catalogs": ["b"], "image": "x"}, "catalogs"),
        ({"catalog": "a", "image": "x", "colour": "red"}, "colour"),
        ({"catalog": "", "image": "x"}, "catalog"),
        ({"catalog": 5, "image": "x"}, "catalog"),
        ({"catalog": "a\u0000b", "image": "x"}, "catalog"),
        ({"catalog": "a" * 300, "image": "x"}, "catalog"),
        ({"catalogs": [], "image": "x"}, "catalogs"),
        ({"catalogs": ["a", "A"], "image": "x"}, "catalogs[1]"),
        ({"catalogs": ["a", 3], "image": "x"}, "catalogs[1]"),
        ({"catalog": "a", "image": "x", "vdaUpdateDelay": -2}, "vdaUpdateDelay"),
        ({"catalog": "a", "image": "x", "vdaUpdateDelay": True}, "vdaUpdateDelay"),
        ({"catalog": "a", "image": "x", "vdaUpdateDelay": 1.5}, "vdaUpdateDelay"),
        ({"catalog": "a", "image": "x", "deadlineMinutes": 0}, "deadlineMinutes"),
        ({"catalog": "a", "image": "x", "dryRun": "yes"}, "dryRun"),
        ({"catalog": "a", "image": "x", "citrixPrepared": 1}, "citrixPrepared"),
        ([1, 2], "body"),
    ],
)
def test_bad_fields_are_named(body, field):
    """Each invalid body is refused with the offending field's path."""
    with pytest.raises(RequestError) as info:
        parse(body)
    assert info.value.field == field
    assert info.value.status == 400
    assert info.value.reason


@pytest.mark.parametrize(
    "raw", [b"{", b"\xff\xfe", b'{"catalog": NaN}', b"[" * 100000 + b"]" * 100000]
)
def test_unparseable_bodies_are_400(raw):
    """Broken JSON, non-UTF-8, NaN and absurd nesting are 400s about the body, not crashes."""
    big = Settings.from_env({"MAX_REQUEST_BODY_BYTES": str(4 * 1024 * 1024)})
    with pytest.raises(RequestError) as info:
        parse_update_request(raw, big)
    assert info.value.field == "body"


def test_oversized_body_is_413():
    """A body over the limit is refused before it is parsed."""
    with pytest.raises(RequestError) as info:
        parse_update_request(b" " * (SETTINGS.max_request_body_bytes + 1), SETTINGS)
    assert info.value.status == 413


def test_instance_ids_are_stable_and_safe():
    """Same update in any case/order gives the same Durable-safe id; dry runs get their own."""
    a = instance_id_for("cust", ["Finance", "HR/Desks?#"], "Win11 v2")
    b = instance_id_for("CUST", ["hr/desks?#", "finance"], "win11 v2")
    assert a == b
    assert is_safe_instance_id(a)
    assert not any(ch in a for ch in "/\\?#")
    assert instance_id_for("cust", ["Finance"], "x", dry_run=True) != instance_id_for(
        "cust", ["Finance"], "x"
    )
    assert not is_safe_instance_id("../etc")


def test_duplicate_keys_are_refused():
    """A key given twice is a 400 naming it (which value was meant is anyone's guess)."""
    with pytest.raises(RequestError) as info:
        parse_update_request(b'{"catalog": "a", "image": "x", "catalog": "b"}', SETTINGS)
    assert info.value.field == "catalog"


@pytest.mark.parametrize("name", ["Fin\u202eance", "a\u2066b", "x\u0085y", "\ud800ab"])
def test_bidi_marks_c1_controls_and_lone_surrogates_are_refused(name):
    """Names that hide what they are (bidi overrides, C1 controls, lone surrogates) are 400s."""
    with pytest.raises(RequestError) as info:
        parse({"catalog": name, "image": "x"})
    assert info.value.field == "catalog"
