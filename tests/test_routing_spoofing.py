"""Anti-spoofing, field realities (sloppy peers) and the draft's reference paths.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import json

import pytest

from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    HUB,
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


def _nothing_forwarded(net, *modules: str) -> None:
    for peer in net.peers:
        for module in modules:
            assert module_requests(peer, module) == [], (peer.name, module)


# ---- anti-spoofing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "who", "spoofed", "to", "make"),
    [
        ("PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", "cpo1", CPO2, EMSP1, lambda: session_for(CPO1, EMSP1)),
        ("GET", "/ocpi/2.2.1/locations/sender/LOC1", "emsp1", EMSP2, CPO1, lambda: None),
        ("POST", "/ocpi/2.2.1/cdrs/receiver", "cpo1", CPO2, None, lambda: cdr_for(CPO1, EMSP1)),
        (
            "PUT",
            "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1",
            "cpo1",
            EMSP1,
            HUB,
            lambda: example("location_example.json"),
        ),
    ],
    ids=["session-from-other-cpo", "get-from-other-emsp", "cdr-from-other-cpo", "broadcast-from-an-emsp"],
)
async def test_spoofed_from_is_refused(hub, make_peer, method, url, who, spoofed, to, make) -> None:
    net = await network(hub, make_peer)
    status, body, _ = await net.call(method, url, getattr(net, who), json=make(), headers=rh(spoofed, to))
    assert status == 403 and body["status_code"] == 2001, body
    _nothing_forwarded(net, "sessions", "locations", "cdrs")


@pytest.mark.parametrize(
    ("url", "who", "make"),
    [
        (
            "/ocpi/2.2.1/locations/receiver/DE/ALL/LOC1",
            "cpo1",
            lambda: {**example("location_example.json"), "country_code": "DE", "party_id": "ALL"},
        ),
        (
            "/ocpi/2.2.1/tariffs/receiver/BE/BEC/12",
            "cpo2",
            lambda: {**example("tariff_1_simple_2hour.json"), "country_code": "BE", "party_id": "BEC"},
        ),
        (
            "/ocpi/2.2.1/tokens/receiver/DE/TNM/12345678905880",
            "emsp1",
            lambda: example("token_example_2_full_rfid.json"),
        ),
        ("/ocpi/2.2.1/sessions/receiver/DE/ALL/101", "cpo1", lambda: session_for(CPO2, EMSP1)),
        # An eMSP pushing "its own" location: right ids, wrong role.
        (
            "/ocpi/2.2.1/locations/receiver/NL/TNM/LOC1",
            "emsp1",
            lambda: {**example("location_example.json"), "country_code": "NL", "party_id": "TNM"},
        ),
    ],
    ids=[
        "location-of-other-cpo",
        "tariff-of-other-cpo",
        "token-of-other-emsp",
        "session-of-other-cpo",
        "emsp-location",
    ],
)
async def test_push_for_ids_of_another_platform_is_refused(hub, make_peer, url, who, make) -> None:
    net = await network(hub, make_peer)
    variants = [rh(), rh(to=EMSP2 if who.startswith("cpo") else CPO1)]
    if "/sessions/" not in url:  # sessions addressed to the hub are 4001 before any owner check
        variants.append(rh(to=HUB))
    for headers in variants:
        status, body, _ = await net.call("PUT", url, getattr(net, who), json=make(), headers=headers)
        assert status == 403 and body["status_code"] == 2001, (headers, body)
    _nothing_forwarded(net, "sessions", "locations", "tariffs", "tokens")
    # Nor was it stored for GET-all.
    _, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp2)
    assert body["data"] == []


async def test_cdr_owned_by_another_cpo_is_refused(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for headers in (rh(), rh(CPO1, EMSP1)):
        status, body, _ = await net.call(
            "POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr_for(CPO2, EMSP1), headers=headers
        )
        assert status == 403 and body["status_code"] == 2001, body
    _nothing_forwarded(net, "cdrs")


# ---- field realities ------------------------------------------------------------------------


async def test_raw_token_and_no_request_ids_still_route(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP2)
    status, body, headers = await hub.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", token=net.cpo1.hub_token, raw_token=True, json=session
    )
    assert status == 200 and body["status_code"] == 1000, body
    assert headers["X-Request-ID"] and headers["X-Correlation-ID"]
    (leg,) = module_requests(net.emsp2, "sessions")
    assert leg.body == session and leg.headers["X-Correlation-ID"] == headers["X-Correlation-ID"]
    assert leg.headers["X-Request-ID"] != headers["X-Request-ID"]


async def test_list_wrapped_data_is_routed_like_the_object(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP2)
    status, body, _ = await net.call("PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", net.cpo1, json=[session])
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.emsp2, "sessions")
    assert leg.body in ([session], session)
    assert module_requests(net.emsp1, "sessions") == []
    # The hub's copy is the object, so GET-all serves it unwrapped.
    _, body, _ = await net.call("GET", "/ocpi/2.2.1/sessions/sender/", net.emsp2)
    assert body["data"] == [session]


async def test_lower_case_ids_in_bodies_while_urls_keep_case(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(("be", "bec", "CPO"), ("nl", "tnm", "EMSP"))
    status, body, headers = await net.call("PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", net.cpo1, json=session)
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.emsp1, "sessions")
    assert leg.path == "/ocpi/2.2.1/sessions/receiver/BE/BEC/101"
    assert party_of(leg, "to") == ("NL", "TNM")  # the registered spelling
    assert leg.body["country_code"] == "be"  # relayed as received
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == ("NL", "TNM")
    # Lower-cased routing headers and location ids work too.
    location = {**example("location_example.json"), "country_code": "be", "party_id": "bec", "id": "loc1"}
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1",
        net.cpo1,
        json=location,
        headers=rh(("be", "bec"), ("nl", "hub")),
    )
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 1)
    token = {**example("token_put_example.json"), "country_code": "nl", "party_id": "tnm"}
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678?type=rfid",
        net.emsp1,
        json=token,
        headers=rh(to=("de", "all")),
    )
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.cpo2, "tokens")
    assert leg.query == {"type": "rfid"} and party_of(leg, "to") == ("DE", "ALL")


@pytest.mark.parametrize("slash", ["", "/"], ids=["no-slash", "slash"])
async def test_urls_with_or_without_trailing_slash(hub, make_peer, slash) -> None:
    net = await network(hub, make_peer)
    status, body, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/101{slash}", net.cpo1, json=session_for(CPO1, EMSP1)
    )
    assert status == 200 and body["status_code"] == 1000, body
    (leg,) = module_requests(net.emsp1, "sessions")
    assert leg.path == "/ocpi/2.2.1/sessions/receiver/BE/BEC/101"
    status, body, _ = await net.call("POST", f"/ocpi/2.2.1/cdrs/receiver{slash}", net.cpo1, json=cdr_for(CPO1, EMSP1))
    assert status == 200 and body["status_code"] == 1000, body
    status, body, headers = await net.call("GET", f"/ocpi/2.2.1/sessions/sender{slash}", net.emsp1)
    assert status == 200 and [s["id"] for s in body["data"]] == ["101"] and headers["X-Total-Count"] == "1"


# ---- the draft's reference paths (docs/DESIGN-NOTES.md, Draft reference paths) -------------------------------------


async def test_draft_paths_are_aliases(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    location = example("location_example.json")
    # PUT /ocpi/locations/... is the receiver interface: a CPO's push, broadcast.
    status, body, _ = await net.call("PUT", "/ocpi/locations/BE/BEC/LOC1", net.cpo1, json=location)
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: all(len(module_requests(p, "locations")) == 1 for p in (net.emsp1, net.emsp2)))
    assert module_requests(net.emsp1, "locations")[0].path == "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"
    # GET /ocpi/locations is the sender interface: GET-all from the store ...
    status, body, headers = await net.call("GET", "/ocpi/locations", net.emsp1)
    assert status == 200 and body["data"] == [location] and headers["X-Total-Count"] == "1"
    # ... and GET of one location goes to its CPO's SENDER endpoint.
    net.cpo1.module_responder = answers(location)
    status, body, _ = await net.call("GET", "/ocpi/locations/LOC1", net.emsp1)
    assert status == 200 and body["data"] == location, body
    (leg,) = module_requests(net.cpo1, "locations")
    assert leg.path == "/ocpi/2.2.1/locations/sender/LOC1"
    net.cpo1.module_responder = None
    # Sessions and CDRs.
    status, body, _ = await net.call("PUT", "/ocpi/sessions/BE/BEC/101", net.cpo1, json=session_for(CPO1, EMSP2))
    assert status == 200 and body["status_code"] == 1000, body
    assert [r.path for r in module_requests(net.emsp2, "sessions")] == ["/ocpi/2.2.1/sessions/receiver/BE/BEC/101"]
    status, body, _ = await net.call("POST", "/ocpi/cdrs", net.cpo1, json=cdr_for(CPO1, EMSP2))
    assert status == 200 and body["status_code"] == 1000, body
    assert [r.path for r in module_requests(net.emsp2, "cdrs")] == ["/ocpi/2.2.1/cdrs/receiver"]
    status, body, _ = await net.call("GET", "/ocpi/cdrs", net.emsp2)
    assert status == 200 and [c["id"] for c in body["data"]] == ["12345"]
    assert json.loads(json.dumps(body["data"][0])) == cdr_for(CPO1, EMSP2)
