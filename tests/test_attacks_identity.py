"""Attacks on party identity (issue 20, item 2): a (country_code, party_id) belongs to one platform.

A second platform that registered ``OTHER NL*TNM`` next to the eMSP NL*TNM could read NL*TNM's
sessions and CDRs through GET-all, send commands as NL*TNM and receive its sessions. Every way
in is tried: the credentials POST (2.2.1, 2.3.0, 2.1.1), a credentials PUT that adds a party,
the hub-initiated ``connect``, role HUB and the hub's own party; and what a platform may still
do with a party it no longer serves (left) or one a database from before the rule holds twice.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from hub.keys import DIRECTORY, STORE
from tests.support.fakes import FakePlatform, b64
from tests.support.routing import CPO1, EMSP1, Net, cdr_for, connect, module_requests, network, rh, session_for

pytestmark = pytest.mark.both_backends

OTHER_TNM = (EMSP1[0], EMSP1[1], "OTHER")  # the victim's pair in another role


async def try_register(hub: Any, peer: FakePlatform, token_a: str) -> tuple[int, Any]:
    """A partner's credentials POST with token A, whatever the answer (register_with insists on 1000)."""
    auth = {"Authorization": "Token " + b64(token_a)}
    version = peer.version
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{hub.base}/ocpi/{version}/credentials", json=peer.credentials_body(), headers=auth) as r:
            return r.status, await r.json()


def assert_refused(status: int, body: Any, *words: str) -> None:
    assert status == 200 and body["status_code"] == 2001, (status, body)
    assert "data" not in body
    for word in words:
        assert word in body["status_message"], body


async def platforms(net: Net) -> list[dict[str, Any]]:
    status, body = await net.hub.admin("GET", "/admin/platforms")
    assert status == 200
    return list(body)


async def assert_victim_keeps_its_sessions(net: Net, attacker: FakePlatform) -> None:
    """The victim eMSP still gets its sessions and CDRs; the attacker gets nothing of them."""
    status, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/S-1", net.cpo1, json=session_for(CPO1, EMSP1, "S-1")
    )
    assert status == 200 and body["status_code"] == 1000, body
    status, body, _ = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr_for(CPO1, EMSP1))
    assert status == 200 and body["status_code"] == 1000, body
    assert [r.path for r in module_requests(net.emsp1, "sessions")] == ["/ocpi/2.2.1/sessions/receiver/BE/BEC/S-1"]
    assert len(module_requests(net.emsp1, "cdrs")) == 1
    assert module_requests(attacker, "sessions") == [] and module_requests(attacker, "cdrs") == []


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0", "2.1.1"])
async def test_registration_claiming_a_party_held_by_another_platform_in_another_role_is_refused(
    hub, make_peer, version
) -> None:
    net = await network(hub, make_peer)
    attacker = await make_peer(OTHER_TNM, name="Mallory", version=version)
    token_a = await hub.invite("Mallory", role="CPO" if version == "2.1.1" else None)
    status, body = await try_register(hub, attacker, token_a)
    assert_refused(status, body, "NL*TNM", "another platform")
    # Nothing was registered: the invitation is still open, the attacker has no token C and
    # the hub never called its API (refused before the partner's versions were read).
    assert attacker.received == []
    assert [p["status"] for p in await platforms(net) if p["name"] == "Mallory"] == ["PLANNED"]
    assert (await hub.call("GET", "/ocpi/2.2.1/sessions/sender/", token=token_a))[0] == 401
    await assert_victim_keeps_its_sessions(net, attacker)


@pytest.mark.parametrize(
    ("role", "words"),
    [
        (("XX", "HHH", "HUB"), ("role HUB",)),
        (("NL", "HUB", "CPO"), ("NL*HUB", "the hub's own")),
        (("nl", "hub", "EMSP"), ("the hub's own",)),
    ],
    ids=["role-hub", "hubs-own-party", "hubs-own-party-lower-case"],
)
async def test_registration_as_the_hub_is_refused(hub, make_peer, role, words) -> None:
    attacker = await make_peer(role, name="Mallory")
    status, body = await try_register(hub, attacker, await hub.invite("Mallory"))
    assert_refused(status, body, *words)
    assert attacker.received == []
    _, listed = await hub.admin("GET", "/admin/platforms")
    assert [p["roles"] for p in listed] == [[]]


async def test_credentials_put_adding_another_platforms_party_is_refused(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    old_token = net.cpo2.hub_token
    body = net.cpo2.credentials_body()
    body["roles"].append(
        {"role": "OTHER", "country_code": "NL", "party_id": "TNM", "business_details": {"name": "me too"}}
    )
    status, answer, _ = await net.call("PUT", "/ocpi/2.2.1/credentials", net.cpo2, json=body)
    assert_refused(status, answer, "NL*TNM")
    # The registration is what it was: the same parties, and the old token C still works.
    cpo2_id = await net.platform_id(net.cpo2)
    (cpo2,) = [p for p in await platforms(net) if p["id"] == cpo2_id]
    assert [(r["country_code"], r["party_id"], r["role"]) for r in cpo2["roles"]] == [("DE", "ALL", "CPO")]
    assert (await hub.call("GET", "/ocpi/2.2.1/hubclientinfo/", token=old_token))[0] == 200
    await assert_victim_keeps_its_sessions(net, net.cpo2)


async def test_credentials_put_with_its_own_parties_keeps_working(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    body = net.emsp1.credentials_body()
    body["roles"].append(
        {"role": "OTHER", "country_code": "NL", "party_id": "TNM", "business_details": {"name": "also us"}}
    )
    status, answer, _ = await net.call("PUT", "/ocpi/2.2.1/credentials", net.emsp1, json=body)
    assert status == 200 and answer["status_code"] == 1000, answer
    net.emsp1.hub_token = answer["data"]["token"]
    await assert_victim_keeps_its_sessions(net, net.emsp2)


@pytest.mark.parametrize(
    "role", [OTHER_TNM, ("XX", "HHH", "HUB"), ("NL", "HUB", "NSP")], ids=["held-party", "role-hub", "hubs-own-party"]
)
async def test_connect_to_a_partner_claiming_a_party_it_may_not_have_is_refused(hub, make_peer, role) -> None:
    net = await network(hub, make_peer)
    attacker = await make_peer(role, name="Mallory")
    before = await platforms(net)
    status, body = await hub.admin(
        "POST", "/admin/connections", {"versions_url": attacker.versions_url, "token_a": attacker.token_a}
    )
    assert status == 409 and body["status_code"] == 2001, body
    assert await platforms(net) == before
    if role == OTHER_TNM:
        await assert_victim_keeps_its_sessions(net, attacker)


async def test_rotation_answer_claiming_another_platforms_party_is_refused(hub, make_peer) -> None:
    # Hub-initiated rotation: the partner's answer to our credentials PUT adds NL*TNM.
    net = await network(hub, make_peer)
    cpo2_id = await net.platform_id(net.cpo2)
    net.cpo2.roles.append(OTHER_TNM)
    status, body = await hub.admin("PUT", f"/admin/platforms/{cpo2_id}/credentials")
    assert status == 409 and body["status_code"] == 2001 and "NL*TNM" in body["status_message"], body
    (cpo2,) = [p for p in await platforms(net) if p["id"] == cpo2_id]
    assert [(r["country_code"], r["party_id"], r["role"]) for r in cpo2["roles"]] == [("DE", "ALL", "CPO")]
    await assert_victim_keeps_its_sessions(net, net.cpo2)


async def test_a_party_that_left_its_platform_cannot_be_spoken_for(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP1, "S-0")
    status, body, _ = await net.call("PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/S-0", net.cpo1, json=session)
    assert status == 200 and body["status_code"] == 1000, body
    # eMSP one re-registers serving NL*TN2 only: NL*TNM left it (kept as SUSPENDED ClientInfo).
    creds = net.emsp1.credentials_body()
    creds["roles"][0]["party_id"] = "TN2"
    status, answer, _ = await net.call("PUT", "/ocpi/2.2.1/credentials", net.emsp1, json=creds)
    assert status == 200 and answer["status_code"] == 1000, answer
    net.emsp1.hub_token = answer["data"]["token"]
    # It may no longer read NL*TNM's sessions as NL*TNM, nor see them without a FROM.
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/sessions/sender/", net.emsp1, headers=rh(EMSP1, None))
    assert status == 403 and body["status_code"] == 2001, body
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/sessions/sender/", net.emsp1)
    assert status == 200 and body["data"] == [], body
    # Nor send a command as NL*TNM.
    command = {"response_url": net.emsp1.base + "/r/1", "token": {}, "location_id": "LOC1"}
    status, body, _ = await net.call(
        "POST", "/ocpi/2.2.1/commands/receiver/START_SESSION", net.emsp1, json=command, headers=rh(EMSP1, CPO1)
    )
    assert status == 403 and body["status_code"] == 2001, body
    assert module_requests(net.cpo1, "commands") == []


async def test_a_party_held_twice_by_an_older_database_is_served_by_neither(hub, make_peer) -> None:
    # Before the rule a second platform could register OTHER NL*TNM first and receive NL*TNM's
    # directed sessions. Such a pair, found in the database, routes nowhere until the operator
    # removes one of the platforms; neither platform may speak for it.
    net = await network(hub, make_peer)
    attacker = await connect(hub, make_peer, ("NL", "MAL", "OTHER"), name="Mallory")
    attacker_id = await net.platform_id(attacker)
    async with hub.app[STORE].transaction() as tx:
        await tx.execute(
            "INSERT INTO parties (platform_id, country_code, party_id, role, business_details, last_updated)"
            " VALUES (?, 'NL', 'TNM', 'OTHER', '{\"name\": \"x\"}', '2026-01-01T00:00:00Z')",
            (attacker_id,),
        )
    await hub.app[DIRECTORY].reload()
    net.clear()
    attacker.received.clear()
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/S-2",
        net.cpo1,
        json=session_for(CPO1, EMSP1, "S-2"),
        headers=rh(CPO1, EMSP1),
    )
    assert status == 200 and body["status_code"] == 4001 and "several platforms" in body["status_message"], body
    assert module_requests(net.emsp1, "sessions") == [] and module_requests(attacker, "sessions") == []
    for peer in (attacker, net.emsp1):
        status, body, _ = await net.call("GET", "/ocpi/2.2.1/sessions/sender/", peer, headers=rh(EMSP1, None))
        assert status == 403 and body["status_code"] == 2001, (peer.name, body)
