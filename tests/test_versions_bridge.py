"""Issue 21, items 1-4: the object type, pages 2+, charging preferences/profiles and the small ones.

Every test runs once per ordered pair of versions that can exchange the message: a fake
partner on each version (real HTTP servers), the real app, and what each partner sees on the
wire validated against its own version's models.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from hub.ocpi.versioned import interface_211
from routing.clock import iso
from tests.support.bridge import (
    CPO,
    EMSP,
    PAIRS,
    answer_with,
    hub_path,
    in_version,
    join,
    location,
    recorded_losses,
    to_parties,
    validate,
)
from tests.support.commands import script
from tests.support.waiting import wait_for

pytestmark = pytest.mark.asyncio

NEW = ("2.2.1", "2.3.0")  # the versions with routing headers, charging preferences and profiles


async def push_location(hub: Any, cpo: Any, version: str, location_id: str = "LOC1") -> dict[str, Any]:
    """The CPO pushes a Location in its version (broadcast: stored, indexed, fanned out)."""
    body = location(version, location_id)
    path = hub_path(version, "locations", "RECEIVER", f"BE/BEC/{location_id}")
    _, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=body)
    assert answer["status_code"] == 1000, answer
    return body


@pytest.mark.parametrize(("cpo_v", "emsp_v"), PAIRS)
@pytest.mark.parametrize("kind", ["EVSE", "Connector"])
async def test_single_evse_and_connector_get_keep_their_type(start_hub, make_peer, cpo_v, emsp_v, kind) -> None:
    """GET sender/{location}/{evse}[/{connector}] through the hub: an EVSE/Connector in the caller's version."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    loc = await push_location(hub, cpo, cpo_v)
    evse = loc["evses"][0]
    obj, tail = (evse, "LOC1/3256") if kind == "EVSE" else (evse["connectors"][0], "LOC1/3256/1")
    cpo.module_responder = script((tail, obj))
    status, body, _ = await hub.call("GET", hub_path(emsp_v, "locations", "SENDER", tail), token=emsp.hub_token)
    assert (status, body["status_code"]) == (200, 1000), body
    assert [r.method for r in cpo.received if r.path.endswith(tail)] == ["GET"]  # relayed, not from the store
    validate(emsp_v, kind, body["data"])
    if kind == "EVSE":
        assert (body["data"]["uid"], body["data"]["status"]) == ("3256", "AVAILABLE"), body
        assert [c["id"] for c in body["data"]["connectors"]] == ["1", "2"]
    else:
        assert (body["data"]["id"], body["data"]["standard"]) == ("1", "IEC_62196_T2"), body


def _pages(cpo_v: str, pages: list[Any]) -> Any:
    """A responder serving ``pages`` by ``offset``, each but the last with a Link to the next."""

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        offset = int(request.query.get("offset", "0"))
        headers = {"X-Total-Count": str(len(pages)), "X-Limit": "1"}
        if offset + 1 < len(pages):
            base = str(request.url.with_query({}))
            headers["Link"] = f'<{base}?offset={offset + 1}&limit=1>; rel="next"'
        return answer_with([pages[offset]], headers)

    return respond


@pytest.mark.parametrize(("cpo_v", "emsp_v"), PAIRS)
async def test_page_two_is_in_the_callers_version(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """Page 1 and page 2 of a GET through the hub: both in the caller's version, Link on its prefix."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    if emsp_v == "2.1.1":  # no routing headers: served from the hub's copies, hub pagination
        for location_id in ("LOC1", "LOC2"):
            await push_location(hub, cpo, cpo_v, location_id)
        path, headers = "/ocpi/2.1.1/locations?limit=1", None
    else:  # directed to the CPO: its own pages, the next one proxied by the hub
        cpo.module_responder = _pages(cpo_v, [location(cpo_v, "LOC1"), location(cpo_v, "LOC2")])
        path, headers = hub_path(emsp_v, "locations", "SENDER"), to_parties(EMSP, CPO)
    status, page1, answer_headers = await hub.call("GET", path, token=emsp.hub_token, headers=headers)
    assert (status, page1["status_code"]) == (200, 1000), page1
    link = re.match(r"<([^>]*)>", answer_headers["Link"])
    assert link is not None
    prefix = f"{hub.base}/ocpi/{emsp_v}/"
    assert link.group(1).startswith(prefix), link.group(1)
    status, page2, _ = await hub.call("GET", link.group(1)[len(hub.base) :], token=emsp.hub_token)
    assert (status, page2["status_code"]) == (200, 1000), page2
    for page, location_id in ((page1, "LOC1"), (page2, "LOC2")):
        (got,) = page["data"]
        validate(emsp_v, "Location", got)
        assert got["id"] == location_id
        assert ("country_code" in got) == (emsp_v != "2.1.1"), got


PREFERENCES = {
    "profile_type": "FAST",
    "departure_time": "2026-12-05T18:00:00Z",
    "energy_need": 20.5,
    "discharge_allowed": False,
}


@pytest.mark.parametrize(("emsp_v", "cpo_v"), [p for p in PAIRS if p[0] != "2.1.1"])
async def test_charging_preferences_reach_the_cpo_as_preferences(start_hub, make_peer, emsp_v, cpo_v) -> None:
    """PUT sessions/{id}/charging_preferences carries ChargingPreferences; toward 2.1.1 a clear 2001."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    cpo.module_responder = script(("/charging_preferences", "ACCEPTED"))
    path = hub_path(emsp_v, "sessions", "SENDER", "S1/charging_preferences")
    status, body, _ = await hub.call("PUT", path, token=emsp.hub_token, json=PREFERENCES, headers=to_parties(EMSP, CPO))
    got = cpo.requests_to("/charging_preferences")
    if cpo_v == "2.1.1":
        assert body["status_code"] == 2001 and "2.1.1" in body["status_message"], body
        assert not got
        return
    assert (status, body["status_code"], body["data"]) == (200, 1000, "ACCEPTED"), body
    (received,) = got
    assert received.body == PREFERENCES
    validate(cpo_v, "ChargingPreferences", received.body)


ACTIVE = {
    "start_date_time": "2026-12-05T17:00:00Z",
    "charging_profile": {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": 11000}]},
}


@pytest.mark.parametrize(("cpo_v", "emsp_v"), [p for p in PAIRS if p[0] != "2.1.1"])
async def test_active_charging_profile_keeps_its_start(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """The CPO's Sender PUT of an ActiveChargingProfile: start_date_time arrives; 2.1.1 gets a clear 2001."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    path = hub_path(cpo_v, "chargingprofiles", "SENDER", "S1")
    status, body, _ = await hub.call("PUT", path, token=cpo.hub_token, json=ACTIVE, headers=to_parties(CPO, EMSP))
    got = emsp.requests_to("/chargingprofiles")
    if emsp_v == "2.1.1":
        assert body["status_code"] == 2001 and "2.1.1" in body["status_message"], body
        assert not got
        return
    assert (status, body["status_code"]) == (200, 1000), body
    (received,) = got
    assert received.body == ACTIVE
    validate(emsp_v, "ActiveChargingProfile", received.body)


@pytest.mark.parametrize(("cpo_v", "emsp_v"), PAIRS)
async def test_authorize_unknown_token_is_2004(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """Open-routed real-time authorization for a token no eMSP pushed: 2004 (mod_tokens), nothing sent."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    path = hub_path(cpo_v, "tokens", "SENDER", "NEVER-PUSHED/authorize")
    _, body, _ = await hub.call("POST", path, token=cpo.hub_token, json={"location_id": "LOC1"})
    assert body["status_code"] == 2004 and "data" not in body, body
    assert not emsp.requests_to("/authorize")


@pytest.mark.parametrize(("cpo_v", "emsp_v"), PAIRS)
async def test_broadcast_skips_scsp(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """A Location broadcast reaches the eMSP, not a smart-charging provider (Broadcast Push: opposite role)."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    scsp = await join(hub, make_peer, ("FR", "SCS", "SCSP"), "2.3.0" if cpo_v == "2.2.1" else "2.2.1")
    await push_location(hub, cpo, cpo_v)
    await wait_for(lambda: bool(emsp.requests_to("/locations")))
    (got,) = [r for r in emsp.requests_to("/locations") if r.method == "PUT"]
    validate(emsp_v, "Location", got.body)
    assert not scsp.requests_to("/locations")


@pytest.mark.parametrize(("vat", "expected"), [(None, "N/A"), (21.0, "NO")])
@pytest.mark.parametrize("cpo_v", ["2.1.1", "2.2.1"])
async def test_tariff_tax_included_toward_230(start_hub, make_peer, cpo_v, vat, expected) -> None:
    """tax_included from a 2.2.1 tariff follows its VAT; a 2.1.1 one is excl. VAT: NO."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp = await join(hub, make_peer, EMSP, "2.3.0")
    tariff = _tariff()
    for element in tariff["elements"]:
        for pc in element["price_components"]:
            pc.pop("vat", None)
            if vat is not None:
                pc["vat"] = vat
    body = in_version(cpo_v, "Tariff", tariff)
    path = hub_path(cpo_v, "tariffs", "RECEIVER", "BE/BEC/T1")
    _, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=body)
    assert answer["status_code"] == 1000, answer
    await wait_for(lambda: bool(emsp.requests_to("/tariffs")))
    (got,) = emsp.requests_to("/tariffs")
    validate("2.3.0", "Tariff", got.body)
    assert got.body["tax_included"] == ("NO" if cpo_v == "2.1.1" else expected), got.body


def _tariff() -> dict[str, Any]:
    return {
        "country_code": "BE",
        "party_id": "BEC",
        "id": "T1",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}],
        "last_updated": "2026-12-01T10:00:00Z",
    }


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1", "2.3.0"])
async def test_commands_have_no_sender_get(start_hub, make_peer, version) -> None:
    """GET on commands (either interface) is no OCPI operation: a clear error, not 1000 []."""
    hub = await start_hub()
    emsp = await join(hub, make_peer, EMSP, version)
    path = "/ocpi/2.1.1/commands" if version == "2.1.1" else f"/ocpi/{version}/commands/sender"
    status, body, _ = await hub.call("GET", path, token=emsp.hub_token)
    assert status == 405 and body["status_code"] == 2000 and "data" not in body, body
    assert "commands" in body["status_message"]


@pytest.mark.parametrize(
    ("module", "segments", "is_cpo", "expected"),
    [
        ("locations", ["BE", "BEC", "LOC1"], True, "RECEIVER"),  # the CPO reads its copy at the eMSP
        ("locations", ["LOC1"], False, "SENDER"),
        ("locations", [], False, "SENDER"),
        ("tokens", ["DE", "E22", "UID1"], False, "RECEIVER"),  # the eMSP reads its copy at the CPO
        ("tokens", [], True, "SENDER"),
        ("sessions", ["BE", "BEC", "S1"], True, "RECEIVER"),
    ],
)
async def test_211_single_url_get_picks_the_interface_by_owner(module, segments, is_cpo, expected) -> None:
    """2.1.1 has one URL per module: the owner's GET with its own ids is the Receiver interface."""
    assert interface_211(module, "GET", segments, is_cpo) == expected


@pytest.mark.parametrize("cpo_v", NEW)
async def test_unpublished_location_is_withheld_from_211(start_hub, make_peer, cpo_v) -> None:
    """publish=false: not pushed to, nor readable by, a 2.1.1 eMSP whose tokens it does not list."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp11 = await join(hub, make_peer, ("NL", "E11", "EMSP"), "2.1.1")
    other = await join(hub, make_peer, EMSP, "2.3.0" if cpo_v == "2.2.1" else "2.2.1")
    body = location(cpo_v)
    body.update(publish=False, publish_allowed_to=[{"uid": "SOMEONE", "type": "RFID"}])
    _, answer, _ = await hub.call(
        "PUT", hub_path(cpo_v, "locations", "RECEIVER", "BE/BEC/LOC1"), token=cpo.hub_token, json=body
    )
    assert answer["status_code"] == 1000, answer
    await wait_for(lambda: bool(other.requests_to("/locations")))
    (got,) = other.requests_to("/locations")
    assert got.body["publish"] is False and got.body["publish_allowed_to"][0]["uid"] == "SOMEONE"
    # A later PATCH (no publish in it) is judged by the stored copy: still withheld.
    patch = {"name": "Gent Zuid 2", "last_updated": "2026-12-05T10:00:00Z"}
    _, answer, _ = await hub.call(
        "PATCH", hub_path(cpo_v, "locations", "RECEIVER", "BE/BEC/LOC1"), token=cpo.hub_token, json=patch
    )
    assert answer["status_code"] == 1000, answer
    await wait_for(lambda: len(other.requests_to("/locations")) == 2)
    assert not emsp11.requests_to("/locations")
    _, pulled, _ = await hub.call("GET", "/ocpi/2.1.1/locations", token=emsp11.hub_token)
    assert pulled["data"] == [], pulled
    cpo.module_responder = script(("/LOC1", body))  # open-routed to the CPO: its own copy comes back
    _, single, _ = await hub.call("GET", "/ocpi/2.1.1/locations/LOC1", token=emsp11.hub_token)
    assert single["status_code"] == 2003 and "data" not in single, single
    cpo.module_responder = script(("/LOC1/3256", body["evses"][0]))  # nor its EVSEs
    _, evse, _ = await hub.call("GET", "/ocpi/2.1.1/locations/LOC1/3256", token=emsp11.hub_token)
    assert evse["status_code"] == 2003 and "data" not in evse, evse
    losses = await recorded_losses(hub)
    assert any(loss["path"] == "publish" and loss["kind"] == "dropped" for loss in losses), losses


@pytest.mark.parametrize("cpo_v", NEW)
async def test_unpublished_location_reaches_211_partner_it_names(start_hub, make_peer, cpo_v) -> None:
    """publish_allowed_to lists a 2.1.1 eMSP's own token: it gets the Location, recorded as approximated."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, cpo_v)
    emsp11 = await join(hub, make_peer, ("NL", "E11", "EMSP"), "2.1.1")
    token = {
        "uid": "E11TOK",
        "type": "RFID",
        "auth_id": "NL-E11-C00000001-X",
        "issuer": "E11",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-12-01T10:00:00Z",
    }
    _, answer, _ = await hub.call("PUT", "/ocpi/2.1.1/tokens/NL/E11/E11TOK", token=emsp11.hub_token, json=token)
    assert answer["status_code"] == 1000, answer
    body = location(cpo_v)
    body.update(publish=False, publish_allowed_to=[{"uid": "E11TOK", "type": "RFID"}])
    _, answer, _ = await hub.call(
        "PUT", hub_path(cpo_v, "locations", "RECEIVER", "BE/BEC/LOC1"), token=cpo.hub_token, json=body
    )
    assert answer["status_code"] == 1000, answer
    await wait_for(lambda: bool(emsp11.requests_to("/locations")))
    (got,) = emsp11.requests_to("/locations")
    validate("2.1.1", "Location", got.body)
    losses = await recorded_losses(hub)
    assert any(loss["path"] == "publish" and loss["kind"] == "approximated" for loss in losses), losses


async def test_211_patch_without_last_updated_is_accepted(start_hub, make_peer, clock) -> None:
    """The 2.1.1 example PATCH {"status": "CHARGING"}: accepted; 2.2.1+ get the hub's receive time."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.1.1")
    peers = {v: await join(hub, make_peer, (c, p, "EMSP"), v) for v, c, p in VERSION_EMSPS}
    await push_location(hub, cpo, "2.1.1")
    await wait_for(lambda: all(peer.requests_to("/locations") for peer in peers.values()))
    status, body, _ = await hub.call(
        "PATCH", "/ocpi/2.1.1/locations/BE/BEC/LOC1/3256", token=cpo.hub_token, json={"status": "CHARGING"}
    )
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: all(len(peer.requests_to("/locations")) == 2 for peer in peers.values()))
    for version, peer in peers.items():
        patch = peer.requests_to("/locations")[-1]
        assert patch.method == "PATCH" and patch.path.endswith("/BE/BEC/LOC1/3256"), patch
        if version == "2.1.1":
            assert patch.body == {"status": "CHARGING"}  # its own version: exactly what was sent
        else:
            assert patch.body == {"status": "CHARGING", "last_updated": iso(clock.now())}, patch.body
    losses = await recorded_losses(hub)
    assert any(x["path"] == "last_updated" and x["kind"] == "approximated" for x in losses), losses
    # The hub's copy carries it too: a 2.2.1 reader sees the status with a last_updated.
    _, pulled, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender", token=peers["2.2.1"].hub_token)
    (evse,) = [e for e in pulled["data"][0]["evses"] if e["uid"] == "3256"]
    assert evse["status"] == "CHARGING" and "last_updated" in evse


@pytest.mark.parametrize("version", NEW)
async def test_patch_without_last_updated_stays_2001_in_221_and_230(start_hub, make_peer, version) -> None:
    """2.2.1 and 2.3.0 require last_updated in a PATCH (transport_and_format): their own rules still hold."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, version)
    await push_location(hub, cpo, version)
    path = hub_path(version, "locations", "RECEIVER", "BE/BEC/LOC1/3256")
    _, body, _ = await hub.call("PATCH", path, token=cpo.hub_token, json={"status": "CHARGING"})
    assert body["status_code"] == 2001 and "last_updated" in body["status_message"], body


VERSION_EMSPS = [("2.1.1", "NL", "E11"), ("2.2.1", "DE", "E22"), ("2.3.0", "FR", "E23")]
