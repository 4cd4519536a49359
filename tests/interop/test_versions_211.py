"""Interop across versions: extrawest-ocpi's own OCPI 2.1.1 CPO (peers/cpo211.py) and its 2.2.1 eMSP.

The 2.1.1 CPO is the library's 2.1.1 application (py_ocpi/modules/*/v_2_1_1), registered with
the hub as a CPO: 2.1.1 credentials carry one party and no role (credentials.md 2.1), so the role
comes from the admin API. The hub bridges what it pushes to the library's 2.2.1 eMSP and what
the eMSP pulls from it (routing/versions/). 2.1.1 sends tokens as they are (2.1.1 spec, transport and format
"Authorization"), 2.2.1 Base64-encoded: the library's 2.1.1 routes accept only the raw token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer
from tests.interop.wire import outbound, routing
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)

StartPeer = Callable[..., Awaitable[Peer]]
Trio = tuple[HubHandle, Peer, Peer, dict[str, Any]]


async def _connect(hub: HubHandle, cpo: Peer) -> tuple[int, Any]:
    return await hub.admin(
        "POST",
        "/admin/connections",
        {"versions_url": cpo.versions_url, "token_a": cpo.token_a, "name": "lib CPO 2.1.1", "role": "CPO"},
    )


async def test_hub_initiated_registration_reads_the_211_details_with_the_raw_token(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: StartPeer
) -> None:
    hub = await start_hub()
    cpo = await start_peer("CPO", *P.CPO, "2.1.1")

    status, platform = await _connect(hub, cpo)

    calls = [
        (r["method"], r["path"], r["headers"].get("authorization"), r["status"])
        for r in (await cpo.state())["requests"]
    ]
    assert status == 201, (platform, calls)
    # Whatever the hub probes first, what worked on 2.1.1 URLs is the token as the peer gave it.
    assert ("POST", "/ocpi/cpo/2.1.1/credentials/", f"Token {cpo.token_a}", 200) in calls
    assert ("GET", "/ocpi/2.1.1/details", f"Token {cpo.token_a}", 200) in calls
    assert platform["status"] == "CONNECTED" and platform["version"] == "2.1.1"


async def test_party_initiated_registration_of_the_211_cpo(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: StartPeer
) -> None:
    hub = await start_hub()
    cpo = await start_peer("CPO", *P.CPO, "2.1.1")
    token_a = await hub.invite("lib CPO 2.1.1", role="CPO")

    # Our client (the library has none for this side) registers on the hub's 2.1.1 URLs.
    answer = await cpo._post("/debug/register", {"versions_url": hub.versions_url, "token_a": token_a})

    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
    state = await cpo.state()
    token_for_hub = next(o for o in state["outbound"] if o["method"] == "POST")["body"]["token"]
    calls = [(r["method"], r["path"], r["headers"].get("authorization"), r["status"]) for r in state["requests"]]
    assert ("GET", "/ocpi/2.1.1/details", f"Token {token_for_hub}", 200) in calls
    status, platforms = await hub.admin("GET", "/admin/platforms")
    assert status == 200
    [platform] = platforms
    assert (platform["status"], platform["version"], platform["initiated_by"]) == ("CONNECTED", "2.1.1", "party")
    assert [(r["party_id"], r["role"]) for r in platform["roles"]] == [("XCP", "CPO")]


async def test_hub_initiated_registration_with_the_library_211_credentials_module(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: StartPeer
) -> None:
    hub = await start_hub()
    cpo = await start_peer("CPO", *P.CPO, "2.1.1")

    status, platform = await _connect(hub, cpo)

    assert status == 201, platform
    assert platform["status"] == "CONNECTED" and platform["initiated_by"] == "hub"
    assert platform["version"] == "2.1.1"
    # The role is the operator's (2.1.1 credentials name none); the party is the library's.
    assert [(r["country_code"], r["party_id"], r["role"]) for r in platform["roles"]] == [("NL", "XCP", "CPO")]
    # The library's 2.1.1 details: one URL per module, no role, under /ocpi/cpo/2.1.1/ with a slash.
    urls = {e["identifier"]: e["url"] for e in platform["endpoints"]}
    assert urls["locations"] == f"{cpo.base}/ocpi/cpo/2.1.1/locations/"
    state = await cpo.state()
    handshake = [(r["method"], r["path"], r["status"]) for r in state["requests"]]
    assert handshake == [
        ("GET", "/ocpi/versions", 200),
        ("GET", "/ocpi/2.1.1/details", 200),
        ("POST", "/ocpi/cpo/2.1.1/credentials/", 200),
    ]
    post = state["requests"][2]
    # The hub's credentials in 2.1.1 shape (credentials.md 2.1): flat, one party, no roles.
    assert set(post["body"]) == {"token", "url", "business_details", "party_id", "country_code"}
    assert post["body"]["url"] == hub.versions_url
    assert post["response"]["status_code"] == 1000
    # The library called the hub back on 2.1.1 with the hub's token, raw (no Base64 in 2.1.1).
    hub_token = post["body"]["token"]
    fetched = [(o["method"], o["url"], o["headers"]["authorization"], o["status"]) for o in state["outbound"]]
    assert fetched == [
        ("GET", hub.versions_url, f"Token {hub_token}", 200),
        ("GET", hub.base + "/ocpi/2.1.1", f"Token {hub_token}", 200),
    ]
    assert state["hub_token"] == hub_token


@pytest.fixture
async def trio(start_hub: Callable[..., Awaitable[HubHandle]], start_peer: StartPeer) -> Trio:
    """The hub, the library's 2.1.1 CPO (hub-initiated) and its 2.2.1 eMSP (party-initiated)."""
    hub = await start_hub()
    cpo, emsp = await start_peer("CPO", *P.CPO, "2.1.1"), await start_peer("EMSP", *P.EMSP)
    status, platform = await _connect(hub, cpo)  # the library reads 2.1.1 tokens raw, as the spec says
    assert status == 201, platform
    answer = await emsp.register(hub)
    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
    return hub, cpo, emsp, platform


async def test_after_the_handshake_the_hub_calls_the_211_cpo_with_the_raw_token(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: StartPeer
) -> None:
    hub = await start_hub()
    cpo, emsp = await start_peer("CPO", *P.CPO, "2.1.1"), await start_peer("EMSP", *P.EMSP)
    status, platform = await _connect(hub, cpo)
    assert status == 201, platform
    assert (await emsp.register(hub))["body"]["status_code"] == 1000
    await cpo.seed("locations", "LOC1", location_211())

    # No operator setting this time: the platform is on 2.1.1, where tokens go as they are.
    pulled = await emsp.send(module="locations", interface="SENDER", method="GET", to=list(P.CPO))

    gets = (await cpo.state())["requests"][3:]
    assert platform["interop"]["send_base64"] is False, platform["interop"]
    assert pulled["status"] == 200 and pulled["body"]["status_code"] == 1000, (pulled["body"], gets)


def location_211(location_id: str = "LOC1") -> dict[str, Any]:
    """mod_locations.md's Location example (locations_5), made acceptable to the library's 2.1.1 model.

    The library's model requires ``time_zone`` (the spec says ``?``) and reads ``status_schedule``
    as one object (the spec: ``*``, the example: ``[]``); the example's second connector lacks the
    ``last_updated`` the spec requires.
    """
    data = P.example_211("locations_5")
    data["id"] = location_id
    data["time_zone"] = "Europe/Brussels"
    del data["evses"][0]["status_schedule"]
    data["evses"][1]["connectors"][0]["last_updated"] = data["evses"][1]["last_updated"]
    return data


async def test_211_cpo_location_push_reaches_the_221_emsp_as_221(trio: Trio) -> None:
    hub, cpo, emsp, _ = trio
    await cpo.seed("locations", "LOC1", location_211())

    push = await cpo.push("locations", "LOC1", hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000, answer
    state = await cpo.state()
    # The library's 2.1.1 push: the hub's 2.1.1 details (raw token), then a PUT on its one
    # locations URL + /{country_code}/{party_id}/{id} (mod_locations.md 8.2.2).
    [sent] = outbound(state, "PUT", "/locations/")
    assert sent["url"] == f"{hub.base}/ocpi/2.1.1/locations/NL/XCP/LOC1"
    assert sent["headers"]["authorization"] == f"Token {state['hub_token']}"
    assert "country_code" not in sent["body"] and "publish" not in sent["body"]
    # The library's push serializes every unset optional field as null (pydantic 1 .dict()).
    assert sent["body"]["opening_times"] is None and sent["body"]["evses"][0]["evse_id"] is None
    [got] = await emsp.received("/locations/", "PUT")
    assert got["path"] == "/ocpi/emsp/2.2.1/locations/NL/XCP/LOC1"
    # Broadcast push (transport_and_format 4.2.2): FROM = the hub, TO = the receiver.
    assert routing(got["headers"]) == ("NL", "HUB", "NL", "XMS")
    assert got["headers"]["authorization"].startswith("Token ")
    # The eMSP (the library's 2.2.1 model) accepted it: a valid 2.2.1 Location.
    assert got["status"] == 200 and got["response"]["status_code"] == 1000, got["response"]
    body = got["body"]
    # 2.2.1 fields the 2.1.1 object lacks, filled by the hub (mod_locations 8.3.1).
    assert (body["country_code"], body["party_id"], body["id"]) == ("NL", "XCP", "LOC1")
    assert body["publish"] is True
    assert body["time_zone"] == sent["body"]["time_zone"]
    assert "type" not in body and body["parking_type"] == "ON_STREET"  # 2.1.1 type -> 2.2.1 parking_type
    evse = body["evses"][0]
    assert evse["uid"] == "3256"
    connector = evse["connectors"][0]
    # 2.1.1 voltage/amperage/tariff_id -> 2.2.1 max_voltage/max_amperage/tariff_ids.
    assert (connector["max_voltage"], connector["max_amperage"], connector["tariff_ids"]) == (220, 16, ["11"])
    stored = (await emsp.state())["objects"]["locations"]["loc1"]
    assert stored["country_code"].upper() == "NL" and stored["publish"] is True


async def test_221_emsp_pulls_the_211_cpo_locations_in_221_shape(trio: Trio) -> None:
    _, cpo, emsp, _ = trio
    await cpo.seed("locations", "LOC1", location_211())

    pulled = await emsp.send(module="locations", interface="SENDER", method="GET", to=list(P.CPO), parse_list=True)

    assert pulled["status"] == 200 and pulled["body"]["status_code"] == 1000, pulled
    assert len(pulled["parsed"]) == 1  # the library's 2.2.1 Location model accepted it
    [location] = pulled["body"]["data"]
    # 2.2.1 shape (mod_locations 8.3.1): the owner's party, publish, 2.2.1 connectors.
    assert (location["country_code"], location["party_id"], location["id"]) == ("NL", "XCP", "LOC1")
    assert location["publish"] is True and location["time_zone"] == "Europe/Brussels"
    assert location["evses"][0]["connectors"][0]["tariff_ids"] == ["11"]
    # The hub asked the 2.1.1 CPO on its one locations URL with the raw token it issued.
    # The hub drops the published trailing slash; Starlette's 307 sends it back to it.
    gets = await cpo.received("/locations", "GET", count=2)
    assert [(r["path"], r["status"]) for r in gets] == [
        ("/ocpi/cpo/2.1.1/locations", 307),
        ("/ocpi/cpo/2.1.1/locations/", 200),
    ]
    issued = next(r for r in (await cpo.state())["requests"] if r["method"] == "POST")["response"]["data"]["token"]
    assert {r["headers"]["authorization"] for r in gets} == {f"Token {issued}"}
    # 2.1.1 knows no routing headers (2.1.1 spec, transport and format): the hub sends none to the CPO.
    assert not any(h.startswith("ocpi-") for h in gets[-1]["headers"])


def session_211(session_id: str = "101") -> dict[str, Any]:
    """mod_sessions.md's Session example (sessions_1), made acceptable to the library's 2.1.1 model.

    The example lacks the ``auth_method`` the spec requires, writes the LocationType in lower case
    and the EVSE's ``status`` as ``STATUS``; the library's Location needs its ``time_zone``.
    """
    data = P.example_211("sessions_1")
    data["id"] = session_id
    data["auth_method"] = "WHITELIST"
    location = data["location"]
    location["type"] = location["type"].upper()
    location["time_zone"] = "Europe/Brussels"
    evse = location["evses"][0]
    evse["status"] = evse.pop("STATUS")
    return data


async def test_token_to_the_211_cpo_then_its_session_to_the_221_emsp(trio: Trio) -> None:
    hub, cpo, emsp, _ = trio
    token = P.token()  # contract_id DE8ACC12E46L89: the auth_id of mod_sessions.md's example
    await emsp.seed("tokens", token["uid"], token)

    # The eMSP's Token reaches the 2.1.1 CPO in 2.1.1 shape (mod_tokens.md 3.1).
    await emsp.push("tokens", token["uid"], hub)
    [put] = await cpo.received("/tokens/", "PUT")
    assert put["path"] == f"/ocpi/cpo/2.1.1/tokens/NL/XMS/{token['uid']}"
    # (The library's eMSP lowercased the CiString contract_id when it parsed the token.)
    assert put["body"]["auth_id"].upper() == token["contract_id"] and "contract_id" not in put["body"]
    assert "country_code" not in put["body"] and "party_id" not in put["body"]
    assert put["status"] == 200 and put["response"]["status_code"] == 1000, put["response"]
    assert not any(h.startswith("ocpi-") for h in put["headers"])

    # The CPO's 2.1.1 Session names the token by auth_id only: the hub finds the eMSP by it.
    await cpo.seed("sessions", "101", session_211())
    push = await cpo.push("sessions", "101", hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000, answer
    [sent] = outbound(await cpo.state(), "PUT", "/sessions/")
    assert sent["url"] == f"{hub.base}/ocpi/2.1.1/sessions/NL/XCP/101"
    [got] = await emsp.received("/sessions/", "PUT")
    assert got["path"] == "/ocpi/emsp/2.2.1/sessions/NL/XCP/101"
    # Open routing to the token's owner (transport_and_format 4.2.3): FROM the CPO, TO the eMSP.
    assert routing(got["headers"]) == ("NL", "XCP", "NL", "XMS")
    # Accepted by the library's 2.2.1 Session model: a valid 2.2.1 Session (mod_sessions 9.3.1).
    assert got["status"] == 200 and got["response"]["status_code"] == 1000, got["response"]
    body = got["body"]
    assert (body["country_code"], body["party_id"], body["id"]) == ("NL", "XCP", "101")
    # CiString values compared case-insensitively: the stored Token is the lowercased one the
    # library's eMSP pushed.
    assert {k: v.upper() for k, v in body["cdr_token"].items()} == {
        "country_code": "NL",
        "party_id": "XMS",
        "uid": token["uid"],
        "type": "RFID",
        "contract_id": token["contract_id"],
    }
    assert body["start_date_time"] == "2015-06-29T22:39:09Z" and "start_datetime" not in body
    assert (body["location_id"], body["evse_uid"], body["connector_id"]) == ("LOC1", "3256", "1")
    assert "location" not in body and "auth_id" not in body
    assert body["auth_method"] == "WHITELIST" and body["status"] == "PENDING"


def cdr_211() -> dict[str, Any]:
    """mod_cdrs.md's CDR example (cdrs_0) as the library's 2.1.1 model wants it (see the README).

    Its model names the stop time ``end_date_time`` (the spec: ``stop_date_time``), so the CDR it
    sends has no ``stop_date_time``; the rest are the example's own slips (cf. ``session_211``) and
    the model's required ``time_zone`` and Tariff ``last_updated``.
    """
    data = P.example_211("cdrs_0")
    data["end_date_time"] = data.pop("stop_date_time")
    location = data["location"]
    location["type"] = location["type"].upper()
    location["time_zone"] = "Europe/Brussels"
    evse = location["evses"][0]
    evse["status"] = evse.pop("STATUS")
    for tariff in data["tariffs"]:
        tariff["last_updated"] = data["last_updated"]
    return data


async def test_211_cpo_cdr_reaches_the_221_emsp_as_221(trio: Trio) -> None:
    hub, cpo, emsp, _ = trio
    token = P.token()
    await emsp.seed("tokens", token["uid"], token)
    await emsp.push("tokens", token["uid"], hub)
    await cpo.seed("cdrs", "12345", cdr_211())

    push = await cpo.push("cdrs", "12345", hub)

    # mod_cdrs.md 8.2.1: POST on the hub's one cdrs URL; the answer's Location is a 2.1.1 URL.
    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200
    assert answer["response"]["location"].startswith(hub.base + "/ocpi/2.1.1/")
    [sent] = outbound(await cpo.state(), "POST", "/cdrs")
    assert sent["url"] == f"{hub.base}/ocpi/2.1.1/cdrs/"
    assert sent["response"]["status_code"] == 1000
    # The library's CDR has end_date_time, no stop_date_time: the hub relays what the sender
    # sent (routing/versions/validate.py), and the 2.2.1 CDR is complete all the same.
    assert "stop_date_time" not in sent["body"]
    state = await emsp.wait_for(lambda s: "12345" in s["objects"].get("cdrs", {}), timeout=3.0)
    [post] = [r for r in state["requests"] if r["path"] == "/ocpi/emsp/2.2.1/cdrs/" and r["method"] == "POST"]
    assert routing(post["headers"]) == ("NL", "XCP", "NL", "XMS")
    # Accepted by the library's 2.2.1 CDR model (mod_cdrs 10.4.1).
    assert post["status"] == 200 and post["response"]["status_code"] == 1000, post["response"]
    body = post["body"]
    assert (body["country_code"], body["party_id"], body["id"]) == ("NL", "XCP", "12345")
    assert body["end_date_time"] == "2015-06-29T23:37:32Z"
    assert {k: v.upper() for k, v in body["cdr_token"].items()} == {
        "country_code": "NL",
        "party_id": "XMS",
        "uid": token["uid"],
        "type": "RFID",
        "contract_id": token["contract_id"],
    }
    where = body["cdr_location"]  # 2.1.1's embedded Location -> 2.2.1 CdrLocation
    assert (where["id"], where["evse_uid"], where["connector_id"]) == ("LOC1", "3256", "1")
    assert where["connector_power_type"] == "AC_1_PHASE" and "location" not in body
    assert body["total_cost"] == {"excl_vat": 4.0}  # 2.1.1 decimal -> 2.2.1 Price
    assert [(t["country_code"], t["party_id"]) for t in body["tariffs"]] == [("NL", "XCP")]


async def test_211_cpo_tariff_example_reaches_the_221_emsp_as_221(trio: Trio) -> None:
    hub, cpo, emsp, _ = trio
    # mod_tariffs.md's example as it is: the library's 2.1.1 model takes it unchanged.
    await cpo.seed("tariffs", "12", P.example_211("tariffs_4"))

    push = await cpo.push("tariffs", "12", hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000, answer
    [sent] = outbound(await cpo.state(), "PUT", "/tariffs/")
    assert sent["url"] == f"{hub.base}/ocpi/2.1.1/tariffs/NL/XCP/12"
    [got] = await emsp.received("/tariffs/", "PUT")
    assert got["path"] == "/ocpi/emsp/2.2.1/tariffs/NL/XCP/12"
    assert routing(got["headers"]) == ("NL", "HUB", "NL", "XMS")
    # Accepted by the library's 2.2.1 Tariff model (mod_tariffs 11.3.1).
    assert got["status"] == 200 and got["response"]["status_code"] == 1000, got["response"]
    body = got["body"]
    assert (body["country_code"], body["party_id"], body["id"]) == ("NL", "XCP", "12")
    assert body["tariff_alt_url"] == "https://company.com/tariffs/12"
    assert body["elements"][0]["price_components"] == [{"type": "TIME", "price": 2.0, "step_size": 300}]
    assert body["last_updated"] == "2015-06-29T20:39:09Z"
