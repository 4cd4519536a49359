"""Issue 21, item 10: the round-trip matrix of every module for every ordered pair of versions.

For each (sender version, receiver version), same-version pairs included, and each module:
pushes, PATCHes, single GETs, GET-all pages 1 and 2, synchronous answers and callbacks go
through the real hub between fake partners (real HTTP servers). Every object a partner
receives, on its own endpoint or in an answer, is validated against that partner's version's
models (PATCH bodies field by field). What cannot be carried is listed in docs/DESIGN-NOTES.md.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter

from routing.versions import validate as version_models
from tests.support.bridge import CPO, EMSP, VERSIONS, hub_path, in_version, join, location, to_parties
from tests.support.commands import script
from tests.support.fakes import FakePlatform
from tests.support.routing import cdr_for, example, session_for
from tests.support.waiting import wait_for

pytestmark = pytest.mark.asyncio

ALL_PAIRS = list(itertools.product(VERSIONS, VERSIONS))
NEW_PAIRS = [(a, b) for a, b in ALL_PAIRS if "2.1.1" not in (a, b)]
CONTRACT = "DE-E22-C12345678-X"


def check(version: str, kind: str, body: Any, partial: bool = False) -> None:
    """Fail unless ``body`` is a valid ``kind`` (or, ``partial``, valid fields of one) in ``version``."""
    model = version_models.model_of(version, kind)
    assert model is not None, (version, kind)
    if not partial:
        model.model_validate(body)
        return
    assert isinstance(body, dict), body
    for name, value in body.items():
        info = model.model_fields.get(name)
        assert info is not None, f"{kind}.{name} does not exist in OCPI {version}"
        field_type: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        TypeAdapter(field_type).validate_python(value)


def pushed(peer: FakePlatform, part: str, method: str) -> list[Any]:
    """Bodies of the requests ``peer`` received on a path containing ``part`` with ``method``."""
    return [r.body for r in peer.received if part in r.path and r.method == method]


async def ok(hub: Any, peer: FakePlatform, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    """A call the hub must answer 1000; its envelope."""
    status, answer, headers = await hub.call(method, path, token=peer.hub_token, json=body, **kw)
    assert (status, answer["status_code"]) == (200, 1000), (method, path, answer)
    answer["_headers"] = headers
    return answer


async def pages(hub: Any, reader: FakePlatform, version: str, module: str, kind: str) -> list[Any]:
    """GET-all through the hub one object a page: pages 1 and 2, each item validated."""
    path = hub_path(version, module, "SENDER") + "?limit=1"
    first = await ok(hub, reader, "GET", path)
    link = re.match(r"<([^>]*)>", first["_headers"]["Link"])
    assert link is not None and link.group(1).startswith(f"{hub.base}/ocpi/{version}/"), first["_headers"]
    second = await ok(hub, reader, "GET", link.group(1)[len(hub.base) :])
    items = first["data"] + second["data"]
    assert len(items) == 2, items
    for item in items:
        check(version, kind, item)
    return items


def core_token(uid: str = "012345678") -> dict[str, Any]:
    """The eMSP's (DE*E22) example Token in 2.2.1."""
    token = example("token_put_example.json")
    token.update(country_code="DE", party_id="E22", uid=uid, type="RFID", contract_id=CONTRACT)
    return dict(token)


async def push_token(hub: Any, emsp: FakePlatform, version: str, uid: str = "012345678") -> None:
    """The eMSP pushes a Token (the hub learns its contract_id: 2.1.1 auth_id lookups)."""
    body = in_version(version, "Token", core_token(uid))
    await ok(hub, emsp, "PUT", hub_path(version, "tokens", "RECEIVER", f"DE/E22/{uid}"), body)


async def push_location(hub: Any, cpo: FakePlatform, version: str, location_id: str = "LOC1") -> dict[str, Any]:
    """The CPO pushes a Location in its version."""
    body = location(version, location_id)
    await ok(hub, cpo, "PUT", hub_path(version, "locations", "RECEIVER", f"BE/BEC/{location_id}"), body)
    return body


async def cpo_and_emsp(hub: Any, make_peer: Any, cpo_v: str, emsp_v: str) -> tuple[FakePlatform, FakePlatform]:
    """A CPO and an eMSP on their versions, both registered."""
    return await join(hub, make_peer, CPO, cpo_v), await join(hub, make_peer, EMSP, emsp_v)


@pytest.mark.parametrize(("cpo_v", "emsp_v"), ALL_PAIRS)
async def test_locations(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """Push, PATCH, single GETs (Location, EVSE, Connector) and GET-all pages."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    sent = [await push_location(hub, cpo, cpo_v, i) for i in ("LOC1", "LOC2")]
    await wait_for(lambda: len(pushed(emsp, "/locations", "PUT")) == 2)
    for body in pushed(emsp, "/locations", "PUT"):
        check(emsp_v, "Location", body)
    patch = {"status": "CHARGING"} | ({} if cpo_v == "2.1.1" else {"last_updated": "2026-12-05T10:00:00Z"})
    await ok(hub, cpo, "PATCH", hub_path(cpo_v, "locations", "RECEIVER", "BE/BEC/LOC1/3256"), patch)
    await wait_for(lambda: bool(pushed(emsp, "/locations", "PATCH")))
    check(emsp_v, "EVSE", pushed(emsp, "/locations", "PATCH")[0], partial=True)
    await pages(hub, emsp, emsp_v, "locations", "Location")
    evse = sent[0]["evses"][0]
    cpo.module_responder = script(("/LOC1/3256/1", evse["connectors"][0]), ("/LOC1/3256", evse), ("/LOC1", sent[0]))
    for tail, kind in (("LOC1", "Location"), ("LOC1/3256", "EVSE"), ("LOC1/3256/1", "Connector")):
        answer = await ok(hub, emsp, "GET", hub_path(emsp_v, "locations", "SENDER", tail))
        check(emsp_v, kind, answer["data"])


@pytest.mark.parametrize(("cpo_v", "emsp_v"), ALL_PAIRS)
async def test_tariffs(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """Push and GET-all pages (tariffs have no PATCH in 2.2.1)."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    for tariff_id in ("T1", "T2"):
        tariff = example("tariff_put_example.json")
        tariff.update(country_code="BE", party_id="BEC", id=tariff_id, last_updated="2026-12-01T10:00:00Z")
        body = in_version(cpo_v, "Tariff", tariff)
        await ok(hub, cpo, "PUT", hub_path(cpo_v, "tariffs", "RECEIVER", f"BE/BEC/{tariff_id}"), body)
    await wait_for(lambda: len(pushed(emsp, "/tariffs", "PUT")) == 2)
    for body in pushed(emsp, "/tariffs", "PUT"):
        check(emsp_v, "Tariff", body)
    await pages(hub, emsp, emsp_v, "tariffs", "Tariff")


@pytest.mark.parametrize(("emsp_v", "cpo_v"), ALL_PAIRS)
async def test_tokens(start_hub, make_peer, emsp_v, cpo_v) -> None:
    """Push, PATCH, GET-all pages, and the real-time authorization answer."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    for uid in ("UID1", "UID2"):
        await push_token(hub, emsp, emsp_v, uid)
    await wait_for(lambda: len(pushed(cpo, "/tokens", "PUT")) == 2)
    for body in pushed(cpo, "/tokens", "PUT"):
        check(cpo_v, "Token", body)
    patch = {"valid": False} | ({} if emsp_v == "2.1.1" else {"last_updated": "2026-12-05T10:00:00Z"})
    await ok(hub, emsp, "PATCH", hub_path(emsp_v, "tokens", "RECEIVER", "DE/E22/UID1"), patch)
    await wait_for(lambda: bool(pushed(cpo, "/tokens", "PATCH")))
    check(cpo_v, "Token", pushed(cpo, "/tokens", "PATCH")[0], partial=True)
    await pages(hub, cpo, cpo_v, "tokens", "Token")
    info = {"allowed": "ALLOWED"} if emsp_v == "2.1.1" else {"allowed": "ALLOWED", "token": core_token("UID1")}
    emsp.module_responder = script(("/authorize", in_version(emsp_v, "AuthorizationInfo", info)))
    answer = await ok(hub, cpo, "POST", hub_path(cpo_v, "tokens", "SENDER", "UID1/authorize"), {"location_id": "L"})
    check(cpo_v, "AuthorizationInfo", answer["data"])
    check(emsp_v, "LocationReferences", pushed(emsp, "/authorize", "POST")[0])


@pytest.mark.parametrize(("cpo_v", "emsp_v"), ALL_PAIRS)
async def test_sessions(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """Push (open-routed by token), PATCH and GET-all pages."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    await push_token(hub, emsp, emsp_v)
    await push_location(hub, cpo, cpo_v)
    for session_id in ("101", "102"):
        session = session_for(CPO, EMSP, session_id)
        session["cdr_token"]["contract_id"] = CONTRACT
        body = in_version(cpo_v, "Session", session, example("location_example.json"))
        await ok(hub, cpo, "PUT", hub_path(cpo_v, "sessions", "RECEIVER", f"BE/BEC/{session_id}"), body)
    await wait_for(lambda: len(pushed(emsp, "/sessions", "PUT")) == 2)
    for body in pushed(emsp, "/sessions", "PUT"):
        check(emsp_v, "Session", body)
    patch = copy.deepcopy(example("session_patch_example_total_cost.json"))
    patch = in_version(cpo_v, "Session", patch, partial=True)
    if cpo_v == "2.1.1":
        patch.pop("last_updated", None)
    await ok(hub, cpo, "PATCH", hub_path(cpo_v, "sessions", "RECEIVER", "BE/BEC/101"), patch)
    await wait_for(lambda: bool(pushed(emsp, "/sessions", "PATCH")))
    check(emsp_v, "Session", pushed(emsp, "/sessions", "PATCH")[0], partial=True)
    await pages(hub, emsp, emsp_v, "sessions", "Session")


@pytest.mark.parametrize(("cpo_v", "emsp_v"), ALL_PAIRS)
async def test_cdrs(start_hub, make_peer, cpo_v, emsp_v) -> None:
    """POST (open-routed by token) and GET-all pages."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    await push_token(hub, emsp, emsp_v)
    await push_location(hub, cpo, cpo_v)
    for cdr_id in ("C1", "C2"):
        cdr = cdr_for(CPO, EMSP, cdr_id)
        cdr["cdr_token"]["contract_id"] = CONTRACT
        body = in_version(cpo_v, "CDR", cdr, example("location_example.json"))
        await ok(hub, cpo, "POST", hub_path(cpo_v, "cdrs", "RECEIVER"), body)
    bodies = pushed(emsp, "/cdrs", "POST")
    assert len(bodies) == 2, bodies
    for body in bodies:
        check(emsp_v, "CDR", body)
    await pages(hub, emsp, emsp_v, "cdrs", "CDR")


@pytest.mark.parametrize(("emsp_v", "cpo_v"), ALL_PAIRS)
async def test_commands(start_hub, make_peer, emsp_v, cpo_v) -> None:
    """START_SESSION: the command, the CPO's CommandResponse and its async result (callback)."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    await push_location(hub, cpo, cpo_v)
    response = {"result": "ACCEPTED"} | ({} if cpo_v == "2.1.1" else {"timeout": 30})
    cpo.module_responder = script(("/commands", response))
    response_url = f"{emsp.base}/ocpi/{emsp_v}/emsp/commands/START_SESSION/42"
    core = {"response_url": response_url, "token": core_token(), "location_id": "LOC1", "evse_uid": "3256"}
    path = (
        "/ocpi/2.1.1/commands/START_SESSION" if emsp_v == "2.1.1" else f"/ocpi/{emsp_v}/commands/receiver/START_SESSION"
    )
    answer = await ok(hub, emsp, "POST", path, in_version(emsp_v, "StartSession", core))
    check(emsp_v, "CommandResponse", answer["data"])
    (command,) = pushed(cpo, "/commands", "POST")
    check(cpo_v, "StartSession", command)
    callback = command["response_url"]
    assert callback.startswith(f"{hub.base}/ocpi/{cpo_v}/"), callback
    await ok(hub, cpo, "POST", callback[len(hub.base) :], {"result": "ACCEPTED"})
    (result,) = [r.body for r in emsp.received if r.path.endswith("/START_SESSION/42")]
    check(emsp_v, "CommandResult", result)


@pytest.mark.parametrize(("emsp_v", "cpo_v"), NEW_PAIRS)
async def test_chargingprofiles(start_hub, make_peer, emsp_v, cpo_v) -> None:
    """SetChargingProfile, the CPO's ChargingProfileResponse and its result (callback)."""
    hub = await start_hub()
    cpo, emsp = await cpo_and_emsp(hub, make_peer, cpo_v, emsp_v)
    cpo.module_responder = script(("/chargingprofiles", {"result": "ACCEPTED", "timeout": 30}))
    body = {
        "charging_profile": {
            "charging_rate_unit": "W",
            "charging_profile_period": [{"start_period": 0, "limit": 11000}],
        },
        "response_url": f"{emsp.base}/ocpi/{emsp_v}/cb/7",
    }
    path = f"/ocpi/{emsp_v}/chargingprofiles/receiver/S1"
    answer = await ok(hub, emsp, "PUT", path, body, headers=to_parties(EMSP, CPO))
    check(emsp_v, "ChargingProfileResponse", answer["data"])
    (sent,) = pushed(cpo, "/chargingprofiles", "PUT")
    check(cpo_v, "SetChargingProfile", sent)
    result = {"result": "ACCEPTED"}
    await ok(hub, cpo, "POST", sent["response_url"][len(hub.base) :], result, headers=to_parties(CPO, EMSP))
    (got,) = [r.body for r in emsp.received if r.path.endswith("/cb/7")]
    check(emsp_v, "ChargingProfileResult", got)
