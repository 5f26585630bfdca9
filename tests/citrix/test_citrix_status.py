"""The pure status mapping: every documented state, the image check, bounded unknowns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.citrix_simulator.scenario import CATALOG_STATES
from shared.citrix import Catalog, decide_unknown, map_catalog_status
from shared.citrix.status import IMAGE_UNCHANGED_MESSAGE, STATE_TABLE, STATUSES

EXPECTED = {
    "PreDeployment": "running",
    "Processing": "running",
    "Active": "succeeded",
    "InputRequired": "succeeded",
    "Error": "failed",
    "Deleting": "failed",
    "Unknown": "unknown",
    "NotFound": "unknown",
}


def _catalog(state: str, **extra) -> Catalog:
    return Catalog(id="c", name="n", state=state, **extra)


def test_table_covers_every_documented_state():
    """The table has exactly the eight documented CatalogOverallState values."""
    assert set(EXPECTED) == set(CATALOG_STATES)
    assert set(STATE_TABLE) == {s.lower() for s in CATALOG_STATES}


@pytest.mark.parametrize(("state", "status"), sorted(EXPECTED.items()))
def test_each_state_maps(state, status):
    """Each documented state maps to its normalized status (no target image given)."""
    assert map_catalog_status(_catalog(state)).status == status


def test_error_carries_sub_state_and_message():
    """An Error names the sub-state and Citrix's status message."""
    result = map_catalog_status(
        _catalog("Error", sub_state="ErrorMasterImageNotFound", status_message="image gone")
    )
    assert result.status == "failed"
    assert result.message == "ErrorMasterImageNotFound: image gone"


def test_running_reports_progress_and_eta():
    """A running update carries progress, ETA and sub-state through."""
    result = map_catalog_status(
        _catalog(
            "Processing", sub_state="ProcessingVdaCopyingMasterImage", progress=40, eta_minutes=12
        )
    )
    assert (result.status, result.progress, result.eta_minutes) == ("running", 40, 12)
    assert "40%" in result.message and "12 min" in result.message


def test_success_requires_the_target_image():
    """Active on the old image is 'unknown' (not visible yet); on the new one it succeeded."""
    old = map_catalog_status(_catalog("Active", image_id="img-v1"), target_image_id="img-v2")
    new = map_catalog_status(_catalog("InputRequired", image_id="IMG-V2"), target_image_id="img-v2")
    assert old.status == "unknown" and old.message == IMAGE_UNCHANGED_MESSAGE
    assert new.status == "succeeded" and new.progress == 100


def test_undocumented_state_is_unknown():
    """A state Citrix never documented is 'unknown' and says so."""
    result = map_catalog_status(_catalog("Frobnicating"))
    assert result.status == "unknown" and "Frobnicating" in result.message


def test_decide_unknown_is_bounded():
    """decide_unknown gives up at the limit, and a limit below 1 still gives up."""
    assert not decide_unknown(2, 3)
    assert decide_unknown(3, 3)
    assert decide_unknown(1, 0)


@given(
    state=st.one_of(st.sampled_from(CATALOG_STATES), st.text(min_size=1, max_size=20)),
    image=st.one_of(st.none(), st.sampled_from(["img-v1", "img-v2"])),
    target=st.one_of(st.none(), st.sampled_from(["img-v1", "img-v2"])),
    progress=st.one_of(st.none(), st.integers(0, 100)),
)
def test_no_state_polls_forever(state, image, target, progress):
    """Any snapshot maps to one of four statuses, and repeating it ends within max_unknown."""
    if not state.strip():
        state = "x"
    result = map_catalog_status(
        _catalog(state, image_id=image, progress=progress), target_image_id=target
    )
    assert result.status in STATUSES
    json.dumps(result.to_dict())
    # A poller that sees this same snapshot forever must stop: running has the deadline,
    # terminal stops at once, unknown stops via decide_unknown.
    if result.status == "unknown":
        polls = 0
        while not decide_unknown(polls, 5):
            polls += 1
        assert polls == 5
