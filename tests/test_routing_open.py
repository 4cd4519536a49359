"""Open routing (no OCPI-to headers): the hub picks the receiver from content and its routing index.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import pytest

from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    answers,
    cdr_for,
    example,
    module_requests,
    network,
    party_of,
    rh,
    session_for,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

SESSION_URL = "/ocpi/2.2.1/sessions/receiver/BE/BEC/101"


async def test_session_put_goes_to_the_cdr_token_owner(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP2)
    status, body, headers = await net.call("PUT", SESSION_URL, net.cpo1, json=session)
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.emsp2, "sessions")
    assert leg.path == "/ocpi/2.2.1/sessions/receiver/BE/BEC/101" and leg.body == session
    # The hub names the receiver it chose and the caller as sender.
    assert party_of(leg, "to") == EMSP2[:2] and party_of(leg, "from") == CPO1[:2]
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == EMSP2[:2]
    for other in (net.emsp1, net.cpo2):
        assert module_requests(other, "sessions") == []


async def test_session_patch_follows_its_put_even_a_directed_one(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    # The PUT was addressed to eMSP one although the token belongs to eMSP two: the PATCH follows the PUT.
    status, _, _ = await net.call("PUT", SESSION_URL, net.cpo1, json=session_for(CPO1, EMSP2), headers=rh(CPO1, EMSP1))
    assert status == 200
    patch = example("session_patch_example_charging_period.json")
    status, body, _ = await net.call("PATCH", SESSION_URL, net.cpo1, json=patch)
    assert status == 200 and body["status_code"] == 1000, body
    put, patched = module_requests(net.emsp1, "sessions")
    assert (put.method, patched.method) == ("PUT", "PATCH")
    assert patched.body == patch and party_of(patched, "to") == EMSP1[:2]
    assert module_requests(net.emsp2, "sessions") == []


async def test_session_patch_of_an_unknown_session_is_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    patch = example("session_patch_example_total_cost.json")
    _status, body, _ = await net.call("PATCH", "/ocpi/2.2.1/sessions/receiver/BE/BEC/nope", net.cpo1, json=patch)
    assert body["status_code"] == 4001, body
    assert all(module_requests(p, "sessions") == [] for p in net.peers)


async def test_session_put_without_token_owner_and_no_history_is_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP1)
    del session["cdr_token"]["country_code"], session["cdr_token"]["party_id"]  # 2.2-style CdrToken
    _status, body, _ = await net.call("PUT", SESSION_URL, net.cpo1, json=session)
    assert body["status_code"] == 4001, body
    assert all(module_requests(p, "sessions") == [] for p in net.peers)


async def test_cdr_post_goes_to_the_cdr_token_owner(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    cdr = cdr_for(CPO1, EMSP1)
    net.emsp1.module_responder = answers(headers={"Location": net.emsp1.base + "/ocpi/2.2.1/cdrs/receiver/abc"})
    status, body, _ = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver/", net.cpo1, json=cdr)
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.emsp1, "cdrs")
    assert leg.method == "POST" and leg.path == "/ocpi/2.2.1/cdrs/receiver" and leg.body == cdr
    assert party_of(leg, "to") == EMSP1[:2]
    assert module_requests(net.emsp2, "cdrs") == []


async def _broadcast_loc(net, cpo, party, loc_id: str = "LOC1") -> None:
    location = {**example("location_example.json"), "country_code": party[0], "party_id": party[1], "id": loc_id}
    status, body, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/locations/receiver/{party[0]}/{party[1]}/{loc_id}", cpo, json=location
    )
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) >= 1)


async def test_get_location_on_sender_interface_goes_to_the_cpo_that_pushed_it(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await _broadcast_loc(net, net.cpo2, CPO2, "LOC-DE-9")
    net.emsp1.received.clear()
    evse = example("location_example.json")["evses"][0]
    net.cpo2.module_responder = answers(evse)
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/locations/sender/loc-de-9/3256", net.emsp1)
    assert status == 200 and body["data"] == evse, body
    (leg,) = module_requests(net.cpo2, "locations")
    assert leg.method == "GET" and leg.path == "/ocpi/2.2.1/locations/sender/loc-de-9/3256"
    assert party_of(leg, "to") == CPO2[:2] and party_of(leg, "from") == EMSP1[:2]
    assert headers["OCPI-from-party-id"] == "ALL"
    assert module_requests(net.cpo1, "locations") == []


async def test_get_of_a_location_id_two_cpos_use_needs_headers(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await _broadcast_loc(net, net.cpo1, CPO1)
    await _broadcast_loc(net, net.cpo2, CPO2)
    for peer in net.peers:
        peer.received.clear()
    _status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp2)
    assert body["status_code"] == 4001, body
    assert module_requests(net.cpo1, "locations") == module_requests(net.cpo2, "locations") == []


async def test_stop_session_command_goes_to_the_session_owner(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    status, _, _ = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/DE/ALL/S-77", net.cpo2, json=session_for(CPO2, EMSP2, "S-77")
    )
    assert status == 200
    net.cpo2.module_responder = answers({"result": "ACCEPTED", "timeout": 30})
    status, body, _ = await net.call(
        "POST",
        "/ocpi/2.2.1/commands/receiver/STOP_SESSION",
        net.emsp2,
        json={"response_url": net.emsp2.base + "/ocpi/2.2.1/commands/sender/STOP_SESSION/1", "session_id": "S-77"},
    )
    assert status == 200 and body["data"]["result"] == "ACCEPTED", body
    (leg,) = module_requests(net.cpo2, "commands")
    assert leg.path == "/ocpi/2.2.1/commands/receiver/STOP_SESSION" and leg.body["session_id"] == "S-77"
    assert party_of(leg, "to") == CPO2[:2] and party_of(leg, "from") == EMSP2[:2]
    assert module_requests(net.cpo1, "commands") == []
