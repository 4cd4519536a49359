"""Attacks that stall the hub for everyone (issue 20, item 4): slow bodies, GETs to a silent CPO.

One partner could fill the hub-wide in-progress bound (``max_requests_in_progress``) and every
other partner got 503. The hub now bounds requests in progress per platform
(``max_requests_in_progress_per_platform``: HTTP 429 + Retry-After past it), gives a body
``body_read_timeout`` seconds to arrive (HTTP 408, ``Connection: close``), and does not count a
request against the hub-wide bound while its body is still arriving. Slow bodies are sent on raw
sockets: headers and a part of the body, then nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from config import Settings
from hub.ocpi.limits import ADMISSION
from tests.support.delivery import Script
from tests.support.fakes import FakePlatform, b64
from tests.support.routing import CPO1, EMSP1, EMSP2, Net, module_requests, network, rh
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

BODY = json.dumps({"token": "x" * 64, "url": "http://127.0.0.1/ocpi/versions"}).encode()


@asynccontextmanager
async def slow_body(net: Net, peer: FakePlatform) -> AsyncIterator[asyncio.StreamReader]:
    """A PUT whose headers and first bytes arrive, and then nothing: the socket stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", net.hub.settings.port)
    head = (
        "PUT /ocpi/2.2.1/locations/receiver/BE/BEC/LOC1 HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Token {b64(peer.hub_token or '')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    writer.write(head.encode() + BODY[:10])
    await writer.drain()
    try:
        yield reader
    finally:
        writer.close()


def limits(**values: Any) -> dict[str, Any]:
    """The limit settings this hub knows (so the attacks also run against a hub from before them)."""
    return {k: v for k, v in values.items() if k in Settings.model_fields}


def in_progress(net: Net) -> int:
    """Requests the hub counts as in progress, hub-wide or per platform (whichever the hub keeps)."""
    admission = net.hub.app[ADMISSION]
    per_platform = getattr(admission, "by_platform", {})
    return int(admission.in_progress) + sum(per_platform.values())


async def read_answer(reader: asyncio.StreamReader, bound: float = 5.0) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body of one HTTP answer on a raw connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), bound)
    lines = head.decode().strip().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    body = await asyncio.wait_for(reader.readexactly(int(headers["Content-Length"])), bound)
    return int(lines[0].split()[1]), headers, json.loads(body)


async def test_slow_bodies_do_not_hold_the_hubs_admission(start_hub, make_peer) -> None:
    hub = await start_hub(
        **limits(max_requests_in_progress=2, max_requests_in_progress_per_platform=2, body_read_timeout=30)
    )
    net = await network(hub, make_peer)
    async with slow_body(net, net.cpo1), slow_body(net, net.cpo1):
        await wait_for(lambda: in_progress(net) == 2, what="both slow bodies are being read")
        # Everyone else is still served: the hub is not "at capacity" while bodies trickle in.
        status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1)
        assert status == 200 and body["status_code"] == 1000, body
        status, body, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.emsp2)
        assert status == 200 and body["status_code"] == 1000, body


async def test_slow_bodies_beyond_a_platforms_share_are_refused_with_429(start_hub, make_peer) -> None:
    hub = await start_hub(
        **limits(max_requests_in_progress=8, max_requests_in_progress_per_platform=2, body_read_timeout=30)
    )
    net = await network(hub, make_peer)
    async with slow_body(net, net.cpo1), slow_body(net, net.cpo1):
        await wait_for(lambda: in_progress(net) == 2, what="both slow bodies are being read")
        status, body, headers = await asyncio.wait_for(
            net.call("GET", "/ocpi/2.2.1/locations/sender/", net.cpo1, headers=rh(CPO1, ("NL", "HUB"))), 5
        )
        assert status == 429 and body["status_code"] == 2000 and headers["Retry-After"] == "1", body
        assert "in progress" in body["status_message"]
        status, body, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.emsp2)
        assert status == 200 and body["status_code"] == 1000, body


async def test_a_body_that_does_not_arrive_in_time_is_refused_with_408(start_hub, make_peer) -> None:
    hub = await start_hub(**limits(body_read_timeout=0.3))
    net = await network(hub, make_peer)
    async with slow_body(net, net.cpo1) as reader:
        status, headers, body = await read_answer(reader)
    assert status == 408 and body["status_code"] == 2000 and "did not arrive" in body["status_message"], body
    # The rest of that body must never be read as a next request on the connection.
    assert headers["Content-Type"].startswith("application/json") and headers["Connection"] == "close"
    assert in_progress(net) == 0
    for peer in net.peers:  # nothing of the half body went anywhere
        assert module_requests(peer, "locations") == []


async def test_gets_to_a_silent_cpo_hold_at_most_one_platforms_share(start_hub, make_peer) -> None:
    hub = await start_hub(**limits(max_requests_in_progress=8, max_requests_in_progress_per_platform=2))
    net = await network(hub, make_peer)
    gate = asyncio.Event()
    net.cpo1.module_responder = Script(gate=gate)  # the attacker's "own" CPO never answers (until the gate)
    held = [
        asyncio.create_task(net.call("GET", f"/ocpi/2.2.1/locations/sender/L{n}", net.emsp1, headers=rh(EMSP1, CPO1)))
        for n in range(2)
    ]
    try:
        await wait_for(lambda: len(module_requests(net.cpo1, "locations")) == 2, what="both GETs wait at the CPO")
        status, body, headers = await asyncio.wait_for(
            net.call("GET", "/ocpi/2.2.1/locations/sender/L2", net.emsp1, headers=rh(EMSP1, CPO1)), 5
        )
        assert status == 429 and body["status_code"] == 2000 and headers["Retry-After"] == "1", body
        assert len(module_requests(net.cpo1, "locations")) == 2  # the third never left the hub
        # Another platform is not held up by it.
        status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp2, headers=rh(EMSP2, None))
        assert status == 200 and body["status_code"] == 1000, body
    finally:
        gate.set()
        answers = await asyncio.gather(*held)
    assert all(status == 200 and body["status_code"] == 1000 for status, body, _ in answers), answers
    assert in_progress(net) == 0
