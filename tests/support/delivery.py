"""Helpers for the durable-delivery tests: scripted receivers, pushes, clock-driven draining.

Time in the hub is the injected FakeClock: retries happen when a test advances it. Real time is
only spent on real HTTP on 127.0.0.1, always in bounded polls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hub.keys import STORE
from routing.clock import FakeClock
from storage.backends import open_store
from tests.support.fakes import FakePlatform, Received, envelope
from tests.support.hub import HubHandle, StartHub
from tests.support.routing import CPO1, EMSP1, MakePeer, Net, cdr_for, module_requests, network, rh, session_for
from tests.support.waiting import settle, until

# Fast, test-friendly delivery settings; tests override what they exercise.
FAST = {"relay_wait": 0.3, "initial_backoff": 1.0, "max_backoff": 30.0, "probe_max_backoff": 30.0}


async def delivery_net(start_hub: StartHub, make_peer: MakePeer, **delivery: Any) -> Net:
    """The four-platform network on a hub with the given delivery settings."""
    hub = await start_hub(delivery={**FAST, **delivery})
    return await network(hub, make_peer)


@dataclass
class Script:
    """A module_responder whose answer the test switches: 'ok', 'down' (503), or a callable.

    ``accepted`` lists the requests answered 1000, in the order they were answered.
    ``gate``, when set, holds every request until it is set (bounded by ``gate_timeout``).
    """

    mode: str = "ok"
    http: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    accepted: list[Received] = field(default_factory=list)
    failed: int = 0
    gate: asyncio.Event | None = None
    gate_timeout: float = 10.0
    in_handler: int = 0
    custom: Callable[[web.Request, Any], Awaitable[web.StreamResponse | None]] | None = None

    async def __call__(self, request: web.Request, body: Any) -> web.StreamResponse:
        self.in_handler += 1
        try:
            if self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), self.gate_timeout)
            if self.custom is not None:
                answer = await self.custom(request, body)
                if answer is not None:
                    return answer
            if self.mode == "down":
                self.failed += 1
                return web.json_response(
                    envelope(status_code=3000, message="maintenance"), status=self.http, headers=self.headers
                )
            raw = await request.read()
            self.accepted.append(Received(request.method, request.path, {}, dict(request.headers), body, raw))
            return web.json_response(envelope())
        finally:
            self.in_handler -= 1


def session_body(session_id: str, version: int) -> bytes:
    """A session PUT body (official example) whose kwh tells the versions apart; exact bytes sent."""
    session = session_for(CPO1, EMSP1, session_id)
    session["kwh"] = version
    return json.dumps(session, indent=1).encode()


async def put_session(net: Net, session_id: str, version: int, **headers: str) -> tuple[int, Any, bytes]:
    """CPO1 PUTs session ``session_id`` (version ``version``) directly to eMSP1."""
    raw = session_body(session_id, version)
    status, body, _ = await net.call(
        "PUT",
        f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session_id}",
        net.cpo1,
        data=raw,
        headers=rh(CPO1, EMSP1, **headers),
    )
    return status, body, raw


async def post_cdr(net: Net, cdr: dict[str, Any]) -> tuple[int, Any]:
    """CPO1 POSTs a CDR directly to eMSP1."""
    status, body, _ = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr, headers=rh(CPO1, EMSP1))
    return status, body


def a_cdr(cdr_id: str) -> dict[str, Any]:
    return cdr_for(CPO1, EMSP1, cdr_id)


def is_queued(status: int, body: Any) -> bool:
    """HTTP 200, OCPI 1000 and a status_message that says the message is queued."""
    return status == 200 and body.get("status_code") == 1000 and "queued" in str(body.get("status_message", ""))


def sessions_to(peer: FakePlatform) -> list[Received]:
    return module_requests(peer, "sessions")


async def outbox_rows(hub: HubHandle, where: str = "1=1") -> list[dict[str, Any]]:
    rows = await hub.app[STORE].fetchall(f"SELECT * FROM outbox WHERE {where} ORDER BY id")
    return [dict(r) for r in rows]


async def rows_after_stop(hub: HubHandle, sql: str) -> list[tuple[Any, ...]]:
    """Read a stopped hub's database through a store of its own (either backend), as a restart would."""
    store = open_store(hub.settings.database)
    await store.open()
    try:
        return [tuple(row) for row in await store.fetchall(sql)]
    finally:
        await store.close()


async def platform_status(net: Net, peer: FakePlatform) -> str:
    status, body = await net.hub.admin("GET", f"/admin/platforms/{await net.platform_id(peer)}")
    assert status == 200, body
    return str(body["status"])


async def wait_status(net: Net, peer: FakePlatform, status: str) -> None:
    """Poll GET /admin/platforms/{id} (bounded) until the platform has this status."""
    seen = await until(lambda: platform_status(net, peer), lambda now: now == status, timeout=2.0, step=0.01)
    assert seen == status, f"platform never became {status} (is {seen})"


def clientinfo_puts(peer: FakePlatform, party: tuple[str, ...]) -> list[str]:
    """Statuses in the hubclientinfo PUTs a platform received about one party, in order."""
    suffix = f"/{party[0]}/{party[1]}"
    return [
        r.body["status"]
        for r in peer.requests_to("/hubclientinfo/")
        if r.method == "PUT" and r.path.rstrip("/").endswith(suffix)
    ]


async def tick(hub: HubHandle, clock: FakeClock, seconds: float, times: int) -> None:
    """Advance the clock ``times`` times by ``seconds``, letting the worker (and its probes) run."""
    for _ in range(times):
        clock.advance(seconds)
        await settle(hub)
        await asyncio.sleep(0.01)


async def stop_peer(peer: FakePlatform) -> int:
    """Close a fake's server (connections refused from now on); return its port for restart_peer."""
    assert peer._server is not None
    port = peer._server.port
    assert port is not None
    await peer.close()
    return port


async def restart_peer(peer: FakePlatform, port: int) -> None:
    """Serve the fake again on the same port (the hub knows its URLs)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", peer._dispatch)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    peer._server = server
