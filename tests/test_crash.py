"""Crash safety (docs/DESIGN-NOTES.md, Delivery): the hub as a real process, `kill -9` several times while sessions are
pushed and the eMSP answers slowly or with intermittent 503s; restarted on the same database and
port each time. Every message the hub acknowledged (HTTP 200 + 1000) reaches the eMSP (duplicates
allowed, losses not). Requests cut off by the kill were never acknowledged and may be lost.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.fakes import FakePlatform, b64, envelope
from tests.support.ports import free_port
from tests.support.processes import HubProcess
from tests.support.routing import CPO1, EMSP1, rh, session_for

ADMIN = "crash-admin-token"
TOTAL = 200
GROUP = 10
KILL_AFTER_GROUPS = (4, 9, 14)  # a kill lands in the middle of these groups


def _flaky_slow_emsp(delivered: list[str]) -> Any:
    calls = {"n": 0}

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        calls["n"] += 1
        ticket = calls["n"]
        await asyncio.sleep(0.02 * (ticket % 3))  # slowish
        if ticket % 4 == 0:  # intermittent 503
            return web.json_response(envelope(status_code=3000), status=503)
        if request.method == "PUT" and "/sessions/" in request.path:
            delivered.append(request.path.rsplit("/", 1)[1])
        return web.json_response(envelope())

    return respond


async def _push(session: aiohttp.ClientSession, hub: HubProcess, cpo: FakePlatform, n: int) -> str | None:
    """One session PUT; its id if the hub acknowledged it (HTTP 200 + 1000), else None."""
    sid = f"S{n:04d}"
    headers = {"Authorization": "Token " + b64(cpo.hub_token or ""), **rh(CPO1, EMSP1)}
    try:
        async with session.put(
            f"{hub.base}/ocpi/2.2.1/sessions/receiver/BE/BEC/{sid}",
            json=session_for(CPO1, EMSP1, sid),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as r:
            body = await r.json(content_type=None)
            return sid if r.status == 200 and body.get("status_code") == 1000 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None  # cut off by the kill: never acknowledged


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    hub = HubProcess(
        str(tmp_path / "crash.sqlite3"),
        free_port(),
        admin_token=ADMIN,
        init=True,  # the first start creates the database
        HUB_REQUEST_TIMEOUT="5",
        HUB_DELIVERY__RELAY_WAIT="0.5",
        HUB_DELIVERY__INITIAL_BACKOFF="0.1",
        HUB_DELIVERY__MAX_BACKOFF="0.5",
        HUB_DELIVERY__PROBE_MAX_BACKOFF="0.5",
        HUB_DELIVERY__MAX_ATTEMPTS="1000",
    )
    delivered: list[str] = []
    cpo = FakePlatform(roles=[CPO1], name="crash CPO")
    emsp = FakePlatform(roles=[EMSP1], name="crash eMSP")
    await cpo.start()
    await emsp.start()
    session = aiohttp.ClientSession()
    try:
        await hub.start(session)
        for peer in (cpo, emsp):
            invite = await hub.admin(session, "POST", "/admin/invitations", {"name": peer.name})
            await peer.register_with(hub.base + "/ocpi/versions", invite["token_a"])
        emsp.module_responder = _flaky_slow_emsp(delivered)

        acknowledged: set[str] = set()
        for group in range(TOTAL // GROUP):
            tasks = [
                asyncio.create_task(_push(session, hub, cpo, n)) for n in range(group * GROUP, (group + 1) * GROUP)
            ]
            if group in KILL_AFTER_GROUPS:
                await asyncio.sleep(0.05)  # some answered, some in flight, some queued
                hub.kill9()
                results = await asyncio.gather(*tasks)
                await hub.start(session)  # same database, same port
            else:
                results = await asyncio.gather(*tasks)
            acknowledged.update(sid for sid in results if sid is not None)
        assert hub.kills == 3
        assert len(acknowledged) >= TOTAL - len(KILL_AFTER_GROUPS) * GROUP  # the rest were answered

        for _ in range(300):  # bounded: ~30 s for the queue to drain
            if acknowledged <= set(delivered):
                break
            await asyncio.sleep(0.1)
        lost = sorted(acknowledged - set(delivered))
        assert lost == [], f"acknowledged but never delivered: {lost[:10]} ({len(lost)})"
    finally:
        hub.stop()
        await session.close()
        await cpo.close()
        await emsp.close()
