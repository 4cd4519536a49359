"""The HubClientInfo fan-out is durable: committed with the change that owes it, resumed at start.

Seen from the wire (routing/registry/clientinfo.py, storage/clientinfo_due.py): a registration or
status change commits one ``clientinfo_due`` row with itself and is answered; the pusher commits
the PUTs afterwards, in chunks with the row's progress. A hub stopped between the answer and
the fan-out, or in the middle of it, gives each platform what it had not got yet when it starts
again, nothing twice; changes are pushed in order; two processes on one PostgreSQL database push
each fan-out once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hub.keys import DIRECTORY, REGISTRY, STORE, WORKER
from routing.delivery.intake import Delivery
from routing.registry import clientinfo as clientinfo_module
from routing.registry.clientinfo import ClientInfoPusher
from storage import clientinfo_due as due_sql
from storage.clientinfo_due import Due
from tests.support.fakes import FakePlatform, Received
from tests.support.hub import HubHandle
from tests.support.routing import CPO1, EMSP1, EMSP2, MakePeer, connect, network
from tests.support.waiting import until, wait_for

pytestmark = pytest.mark.both_backends

StartHub = Callable[..., Awaitable[HubHandle]]
NEW = ("FR", "NEW", "EMSP")  # the platform that registers last in these tests


def _infos(peer: FakePlatform, about: tuple[str, str, str] | None = None) -> list[Received]:
    """The ClientInfo PUTs a fake received (about one party, if given), in arrival order."""
    legs = peer.requests_to("/ocpi/2.2.1/hubclientinfo/receiver/")
    if about is None:
        return legs
    return [r for r in legs if r.path.endswith(f"/{about[0]}/{about[1]}")]


def _pusher(hub: HubHandle) -> ClientInfoPusher:
    """The app's ClientInfo pusher (a registry listener)."""
    return next(p for p in hub.app[REGISTRY].listeners if isinstance(p, ClientInfoPusher))


async def _pending(hub: HubHandle) -> int:
    return await due_sql.count(hub.app[STORE])


class Gate:
    """Holds every fan-out until opened (a hub that answered but has not pushed yet)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.armed = True  # disarmed: fan-outs run as written (a restarted hub)
        self.waiting = 0
        self.original = original = ClientInfoPusher.push

        async def held(pusher: ClientInfoPusher, due: Due) -> None:
            if self.armed:
                self.waiting += 1
                await self.open.wait()
            await original(pusher, due)

        monkeypatch.setattr(ClientInfoPusher, "push", held)


async def test_the_fan_out_is_committed_with_the_registration(
    hub: HubHandle, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    cpo = await connect(hub, make_peer, CPO1)
    emsp = await connect(hub, make_peer, EMSP1)
    # Both answered: both fan-outs are rows already, not one PUT is in the outbox yet.
    assert await _pending(hub) == 2
    await wait_for(lambda: gate.waiting == 1)
    assert _infos(cpo) == [] and _infos(emsp) == []
    gate.open.set()
    await asyncio.wait_for(hub.app[WORKER].idle(), 10)
    assert [r.body["party_id"] for r in _infos(cpo)] == [EMSP1[1]]
    assert [r.body["party_id"] for r in _infos(emsp)] == [CPO1[1]]
    assert await _pending(hub) == 0


async def test_a_fan_out_answered_before_a_stop_reaches_everyone_after_the_restart(
    start_hub: StartHub, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped between the registration's answer and its fan-out (the row committed, no PUT yet)."""
    first = await start_hub()
    net = await network(first, make_peer)
    gate = Gate(monkeypatch)
    newcomer = await connect(first, make_peer, NEW, name="newcomer")
    await wait_for(lambda: gate.waiting == 1)
    await first.server.close()  # the fan-out never ran
    gate.armed = False
    second = await start_hub(database=first.settings.database)
    await asyncio.wait_for(second.app[WORKER].idle(), 10)
    for peer in net.peers:
        assert [r.body["status"] for r in _infos(peer, NEW)] == ["CONNECTED"], peer.name
    told = sorted((r.body["country_code"], r.body["party_id"]) for r in _infos(newcomer))
    assert told == sorted((c, p) for c, p, _ in (CPO1, ("DE", "ALL", "CPO"), EMSP1, EMSP2))
    assert await _pending(second) == 0


async def test_a_stop_in_the_middle_of_a_fan_out_repeats_and_skips_nobody(
    start_hub: StartHub, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One platform per chunk; stopped before the third chunk's commit: the restart does the rest."""
    first = await start_hub()
    net = await network(first, make_peer)
    monkeypatch.setattr(clientinfo_module, "BATCH", 1)
    chunks: list[int] = []
    hold = asyncio.Event()
    armed = [True]
    original = Delivery.enqueue_as_of

    async def third_chunk_held(delivery: Delivery, legs: Any, now: Any, **kwargs: Any) -> None:
        chunks.append(len(legs))
        if armed[0] and len(chunks) > 2:
            await hold.wait()  # never set: the hub stops here
        await original(delivery, legs, now, **kwargs)

    monkeypatch.setattr(Delivery, "enqueue_as_of", third_chunk_held)
    newcomer = await connect(first, make_peer, NEW, name="newcomer")
    await wait_for(lambda: len(chunks) == 3)
    told_first = net.peers[:2]  # platform ids 1 and 2: the first two chunks
    for peer in told_first:
        await wait_for(lambda p=peer: len(_infos(p, NEW)) == 1)  # type: ignore[misc]
    assert all(_infos(peer, NEW) == [] for peer in net.peers[2:])
    assert await _pending(first) == 1
    await first.server.close()
    armed[0] = False
    second = await start_hub(database=first.settings.database)
    await asyncio.wait_for(second.app[WORKER].idle(), 10)
    for peer in net.peers[2:]:
        await wait_for(lambda p=peer: len(_infos(p, NEW)) == 1)  # type: ignore[misc]
    await wait_for(lambda: len(_infos(newcomer)) == 4)  # the backfill: one PUT per party already there
    await asyncio.sleep(0.1)
    for peer in net.peers:
        assert len(_infos(peer, NEW)) == 1, peer.name  # once, not again
    assert len({r.path for r in _infos(newcomer)}) == 4
    assert await _pending(second) == 0


async def test_status_changes_are_pushed_in_their_order(
    hub: HubHandle, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suspend and resume committed before either is pushed: every platform hears them in that order."""
    net = await network(hub, make_peer)
    emsp2_id = await net.platform_id(net.emsp2)
    gate = Gate(monkeypatch)
    for action in ("suspend", "resume", "suspend"):
        status, body = await hub.admin("POST", f"/admin/platforms/{emsp2_id}/{action}")
        assert status == 200, body
    assert await _pending(hub) == 3
    gate.open.set()
    others = (net.cpo1, net.cpo2, net.emsp1)
    await wait_for(lambda: all(len(_infos(p, EMSP2)) == 3 for p in others))
    await asyncio.wait_for(hub.app[WORKER].idle(), 10)
    for peer in others:
        assert [r.body["status"] for r in _infos(peer, EMSP2)] == ["SUSPENDED", "CONNECTED", "SUSPENDED"]
    assert await _pending(hub) == 0


async def test_two_processes_push_each_fan_out_once(
    db_backend: str,
    start_hub: StartHub,
    make_peer: MakePeer,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A process that stalls past its lease loses the fan-out to the other; its late chunk commits nothing."""
    if db_backend != "postgres":
        pytest.skip("two processes share a PostgreSQL database")
    first = await start_hub()
    second = await start_hub(database=first.settings.database)
    peers = [await connect(first, make_peer, party, name=f"peer {party[1]}") for party in (CPO1, EMSP1, EMSP2)]
    await asyncio.wait_for(first.app[WORKER].idle(), 10)
    await asyncio.sleep(0.3)  # the second process hears of the registrations (NOTIFY)
    stalled = asyncio.Event()
    go_on = asyncio.Event()
    original = Delivery.enqueue_as_of
    first_worker = first.app[WORKER]

    async def first_stalls(delivery: Delivery, legs: Any, now: Any, **kwargs: Any) -> None:
        if delivery.worker is first_worker and not go_on.is_set():
            stalled.set()
            await go_on.wait()
        await original(delivery, legs, now, **kwargs)

    monkeypatch.setattr(Delivery, "enqueue_as_of", first_stalls)
    newcomer = await connect(first, make_peer, NEW, name="newcomer")
    await wait_for(lambda: stalled.is_set())
    await asyncio.sleep(0.3)  # the second process hears of the newcomer (NOTIFY)
    clock.advance(first.settings.cluster.lease_seconds + 1)  # the first process's lease runs out
    _pusher(second).wake()
    for peer in peers:
        await wait_for(lambda p=peer: len(_infos(p, NEW)) == 1, timeout=15)  # type: ignore[misc]
    await wait_for(lambda: len(_infos(newcomer)) == 3, timeout=15)
    go_on.set()  # the stalled process's chunk: LostClientInfo, nothing committed
    await asyncio.sleep(0.5)
    await asyncio.wait_for(first.app[WORKER].idle(), 10)
    await asyncio.wait_for(second.app[WORKER].idle(), 10)
    for peer in peers:
        assert len(_infos(peer, NEW)) == 1, peer.name
    assert len(_infos(newcomer)) == 3
    assert await _pending(first) == 0
    assert any("left to another process" in r.getMessage() for r in caplog.records)


async def test_a_fan_out_of_a_platform_gone_since_is_dropped(hub: HubHandle, make_peer: MakePeer) -> None:
    """A row whose platform no longer exists (a hub-initiated connection that failed after it) pushes nothing."""
    peer = await connect(hub, make_peer, CPO1)
    await asyncio.wait_for(hub.app[WORKER].idle(), 10)
    store = hub.app[STORE]
    async with store.transaction() as tx:
        due = due_sql.NewDue(platform_id=999, status="CONNECTED", registered=True, created_at="2026-11-25T12:00:00Z")
        await due_sql.add(tx, due, owner=store.owner, lease_until="2026-11-25T12:00:30Z")
    _pusher(hub).wake()
    await asyncio.wait_for(hub.app[WORKER].idle(), 10)
    assert await _pending(hub) == 0
    assert _infos(peer) == []


async def test_a_fan_out_behind_another_process_s_goes_when_that_one_is_pushed(
    db_backend: str, start_hub: StartHub, make_peer: MakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go oldest first across processes; the one pushing tells the other (NOTIFY), no clock needed."""
    if db_backend != "postgres":
        pytest.skip("two processes share a PostgreSQL database")
    first = await start_hub()
    second = await start_hub(database=first.settings.database)
    net = await network(first, make_peer)
    await asyncio.sleep(0.3)  # the second process hears of the registrations (NOTIFY)
    emsp2_id = await net.platform_id(net.emsp2)
    gate = Gate(monkeypatch)
    first_pusher = _pusher(first)
    held, original = ClientInfoPusher.push, gate.original

    async def only_first_held(pusher: ClientInfoPusher, due: Due) -> None:
        await (held if pusher is first_pusher else original)(pusher, due)

    monkeypatch.setattr(ClientInfoPusher, "push", only_first_held)
    status, body = await first.admin("POST", f"/admin/platforms/{emsp2_id}/suspend")
    assert status == 200, body
    await wait_for(lambda: gate.waiting == 1)
    status, body = await second.admin("POST", f"/admin/platforms/{emsp2_id}/resume")
    assert status == 200, body
    await asyncio.sleep(0.3)
    others = (net.cpo1, net.cpo2, net.emsp1)
    assert all(_infos(p, EMSP2) == [] for p in others)  # the second's row waits behind the first's
    gate.open.set()
    await wait_for(lambda: all(len(_infos(p, EMSP2)) == 2 for p in others))
    for peer in others:
        assert [r.body["status"] for r in _infos(peer, EMSP2)] == ["SUSPENDED", "CONNECTED"]
    assert await _pending(first) == 0


async def test_a_new_platform_gets_its_clientinfo_when_the_pusher_ran_before_the_directory_knew_it(
    start_hub: StartHub, make_peer: MakePeer
) -> None:
    """The race behind network()'s rare timeouts: the pusher works a registration's row while the
    directory still has the new platform as it was (not yet routable), so the scheduler leaves the
    legs to it in the outbox; the directory's update then wakes the scheduler, no clock needed."""
    hub = await start_hub()
    await connect(hub, make_peer, CPO1, name="CPO one")
    registry, pusher = hub.app[REGISTRY], _pusher(hub)
    directory_changed = registry.listeners[0]  # the directory's listener comes first (hub/app.py)
    assert getattr(directory_changed, "__self__", None) is hub.app[DIRECTORY]

    async def late(platform: Any, status: str, registered: bool = False) -> None:
        pusher.wake()  # the pusher goes first, as a round already running does
        await asyncio.wait_for(pusher.idle(), 10)
        assert await until(lambda: _pending(hub), lambda n: n == 0) == 0
        await directory_changed(platform, status, registered)

    registry.listeners[0] = late
    new = await connect(hub, make_peer, EMSP1, name="eMSP one")
    await wait_for(lambda: len(_infos(new, CPO1)) == 1)  # the backfill about the CPO, clock standing still
