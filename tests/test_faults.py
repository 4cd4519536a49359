"""The fault catalogue (tests/support/fault_peer.py) against the real hub: right answers, retries, nothing lost.

Each fault is played by a partner on 127.0.0.1. For pushes the sender gets 1000 (queued, or
the receiver's own final answer relayed); for synchronous calls (GET pull, commands) it gets
4002 (timeout), 4003 (connection) or 4000 (no OCPI answer). Meanwhile another eMSP keeps getting
its pushes, and once the fault clears every accepted push arrives. Retries happen when the test
advances the FakeClock; the hub's request_timeout is 2 s (headroom for a registration on a loaded
machine) so the "slow" partner (4 s) times out.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hub.keys import STORE
from routing.clock import FakeClock
from tests.support.fakes import FakePlatform
from tests.support.fault_peer import FAULTS, FaultPeer, ids_of, outbox_drained
from tests.support.hub import HubHandle
from tests.support.routing import CPO1, CPO2, EMSP1, EMSP2, connect, rh, session_for
from tests.support.waiting import advance_until, settle, until, wait_for

pytestmark = pytest.mark.both_backends

PUSH_FAULTS = ["429", "5xx", "slow", "reset", "truncated", "html", "detail", "401", "403"]
NON_OCPI = ["429", "5xx", "truncated", "html", "detail", "401", "403"]
LINK = re.compile(r"<([^>]+)>")


@dataclass
class FaultNet:
    hub: HubHandle
    cpo: FakePlatform  # healthy CPO1, the sender of pushes
    emsp: FaultPeer  # faulty eMSP1
    fcpo: FaultPeer  # faulty CPO2 (commands, pulls)
    other: FakePlatform  # healthy eMSP2, the bystander

    async def push(self, session_id: str, to: FakePlatform | None = None) -> tuple[int, Any]:
        """CPO1 PUTs a session directly to eMSP1 (or ``to``)."""
        party = EMSP2 if to is self.other else EMSP1
        status, body, _ = await self.hub.call(
            "PUT",
            f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session_id}",
            token=self.cpo.hub_token,
            json=session_for(CPO1, party, session_id),
            headers=rh(CPO1, party),
        )
        return status, body

    async def deadletters(self) -> list[dict[str, Any]]:
        status, body = await self.hub.admin("GET", "/admin/deadletters")
        assert status == 200, body
        return list(body)


@pytest.fixture
async def fault_peers() -> AsyncIterator[list[FaultPeer]]:
    peers: list[FaultPeer] = []
    yield peers
    for peer in peers:
        await peer.close()


@pytest.fixture
async def fnet(start_hub, make_peer, fault_peers) -> Callable[..., Awaitable[FaultNet]]:
    async def make(**delivery: Any) -> FaultNet:
        hub = await start_hub(
            request_timeout=2.0,
            connect_timeout=2.0,
            command_timeout=2.0,
            delivery={"relay_wait": 2.0, "initial_backoff": 1.0, "max_backoff": 30.0, **delivery},
        )
        cpo = await connect(hub, make_peer, CPO1, name="CPO one")
        emsp = FaultPeer(roles=[EMSP1], name="faulty eMSP")
        fcpo = FaultPeer(roles=[CPO2], name="faulty CPO")
        for peer in (emsp, fcpo):
            fault_peers.append(peer)
            await peer.start()
            await peer.register_with(hub.versions_url, await hub.invite(peer.name))
        other = await connect(hub, make_peer, EMSP2, name="eMSP two")
        await settle(hub)
        return FaultNet(hub, cpo, emsp, fcpo, other)

    return make


def _queued_or_final(status: int, body: Any) -> None:
    assert status == 200 and isinstance(body, dict), body
    assert body["status_code"] == 1000, body
    assert isinstance(body["timestamp"], str)


async def _outbox_states(hub: HubHandle) -> list[str]:
    # The sender is answered as soon as the receiver answers; the row's removal is committed just
    # after (group commit), so give it a bounded moment before reading.
    rows = await until(
        lambda: hub.app[STORE].fetchall("SELECT state FROM outbox WHERE module='sessions' ORDER BY id"),
        lambda rows: all(r["state"] != "pending" for r in rows),
        step=0.01,
    )
    return [r["state"] for r in rows]


def test_the_catalogue_is_complete() -> None:
    assert set(PUSH_FAULTS) | {"ctype", "paged"} == set(FAULTS)


# ---- pushes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", PUSH_FAULTS)
async def test_push_fault_is_queued_retried_and_nothing_is_lost(fnet, clock: FakeClock, fault: str) -> None:
    net = await fnet()
    net.emsp.script.then(fault, fault)
    answers = [await net.push(sid) for sid in ("S1", "S2", "S3")]
    for status, body in answers:
        _queued_or_final(status, body)
    assert "queued" in answers[0][1].get("status_message", ""), answers[0]
    # The bystander is served at once, while eMSP1 still has two messages waiting.
    _queued_or_final(*await net.push("B1", to=net.other))
    assert ids_of(r for r in net.other.received if "/sessions/" in r.path) == ["B1"]  # type: ignore[misc]
    await advance_until(
        net.hub, clock, lambda: set(ids_of(net.emsp.script.ok_requests("sessions"))) >= {"S1", "S2", "S3"}
    )
    assert await net.deadletters() == []
    await outbox_drained(net.hub)
    assert await _outbox_states(net.hub) == []  # delivered rows leave the outbox; none pending or dead
    # A retried message keeps its X-Request-ID (the receiver can tell it is the same message). aiohttp
    # itself may repeat an idempotent request once on a reset pooled connection: one or more faults.
    s1 = [s.fault for s in net.emsp.script.served if s.path.endswith("/S1")]
    assert s1[-1] == "ok" and set(s1[:-1]) == {fault}, s1
    assert len({s.request_id for s in net.emsp.script.served if s.path.endswith("/S1")}) == 1


async def test_429_retry_after_is_honoured(fnet, clock: FakeClock) -> None:
    net = await fnet()
    net.emsp.script.retry_after = 120
    net.emsp.script.then("429")
    _queued_or_final(*await net.push("S1"))
    await settle(net.hub)
    for _ in range(3):  # 90 s of fake time: still inside Retry-After
        clock.advance(30)
        await settle(net.hub)
    assert [s.fault for s in net.emsp.script.served] == ["429"]
    await advance_until(net.hub, clock, lambda: len(net.emsp.script.ok_requests("sessions")) == 1)
    assert [s.fault for s in net.emsp.script.served] == ["429", "ok"]


async def test_random_5xx_with_a_seeded_rng_eventually_delivers_everything(fnet, clock: FakeClock) -> None:
    net = await fnet()
    net.emsp.script.then(*["5xx"] * 6)
    sent = [f"R{n}" for n in range(6)]
    for sid in sent:
        _queued_or_final(*await net.push(sid))
    await advance_until(net.hub, clock, lambda: set(ids_of(net.emsp.script.ok_requests("sessions"))) >= set(sent))
    codes = [s.http for s in net.emsp.script.served if s.fault == "5xx"]
    assert len(codes) == 6 and set(codes) <= {500, 502, 503}
    assert await net.deadletters() == []


async def test_wrong_content_type_with_a_valid_envelope_is_the_final_answer(fnet) -> None:
    net = await fnet()
    net.emsp.script.then("ctype")
    status, body = await net.push("S1")
    assert status == 200 and body["status_code"] == 1000 and "queued" not in body.get("status_message", ""), body
    assert [s.fault for s in net.emsp.script.served] == ["ctype"]
    assert await _outbox_states(net.hub) == []  # delivered, nothing left to retry


async def test_partner_staying_down_goes_offline_and_gets_everything_when_back(fnet, clock: FakeClock) -> None:
    net = await fnet(offline_after_failures=3)
    await net.emsp.go_down()
    sent = [f"D{n}" for n in range(5)]
    for sid in sent:
        _queued_or_final(*await net.push(sid))
    _queued_or_final(*await net.push("B1", to=net.other))
    assert ids_of(r for r in net.other.received if "/sessions/" in r.path) == ["B1"]  # type: ignore[misc]
    for _ in range(6):
        clock.advance(30)
        await settle(net.hub)
    _, platforms = await net.hub.admin("GET", "/admin/platforms")
    assert next(p for p in platforms if p["name"] == "faulty eMSP")["status"] == "OFFLINE"
    await net.emsp.come_back()
    await advance_until(net.hub, clock, lambda: set(ids_of(net.emsp.script.ok_requests("sessions"))) >= set(sent))
    assert await net.deadletters() == []
    _, platforms = await net.hub.admin("GET", "/admin/platforms")
    assert next(p for p in platforms if p["name"] == "faulty eMSP")["status"] == "CONNECTED"


async def test_permanent_failure_becomes_a_dead_letter_and_redrive_delivers_it(fnet, clock: FakeClock) -> None:
    net = await fnet(max_attempts=3)
    net.emsp.script.default = "html"
    _queued_or_final(*await net.push("S1"))
    await advance_until(net.hub, clock, lambda: len(net.emsp.script.served) >= 3)
    await outbox_drained(net.hub)
    letters = await net.deadletters()
    assert len(letters) == 1 and letters[0]["attempts"] == 3 and letters[0]["module"] == "sessions", letters
    assert letters[0]["url"].endswith("/S1")
    assert len(net.emsp.script.served) == 3  # no attempt beyond max_attempts
    net.emsp.script.default = "ok"
    status, body = await net.hub.admin("POST", "/admin/deadletters/redrive", {})
    assert status == 200 and body["redriven"] == 1, body
    await advance_until(net.hub, clock, lambda: len(net.emsp.script.ok_requests("sessions")) == 1)
    assert await net.deadletters() == []


# ---- synchronous: GET pull and commands ------------------------------------------------------


async def _pull(net: FaultNet, path: str = "/ocpi/2.2.1/tokens/sender/") -> tuple[int, Any, Any]:
    return await net.hub.call("GET", path, token=net.cpo.hub_token, headers=rh(CPO1, EMSP1))


async def _command(net: FaultNet) -> tuple[int, Any]:
    body = {
        "response_url": net.other.base + "/cb/1",
        "token": session_for(CPO2, EMSP2)["cdr_token"],
        "location_id": "LOC1",
    }
    status, answer, _ = await net.hub.call(
        "POST",
        "/ocpi/2.2.1/commands/receiver/START_SESSION",
        token=net.other.hub_token,
        json=body,
        headers=rh(EMSP2, CPO2),
    )
    return status, answer


EXPECTED_SYNC = {"slow": 4002, "reset": 4003, **{f: 4000 for f in NON_OCPI}}


@pytest.mark.parametrize("fault", sorted(EXPECTED_SYNC))
async def test_synchronous_calls_answer_4002_4003_4000(fnet, fault: str) -> None:
    net = await fnet()
    net.emsp.script.default = fault
    net.fcpo.script.default = fault
    status, body, headers = await _pull(net)
    assert status == 200 and body["status_code"] == EXPECTED_SYNC[fault], body
    assert headers["Content-Type"].startswith("application/json")
    status, body = await _command(net)
    assert status == 200 and body["status_code"] == EXPECTED_SYNC[fault], body
    # No hub retries for synchronous calls (aiohttp may repeat a GET once on a reset pooled
    # connection; never a POST), and everyone else is still served.
    assert len(net.emsp.script.served) in ((1, 2) if fault == "reset" else (1,))
    assert len(net.fcpo.script.served) == 1
    _queued_or_final(*await net.push("B1", to=net.other))


async def test_synchronous_calls_to_a_partner_that_is_down_are_4003(fnet) -> None:
    net = await fnet()
    await net.emsp.go_down()
    await net.fcpo.go_down()
    _, body, _ = await _pull(net)
    assert body["status_code"] == 4003, body
    _, body = await _command(net)
    assert body["status_code"] == 4003, body


async def test_one_item_pages_with_link_are_crawled_through_the_hub(fnet) -> None:
    net = await fnet()
    net.emsp.script.default = "paged"
    items: list[str] = []
    path = "/ocpi/2.2.1/tokens/sender/"
    for _ in range(20):  # bounded crawl
        status, body, headers = await _pull(net, path)
        assert status == 200 and body["status_code"] == 1000, body
        items += [i["id"] for i in body["data"]]
        link = headers.get("Link")
        if not link:
            break
        match = LINK.match(link)
        assert match is not None and match.group(1).startswith(net.hub.base + "/ocpi/2.2.1/proxy/"), link
        path = match.group(1)
    assert items == [f"ITEM{n}" for n in range(5)]


async def test_a_truncated_page_in_the_middle_of_a_crawl_is_4000(fnet) -> None:
    net = await fnet()
    net.emsp.script.default = "paged"
    _, _, headers = await _pull(net)
    next_url = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
    net.emsp.script.then("truncated")
    status, body, _ = await _pull(net, next_url)
    assert status == 200 and body["status_code"] == 4000, body
    await wait_for(lambda: len(net.emsp.script.served) == 2)
