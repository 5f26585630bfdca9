"""Catalog Service client against the simulator over real HTTP: operations, look-ups, every
catalog state end to end, and the location safety rule."""

from __future__ import annotations

import pytest

from local.citrix_simulator.testing import CALLCENTER, CUSTOMER, ENGINEERING, FINANCE, SITE
from shared.citrix import (
    CitrixBadRequestError,
    CitrixImageNotReadyError,
    CitrixInvalidIdError,
    CitrixInvalidInputError,
    CitrixLookupError,
    CitrixNotFoundError,
    CitrixPermissionError,
    CitrixUnsafeLocationError,
    map_catalog_status,
)


def test_site_catalogs_and_images(start_sim, connect):
    """Site id, catalog list/get and image list come back parsed, own images included."""
    sim = start_sim()
    client, _ = connect(sim)
    assert client.get_site_id() == SITE
    names = sorted(c.name for c in client.list_catalogs(SITE))
    assert names == ["CallCenter", "Engineering", "Finance-Desktops"]
    finance = client.get_catalog(SITE, FINANCE)
    assert (finance.state, finance.image_id, finance.template_image_name) == (
        "Active",
        "img-v1",
        "win11-23h2-v1",
    )
    assert finance.transaction_id  # from the response header
    image_ids = {i.id for i in client.list_images(SITE)}
    assert image_ids == {"img-v1", "img-v2", "img-broken", "img-citrix"}
    query = next(e["query"] for e in sim.requests if e["path"].endswith("/images"))
    assert "includeCustomerPrepared=true" in query and "includeCitrixPrepared=true" in query
    assert client.get_image(SITE, "img-citrix").citrix_prepared


def test_happy_update_runs_90_minutes_on_virtual_time(start_sim, connect, clock):
    """A 90-minute update goes Processing with advancing sub-states, progress and ETA, then Active
    on the new image; the request body is PascalCase with VdaUpdateDelay explicit."""
    sim = start_sim()
    client, _ = connect(sim)
    image = client.find_image(SITE, "WIN11-23H2-V2")
    submission = client.update_image(
        SITE,
        FINANCE,
        template_id=image.id,
        citrix_prepared=image.citrix_prepared,
        vda_update_delay=-1,
        transaction_id="3f8e2c1a-0000-4000-8000-00000000abcd",
    )
    assert submission.catalog_id == FINANCE
    assert submission.transaction_id == "3f8e2c1a-0000-4000-8000-00000000abcd"
    assert submission.location is not None
    assert submission.location.endswith(f"/{CUSTOMER}/{SITE}/catalogs/{FINANCE}/updateStatus")
    post = [e for e in sim.requests if e["method"] == "POST" and "$updateImage" in e["path"]]
    assert len(post) == 1 and post[0]["status"] == 202 and post[0]["query"] == "async=true"
    sent = sim.catalog(FINANCE)["updateRequests"][0]
    assert sent["keys"] == ["CitrixPrepared", "TemplateId", "VdaUpdateDelay"]
    assert (sent["templateId"], sent["citrixPrepared"], sent["vdaUpdateDelay"]) == (
        "img-v2",
        False,
        -1,
    )

    seen = []
    for _ in range(12):
        status = map_catalog_status(
            client.get_update_status(SITE, FINANCE, submission.location), target_image_id="img-v2"
        )
        seen.append(status)
        if status.terminal:
            break
        clock.advance(10 * 60)
    running = [s for s in seen if s.status == "running"]
    assert len(running) == 9
    assert [s.progress for s in running] == sorted(s.progress or 0 for s in running)
    assert [s.eta_minutes for s in running] == [90, 80, 70, 60, 50, 40, 30, 20, 10]
    assert [s.sub_state for s in running][::4] == [
        "ProcessingVdaCopyingMasterImage",
        "ProcessingProvisioningMasterImage",
        "ProcessingVdaUpdatingCitrixServers",
    ]
    assert seen[-1].status == "succeeded"
    final = client.get_catalog(SITE, FINANCE)
    assert (final.image_id, final.template_image_name) == ("img-v2", "win11-23h2-v2")
    assert final.transaction_id == submission.transaction_id


def test_warning_fields_are_sent_when_given(start_sim, connect):
    """WarningTitle/WarningMessage are only sent when the caller gives them."""
    sim = start_sim()
    client, _ = connect(sim)
    client.update_image(
        SITE,
        ENGINEERING,
        template_id="img-v2",
        citrix_prepared=False,
        vda_update_delay=60,
        warning_title="Restart",
        warning_message="Restart in %m% minutes",
    )
    sent = sim.catalog(ENGINEERING)["updateRequests"][0]
    assert sent["warningTitle"] == "Restart" and sent["warningMessage"] == "Restart in %m% minutes"
    assert "WarningTitle" in sent["keys"]


@pytest.mark.parametrize(
    ("update", "advance_minutes", "state", "status"),
    [
        ({"durationMinutes": 30, "outcome": "Active"}, 31, "Active", "succeeded"),
        ({"durationMinutes": 30, "outcome": "InputRequired"}, 31, "InputRequired", "succeeded"),
        (
            {"durationMinutes": 30, "outcome": "Error", "subState": "ErrorMasterImageNotFound"},
            31,
            "Error",
            "failed",
        ),
        ({"durationMinutes": 30}, 10, "Processing", "running"),
        (
            {
                "durationMinutes": 30,
                "glitch": {"atMinutes": 5, "state": "Unknown", "forMinutes": 10},
            },
            7,
            "Unknown",
            "unknown",
        ),
        (
            {"durationMinutes": 30, "glitch": {"atMinutes": 5, "state": "NotFound"}},
            40,
            "NotFound",
            "unknown",
        ),
    ],
)
def test_update_outcomes_map_end_to_end(
    start_sim, connect, clock, scenario, update, advance_minutes, state, status
):
    """Each simulated outcome is read through the client and mapped to the expected status."""
    scenario["catalogs"][1]["update"] = update
    sim = start_sim(scenario)
    client, _ = connect(sim)
    submission = client.update_image(
        SITE, ENGINEERING, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )
    clock.advance(advance_minutes * 60)
    catalog = client.get_update_status(SITE, ENGINEERING, submission.location)
    mapped = map_catalog_status(catalog, target_image_id="img-v2")
    assert (catalog.state, mapped.status) == (state, status)
    if state == "Error":
        assert mapped.message.startswith("ErrorMasterImageNotFound: ")
        assert client.get_catalog(SITE, ENGINEERING).image_id == "img-v1"
    if state == "Unknown":
        clock.advance(30 * 60)
        again = client.get_update_status(SITE, ENGINEERING, submission.location)
        assert map_catalog_status(again, target_image_id="img-v2").status == "succeeded"


@pytest.mark.parametrize(
    ("state", "status"), [("PreDeployment", "running"), ("Deleting", "failed")]
)
def test_forced_states_map(start_sim, connect, state, status):
    """States the update flow does not produce by itself still map through the client."""
    sim = start_sim()
    client, _ = connect(sim)
    sim.set_catalog_state(CALLCENTER, state)
    assert map_catalog_status(client.get_catalog(SITE, CALLCENTER)).status == status


def test_glitch_as_404_then_recovers(start_sim, connect, clock, scenario):
    """A catalog that answers 404 mid-update raises not_found, then reappears and finishes."""
    scenario["catalogs"][1]["update"] = {
        "durationMinutes": 20,
        "glitch": {"atMinutes": 5, "state": "NotFound", "forMinutes": 5, "as404": True},
    }
    sim = start_sim(scenario)
    client, _ = connect(sim)
    client.update_image(
        SITE, ENGINEERING, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )
    clock.advance(6 * 60)
    with pytest.raises(CitrixNotFoundError) as info:
        client.get_catalog(SITE, ENGINEERING)
    assert info.value.transaction_id and info.value.error_type
    clock.advance(20 * 60)
    assert client.get_catalog(SITE, ENGINEERING).image_id == "img-v2"


def test_busy_catalog_refuses_update_until_free(start_sim, connect, clock, scenario):
    """A catalog busy with an earlier job gets 400 on $updateImage (not retried), then accepts."""
    scenario["catalogs"][1]["busyUntilMinutes"] = 15
    sim = start_sim(scenario)
    client, _ = connect(sim)
    assert client.get_catalog(SITE, ENGINEERING).state == "Processing"
    with pytest.raises(CitrixBadRequestError) as info:
        client.update_image(
            SITE, ENGINEERING, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
        )
    assert "Processing" in info.value.message and info.value.status == 400
    assert sim.count("POST", "*$updateImage") == 1
    clock.advance(16 * 60)
    assert client.get_catalog(SITE, ENGINEERING).state == "Active"
    client.update_image(
        SITE, ENGINEERING, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )
    assert sim.count("POST", "*$updateImage") == 2


def test_image_not_ready_refused_by_api_and_by_lookup(start_sim, connect):
    """The API answers 400 for a non-Ready image; find_image names the state before any POST."""
    sim = start_sim()
    client, _ = connect(sim)
    with pytest.raises(CitrixBadRequestError) as api:
        client.update_image(
            SITE, FINANCE, template_id="img-broken", citrix_prepared=False, vda_update_delay=0
        )
    assert "Failed" in api.value.message
    with pytest.raises(CitrixImageNotReadyError) as lookup:
        client.find_image(SITE, "win11-broken")
    assert lookup.value.state == "Failed" and "Failed" in lookup.value.message
    assert not lookup.value.retryable
    assert client.find_image(SITE, "win11-broken", require_ready=False).state == "Failed"


def test_image_published_later_and_ready_later(start_sim, connect, clock, scenario):
    """An image that appears after 10 minutes and is Ready after 20 is found, then usable."""
    scenario["images"].append(
        {"id": "img-v3", "name": "win11-23h2-v3", "appearAfterMinutes": 10, "readyAfterMinutes": 20}
    )
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixLookupError) as missing:
        client.find_image(SITE, "win11-23h2-v3")
    assert missing.value.category == "not_found" and "win11-23h2-v2" in missing.value.message
    clock.advance(11 * 60)
    with pytest.raises(CitrixImageNotReadyError) as importing:
        client.find_image(SITE, "win11-23h2-v3")
    assert importing.value.state == "Importing" and importing.value.retryable
    clock.advance(10 * 60)
    assert client.find_image(SITE, "img-v3").ready


def test_catalog_lookup_zero_one_two_matches(start_sim, connect, scenario):
    """Name look-ups: one match by id or any-case name; zero lists what exists; two is ambiguous."""
    scenario["catalogs"].append({"id": "c-dup", "name": "FINANCE-desktops", "imageId": "img-v1"})
    sim = start_sim(scenario)
    client, _ = connect(sim)
    assert client.find_catalog(SITE, "callcenter").id == CALLCENTER
    assert client.find_catalog(SITE, FINANCE).name == "Finance-Desktops"
    with pytest.raises(CitrixLookupError) as none:
        client.find_catalog(SITE, "Marketing")
    assert none.value.category == "not_found"
    assert "Engineering" in none.value.message and "CallCenter" in none.value.message
    with pytest.raises(CitrixLookupError) as two:
        client.find_catalog(SITE, "finance-desktops")
    assert two.value.category == "ambiguous"
    assert set(two.value.candidates) == {FINANCE, "c-dup"}


def test_image_lookup_ambiguous(start_sim, connect, scenario):
    """Two images with the same name (any case) are ambiguous; the exact id still resolves."""
    scenario["images"].append({"id": "img-v2b", "name": "WIN11-23H2-V2"})
    sim = start_sim(scenario)
    client, _ = connect(sim)
    with pytest.raises(CitrixLookupError) as two:
        client.find_image(SITE, "win11-23h2-v2")
    assert two.value.category == "ambiguous" and set(two.value.candidates) == {"img-v2", "img-v2b"}
    assert client.find_image(SITE, "img-v2b").id == "img-v2b"


def test_unknown_ids_are_404(start_sim, connect):
    """Unknown catalog, image or site ids raise not_found with the Citrix error type."""
    sim = start_sim()
    client, _ = connect(sim)
    for call in (
        lambda: client.get_catalog(SITE, "no-such-catalog"),
        lambda: client.get_image(SITE, "no-such-image"),
        lambda: client.list_catalogs("no-such-site"),
    ):
        with pytest.raises(CitrixNotFoundError) as info:
            call()
        assert info.value.error_type and info.value.error_type.endswith("common/notFound")
        assert not info.value.retryable


def test_foreign_customer_is_403_with_hint(start_sim, connect):
    """A customer id the API client may not use is a permission error naming region/customer."""
    sim = start_sim()
    client, _ = connect(sim, customer_id="someone-else")
    with pytest.raises(CitrixPermissionError) as info:
        client.get_site_id()
    assert "someone-else" in info.value.message and "region" in info.value.message
    assert sim.count("GET", "*/sites") == 1  # 403 is never retried


@pytest.mark.parametrize("bad", ["../sites", "a/b", "x?y", "%2e%2e", ""])
def test_invalid_ids_refused_before_any_request(start_sim, connect, bad):
    """Unsafe ids raise invalid_input and nothing reaches the API."""
    sim = start_sim()
    client, _ = connect(sim)
    for call in (
        lambda: client.get_catalog(SITE, bad),
        lambda: client.get_image(bad, "img-v1"),
        lambda: client.update_image(
            SITE, bad, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
        ),
        lambda: client.update_image(
            SITE, FINANCE, template_id=bad, citrix_prepared=False, vda_update_delay=0
        ),
    ):
        with pytest.raises(CitrixInvalidIdError):
            call()
    assert sim.requests == []


@pytest.mark.parametrize("delay", [-2, True, 1.5])
def test_bad_vda_update_delay_refused(start_sim, connect, delay):
    """VdaUpdateDelay must be an integer >= -1; anything else is refused before sending."""
    sim = start_sim()
    client, _ = connect(sim)
    with pytest.raises(CitrixInvalidInputError):
        client.update_image(
            SITE, FINANCE, template_id="img-v2", citrix_prepared=False, vda_update_delay=delay
        )
    assert sim.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.com/catalogservice/x/updateStatus",
        "http://evil.example.com/catalogservice/x/updateStatus",
        "//evil.example.com/catalogservice/x",
        "http://127.0.0.1.evil.example.com/x",
        "http://user@evil.example.com/x",
        "https://{host}/catalogservice/x",
        "http://{host_other_port}/catalogservice/x",
    ],
)
def test_foreign_location_is_refused(start_sim, connect, location):
    """A location on another scheme, host or port is refused and never requested."""
    sim = start_sim()
    client, _ = connect(sim)
    host = sim.base_url.split("//", 1)[1]
    port = int(host.rsplit(":", 1)[1])
    target = location.format(host=host, host_other_port=f"127.0.0.1:{port + 1}")
    with pytest.raises(CitrixUnsafeLocationError) as info:
        client.get_update_status(SITE, FINANCE, target)
    assert info.value.category == "unsafe_location"
    assert sim.requests == []  # not even a token request


def test_foreign_location_from_the_api_is_refused(start_sim, connect, scenario):
    """If $updateImage answers with a location on another host, following it is refused."""
    scenario["faults"] = [
        {
            "method": "POST",
            "path": "*/$updateImage",
            "applyUpdate": True,
            "headers": {"location": "https://attacker.example.net/catalogs/x/updateStatus"},
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    submission = client.update_image(
        SITE, FINANCE, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )
    assert submission.location and "attacker" in submission.location
    before = len(sim.requests)
    with pytest.raises(CitrixUnsafeLocationError):
        client.get_update_status(SITE, FINANCE, submission.location)
    assert len(sim.requests) == before
    assert client.get_update_status(SITE, FINANCE).state == "Processing"  # GET catalog instead


def test_relative_location_and_missing_image_id_are_completed(start_sim, connect, clock, scenario):
    """A relative location resolves against the API base; a status overview without imageId in a
    success state is completed from GET catalog so the image switch can be verified."""
    path = f"/catalogservice/{CUSTOMER}/{SITE}/catalogs/{FINANCE}/updateStatus"
    scenario["faults"] = [
        {"method": "GET", "path": path, "status": 200, "body": {"State": "Active"}}
    ]
    scenario["catalogs"][0]["update"] = {"durationMinutes": 1}
    sim = start_sim(scenario)
    client, _ = connect(sim)
    client.update_image(
        SITE, FINANCE, template_id="img-v2", citrix_prepared=False, vda_update_delay=0
    )
    clock.advance(120)
    catalog = client.get_update_status(SITE, FINANCE, path)
    assert catalog.state == "Active" and catalog.image_id == "img-v2"
    assert map_catalog_status(catalog, target_image_id="img-v2").status == "succeeded"
    assert sim.count("GET", path) == 1 and sim.count("GET", f"*/catalogs/{FINANCE}") == 1


def test_pascal_case_answers_are_read(start_sim, connect, scenario):
    """A PascalCase catalog list (2017 shape) is parsed like the camelCase one."""
    scenario["faults"] = [
        {
            "method": "GET",
            "path": "*/catalogs",
            "status": 200,
            "body": {
                "Catalogs": [
                    {"Id": "p-1", "Name": "Pascal", "State": "Active", "ImageId": "img-v1"}
                ]
            },
        }
    ]
    sim = start_sim(scenario)
    client, _ = connect(sim)
    assert client.find_catalog(SITE, "pascal").image_id == "img-v1"
