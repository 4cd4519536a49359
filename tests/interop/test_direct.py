"""Interop: requests addressed to one library party (OCPI-to set) and the answers the hub relays.

The library answers single objects with ``data`` as a one-element list, 404s with a FastAPI
``{"detail": ...}`` body, and redirects (307) a URL missing its trailing slash: what a real
FastAPI partner does. The eMSP and CPO clients here are the peers' ``/debug/send`` (the library
has none), with the library's models.
"""

from __future__ import annotations

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer
from tests.interop.wire import assert_ids, routing
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)

Pair = tuple[HubHandle, Peer, Peer]


async def test_emsp_gets_one_location_from_the_cpo_through_the_hub(pair: Pair) -> None:
    _, cpo, emsp = pair
    await cpo.seed("locations", "LOC1", P.location())

    answer = await emsp.send(module="locations", interface="SENDER", method="GET", path="LOC1", to=["NL", "XCP"])

    [got] = await cpo.received("/locations/", "GET")
    assert got["path"] == "/ocpi/cpo/2.2.1/locations/LOC1"
    assert routing(got["headers"]) == ("NL", "XMS", "NL", "XCP")
    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000
    assert routing(answer["headers"]) == ("NL", "XCP", "NL", "XMS")
    assert_ids(got, answer["headers"])
    assert got["status"] == 200 and answer["body"]["data"]  # its shape: test_single_objects_are_relayed_as_objects


async def test_realtime_authorization_reaches_the_emsp(pair: Pair) -> None:
    _, cpo, emsp = pair
    await emsp.seed("tokens", "12345678905880", P.token())

    answer = await cpo.send(
        module="tokens", interface="SENDER", method="POST", path="12345678905880/authorize", to=["NL", "XMS"]
    )

    [got] = await emsp.received("/authorize", "POST")
    assert got["path"] == "/ocpi/emsp/2.2.1/tokens/12345678905880/authorize"
    assert routing(got["headers"]) == ("NL", "XCP", "NL", "XMS")
    assert got["headers"]["authorization"].startswith("Token ")
    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
    assert routing(answer["headers"]) == ("NL", "XMS", "NL", "XCP")
    assert_ids(got, answer["headers"])


async def test_single_objects_are_relayed_as_objects(pair: Pair) -> None:
    _, cpo, emsp = pair
    await cpo.seed("locations", "LOC1", P.location())
    await emsp.seed("tokens", "12345678905880", P.token())

    location = await emsp.send(module="locations", interface="SENDER", method="GET", path="LOC1", to=["NL", "XCP"])
    authorization = await cpo.send(
        module="tokens", interface="SENDER", method="POST", path="12345678905880/authorize", to=["NL", "XMS"]
    )

    # The library answers both with data = [object]. 2.2.1 says one object (mod_locations 3.1.2
    # GET Object: Location; mod_tokens 3.2.2 POST authorize: AuthorizationInfo); the hub is
    # liberal in what it reads and strict in what it sends (docs/DESIGN-NOTES.md, Routing).
    assert location["body"]["status_code"] == 1000 and authorization["body"]["status_code"] == 1000
    assert isinstance(location["body"]["data"], dict), location["body"]["data"]
    assert location["body"]["data"]["id"] == "loc1"
    assert isinstance(authorization["body"]["data"], dict), authorization["body"]["data"]
    assert authorization["body"]["data"]["allowed"] == "ALLOWED"


async def test_direct_get_all_from_the_library_cpo(pair: Pair) -> None:
    _, cpo, emsp = pair
    await cpo.seed("locations", "LOC1", P.location())
    await cpo.seed("locations", "LOC2", P.location("LOC2"))

    # Party to Party via Hub (transport_and_format 4.2, routing headers overview): GET the CPO's
    # list with OCPI-to = the CPO; the hub forwards to the CPO's locations SENDER endpoint.
    answer = await emsp.send(module="locations", interface="SENDER", method="GET", to=["NL", "XCP"])

    got = await cpo.received("/locations", "GET")
    assert got[0]["path"] in ("/ocpi/cpo/2.2.1/locations/", "/ocpi/cpo/2.2.1/locations")
    assert routing(got[0]["headers"]) == ("NL", "XMS", "NL", "XCP")
    assert answer["status"] == 200
    assert answer["body"]["status_code"] == 1000, answer["body"]
    assert sorted(loc["id"] for loc in answer["body"]["data"]) == ["loc1", "loc2"]
    assert answer["headers"]["x-total-count"] == "2"
    assert routing(answer["headers"]) == ("NL", "XCP", "NL", "XMS")


async def test_error_the_hub_makes_for_a_non_ocpi_answer_carries_routing_headers(pair: Pair) -> None:
    _, cpo, emsp = pair

    answer = await emsp.send(module="locations", interface="SENDER", method="GET", path="NOPE", to=["NL", "XCP"])

    # The library answers an unknown id with HTTP 404 {"detail": "Object not found."}: no OCPI
    # envelope, so the hub answers with its own error (docs/DESIGN-NOTES.md: 4000) ...
    [got] = await cpo.received("/locations/NOPE", "GET")
    assert got["status"] == 404 and got["response"] == {"detail": "Object not found."}
    assert answer["status"] == 200 and answer["body"]["status_code"] == 4000
    assert answer["headers"]["x-correlation-id"] == answer["request_headers"]["X-Correlation-ID"]
    # ... and that answer is a response of a functional module: transport_and_format 4.2 (Message
    # Routing Headers) "these four headers SHALL be implemented for any request/response to/from a
    # Functional Module". FROM = the hub (no receiver answered in OCPI), TO = the requester.
    assert routing(answer["headers"]) == ("NL", "HUB", "NL", "XMS")


async def test_session_to_a_suspended_emsp_is_answered_4003(pair: Pair) -> None:
    hub, cpo, emsp = pair
    status, platforms = await hub.admin("GET", "/admin/platforms")
    [emsp_platform] = [p for p in platforms if p["roles"][0]["role"] == "EMSP"]
    status, _ = await hub.admin("POST", f"/admin/platforms/{emsp_platform['id']}/suspend")
    assert status == 200
    await cpo.seed("sessions", "101", P.session())

    push = await cpo.push("sessions", "101", hub)

    # status_codes 4xxx: 4001 "Unknown receiver (TO address is unknown)", 4003 "Connection
    # problem (receiving party is not connected)". NL*XMS is known to the hub, only suspended.
    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200
    assert [r["path"] for r in (await emsp.state())["requests"] if "/sessions/" in r["path"]] == []
    assert answer["response"]["status_code"] == 4003, answer["response"]
