"""Id safety end to end: catalog and image ids or names carrying ``/ ? # ..``, control characters
or %-encoding tricks are refused (HTTP 400) or end as a clear ``rejected`` outcome, and no URL
the app builds ever carries them: the simulator's request log shows only plain segments."""

from __future__ import annotations

import re
from typing import Any

from local.stack import LocalStack
from local.testing_stack import POST_UPDATE, calls, fault_scenario, start_update

SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~$-]+$")
KNOWN_QUERIES = {"", "async=true", "includeCustomerPrepared=true&includeCitrixPrepared=true"}

HOSTILE_CATALOGS = [
    {"id": "../../evil", "name": "Hostile-Dots"},
    {"id": "cat/evil?x=1#frag", "name": "Hostile-Slash"},
    {"id": "cat%2F..%2Fevil", "name": "Hostile-Percent"},
    {"id": "cat evil\t", "name": "Hostile-Space"},
]
# Names that match no catalog: looked up by listing, never put in a URL.
TRICK_NAMES = [
    "../../sites",
    "Finance-Desktops/../Engineering",
    "x?async=false",
    "a#b",
    "%2e%2e%2f",
    "Finance%2DDesktops",
    "..",
    "Finance\u2215Desktops",  # DIVISION SLASH looks like '/'
]


def _scenario() -> dict[str, Any]:
    scenario = fault_scenario()
    for spec in HOSTILE_CATALOGS:
        scenario["catalogs"].append({**spec, "state": "Active", "imageId": "img-v1"})
    scenario["images"].append({"id": "img/../v2", "name": "hostile-image", "state": "Ready"})
    scenario["images"].append({"id": "img%2Fv3", "name": "percent-image", "state": "Ready"})
    return scenario


def _assert_clean_log(requests: list[dict[str, Any]]) -> None:
    assert requests, "nothing reached the simulator: the test proves nothing"
    for entry in requests:
        segments = entry["path"].split("/")[1:]
        assert all(SAFE_SEGMENT.match(s) for s in segments), entry["path"]
        assert not any(s in (".", "..") for s in segments), entry["path"]
        assert entry["query"] in KNOWN_QUERIES, entry["query"]


def test_hostile_ids_and_names_never_reach_a_url() -> None:
    """Trick names match nothing (rejected/not_found); catalogs and images whose ids carry
    ``/ ? # .. %`` or whitespace are found by name but refused before any URL is built
    (rejected/invalid_input); no $updateImage is sent and every logged path is plain."""
    with LocalStack(_scenario()) as stack:
        started: dict[str, str] = {}
        for name in TRICK_NAMES:
            status, body = start_update(stack, {"catalog": name, "image": "win11-23h2-v2"})
            assert status == 202, body
            started[f"name {name!r}"] = body["instanceId"]
        for spec in HOSTILE_CATALOGS:
            for ref in (spec["name"], spec["id"].strip()):
                status, body = start_update(stack, {"catalog": ref, "image": "win11-23h2-v2"})
                assert status == 202, body
                started[f"catalog {ref!r}"] = body["instanceId"]
        for image in ("hostile-image", "img/../v2", "percent-image"):
            status, body = start_update(stack, {"catalog": "Finance-Desktops", "image": image})
            assert status == 202, body
            started[f"image {image!r}"] = body["instanceId"]
        stack.run_until_idle()

        for label, instance_id in started.items():
            output = stack.durable.get_status(instance_id)["output"]
            assert output["outcome"] == "rejected", (label, output)
            category = output["error"]["category"]
            if label.startswith("name"):
                assert category == "not_found", (label, output["error"])
            else:
                assert category == "invalid_input", (label, output["error"])
                assert (
                    "not allowed in an id" in output["error"]["message"]
                    or "'..'" in (output["error"]["message"])
                )
        requests = stack.citrix_requests()
        _assert_clean_log(requests)
        assert calls(requests, "POST", POST_UPDATE) == []


def test_control_characters_and_oversized_names_are_400_before_anything_starts() -> None:
    """Names with control characters (NUL, CR/LF, ESC, DEL) or over 256 characters are refused
    with 400 naming the field; nothing starts and Citrix is never called."""
    with LocalStack(fault_scenario()) as stack:
        for catalog, image, field in (
            ("Finance\x00Desktops", "win11-23h2-v2", "catalog"),
            ("Finance\r\nX-Injected: 1", "win11-23h2-v2", "catalog"),
            ("Finance-Desktops", "win11\x1b[31m", "image"),
            ("Finance-Desktops", "v2\x7f", "image"),
            ("F" * 257, "win11-23h2-v2", "catalog"),
        ):
            status, body = start_update(stack, {"catalog": catalog, "image": image})
            assert status == 400, body
            assert body["error"]["field"] == field
            assert body["error"]["reason"]
        status, body = start_update(stack, {"catalogs": ["ok", "a\nb"], "image": "x"})
        assert status == 400
        assert body["error"]["field"] == "catalogs[1]"
        stack.run_until_idle()
        assert stack.durable.list_instances() == []
        assert stack.citrix_requests() == []
