"""Event Grid parsing and routing: which events start which updates."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from shared.events import CUSTOM_EVENT_TYPE, parse_image_version_id, parse_routes, plan_event

VERSION_ID = (
    "/subscriptions/0000/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/"
    "acg_prod/images/win11-23h2/versions/1.2.3"
)
ROUTES = parse_routes(
    [
        {
            "gallery": "acg_*",
            "imageDefinition": "win11-*",
            "catalogs": ["Finance-Desktops", "HR-Desktops"],
            "imageNameTemplate": "{definition}-{version}",
            "options": {"vdaUpdateDelay": 60},
        }
    ]
)
SETTINGS = Settings.from_env({})


def write_event(
    subject: str = VERSION_ID, operation: str = "Microsoft.Compute/galleries/images/versions/write"
):
    return {
        "id": "evt-1",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "subject": subject,
        "data": {"operationName": operation, "status": "Succeeded", "resourceUri": subject},
    }


def test_version_write_is_routed_to_its_catalogs():
    """A matching image version write becomes one request for the route's catalogs."""
    plan = plan_event(write_event(), SETTINGS, ROUTES)
    assert plan.ignored is None
    (request,) = plan.requests
    assert request.catalogs == ("Finance-Desktops", "HR-Desktops")
    assert request.image == "win11-23h2-1.2.3"
    assert request.vda_update_delay == 60
    assert request.wait_for_image


def test_resource_id_is_parsed_case_insensitively():
    """ARM ids arrive with varying letter case."""
    parsed = parse_image_version_id(VERSION_ID.lower().replace("resourcegroups", "RESOURCEGROUPS"))
    assert parsed is not None and parsed.version == "1.2.3"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (write_event(operation="Microsoft.Compute/galleries/images/versions/delete"), "operation"),
        (write_event(operation="Microsoft.Resources/deployments/write"), "operation"),
        (write_event(subject=VERSION_ID.replace("acg_prod", "other")), "no route"),
        (
            {"id": "x", "type": "Microsoft.Resources.ResourceDeleteSuccess", "data": {}},
            "not handled",
        ),
        ({"id": "x", "type": "Microsoft.Resources.ResourceWriteSuccess", "data": "nope"}, "data"),
        (write_event(subject="/subscriptions/0/resourceGroups/rg"), "resource id"),
    ],
)
def test_other_events_are_ignored_with_a_reason(event, reason):
    """Deletes, deployments, unrouted galleries and junk start nothing and say why."""
    plan = plan_event(event, SETTINGS, ROUTES)
    assert not plan.requests
    assert plan.ignored is not None and reason in plan.ignored


def test_custom_event_with_explicit_catalogs():
    """A pipeline's custom event may name catalogs and image directly."""
    event = {"id": "c1", "type": CUSTOM_EVENT_TYPE, "data": {"catalog": "Finance", "image": "img"}}
    (request,) = plan_event(event, SETTINGS, ROUTES).requests
    assert request.catalogs == ("Finance",) and request.image == "img"


def test_custom_event_with_bad_data_is_ignored_with_the_field():
    """Invalid custom event data names the field instead of raising."""
    event = {"id": "c1", "type": CUSTOM_EVENT_TYPE, "data": {"catalog": "F", "image": 3}}
    plan = plan_event(event, SETTINGS, ROUTES)
    assert plan.ignored is not None and "data.image" in plan.ignored


def _delay(value: object) -> dict[str, object]:
    return {"vdaUpdateDelay": value}


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ([{"gallery": "g", "imageDefinition": "d"}], "catalogs"),
        (
            [
                {
                    "gallery": "g",
                    "imageDefinition": "d",
                    "catalogs": ["c"],
                    "imageNameTemplate": "{nope}",
                }
            ],
            "placeholders",
        ),
        ([{"gallery": "g", "imageDefinition": "d", "catalogs": ["c"], "extra": 1}], "unknown keys"),
        ([{"imageDefinition": "d", "catalogs": ["c"]}], "gallery"),
        (
            [{"gallery": "g", "imageDefinition": "d", "catalogs": ["c"], "options": _delay("60")}],
            r"EVENT_ROUTES\[0\]\.options\.vdaUpdateDelay must be an integer",
        ),
        (
            [{"gallery": "g", "imageDefinition": "d", "catalogs": ["c"], "options": _delay(-5)}],
            r"options\.vdaUpdateDelay must be between -1",
        ),
        (
            [
                {
                    "gallery": "g",
                    "imageDefinition": "d",
                    "catalogs": ["c"],
                    "imageNameTemplate": "{definition}\x07",
                }
            ],
            r"imageNameTemplate must not contain control characters",
        ),
        (
            [{"gallery": "g", "imageDefinition": "d", "catalogs": ["c", "C"]}],
            r"catalogs\[1\] is listed twice",
        ),
    ],
)
def test_bad_routes_are_config_errors(routes, fragment):
    """Route mistakes, option values and names included, are reported by route index and key."""
    with pytest.raises(ConfigError, match=fragment):
        parse_routes(routes)
