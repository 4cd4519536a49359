"""Connection slots (routing/peers/slots.py): the wait for a connection is not part of a call's timeout."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from routing.peers.client import PeerClient
from routing.peers.slots import Slots
from routing.peers.transport import Transport
from tests.support.waiting import wait_for

A = ("http", "a.example", 80)
B = ("http", "b.example", 80)


async def test_per_origin_bound_first_come_first_served() -> None:
    slots = Slots(total=10, per_origin=2)
    order: list[int] = []
    await slots.acquire(A)
    await slots.acquire(A)

    async def call(n: int) -> None:
        await slots.acquire(A)
        order.append(n)

    waiters = [asyncio.create_task(call(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert slots.waiting == 3 and order == []
    await slots.acquire(B)  # another origin is not held up by A's queue
    slots.release(A)
    await asyncio.sleep(0)
    assert order == [0]
    slots.release(A)
    slots.release(A)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2] and slots.in_use == 3  # A: 2 held, B: 1


async def test_total_bound_across_origins_and_cancelled_waiters_give_way() -> None:
    slots = Slots(total=2, per_origin=0)
    await slots.acquire(A)
    await slots.acquire(B)
    gave_up = asyncio.create_task(slots.acquire(A))
    second = asyncio.create_task(slots.acquire(B))
    await asyncio.sleep(0)
    gave_up.cancel()
    await asyncio.gather(gave_up, return_exceptions=True)
    slots.release(A)
    await asyncio.wait_for(second, 1)
    assert slots.in_use == 2 and slots.waiting == 0


async def test_a_slot_handed_to_a_caller_that_gave_up_is_given_back() -> None:
    slots = Slots(total=1, per_origin=1)
    await slots.acquire(A)
    late = asyncio.create_task(slots.acquire(A))
    await asyncio.sleep(0)
    slots.release(A)  # handed to ``late``...
    late.cancel()  # ...which is cancelled before it runs
    await asyncio.gather(late, return_exceptions=True)
    assert slots.in_use == 0
    await asyncio.wait_for(slots.acquire(A), 1)


@pytest.mark.timeout(30)
async def test_calls_waiting_for_a_connection_do_not_time_out_for_it() -> None:
    """Six calls of 0.3 s each to a receiver the pool allows 2 connections to, timeout 0.5 s: every
    call answers (the wait in line is not the receiver's slowness); before, the last ones failed 4002."""
    seen: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        seen.append(request.headers["X-Request-ID"])
        await asyncio.sleep(0.3)
        return web.json_response({"status_code": 1000, "timestamp": "2026-12-05T10:00:00Z"})

    app = web.Application()
    app.router.add_put("/x", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Transport(aiohttp.DefaultResolver(), limit=8, limit_per_host=2) as transport:
            client = PeerClient(transport, connect_timeout=0.5, request_timeout=0.5, allow_private_urls=True)
            calls = [
                client.send("PUT", f"http://127.0.0.1:{port}/x", token=None, headers={"X-Request-ID": f"r{n}"})
                for n in range(6)
            ]
            answers = await asyncio.gather(*calls)
            await wait_for(lambda: client.slots.in_use == 0)
    finally:
        await runner.cleanup()
    assert [a.ocpi_status for a in answers] == [1000] * 6
    assert sorted(seen) == [f"r{n}" for n in range(6)]  # each once: no retry, no duplicate
