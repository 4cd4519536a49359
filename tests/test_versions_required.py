"""Issue 21, items 7-8: what the receiver's version requires, filled or refused; tokens by auth_id.

A translation that leaves a required field empty is completed from what the hub knows (the
coordinates' time zone, its stored Tokens and Locations) or refused with a clear OCPI error and
a Loss record: no object leaves the hub invalid for its receiver.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.bridge import (
    CPO,
    EMSP,
    hub_path,
    in_version,
    join,
    location,
    recorded_losses,
    to_parties,
    validate,
)
from tests.support.commands import script
from tests.support.routing import cdr_for
from tests.support.waiting import wait_for

pytestmark = pytest.mark.asyncio

EMSP11 = ("NL", "E11", "EMSP")
TOKEN_211 = {
    "uid": "E11TOK",
    "type": "RFID",
    "auth_id": "NL-E11-C00000001-X",
    "issuer": "E11",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2026-12-01T10:00:00Z",
}


def location_211_without_zone(**changes: Any) -> dict[str, Any]:
    """A 2.1.1 Location with no time_zone (optional in 2.1.1)."""
    body = location("2.1.1")
    body.pop("time_zone", None)
    body.update(changes)
    return body


@pytest.mark.parametrize("emsp_v", ["2.2.1", "2.3.0"])
async def test_211_location_gets_time_zone_from_its_coordinates(start_hub, make_peer, emsp_v) -> None:
    """2.2.1/2.3.0 require time_zone: derived from the coordinates, recorded as approximated."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.1.1")
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    body = location_211_without_zone()
    _, answer, _ = await hub.call("PUT", "/ocpi/2.1.1/locations/BE/BEC/LOC1", token=cpo.hub_token, json=body)
    assert answer["status_code"] == 1000, answer
    await wait_for(lambda: bool(emsp.requests_to("/locations")))
    (got,) = emsp.requests_to("/locations")
    validate(emsp_v, "Location", got.body)
    assert got.body["time_zone"] == "Europe/Brussels"
    losses = await recorded_losses(hub)
    assert any(x["path"] == "time_zone" and x["kind"] == "approximated" for x in losses), losses


@pytest.mark.parametrize("emsp_v", ["2.2.1", "2.3.0"])
async def test_211_location_without_derivable_zone_is_not_delivered_invalid(start_hub, make_peer, emsp_v) -> None:
    """No zone from the coordinates (at sea) nor the country (several zones): refused for 2.2.1+, not sent."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.1.1")
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    body = location_211_without_zone(country="ESP", coordinates={"latitude": "0.000000", "longitude": "-30.000000"})
    _, answer, _ = await hub.call("PUT", "/ocpi/2.1.1/locations/BE/BEC/LOC1", token=cpo.hub_token, json=body)
    assert answer["status_code"] == 1000, answer  # a broadcast: the 2.1.1 partner still gets it
    await wait_for(lambda: bool(emsp11.requests_to("/locations")))
    assert emsp11.requests_to("/locations")[0].body == body
    assert not emsp.requests_to("/locations")
    losses = await recorded_losses(hub)
    assert any(x["path"] == "time_zone" and x["kind"] == "dropped" for x in losses), losses


@pytest.mark.parametrize("cpo_v", ["2.2.1", "2.3.0"])
async def test_211_authorization_answer_gets_its_token_from_the_store(start_hub, make_peer, cpo_v) -> None:
    """A 2.1.1 AuthorizationInfo has no token (2.2.1 requires it): the hub's copy of the pushed Token."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    _, answer, _ = await hub.call("PUT", "/ocpi/2.1.1/tokens/NL/E11/E11TOK", token=emsp.hub_token, json=TOKEN_211)
    assert answer["status_code"] == 1000, answer
    emsp.module_responder = script(("/authorize", {"allowed": "ALLOWED"}))
    path = hub_path(cpo_v, "tokens", "SENDER", "E11TOK/authorize")
    status, body, _ = await hub.call("POST", path, token=cpo.hub_token, json={"location_id": "LOC1"})
    assert (status, body["status_code"]) == (200, 1000), body
    validate(cpo_v, "AuthorizationInfo", body["data"])
    token = body["data"]["token"]
    assert (token["uid"], token["contract_id"], token["party_id"]) == ("E11TOK", TOKEN_211["auth_id"], "E11")


@pytest.mark.parametrize("cpo_v", ["2.2.1", "2.3.0"])
async def test_211_authorization_answer_for_unknown_token_is_refused(start_hub, make_peer, cpo_v) -> None:
    """No Token at the hub to complete the answer: a clear error, not an AuthorizationInfo without token."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    emsp.module_responder = script(("/authorize", {"allowed": "ALLOWED"}))
    path = hub_path(cpo_v, "tokens", "SENDER", "NOTPUSHED/authorize")
    _, body, _ = await hub.call(
        "POST", path, token=cpo.hub_token, json={"location_id": "LOC1"}, headers=to_parties(CPO, EMSP11)
    )
    assert body["status_code"] == 4000 and "token" in body["status_message"] and "data" not in body, body
    assert emsp.requests_to("/authorize")  # it was asked; its answer could not be carried
    losses = await recorded_losses(hub)
    assert any(x["path"] == "token" and x["kind"] == "dropped" for x in losses), losses


@pytest.mark.parametrize("cpo_v", ["2.2.1", "2.3.0"])
async def test_cdr_toward_211_is_completed_from_the_stored_location(start_hub, make_peer, cpo_v) -> None:
    """2.1.1 CDR Locations need last_updated, voltage and amperage: from the hub's stored Location."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    loc = location(cpo_v)
    _, answer, _ = await hub.call(
        "PUT", hub_path(cpo_v, "locations", "RECEIVER", "BE/BEC/LOC1"), token=cpo.hub_token, json=loc
    )
    assert answer["status_code"] == 1000, answer
    cdr = _cdr(cpo_v)
    status, body, _ = await hub.call("POST", hub_path(cpo_v, "cdrs", "RECEIVER"), token=cpo.hub_token, json=cdr)
    assert (status, body["status_code"]) == (200, 1000), body
    (got,) = emsp.requests_to("/cdrs")
    validate("2.1.1", "CDR", got.body)
    connector = got.body["location"]["evses"][0]["connectors"][0]
    assert (connector["voltage"], connector["amperage"]) == (220, 16)
    assert got.body["location"]["last_updated"] == loc["last_updated"]


@pytest.mark.parametrize("cpo_v", ["2.2.1", "2.3.0"])
async def test_cdr_toward_211_without_known_location_is_refused(start_hub, make_peer, cpo_v) -> None:
    """No stored Location to take voltage/amperage from: the CPO gets 2001 naming them, nothing is sent."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    _, body, _ = await hub.call("POST", hub_path(cpo_v, "cdrs", "RECEIVER"), token=cpo.hub_token, json=_cdr(cpo_v))
    assert body["status_code"] == 2001 and "voltage" in body["status_message"], body
    assert not emsp.requests_to("/cdrs")
    losses = await recorded_losses(hub)
    assert any(x["path"].endswith("voltage") and x["kind"] == "dropped" for x in losses), losses


def _cdr(version: str) -> dict[str, Any]:
    """The example CDR of CPO BE*BEC for eMSP NL*E11, in ``version``."""
    cdr = cdr_for(CPO, EMSP11)
    return dict(in_version(version, "CDR", copy.deepcopy(cdr)))


async def test_patch_bodies_are_validated_field_by_field() -> None:
    """A PATCH carries no required field, but each it carries must be valid in the version."""
    from routing.versions import validate as version_models

    assert version_models.patch_problems("2.1.1", "EVSE", {"status": "CHARGING"}) == []
    assert version_models.patch_problems("2.1.1", "EVSE", {"status": "NOPE", "parking_restrictions": ["X"]}) == [
        "parking_restrictions[]",
        "status",
    ]
    assert version_models.patch_problems("2.2.1", "Session", {"total_cost": {"incl_vat": 1}}) == ["total_cost.excl_vat"]
    assert version_models.patch_problems("2.2.1", "Session", {"end_date_time": None}) == []
