"""Issue 21, items 8-9: tokens found by auth_id; the hub's copies keep what the sender sent.

The hub's store serves GET-all and single Location GETs. Its copy is 2.2.1, but a reader on the
sender's own version must get exactly what was pushed (2.3.0 fields included), while readers on
other versions get the translation. 2.1.1 Sessions and CDRs name their token by auth_id: the
hub's stored Tokens give the cdr_token its real uid, type and owner.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hub.keys import DIRECTORY, PULLER
from routing.messages import PartyRef
from routing.objects import ObjectRef, origin_after
from storage.objects import StoredObject
from tests.support.bridge import (
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
from tests.support.routing import HUB, cdr_for, example, session_for
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.both_backends]

CPO11 = ("NL", "C11", "CPO")
CPO23 = ("FR", "C23", "CPO")


async def put(hub: Any, peer: Any, path: str, body: Any, method: str = "PUT") -> None:
    """A push the hub must accept."""
    _, answer, _ = await hub.call(method, path, token=peer.hub_token, json=body)
    assert answer["status_code"] == 1000, answer


def location_230() -> dict[str, Any]:
    """A 2.3.0 Location of FR*C23 with fields 2.2.1 has no place for."""
    body = location("2.3.0")
    body.update(country_code="FR", party_id="C23", help_phone="+33123456789")
    body["evses"][0]["connectors"][0]["capabilities"] = ["ISO_15118_2_PLUG_AND_CHARGE"]
    return body


async def test_230_reader_gets_exactly_what_a_230_cpo_pushed(start_hub, make_peer) -> None:
    """GET-all and single GET through the hub's store: 2.3.0 in, the same 2.3.0 out; 2.2.1 readers translated."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO23, "2.3.0")
    emsp23 = await join(hub, make_peer, EMSP, "2.3.0")
    emsp22 = await join(hub, make_peer, ("NL", "E22", "EMSP"), "2.2.1")
    body = location_230()
    await put(hub, cpo, "/ocpi/2.3.0/locations/receiver/FR/C23/LOC1", body)
    # A PATCH in the same version is merged into the kept body too.
    patch = {"status": "CHARGING", "last_updated": "2026-12-05T10:00:00Z"}
    await put(hub, cpo, "/ocpi/2.3.0/locations/receiver/FR/C23/LOC1/3256", patch, "PATCH")
    expected = copy.deepcopy(body)
    expected["evses"][0].update(patch)
    expected["last_updated"] = patch["last_updated"]
    _, page, _ = await hub.call("GET", "/ocpi/2.3.0/locations/sender", token=emsp23.hub_token)
    assert page["data"] == [expected], page
    to_hub = to_parties(EMSP, HUB)
    _, single, _ = await hub.call("GET", "/ocpi/2.3.0/locations/sender/LOC1", token=emsp23.hub_token, headers=to_hub)
    assert single["data"] == expected, single
    _, evse, _ = await hub.call("GET", "/ocpi/2.3.0/locations/sender/LOC1/3256", token=emsp23.hub_token, headers=to_hub)
    assert evse["data"] == expected["evses"][0], evse
    _, page22, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender", token=emsp22.hub_token)
    (got22,) = page22["data"]
    validate("2.2.1", "Location", got22)
    assert "help_phone" not in got22 and got22["evses"][0]["status"] == "CHARGING"


async def test_211_reader_gets_exactly_what_a_211_cpo_pushed(start_hub, make_peer) -> None:
    """2.1.1 in (with a 2.1.1 PATCH without last_updated), the same 2.1.1 out; 2.3.0 readers translated."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp11 = await join(hub, make_peer, ("NL", "E11", "EMSP"), "2.1.1")
    emsp23 = await join(hub, make_peer, EMSP, "2.3.0")
    body = location("2.1.1")
    body["type"] = "PARKING_LOT"
    await put(hub, cpo, "/ocpi/2.1.1/locations/NL/C11/LOC1", body)
    await put(hub, cpo, "/ocpi/2.1.1/locations/NL/C11/LOC1/3256", {"status": "CHARGING"}, "PATCH")
    expected = copy.deepcopy(body)
    expected["evses"][0]["status"] = "CHARGING"
    _, page, _ = await hub.call("GET", "/ocpi/2.1.1/locations", token=emsp11.hub_token)
    assert page["data"] == [expected], page
    _, page23, _ = await hub.call("GET", "/ocpi/2.3.0/locations/sender", token=emsp23.hub_token)
    (got23,) = page23["data"]
    validate("2.3.0", "Location", got23)
    assert got23["parking_type"] == "PARKING_LOT" and got23["evses"][0]["status"] == "CHARGING"


async def test_only_a_same_version_push_merges_into_the_kept_body() -> None:
    """A PATCH in the kept body's version merges into it; another version's drops it (readers translate)."""
    ref = ObjectRef(PartyRef("FR", "C23"), "LOC1")
    stored = StoredObject("{}", "", "", "2.3.0", '{"id":"LOC1","name":"a"}')
    merged = origin_after("locations", "PATCH", ref, stored, ("2.3.0", {"name": "b"}), False)
    assert merged == ("2.3.0", {"id": "LOC1", "name": "b"})
    assert origin_after("locations", "PATCH", ref, stored, ("2.1.1", {"name": "b"}), False) is None
    assert origin_after("locations", "PATCH", ref, stored, None, False) is None
    assert origin_after("locations", "PUT", ref, stored, ("2.1.1", {"id": "LOC1"}), True) == ("2.1.1", {"id": "LOC1"})


def token_of(version: str, contract_id: str) -> dict[str, Any]:
    """The example Token of DE*E22 (uid 012345678, RFID) with this contract id, in ``version``."""
    token = example("token_put_example.json")
    token.update(country_code="DE", party_id="E22", uid="012345678", type="RFID", contract_id=contract_id)
    return dict(in_version(version, "Token", token))


@pytest.mark.parametrize("emsp_v", ["2.2.1", "2.3.0"])
async def test_211_auth_id_finds_the_stored_token(start_hub, make_peer, emsp_v) -> None:
    """2.1.1 Session/CDR auth_id: cdr_token from the hub's Token store (real uid, type, owner)."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp = await join(hub, make_peer, EMSP, emsp_v)
    await put(hub, emsp, hub_path(emsp_v, "tokens", "RECEIVER", "DE/E22/012345678"), token_of(emsp_v, "XX-ACC-1"))
    await put(hub, cpo, "/ocpi/2.1.1/locations/NL/C11/LOC1", location("2.1.1"))
    session = in_version("2.1.1", "Session", session_for(CPO11, ("DE", "E22", "EMSP")))
    session["auth_id"] = "XX-ACC-1"  # names no owner: only the store can tell
    await put(hub, cpo, "/ocpi/2.1.1/sessions/NL/C11/101", session)
    await wait_for(lambda: bool(emsp.requests_to("/sessions/")))
    (got,) = emsp.requests_to("/sessions/")
    validate(emsp_v, "Session", got.body)
    assert got.body["cdr_token"] == {
        "country_code": "DE",
        "party_id": "E22",
        "uid": "012345678",
        "type": "RFID",
        "contract_id": "XX-ACC-1",
    }
    cdr = in_version("2.1.1", "CDR", cdr_for(CPO11, ("DE", "E22", "EMSP")))
    cdr["auth_id"] = "XX-ACC-1"
    await put(hub, cpo, "/ocpi/2.1.1/cdrs", cdr, "POST")
    (got,) = emsp.requests_to("/cdrs")
    assert (got.body["cdr_token"]["uid"], got.body["cdr_token"]["party_id"]) == ("012345678", "E22")
    assert not [x for x in await recorded_losses(hub) if x["path"] == "cdr_token"]


async def test_211_unknown_auth_id_falls_back_with_a_loss(start_hub, make_peer) -> None:
    """No stored Token with that contract id: the eMA-ID is parsed for the owner, recorded as approximated."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp = await join(hub, make_peer, EMSP, "2.2.1")
    await put(hub, cpo, "/ocpi/2.1.1/locations/NL/C11/LOC1", location("2.1.1"))
    session = in_version("2.1.1", "Session", session_for(CPO11, ("DE", "E22", "EMSP")))
    session["auth_id"] = "DE-E22-C12345678-X"
    await put(hub, cpo, "/ocpi/2.1.1/sessions/NL/C11/101", session)
    await wait_for(lambda: bool(emsp.requests_to("/sessions/")))
    (got,) = emsp.requests_to("/sessions/")
    assert got.body["cdr_token"]["uid"] == "DE-E22-C12345678-X" and got.body["cdr_token"]["type"] == "OTHER"
    assert any(x["path"] == "cdr_token" and x["kind"] == "approximated" for x in await recorded_losses(hub))


@pytest.mark.parametrize("cpo_v", ["2.1.1", "2.3.0"])
async def test_pulled_objects_are_translated_and_kept_as_sent(start_hub, make_peer, cpo_v) -> None:
    """A pull-only CPO on 2.1.1/2.3.0: its pulled Locations are stored as 2.2.1 plus what it sent."""
    hub = await start_hub()
    party = CPO11 if cpo_v == "2.1.1" else CPO23
    cpo = await join(hub, make_peer, party, cpo_v)
    same = await join(hub, make_peer, ("NL", "E99", "EMSP"), cpo_v)
    emsp22 = await join(hub, make_peer, EMSP, "2.2.1")
    body = location_230() if cpo_v == "2.3.0" else location("2.1.1")
    cpo.module_responder = script(("/locations", [body]))
    _, platforms = await hub.admin("GET", "/admin/platforms")
    pid = next(p["id"] for p in platforms if p["versions_url"] == cpo.versions_url)
    status, _ = await hub.admin("PATCH", f"/admin/platforms/{pid}", {"interop": {"pull_interval": 3600}})
    assert status == 200
    assert await hub.app[PULLER].pull(hub.app[DIRECTORY].platform(pid)) == 1
    _, page22, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender", token=emsp22.hub_token)
    (got22,) = page22["data"]
    validate("2.2.1", "Location", got22)
    assert (got22["country_code"], got22["party_id"]) == party[:2]
    _, page, _ = await hub.call("GET", hub_path(cpo_v, "locations", "SENDER"), token=same.hub_token)
    assert page["data"] == [body], page
