"""A broadcast push is answered once its record is committed; the expander fans it out after.

Seen from the wire (routing/expander.py, storage/broadcasts.py): the CPO's answer does not wait
for any receiver; every receiver still gets the push once, in order with what follows for the
same object; a hub stopped between the answer and the expansion, or in the middle of it, gives
each receiver what it had not got yet when it starts again, nothing twice; two processes on one
PostgreSQL database expand each record once. The legs reach the scheduler as committed, not read
back (a lost hand-over still goes at its next timed look), a bounded number per receiver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from hub.keys import STORE, WORKER
from routing import expander as expander_module
from routing.clock import FakeClock
from routing.delivery.intake import Delivery
from routing.delivery.scheduler import DeliveryWorker
from routing.expander import BroadcastExpander
from storage import broadcasts as broadcast_sql
from storage import claims as claims_sql
from storage.broadcasts import Broadcast
from storage.outbox import Message
from tests.support.delivery import FAST, Script, is_queued, put_session, sessions_to
from tests.support.fakes import FakePlatform, envelope
from tests.support.hub import HubHandle
from tests.support.routing import CPO1, EMSP1, EMSP2, HUB, MakePeer, Net, connect, module_requests, network, rh
from tests.support.routing import example as ex
from tests.support.waiting import advance_until, settle, until, wait_for

pytestmark = pytest.mark.both_backends

StartHub = Callable[..., Awaitable[HubHandle]]
LOC = "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"
LOCATION = ex("location_example.json")


def _paths(peer: FakePlatform) -> list[tuple[str, str, str]]:
    """(method, path, correlation id) of the locations requests a fake received, in arrival order."""
    return [(r.method, r.path, r.headers.get("X-Correlation-ID", "")) for r in module_requests(peer, "locations")]


async def _broadcast(net: Net, tag: str, *, method: str = "PUT", path: str = LOC, body: Any = None) -> None:
    status, answer, _ = await net.call(
        method,
        path,
        net.cpo1,
        json=body or LOCATION,
        headers=rh(CPO1, HUB, X_Correlation_ID=tag),
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    assert "broadcast to 2 parties" in answer["status_message"], answer


class Gate:
    """Holds every record's expansion until opened (a hub that answered but has not expanded yet)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.armed = True  # disarmed: expansions run as written (a restarted hub)
        self.waiting = 0
        original = BroadcastExpander._expand

        async def held(expander: BroadcastExpander, record: Broadcast) -> None:
            if self.armed:
                self.waiting += 1
                await self.open.wait()
            await original(expander, record)

        monkeypatch.setattr(BroadcastExpander, "_expand", held)


async def test_the_answer_does_not_wait_for_any_receiver(hub: HubHandle, make_peer: MakePeer) -> None:
    net = await network(hub, make_peer)
    release = asyncio.Event()

    async def blocked(request: web.Request, body: Any) -> web.StreamResponse:
        await release.wait()  # this eMSP answers only when the test says so
        return web.json_response(envelope())

    net.emsp1.module_responder = blocked
    await _broadcast(net, "first")  # answered while eMSP one holds its leg
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) == 1)
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 1)
    await _broadcast(net, "second")  # and again, with the first leg still unanswered
    release.set()
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) == 2)
    assert [c for _, _, c in _paths(net.emsp1)] == ["first", "second"]
    assert [c for _, _, c in _paths(net.emsp2)] == ["first", "second"]


async def test_legs_go_to_the_scheduler_as_committed(
    hub: HubHandle, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No round reads a broadcast's legs back from the outbox to send them (shared: they are leased to it)."""
    net = await network(hub, make_peer)
    read_back: list[str] = []
    original = claims_sql.claim_heads

    async def claim_heads(store: Any, **kwargs: Any) -> list[Message]:
        rows = await original(store, **kwargs)
        read_back.extend(r.headers.get("X-Correlation-ID", "") for r in rows)
        return rows

    monkeypatch.setattr(claims_sql, "claim_heads", claim_heads)
    for tag in ("b1", "b2"):
        # One after the other: a leg committed while its object's previous leg to that receiver is
        # still pending is behind it, and a round reads it once that one is done (not handed over).
        await _broadcast(net, tag)
        await settle(hub)
    for emsp in (net.emsp1, net.emsp2):
        assert [c for _, _, c in _paths(emsp)] == ["b1", "b2"]
    assert read_back == []


async def test_legs_a_lost_hand_over_left_in_the_outbox_go_at_the_next_timed_look(
    hub: HubHandle, make_peer: MakePeer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handed-over heads wake no read of the outbox; a timer wake-up always reads it (the safety net)."""
    net = await network(hub, make_peer)
    await settle(hub)
    monkeypatch.setattr(DeliveryWorker, "offer", lambda worker, rows: None)  # the hand-over never arrives
    await _broadcast(net, "lost")
    await settle(hub)  # expanded (idle() waits for the expander too)
    assert await broadcast_sql.count(hub.app[STORE]) == 0
    assert module_requests(net.emsp1, "locations") == module_requests(net.emsp2, "locations") == []
    clock.advance(61)  # past the scheduler's longest idle wait
    await settle(hub)
    for emsp in (net.emsp1, net.emsp2):
        assert [c for _, _, c in _paths(emsp)] == ["lost"]


async def test_what_follows_an_unexpanded_broadcast_stays_behind_it(
    hub: HubHandle, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directed push and a second broadcast of the same object, accepted before the first is expanded."""
    net = await network(hub, make_peer)
    gate = Gate(monkeypatch)
    await _broadcast(net, "b1")
    await wait_for(lambda: gate.waiting == 1)
    # A directed PATCH of the same Location to eMSP one: it waits for the broadcast's legs.
    patch = ex("location_patch_example_status.json")
    directed = asyncio.create_task(
        net.call("PATCH", LOC + "/3256", net.cpo1, json=patch, headers=rh(CPO1, EMSP1, X_Correlation_ID="d1"))
    )
    await asyncio.sleep(0.2)
    assert not directed.done()  # not committed ahead of the broadcast's leg to eMSP one
    assert await broadcast_sql.count(hub.app[STORE]) == 1
    gate.open.set()
    status, answer, _ = await directed
    assert status == 200 and answer["status_code"] == 1000, answer
    # Another status: the same body as d1 would be coalesced into d1's row while that one is still
    # pending (a repeated EVSE status is sent once), and eMSP one would rightly get it only once.
    later = {"status": "AVAILABLE", "last_updated": "2019-06-24T12:40:09Z"}
    await _broadcast(net, "b2", method="PATCH", path=LOC + "/3256", body=later)
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) == 3)
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 2)
    assert [c for _, _, c in _paths(net.emsp1)] == ["b1", "d1", "b2"]
    assert [c for _, _, c in _paths(net.emsp2)] == ["b1", "b2"]


async def test_a_broadcast_answered_before_a_stop_reaches_everyone_after_the_restart(
    start_hub: StartHub, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between the answer and the expansion (the record committed, no leg yet)."""
    first = await start_hub()
    net = await network(first, make_peer)
    gate = Gate(monkeypatch)
    await _broadcast(net, "b1")
    await _broadcast(net, "b2")
    await wait_for(lambda: gate.waiting == 1)
    await first.server.close()  # the expansion never ran
    gate.armed = False
    second = await start_hub(database=first.settings.database)
    await asyncio.wait_for(second.app[WORKER].idle(), 10)
    for emsp in (net.emsp1, net.emsp2):
        assert [c for _, _, c in _paths(emsp)] == ["b1", "b2"]
    assert await broadcast_sql.count(second.app[STORE]) == 0


async def test_a_stop_in_the_middle_of_an_expansion_repeats_and_skips_nobody(
    start_hub: StartHub, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One receiver per chunk; stopped after the first chunk's commit: the restart does the rest."""
    first = await start_hub()
    net = await network(first, make_peer)
    monkeypatch.setattr(expander_module, "CHUNK", 1)
    chunks: list[int] = []
    hold = asyncio.Event()
    armed = [True]
    original = Delivery.enqueue_as_of

    async def second_chunk_held(delivery: Delivery, legs: Any, now: Any, **kwargs: Any) -> None:
        chunks.append(len(legs))
        if armed[0] and len(chunks) > 1:
            await hold.wait()  # never set: the hub stops here
        await original(delivery, legs, now, **kwargs)

    monkeypatch.setattr(Delivery, "enqueue_as_of", second_chunk_held)
    await _broadcast(net, "b1")
    await wait_for(lambda: len(chunks) == 2)
    await wait_for(lambda: len(module_requests(net.emsp1, "locations")) == 1)  # the first chunk went out
    assert not module_requests(net.emsp2, "locations")
    assert await broadcast_sql.count(first.app[STORE]) == 1
    await first.server.close()
    armed[0] = False
    second = await start_hub(database=first.settings.database)
    await asyncio.wait_for(second.app[WORKER].idle(), 10)
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 1)
    await asyncio.sleep(0.1)
    assert [c for _, _, c in _paths(net.emsp1)] == ["b1"]  # once, not again
    assert [c for _, _, c in _paths(net.emsp2)] == ["b1"]
    assert await broadcast_sql.count(second.app[STORE]) == 0


async def test_two_processes_expand_each_record_once(
    db_backend: str, start_hub: StartHub, make_peer: MakePeer, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stalls past its lease loses the record to the other; its late chunk commits nothing."""
    if db_backend != "postgres":
        pytest.skip("two processes share a PostgreSQL database")
    first = await start_hub()
    second = await start_hub(database=first.settings.database)
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    emsps = [await connect(first, make_peer, party, name=f"eMSP {party[1]}") for party in (EMSP1, EMSP2)]
    await asyncio.sleep(0.3)  # the second process hears of the registrations (NOTIFY)
    stalled = asyncio.Event()
    go_on = asyncio.Event()
    original = Delivery.enqueue_as_of
    first_delivery = first.app[WORKER]

    async def first_stalls(delivery: Delivery, legs: Any, now: Any, **kwargs: Any) -> None:
        if delivery.worker is first_delivery and not go_on.is_set():
            stalled.set()
            await go_on.wait()
        await original(delivery, legs, now, **kwargs)

    monkeypatch.setattr(Delivery, "enqueue_as_of", first_stalls)
    for n in range(3):
        status, answer, _ = await first.call(
            "PUT",
            LOC,
            token=cpo.hub_token,
            json=ex("location_example.json"),
            headers=rh(CPO1, HUB, X_Correlation_ID=f"b{n}"),
        )
        assert status == 200 and answer["status_code"] == 1000, answer
    await wait_for(lambda: stalled.is_set())
    clock.advance(first.settings.cluster.lease_seconds + 1)  # the first process's lease runs out
    second.app[WORKER].wake()
    second_expander = _expander(second)
    second_expander.wake()
    for emsp in emsps:
        await wait_for(lambda e=emsp: len(module_requests(e, "locations")) == 3, timeout=15)  # type: ignore[misc]
    go_on.set()  # the stalled process's chunk: LostBroadcast, nothing committed
    await asyncio.sleep(0.5)
    await asyncio.wait_for(first.app[WORKER].idle(), 10)
    for emsp in emsps:
        assert [c for _, _, c in _paths(emsp)] == ["b0", "b1", "b2"]
    assert await broadcast_sql.count(first.app[STORE]) == 0


def _expander(hub: HubHandle) -> BroadcastExpander:
    """The app's expander (reached through the routing service)."""
    from hub.keys import ROUTING

    expander: BroadcastExpander = hub.app[ROUTING].expander
    return expander


async def test_a_burst_of_broadcasts_leaves_a_receiver_room_for_directed_pushes(
    start_hub: StartHub, make_peer: MakePeer, clock: FakeClock
) -> None:
    """Heads handed over fill at most half a receiver's queue; the rest wait in the outbox, nothing is lost."""
    hub = await start_hub(delivery={**FAST, "concurrency_per_receiver": 1, "max_queue_per_receiver": 4})
    net = await network(hub, make_peer)
    script = Script(gate=asyncio.Event())
    net.emsp1.module_responder = script
    for n in range(6):  # six Locations: six chains, each one broadcast to both eMSPs
        await _broadcast(net, f"b{n}", path=LOC[: -len("LOC1")] + f"LOC{n}", body={**LOCATION, "id": f"LOC{n}"})
    await until(lambda: broadcast_sql.count(hub.app[STORE]), lambda n: n == 0)
    await wait_for(lambda: script.in_handler == 1)  # eMSP one holds the first; the others wait for it
    # Its queue (4) holds that one and at most 2 handed over: a directed push to it is still taken.
    status, body, _ = await put_session(net, "s1", 1)
    assert is_queued(status, body), body
    script.gate.set()
    await advance_until(hub, clock, lambda: len(module_requests(net.emsp1, "locations")) == 6)
    assert sorted(c for _, _, c in _paths(net.emsp1)) == [f"b{n}" for n in range(6)]  # each once
    assert len(sessions_to(net.emsp1)) == 1
    assert sorted(c for _, _, c in _paths(net.emsp2)) == [f"b{n}" for n in range(6)]
