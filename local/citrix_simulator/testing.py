"""Shared test data for the Citrix client/simulator tests (tests/ cannot import each other's
modules under ``--import-mode=importlib``): ids, credentials and a small base scenario."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CALLCENTER",
    "CLIENT_ID",
    "CUSTOMER",
    "ENGINEERING",
    "FINANCE",
    "SECRET",
    "SITE",
    "base_scenario",
]

CUSTOMER = "test-customer"
SITE = "11111111-2222-4333-8444-555555555555"
CLIENT_ID = "test-client"
SECRET = "s3cr3t-Value-do-not-log"
FINANCE = "c0000000-0000-4000-8000-000000000001"
ENGINEERING = "c0000000-0000-4000-8000-000000000002"
CALLCENTER = "c0000000-0000-4000-8000-000000000003"


def base_scenario() -> dict[str, Any]:
    """A small tenant: three catalogs, four images, one API client."""
    return {
        "customerId": CUSTOMER,
        "siteId": SITE,
        "apiClients": [{"clientId": CLIENT_ID, "secret": SECRET}],
        "images": [
            {"id": "img-v1", "name": "win11-23h2-v1", "state": "Ready"},
            {"id": "img-v2", "name": "win11-23h2-v2", "state": "Ready"},
            {
                "id": "img-broken",
                "name": "win11-broken",
                "state": "Failed",
                "subState": "ErrorMasterImageNoSupportedVdaFound",
                "statusMessage": "The VDA was not found",
            },
            {"id": "img-citrix", "name": "Citrix Win10", "state": "Ready", "citrixPrepared": True},
        ],
        "catalogs": [
            {
                "id": FINANCE,
                "name": "Finance-Desktops",
                "state": "Active",
                "imageId": "img-v1",
                "update": {"durationMinutes": 90},
            },
            {"id": ENGINEERING, "name": "Engineering", "state": "Active", "imageId": "img-v1"},
            {"id": CALLCENTER, "name": "CallCenter", "state": "InputRequired", "imageId": "img-v1"},
        ],
    }
