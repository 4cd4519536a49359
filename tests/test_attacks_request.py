"""Attacks by a hostile partner's requests (issue 20): path traversal through routed paths.

Each test is one attack, tried the way a registered partner would, on the wire: what the
attacker is answered, and that the victim peer received nothing. The URLs are sent byte for byte
(``yarl.URL(..., encoded=True)``): a normal client would normalise ``%2E%2E`` away before sending.
Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yarl

from tests.support.fakes import FakePlatform, b64
from tests.support.hub import HubHandle
from tests.support.routing import CPO1, EMSP1, HUB, Net, example, network, rh, session_for

pytestmark = pytest.mark.both_backends


async def raw_call(
    hub: HubHandle,
    method: str,
    raw_path: str,
    peer: FakePlatform,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Call the hub with ``raw_path`` exactly as written (no client-side normalisation)."""
    url = yarl.URL(hub.base + raw_path, encoded=True)
    hdrs = {"Authorization": "Token " + b64(peer.hub_token or ""), **(headers or {})}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    async with hub.session.request(method, url, data=data, headers=hdrs) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def _refused(status: int, body: Any) -> None:
    """The hub's own 2001 envelope: the request was refused before anything was sent."""
    assert status == 200 and isinstance(body, dict) and body["status_code"] == 2001, (status, body)
    assert "data" not in body, body


def _untouched(net: Net) -> None:
    """No peer received anything after the attack (the victim above all)."""
    for peer in net.peers:
        assert peer.received == [], (peer.name, [(r.method, r.path) for r in peer.received])


# The CPO's sessions SENDER endpoint is .../ocpi/2.2.1/sessions/sender: two hops up is
# .../ocpi/2.2.1, where its credentials live.
TRAVERSALS = [
    "/ocpi/2.2.1/sessions/sender/..%2F..%2Fcredentials",
    "/ocpi/2.2.1/sessions/sender/%2E%2E/%2E%2E/credentials",
    "/ocpi/2.2.1/sessions/sender/.%2E/%2e./credentials",
    "/ocpi/2.2.1/sessions/sender/../../credentials",
    "/ocpi/2.2.1/sessions/sender/..%2f..%2fcredentials",
    "/ocpi/2.2.1/sessions/sender/101/./charging_preferences",
    "/ocpi/2.2.1/sessions/sender/%2E/101",
    # The draft's alias (GET = the sender interface) and the 2.1.1 module URL lead to the same place.
    "/ocpi/sessions/..%2F..%2Fcredentials",
    "/ocpi/2.1.1/sessions/..%2F..%2Fcredentials",
    "/ocpi/2.3.0/sessions/sender/%2E%2E/%2E%2E/credentials",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_path_traversal_get_to_a_cpo_is_refused(hub, make_peer, path) -> None:
    net = await network(hub, make_peer)
    status, body = await raw_call(hub, "GET", path, net.emsp1, headers=rh(EMSP1, CPO1))
    _refused(status, body)
    assert net.cpo1.token_for_hub not in json.dumps(body)  # the CPO's credentials token stays secret
    _untouched(net)


async def test_path_traversal_dotdot_encoded_slash_is_refused_on_a_profile_put(hub, make_peer) -> None:
    # PUT .../chargingprofiles/receiver/../../credentials would re-register "the hub" at the CPO
    # with the attacker's token and versions URL.
    net = await network(hub, make_peer)
    attack = {
        "token": "attacker-token",
        "url": net.emsp1.versions_url,
        "roles": [{"role": "HUB", "country_code": "NL", "party_id": "HUB", "business_details": {"name": "x"}}],
        "response_url": net.emsp1.base + "/results/1",
    }
    for path in (
        "/ocpi/2.2.1/chargingprofiles/receiver/..%2F..%2Fcredentials",
        "/ocpi/2.2.1/chargingprofiles/receiver/%2E%2E/%2E%2E/credentials",
        "/ocpi/smartcharging/.%2E/.%2E/credentials",
    ):
        status, body = await raw_call(hub, "PUT", path, net.emsp1, body=attack, headers=rh(EMSP1, CPO1))
        _refused(status, body)
    _untouched(net)


async def test_path_traversal_on_a_command_post_is_refused(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    attack = {"response_url": net.emsp1.base + "/results/1", "token": "x", "url": net.emsp1.versions_url}
    for path in (
        "/ocpi/2.2.1/commands/receiver/..%2F..%2Fcredentials",
        "/ocpi/2.2.1/commands/receiver/START_SESSION%2F..%2F..%2F..%2Fcredentials",
        "/ocpi/commands/%2E%2E/%2E%2E/credentials",
        "/ocpi/2.1.1/commands/%2E%2E%2Fcredentials",
    ):
        status, body = await raw_call(hub, "POST", path, net.emsp1, body=attack, headers=rh(EMSP1, CPO1))
        _refused(status, body)
    _untouched(net)


async def test_path_traversal_on_a_location_patch_is_refused(hub, make_peer) -> None:
    # Its own ids, so the owner check passes: the PATCH would land two levels up at every eMSP.
    net = await network(hub, make_peer)
    patch = example("location_patch_example_location.json")
    for path, headers in (
        ("/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1/%2E%2E/%2E%2E", rh(CPO1, EMSP1)),
        ("/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1/../..", rh(CPO1, HUB)),
        ("/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1%2F..%2F..%2F..", rh()),
        ("/ocpi/locations/BE/BEC/LOC1/.%2E/.%2E", rh(CPO1, EMSP1)),
    ):
        status, body = await raw_call(hub, "PATCH", path, net.cpo1, body=patch, headers=headers)
        _refused(status, body)
    _untouched(net)


async def test_path_traversal_on_a_session_put_is_refused(hub, make_peer) -> None:
    # Without an id in the body there is nothing to compare the URL's id with.
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP1)
    del session["id"]
    for path in (
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/101%2F..%2F..",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/%2E%2E",
        "/ocpi/sessions/BE/BEC/.",
    ):
        status, body = await raw_call(hub, "PUT", path, net.cpo1, body=session, headers=rh(CPO1, EMSP1))
        _refused(status, body)
    _untouched(net)


@pytest.mark.parametrize(
    "path",
    [
        "/ocpi/2.2.1/callbacks/..%2F..%2Fcredentials",
        "/ocpi/2.2.1/callbacks/%2E%2E",
        "/ocpi/2.2.1/proxy/..%2F..%2Fcredentials",
        "/ocpi/2.2.1/proxy/.%2E",
    ],
)
async def test_path_traversal_on_stand_in_urls_is_refused(hub, make_peer, path) -> None:
    net = await network(hub, make_peer)
    method = "POST" if "/callbacks/" in path else "GET"
    body = {"result": "ACCEPTED"} if method == "POST" else None
    status, answer = await raw_call(hub, method, path, net.cpo1, body=body)
    _refused(status, answer)
    _untouched(net)


@pytest.mark.parametrize(
    "segment",
    ["a%00b", "a%0Ab", "a%0D%0AX-Injected:%201", "a%7Fb", "a%5C..%5C..%5Ccredentials", "a%E2%80%AEb", "%C4%B1d"],
    ids=["nul", "line-feed", "header-injection", "delete", "backslashes", "right-to-left-override", "dotless-i"],
)
async def test_control_and_non_ascii_characters_in_a_path_are_refused(hub, make_peer, segment) -> None:
    net = await network(hub, make_peer)
    status, body = await raw_call(
        hub, "GET", f"/ocpi/2.2.1/locations/sender/{segment}", net.emsp1, headers=rh(EMSP1, CPO1)
    )
    _refused(status, body)
    _untouched(net)


async def test_ordinary_ids_still_reach_the_receiver_encoded_as_sent(hub, make_peer) -> None:
    # The guard refuses dot segments, not dots: "LOC.1" and "..x" are ids like any other, and
    # an encoded space stays one segment at the receiver.
    net = await network(hub, make_peer)
    for segment, expected in (("LOC.1", "LOC.1"), ("..x", "..x"), ("a%20b", "a b"), ("LOC~1", "LOC~1")):
        status, body = await raw_call(
            hub, "GET", f"/ocpi/2.2.1/locations/sender/{segment}", net.emsp1, headers=rh(EMSP1, CPO1)
        )
        assert status == 200 and body["status_code"] == 1000, (segment, body)
        assert net.cpo1.received[-1].path == f"/ocpi/2.2.1/locations/sender/{expected}"
