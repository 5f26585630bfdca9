"""Parsing Catalog Service answers in camelCase and PascalCase, and camelCase to_dict()."""

from __future__ import annotations

import json

import pytest

from shared.citrix import Catalog, CitrixResponseError, Image, UpdateSubmission
from shared.citrix.models import items_of

CAMEL = {
    "id": "cat-1",
    "name": "Finance",
    "state": "Processing",
    "subState": "ProcessingVdaCopyingMasterImage",
    "imageId": "img-1",
    "templateImageName": "win11",
    "taskCompletionPercentage": 40,
    "estimatedTimeInMinute": "12",
    "statusMessage": "copying",
    "transactionId": "t-1",
    "warnings": [{"type": "PendingVdaUpdate", "warningMessage": "restart pending"}],
}


def test_catalog_camel_and_pascal_parse_the_same():
    """A PascalCase (2017) answer parses to the same Catalog as the camelCase one."""
    pascal = {key[0].upper() + key[1:]: value for key, value in CAMEL.items()}
    pascal["Warnings"] = [{"Type": "PendingVdaUpdate", "WarningMessage": "restart pending"}]
    assert Catalog.from_api(pascal) == Catalog.from_api(CAMEL)
    catalog = Catalog.from_api(CAMEL)
    assert catalog.progress == 40 and catalog.eta_minutes == 12
    assert catalog.warnings == ("PendingVdaUpdate: restart pending",)


def test_catalog_to_dict_is_camel_case_json():
    """to_dict gives camelCase keys and survives a JSON round trip."""
    data = Catalog.from_api(CAMEL).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["imageId"] == "img-1" and data["etaMinutes"] == 12 and data["subState"]


def test_status_overview_without_id_takes_the_given_id():
    """A CatalogStatusOverview has no id; the caller's catalog id fills it."""
    catalog = Catalog.from_api({"state": "Active"}, catalog_id="cat-9")
    assert catalog.id == "cat-9" and catalog.name == ""


@pytest.mark.parametrize("body", [{"id": "x"}, {"state": "Active"}, [], "text", None])
def test_catalog_without_id_or_state_is_a_protocol_error(body):
    """Answers missing id/state or not objects are 'response not understood'."""
    with pytest.raises(CitrixResponseError):
        Catalog.from_api(body)


def test_progress_is_clamped_and_junk_ignored():
    """Out-of-range or non-numeric progress never yields nonsense values."""
    assert (
        Catalog.from_api(
            {"id": "a", "state": "Processing", "taskCompletionPercentage": 250}
        ).progress
        == 100
    )
    assert (
        Catalog.from_api(
            {"id": "a", "state": "Processing", "taskCompletionPercentage": "n/a"}
        ).progress
        is None
    )
    assert (
        Catalog.from_api(
            {"id": "a", "state": "Processing", "taskCompletionPercentage": True}
        ).progress
        is None
    )


def test_image_parse_both_casings():
    """Images parse from camelCase and from the 2017 PascalCase shape with its status text."""
    camel = Image.from_api({"id": "i", "name": "n", "state": "Ready", "citrixPrepared": True})
    pascal = Image.from_api(
        {
            "Id": "i",
            "Name": "n",
            "State": "Failed",
            "Status": "VDA missing",
            "CitrixPrepared": False,
        }
    )
    assert camel.ready and camel.citrix_prepared
    assert not pascal.ready and pascal.status_message == "VDA missing"
    assert json.loads(json.dumps(pascal.to_dict()))["state"] == "Failed"


def test_update_submission_to_dict():
    """UpdateSubmission serializes to the camelCase contract."""
    sub = UpdateSubmission("c", "t", "http://127.0.0.1/x")
    assert sub.to_dict() == {
        "catalogId": "c",
        "transactionId": "t",
        "location": "http://127.0.0.1/x",
    }


def test_list_envelopes():
    """items, legacy aliases (any case) and bare lists are read; other shapes are refused."""
    assert items_of({"items": [{"a": 1}]}) == [{"a": 1}]
    assert items_of({"Catalogs": [{"a": 2}]}, "catalogs") == [{"a": 2}]
    assert items_of([{"a": 3}]) == [{"a": 3}]
    with pytest.raises(CitrixResponseError):
        items_of({"value": []})
    with pytest.raises(CitrixResponseError):
        items_of({"items": ["not-an-object"]})
