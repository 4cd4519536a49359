"""Roaming agreements on the wire (issue 23): in required mode a party without one sees nothing of another.

Four fake platforms (two CPOs, two eMSPs) register through the real handshake; only BE*BEC (CPO)
and NL*TNM (eMSP) have an agreement. What each fake receives, and what the hub answers, shows
the rule: broadcasts, GET-all, direct pushes, pulls, commands, token authorization and
HubClientInfo. Then: an agreement added, suspended, deleted, a validity window on the injected
clock, what was queued before a suspension, and `open` mode unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from routing.clock import FakeClock, iso
from tests.support.agreements import agree, told, wait_told
from tests.support.backends import needs_postgres
from tests.support.commands import command_body, token
from tests.support.delivery import FAST, Script, is_queued
from tests.support.hub import HubHandle, accepted
from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    HUB,
    MakePeer,
    Net,
    cdr_for,
    connect,
    example,
    module_requests,
    quiet_network,
    rh,
    session_for,
)
from tests.support.waiting import advance_until, settle, until, wait_for

pytestmark = pytest.mark.both_backends

LOCATION_URL = "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"
NO_AGREEMENT_EMSP2 = "no roaming agreement in force between BE*BEC and DE*TNM covering locations"


@pytest.fixture
async def net(start_hub: Any, make_peer: MakePeer) -> Net:
    hub = await start_hub(agreements="required", delivery=FAST)
    await agree(hub, CPO1, EMSP1)  # before anyone registers: agreements are about parties
    return await quiet_network(hub, make_peer)


async def push_location(net: Net, to: tuple[str, ...] | None, location_id: str = "LOC1") -> tuple[int, Any]:
    location = {**example("location_example.json"), "id": location_id}
    status, body, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/locations/receiver/BE/BEC/{location_id}", net.cpo1, json=location, headers=rh(CPO1, to)
    )
    return status, body


async def get_all(net: Net, peer: Any, party: tuple[str, ...], module: str = "locations") -> tuple[list[Any], str]:
    status, body, headers = await net.call("GET", f"/ocpi/2.2.1/{module}/sender/", peer, headers=rh(party, HUB))
    assert status == 200 and body["status_code"] == 1000, body
    return body["data"], headers["X-Total-Count"]


async def client_info_list(net: Net, peer: Any) -> set[tuple[str, str, str]]:
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", peer)
    assert status == 200, body
    return {(i["country_code"], i["party_id"], i["status"]) for i in body["data"]}


def assert_no_agreement(status: int, body: Any, text: str) -> None:
    assert status == 200 and body["status_code"] == 4001, body
    assert text in body["status_message"], body


async def test_a_party_without_agreement_sees_and_receives_nothing_of_another(net: Net) -> None:
    # HubClientInfo, pushed at registration: only the party with an agreement.
    await wait_told(net.emsp1, CPO1, "CONNECTED")
    await wait_told(net.cpo1, EMSP1, "CONNECTED")
    assert set(told(net.emsp1)) == {CPO1[:2]} and set(told(net.cpo1)) == {EMSP1[:2]}
    assert told(net.emsp2) == {} and told(net.cpo2) == {}
    # ... and in the list: a party's own parties and its partners', nobody else.
    assert await client_info_list(net, net.emsp2) == {("DE", "TNM", "CONNECTED")}
    assert await client_info_list(net, net.emsp1) == {("NL", "TNM", "CONNECTED"), ("BE", "BEC", "CONNECTED")}

    # Broadcast: only to the eMSP with an agreement.
    status, body = await push_location(net, HUB)
    assert status == 200 and body["status_code"] == 1000 and "broadcast to 1 party" in body["status_message"], body
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) == 1)
    assert module_requests(net.emsp2, "locations") == []

    # GET-all and a single Location from the hub's store: nothing of a CPO without an agreement.
    assert await get_all(net, net.emsp2, EMSP2) == ([], "0")
    data, total = await get_all(net, net.emsp1, EMSP1)
    assert [d["id"] for d in data] == ["LOC1"] and total == "1"
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp2, headers=rh(EMSP2, HUB))
    assert status == 404 and body["status_code"] == 2003, body
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp1, headers=rh(EMSP1, HUB))
    assert status == 200 and body["data"]["id"] == "LOC1", body

    # A direct push to, and a pull by, a party without an agreement: refused, naming what is missing.
    status, body = await push_location(net, EMSP2, "LOC2")
    assert_no_agreement(status, body, NO_AGREEMENT_EMSP2)
    assert module_requests(net.emsp2, "locations") == []
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp2, headers=rh(EMSP2, CPO1))
    assert_no_agreement(status, body, "between DE*TNM and BE*BEC covering locations")
    assert module_requests(net.cpo1, "locations") == []
    # Nothing refused was stored either: the GET-all of the eMSP with the agreement has LOC1 only.
    data, _ = await get_all(net, net.emsp1, EMSP1)
    assert [d["id"] for d in data] == ["LOC1"]

    # Commands: refused from an eMSP without an agreement, forwarded from the one with it.
    for emsp, party in ((net.emsp2, EMSP2), (net.emsp1, EMSP1)):
        body = command_body("START_SESSION", f"{emsp.base}/ocpi/2.2.1/commands/sender/cb1", location_id="LOC1")
        body["token"] = token(party, "CMD-UID-1")
        status, answer, _ = await net.call(
            "POST", "/ocpi/2.2.1/commands/receiver/START_SESSION", emsp, json=body, headers=rh(party, CPO1)
        )
        if emsp is net.emsp2:
            assert_no_agreement(status, answer, "between DE*TNM and BE*BEC covering commands")
            assert net.cpo1.requests_to("/commands/") == []
        else:
            assert answer["status_code"] != 4001, answer
            assert len(net.cpo1.requests_to("/commands/")) == 1

    # Token authorization: the hub learnt eMSP2's token uid (its broadcast reached no CPO), yet a
    # CPO without an agreement cannot ask about it, by TO header or by open routing.
    token2 = example("token_example_2_full_rfid.json")
    status, body, _ = await net.call(
        "PUT",
        f"/ocpi/2.2.1/tokens/receiver/DE/TNM/{token2['uid']}?type=RFID",
        net.emsp2,
        json=token2,
        headers=rh(EMSP2, HUB),
    )
    assert status == 200 and "broadcast to 0 parties" in body["status_message"], body
    for to in (EMSP2, None):
        status, body, _ = await net.call(
            "POST", f"/ocpi/2.2.1/tokens/sender/{token2['uid']}/authorize?type=RFID", net.cpo1, headers=rh(CPO1, to)
        )
        assert_no_agreement(status, body, "between BE*BEC and DE*TNM covering tokens")
    assert module_requests(net.emsp2, "tokens") == []
    status, body, _ = await net.call(
        "POST", "/ocpi/2.2.1/tokens/sender/012345678/authorize?type=RFID", net.cpo1, headers=rh(CPO1, EMSP1)
    )
    assert body["status_code"] != 4001, body
    assert len(module_requests(net.emsp1, "tokens")) == 1

    # A party without an agreement learns nothing of the other's connection: 4001, not 4003.
    status, _ = await net.hub.admin("POST", f"/admin/platforms/{await net.platform_id(net.emsp2)}/suspend")
    assert status == 200
    status, body = await push_location(net, EMSP2, "LOC3")
    assert_no_agreement(status, body, NO_AGREEMENT_EMSP2)


async def test_an_agreement_starting_and_ending_is_told_and_opens_and_closes_the_route(net: Net) -> None:
    await wait_told(net.emsp1, CPO1, "CONNECTED")
    made = await agree(net.hub, CPO1, EMSP2, modules=["locations"])
    # Each side hears of the other at once (HubClientInfo push model).
    await wait_told(net.emsp2, CPO1, "CONNECTED")
    await wait_told(net.cpo1, EMSP2, "CONNECTED")
    assert set(told(net.emsp2)) == {CPO1[:2]}
    status, body = await push_location(net, EMSP2)
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 1)
    # The agreement covers locations only: not tariffs.
    tariff = example("tariff_put_example.json")
    tariff["country_code"], tariff["party_id"] = "BE", "BEC"
    status, body, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/tariffs/receiver/BE/BEC/{tariff['id']}", net.cpo1, json=tariff, headers=rh(CPO1, EMSP2)
    )
    assert_no_agreement(status, body, "covering tariffs")

    status, body = await net.hub.admin("POST", f"/admin/agreements/{made['id']}/suspend")
    assert status == 200 and body["in_force"] is False, body
    # Suspended: no new traffic, and each side is told the other is PLANNED (no contract).
    await wait_told(net.emsp2, CPO1, "PLANNED")
    await wait_told(net.cpo1, EMSP2, "PLANNED")
    status, body = await push_location(net, EMSP2, "LOC2")
    assert_no_agreement(status, body, NO_AGREEMENT_EMSP2)
    assert told(net.emsp1)[CPO1[:2]] == "CONNECTED"  # the other agreement is untouched

    status, body = await net.hub.admin("POST", f"/admin/agreements/{made['id']}/resume")
    await wait_told(net.emsp2, CPO1, "CONNECTED")
    status, body = await net.hub.admin("DELETE", f"/admin/agreements/{made['id']}")
    assert status == 200, body
    await wait_told(net.emsp2, CPO1, "PLANNED")
    assert await client_info_list(net, net.emsp2) == {("DE", "TNM", "CONNECTED")}


async def test_what_was_queued_before_a_suspension_is_still_delivered(net: Net, clock: FakeClock) -> None:
    script = Script(mode="down")
    net.emsp1.module_responder = script
    status, body = await push_location(net, EMSP1)
    assert is_queued(status, body), body  # accepted under the agreement; the receiver is down
    status, listed = await net.hub.admin("GET", "/admin/agreements")
    await net.hub.admin("POST", f"/admin/agreements/{listed[0]['id']}/suspend")
    status, body = await push_location(net, EMSP1, "LOC2")
    assert_no_agreement(status, body, "between BE*BEC and NL*TNM covering locations")
    script.mode = "ok"
    await advance_until(net.hub, clock, lambda: any("/locations/" in r.path for r in script.accepted))
    assert [r.path for r in script.accepted if "/locations/" in r.path] == [LOCATION_URL]


async def test_validity_window_on_the_hub_clock(start_hub: Any, make_peer: MakePeer, clock: FakeClock) -> None:
    hub = await start_hub(agreements="required", delivery=FAST)
    start = clock.now()
    await agree(
        hub, CPO1, EMSP1, valid_from=iso(start.replace(hour=13)), valid_to=iso(start.replace(hour=15))
    )  # 13:00 to 15:00 on the fake clock, which starts at 12:00
    net = await quiet_network(hub, make_peer)
    status, body = await push_location(net, EMSP1)
    assert_no_agreement(status, body, "between BE*BEC and NL*TNM")
    assert told(net.emsp1) == {}
    clock.advance(3600)  # 13:00: in force; the window watcher tells both sides
    await wait_told(net.emsp1, CPO1, "CONNECTED")
    await wait_told(net.cpo1, EMSP1, "CONNECTED")
    status, body = await push_location(net, EMSP1)
    assert status == 200 and body["status_code"] == 1000, body
    clock.advance(7200)  # 15:00: valid_to is exclusive
    await wait_told(net.emsp1, CPO1, "PLANNED")
    status, body = await push_location(net, EMSP1)
    assert_no_agreement(status, body, "between BE*BEC and NL*TNM")


async def test_open_mode_routes_between_everyone_whatever_the_agreements(hub: HubHandle, make_peer: MakePeer) -> None:
    await agree(hub, CPO1, EMSP1)  # stored, but "open" does not look at it
    net = await quiet_network(hub, make_peer)
    await wait_told(net.emsp2, CPO1, "CONNECTED")
    await wait_told(net.emsp2, CPO2, "CONNECTED")
    status, body = await push_location(net, HUB)
    assert "broadcast to 2 parties" in body["status_message"], body
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 1)
    status, body = await push_location(net, EMSP2, "LOC2")
    assert status == 200 and body["status_code"] == 1000, body
    data, total = await get_all(net, net.emsp2, EMSP2)
    assert total == "2" and sorted(d["id"] for d in data) == ["LOC1", "LOC2"]
    assert len(await client_info_list(net, net.emsp2)) == 4


@needs_postgres
async def test_an_agreement_made_through_one_process_holds_in_another(
    shared_database: str, start_hub: Any, make_peer: MakePeer, db_backend: str
) -> None:
    if db_backend == "sqlite":
        pytest.skip("two processes share one database on PostgreSQL only")
    first = await start_hub(database=shared_database, agreements="required")
    second = await start_hub(database=shared_database, agreements="required")
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    await connect(first, make_peer, EMSP1, name="eMSP one")
    location = example("location_example.json")

    async def push() -> tuple[int, Any, Any]:
        return await second.call("PUT", LOCATION_URL, token=cpo.hub_token, json=location, headers=rh(CPO1, EMSP1))

    def refused(answer: tuple[int, Any, Any]) -> bool:
        return bool(answer[1].get("status_code") == 4001)

    status, body, _ = await until(push, refused)  # the registrations are known
    assert_no_agreement(status, body, "between BE*BEC and NL*TNM")
    made = await agree(first, CPO1, EMSP1)
    answer = await until(push, accepted)  # the second process reloaded its book on the NOTIFY
    assert accepted(answer), answer
    await first.admin("POST", f"/admin/agreements/{made['id']}/suspend")
    status, body, _ = await until(push, refused)
    assert_no_agreement(status, body, "between BE*BEC and NL*TNM")


async def test_sessions_and_cdrs_reach_the_token_owner_only_with_an_agreement(net: Net) -> None:
    # Open routing (no TO): the cdr_token names the eMSP; only NL*TNM has an agreement with BE*BEC.
    for party, refused in ((EMSP2, True), (EMSP1, False)):
        session = session_for(CPO1, party, f"S-{party[1]}{party[0]}")
        status, body, _ = await net.call(
            "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session['id']}", net.cpo1, json=session, headers=rh(CPO1)
        )
        cdr = cdr_for(CPO1, party, f"C-{party[1]}{party[0]}")
        cdr_status, cdr_body, _ = await net.call(
            "POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr, headers=rh(CPO1)
        )
        if refused:
            assert_no_agreement(status, body, "between BE*BEC and DE*TNM covering sessions")
            assert_no_agreement(cdr_status, cdr_body, "between BE*BEC and DE*TNM covering cdrs")
        else:
            assert body["status_code"] == 1000 and cdr_body["status_code"] == 1000, (body, cdr_body)
    await wait_for(
        lambda: len(module_requests(net.emsp1, "sessions")) == 1 and len(module_requests(net.emsp1, "cdrs")) == 1
    )
    assert module_requests(net.emsp2, "sessions") == [] and module_requests(net.emsp2, "cdrs") == []
    # The eMSP without an agreement does not read them from the hub's store either.
    assert await get_all(net, net.emsp2, EMSP2, "sessions") == ([], "0")
    assert await get_all(net, net.emsp2, EMSP2, "cdrs") == ([], "0")


async def test_a_platform_status_change_is_told_only_to_its_partners(net: Net) -> None:
    await wait_told(net.emsp1, CPO1, "CONNECTED")
    status, _ = await net.hub.admin("POST", f"/admin/platforms/{await net.platform_id(net.cpo2)}/suspend")
    assert status == 200
    status, _ = await net.hub.admin("POST", f"/admin/platforms/{await net.platform_id(net.cpo1)}/suspend")
    assert status == 200
    await wait_told(net.emsp1, CPO1, "SUSPENDED")
    await settle(net.hub)  # nothing left in flight or due: what was queued has arrived
    assert set(told(net.emsp1)) == {CPO1[:2]}
    assert told(net.emsp2) == {}


async def test_status_names_connected_platforms_without_an_agreement(net: Net) -> None:
    status, body = await net.hub.admin("GET", "/status")
    assert status == 200, body
    assert body["agreements"] == {"mode": "required", "total": 1, "in_force": 1}
    lonely = sorted(n for n in body["notices"] if "no roaming agreement in force" in n)
    cpo2, emsp2 = await net.platform_id(net.cpo2), await net.platform_id(net.emsp2)
    assert lonely == [
        f"platform {cpo2} (ALL): no roaming agreement in force; it exchanges nothing",
        f"platform {emsp2} (TNM): no roaming agreement in force; it exchanges nothing",
    ]
    assert body["status"] == "ok"  # a notice, not a fault
