"""Overload: more pushes than a receiver (or the hub) can take are refused at once and honestly.

A receiver's ready queue is bounded (``max_queue_per_receiver``) and so is the number of OCPI
requests the hub works on (``max_requests_in_progress``): past either bound the sender gets HTTP
503 with Retry-After and an OCPI envelope, and nothing is stored; what was accepted is delivered.
"""

from __future__ import annotations

import asyncio

from hub.keys import WORKER
from tests.support.delivery import FAST, Script, delivery_net, outbox_rows, put_session, session_body, sessions_to
from tests.support.routing import CPO1, EMSP1, EMSP2, network, rh
from tests.support.waiting import settle, until


async def test_a_full_receiver_queue_answers_503_and_stores_nothing(start_hub, make_peer) -> None:
    net = await delivery_net(start_hub, make_peer, relay_wait=5.0, concurrency_per_receiver=1, max_queue_per_receiver=2)
    gate = asyncio.Event()
    net.emsp1.module_responder = Script(gate=gate)
    first = asyncio.create_task(put_session(net, "Q1", 1))
    second = asyncio.create_task(put_session(net, "Q2", 1))
    # Both committed, one in flight, one waiting for the slot.
    await until(lambda: outbox_rows(net.hub, "module='sessions'"), lambda rows: len(rows) == 2, step=0.01)
    status, body, headers = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/Q3", net.cpo1, data=session_body("Q3", 1), headers=rh(CPO1, EMSP1)
    )
    assert status == 503 and body["status_code"] == 3000, body
    assert headers["Retry-After"] == "1"
    # (Q1 and Q2 were sent at once: either may have been committed first.)
    keys = sorted(r["object_key"] for r in await outbox_rows(net.hub, "module='sessions'"))
    assert keys == ["BE/BEC/Q1", "BE/BEC/Q2"]
    gate.set()
    answers = await asyncio.gather(first, second)
    assert all(status == 200 and body["status_code"] == 1000 for status, body, _ in answers)
    await settle(net.hub)
    assert sorted(r.path.rsplit("/", 1)[-1] for r in sessions_to(net.emsp1)) == ["Q1", "Q2"]


async def test_a_hub_at_capacity_refuses_at_once_and_recovers(start_hub, make_peer) -> None:
    hub = await start_hub(max_requests_in_progress=1, delivery={**FAST, "relay_wait": 5.0})
    net = await network(hub, make_peer)
    gate = asyncio.Event()
    net.emsp1.module_responder = Script(gate=gate)
    held = asyncio.create_task(put_session(net, "A1", 1))
    # The first push is in progress (waiting for the receiver).
    await until(lambda: outbox_rows(net.hub, "module='sessions'"), bool, step=0.01)
    status, body, headers = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/A2", net.cpo1, data=session_body("A2", 1), headers=rh(CPO1, EMSP1)
    )
    assert status == 503 and body["status_code"] == 3000, body
    assert headers["Retry-After"] == "1"
    assert len(await outbox_rows(net.hub, "module='sessions'")) == 1
    gate.set()
    status, body, _ = await held
    assert status == 200 and body["status_code"] == 1000
    status, body, _ = await put_session(net, "A3", 1)
    assert status == 200 and body["status_code"] == 1000, body


async def test_worker_idle_waits_for_the_attempt_in_flight(start_hub, make_peer) -> None:
    net = await delivery_net(start_hub, make_peer, relay_wait=0.05)
    gate = asyncio.Event()
    net.emsp1.module_responder = Script(gate=gate)
    status, body, _ = await put_session(net, "I1", 1)
    assert status == 200 and "queued" in body["status_message"]
    idle = asyncio.create_task(net.hub.app[WORKER].idle())
    await asyncio.sleep(0)
    assert not idle.done()  # the attempt is still waiting for the receiver
    gate.set()
    await asyncio.wait_for(idle, 10)
    assert [r.path.rsplit("/", 1)[-1] for r in sessions_to(net.emsp1)] == ["I1"]
    assert await outbox_rows(net.hub, "module='sessions'") == []


async def test_back_to_back_pushes_each_get_the_receivers_answer(start_hub, make_peer) -> None:
    # Row ids are reused once the newest row is deleted: a push committed together with the
    # delete of a just-delivered one may get its id while that attempt is still recording. Keyed
    # by X-Request-ID, the scheduler still sends it at once (keyed by row id, it waited relay_wait).
    net = await delivery_net(start_hub, make_peer, relay_wait=5.0)
    net.emsp1.module_responder = Script()

    async def client(c: int) -> list[bool]:
        out = []
        for n in range(15):
            status, body, _ = await put_session(net, f"B{c}x{n}", 1)
            out.append(status == 200 and body["status_code"] == 1000 and "queued" not in str(body))
        return out

    results = await asyncio.wait_for(asyncio.gather(*(client(c) for c in range(6))), 25)
    assert all(all(r) for r in results)
    await settle(net.hub)
    assert len(sessions_to(net.emsp1)) == 90
    assert await outbox_rows(net.hub, "module='sessions'") == []


async def test_deliveries_in_flight_stay_within_max_in_flight_across_receivers(start_hub, make_peer) -> None:
    # A fan-out to thousands of receivers (a registration's HubClientInfo) must not become
    # thousands of attempts in memory at once: all receivers together send max_in_flight at most.
    net = await delivery_net(start_hub, make_peer, relay_wait=0.05, max_in_flight=1, concurrency_per_receiver=4)
    gate = asyncio.Event()
    busy, most = 0, 0

    async def held(request, body):  # type: ignore[no-untyped-def]
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        try:
            await asyncio.wait_for(gate.wait(), 10)
            return None  # Script answers 1000
        finally:
            busy -= 1

    net.emsp1.module_responder = Script(custom=held)
    net.emsp2.module_responder = Script(custom=held)
    for n, to in enumerate([EMSP1, EMSP2] * 2):
        status, body, _ = await net.call(
            "PUT",
            f"/ocpi/2.2.1/sessions/receiver/BE/BEC/M{n}",
            net.cpo1,
            data=session_body(f"M{n}", 1),
            headers=rh(CPO1, to),
        )
        assert status == 200 and body["status_code"] == 1000, body
    for _ in range(100):  # bounded: give the scheduler every chance to start more than one
        await asyncio.sleep(0.01)
    assert most == 1
    gate.set()
    await settle(net.hub)
    assert most == 1
    assert sorted(r.path.rsplit("/", 1)[-1] for r in sessions_to(net.emsp1) + sessions_to(net.emsp2)) == [
        "M0",
        "M1",
        "M2",
        "M3",
    ]
