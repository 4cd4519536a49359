"""HubClientInfo owed by agreement changes, exactly (routing/agreements/changes.py, routing/registry/clientinfo.py).

Four fake platforms registered through the real handshake, agreements required, BE*BEC (CPO) and
NL*TNM (eMSP) agreed before anyone registered. Each change (an agreement created, suspended,
resumed, deleted, a validity window opening and closing on the injected clock) must put, on the
wire, exactly one ClientInfo PUT to each side about the other and nothing to anyone else; a
window crossing whose fan-out row failed to commit is announced at the watcher's next look, once, and one
that happened while the hub was stopped is announced after the restart, once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.keys import AGREEMENTS, STORE
from routing.agreements.changes import Agreements
from routing.clock import FakeClock, iso
from storage import clientinfo_due as due_sql
from tests.support.agreements import agree, client_infos, wait_told
from tests.support.delivery import FAST
from tests.support.fakes import FakePlatform
from tests.support.routing import CPO1, CPO2, EMSP1, EMSP2, MakePeer, Net, quiet_network
from tests.support.waiting import settle, wait_for

pytestmark = pytest.mark.both_backends

Told = tuple[str, str, str]  # (country_code, party_id, status) of one ClientInfo PUT


class Wire:
    """The ClientInfo PUTs each fake received since the last ``take``."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.seen = {id(p): len(client_infos(p)) for p in net.peers}

    async def take(self) -> dict[str, list[Told]]:
        """What arrived since the last call, by fake name (after the pusher and the worker settled)."""
        await settle(self.net.hub)
        out: dict[str, list[Told]] = {}
        for peer in self.net.peers:
            got = client_infos(peer)[self.seen[id(peer)] :]
            self.seen[id(peer)] = len(client_infos(peer))
            out[peer.name] = [(r.body["country_code"], r.body["party_id"], r.body["status"]) for r in got]
        return out


def only(net: Net, **by_peer: list[Told]) -> dict[str, list[Told]]:
    """The expected ``Wire.take``: these fakes got these PUTs, every other one nothing."""
    names = {"cpo1": net.cpo1, "cpo2": net.cpo2, "emsp1": net.emsp1, "emsp2": net.emsp2}
    expected: dict[str, list[Told]] = {p.name: [] for p in net.peers}
    for key, puts in by_peer.items():
        peer: FakePlatform = names[key]
        expected[peer.name] = puts
    return expected


class Looks:
    """Counts the window watcher's looks (the app's periodic round calls it on the fake clock)."""

    def __init__(self, book: Agreements, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        inner = book.watch_windows

        async def counted() -> None:
            try:
                await inner()
            finally:
                self.count += 1

        monkeypatch.setattr(book, "watch_windows", counted)

    async def advance(self, clock: FakeClock, seconds: float) -> None:
        """Advance the clock and wait for the look it brings (a failed one counts)."""
        before = self.count
        clock.advance(seconds)
        await wait_for(lambda: self.count > before, what="a look of the agreement window watcher")


@pytest.fixture
async def net(start_hub: Any, make_peer: MakePeer) -> Net:
    hub = await start_hub(agreements="required", delivery=FAST)
    await agree(hub, CPO1, EMSP1)
    return await quiet_network(hub, make_peer)


async def test_create_suspend_resume_delete_tell_exactly_both_sides(net: Net) -> None:
    wire = Wire(net)
    await wire.take()  # the registrations' own ClientInfo
    made = await agree(net.hub, CPO2, EMSP2, modules=["tariffs"])
    assert await wire.take() == only(net, cpo2=[("DE", "TNM", "CONNECTED")], emsp2=[("DE", "ALL", "CONNECTED")])

    status, body = await net.hub.admin("POST", f"/admin/agreements/{made['id']}/suspend")
    assert status == 200 and body["in_force"] is False, body
    assert await wire.take() == only(net, cpo2=[("DE", "TNM", "PLANNED")], emsp2=[("DE", "ALL", "PLANNED")])
    status, body = await net.hub.admin("POST", f"/admin/agreements/{made['id']}/suspend")
    assert status == 200, body
    assert await wire.take() == only(net)  # suspended twice: nothing changed, nothing told

    await net.hub.admin("POST", f"/admin/agreements/{made['id']}/resume")
    assert await wire.take() == only(net, cpo2=[("DE", "TNM", "CONNECTED")], emsp2=[("DE", "ALL", "CONNECTED")])
    status, _ = await net.hub.admin("PATCH", f"/admin/agreements/{made['id']}", {"modules": ["locations"]})
    assert status == 200
    assert await wire.take() == only(net)  # other modules, same parties: their view is unchanged

    status, _ = await net.hub.admin("DELETE", f"/admin/agreements/{made['id']}")
    assert status == 200
    assert await wire.take() == only(net, cpo2=[("DE", "TNM", "PLANNED")], emsp2=[("DE", "ALL", "PLANNED")])
    assert await due_sql.count(net.hub.app[STORE]) == 0


async def test_moving_an_agreement_to_other_parties_ends_the_old_pair_and_starts_the_new(net: Net) -> None:
    wire = Wire(net)
    made = await agree(net.hub, CPO2, EMSP2)
    await wire.take()
    parties = [
        {"country_code": "DE", "party_id": "ALL", "role": "CPO"},
        {"country_code": "NL", "party_id": "TNM", "role": "EMSP"},
    ]
    status, body = await net.hub.admin("PATCH", f"/admin/agreements/{made['id']}", {"parties": parties})
    assert status == 200, body
    assert await wire.take() == only(
        net,
        cpo2=[("DE", "TNM", "PLANNED"), ("NL", "TNM", "CONNECTED")],
        emsp2=[("DE", "ALL", "PLANNED")],
        emsp1=[("DE", "ALL", "CONNECTED")],
    )


async def test_a_validity_window_is_told_once_when_it_opens_and_once_when_it_closes(
    net: Net, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = Wire(net)
    looks = Looks(net.hub.app[AGREEMENTS], monkeypatch)
    start = clock.now()
    await agree(net.hub, CPO1, EMSP2, valid_from=iso(start.replace(hour=13)), valid_to=iso(start.replace(hour=15)))
    assert await wire.take() == only(net)  # not in force yet (the clock says 12:00)
    await looks.advance(clock, 3600)
    assert await wire.take() == only(net, cpo1=[("DE", "TNM", "CONNECTED")], emsp2=[("BE", "BEC", "CONNECTED")])
    for _ in range(3):  # later looks: announced already
        await looks.advance(clock, 60)
        assert await wire.take() == only(net)
    await looks.advance(clock, 7200)
    assert await wire.take() == only(net, cpo1=[("DE", "TNM", "PLANNED")], emsp2=[("BE", "BEC", "PLANNED")])


async def test_a_window_crossing_whose_row_did_not_commit_is_announced_at_the_next_look(
    net: Net, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash between the window opening and the commit of its fan-out row: the row and the
    # flip of `announced` go in one job, so neither is left behind; the next look does both.
    wire = Wire(net)
    looks = Looks(net.hub.app[AGREEMENTS], monkeypatch)
    start = clock.now()
    await agree(net.hub, CPO1, EMSP2, valid_from=iso(start.replace(hour=13)))
    await wire.take()
    add = due_sql.add_agreements
    crashing = [True]  # a failed job may be run again (storage/statements.py): failing each time
    crashes: list[str] = []

    def crash(*args: Any, **kwargs: Any) -> int:
        if crashing[0]:
            crashes.append("crashed")
            raise RuntimeError("the hub died before this commit")
        return add(*args, **kwargs)

    monkeypatch.setattr(due_sql, "add_agreements", crash)
    await looks.advance(clock, 3600)
    crashing[0] = False
    assert crashes, "the fan-out row's insert was never reached"
    assert await wire.take() == only(net)
    status, listed = await net.hub.admin("GET", "/admin/agreements")
    assert status == 200 and [ag["in_force"] for ag in listed] == [True, True], listed
    await looks.advance(clock, 60)
    assert await wire.take() == only(net, cpo1=[("DE", "TNM", "CONNECTED")], emsp2=[("BE", "BEC", "CONNECTED")])
    await looks.advance(clock, 60)
    assert await wire.take() == only(net)


async def test_a_window_that_opened_while_the_hub_was_stopped_is_told_once_after_the_restart(
    start_hub: Any, make_peer: MakePeer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing in the database changes when a window opens: without `announced` the restarted hub
    # took what it found in force as told, and the two sides never heard of each other.
    first = await start_hub(agreements="required", delivery=FAST)
    await agree(first, CPO1, EMSP1)
    net = await quiet_network(first, make_peer)
    await agree(first, CPO1, EMSP2, valid_from=iso(clock.now().replace(hour=13)))
    wire = Wire(net)
    await wire.take()
    await first.server.close()
    clock.advance(3600)
    net.hub = await start_hub(agreements="required", delivery=FAST, database=first.settings.database)
    await wait_told(net.emsp2, CPO1, "CONNECTED")
    await wait_told(net.cpo1, EMSP2, "CONNECTED")
    assert await wire.take() == only(net, cpo1=[("DE", "TNM", "CONNECTED")], emsp2=[("BE", "BEC", "CONNECTED")])
    await net.hub.server.close()
    net.hub = await start_hub(agreements="required", delivery=FAST, database=first.settings.database)
    looks = Looks(net.hub.app[AGREEMENTS], monkeypatch)
    await looks.advance(clock, 60)
    assert await wire.take() == only(net)  # told before this restart: not again


async def test_two_processes_looking_at_once_announce_a_window_once(
    db_backend: str, start_hub: Any, make_peer: MakePeer, clock: FakeClock
) -> None:
    # The watcher runs where `agreement-windows` is led, but leadership moves: two processes may
    # both look. The flip of `announced` only from the value read lets one of them announce.
    if db_backend != "postgres":
        pytest.skip("two processes share a PostgreSQL database")
    first = await start_hub(agreements="required", delivery=FAST)
    second = await start_hub(agreements="required", delivery=FAST, database=first.settings.database)
    await agree(first, CPO1, EMSP1)
    net = await quiet_network(first, make_peer)
    await agree(first, CPO1, EMSP2, valid_from=iso(clock.now().replace(hour=13)))
    wire = Wire(net)
    await wire.take()
    await second.app[AGREEMENTS].reload()  # as its NOTIFY does, without waiting for it
    clock.advance(3600)
    await asyncio.gather(first.app[AGREEMENTS].watch_windows(), second.app[AGREEMENTS].watch_windows())
    await wait_told(net.emsp2, CPO1, "CONNECTED")
    await wait_told(net.cpo1, EMSP2, "CONNECTED")
    await settle(second)
    assert await wire.take() == only(net, cpo1=[("DE", "TNM", "CONNECTED")], emsp2=[("BE", "BEC", "CONNECTED")])
