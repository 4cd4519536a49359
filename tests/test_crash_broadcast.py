"""Crash safety of broadcasts (routing/expander.py): the hub as a real process, `kill -9` while a
CPO pushes Locations to three eMSPs, right after answers whose expansion may not have run yet;
restarted on the same database and port. Every Location the hub acknowledged (HTTP 200 + 1000)
reaches every eMSP (duplicates allowed, losses not).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.support.fakes import FakePlatform, b64
from tests.support.ports import free_port
from tests.support.processes import HubProcess
from tests.support.routing import CPO1, EMSP1, EMSP2, HUB, example, rh

ADMIN = "crash-admin-token"
TOTAL = 60
GROUP = 10
KILL_AFTER_GROUPS = (1, 3)
EMSP3 = ("FR", "TRD", "EMSP")


async def _push(session: aiohttp.ClientSession, hub: HubProcess, cpo: FakePlatform, n: int) -> str | None:
    """One Location PUT without TO (a broadcast); its id if the hub acknowledged it, else None."""
    loc = f"LOC{n:03d}"
    headers = {"Authorization": "Token " + b64(cpo.hub_token or ""), **rh(CPO1, HUB)}
    try:
        async with session.put(
            f"{hub.base}/ocpi/2.2.1/locations/receiver/BE/BEC/{loc}",
            json={**example("location_example.json"), "id": loc},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as r:
            body = await r.json(content_type=None)
            return loc if r.status == 200 and body.get("status_code") == 1000 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None  # cut off by the kill: never acknowledged


def _got(emsp: FakePlatform) -> set[str]:
    return {r.path.rsplit("/", 1)[1] for r in emsp.received if r.method == "PUT" and "/locations/" in r.path}


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_kill_9_after_broadcast_answers_loses_no_receiver(tmp_path: Path) -> None:
    hub = HubProcess(
        str(tmp_path / "crash-broadcast.sqlite3"),
        free_port(),
        admin_token=ADMIN,
        init=True,
        HUB_REQUEST_TIMEOUT="5",
        HUB_DELIVERY__INITIAL_BACKOFF="0.1",
        HUB_DELIVERY__MAX_BACKOFF="0.5",
        HUB_DELIVERY__PROBE_MAX_BACKOFF="0.5",
        HUB_DELIVERY__MAX_ATTEMPTS="1000",
    )
    cpo = FakePlatform(roles=[CPO1], name="crash CPO")
    emsps = [FakePlatform(roles=[party], name=f"crash eMSP {party[1]}") for party in (EMSP1, EMSP2, EMSP3)]
    for peer in (cpo, *emsps):
        await peer.start()
    session = aiohttp.ClientSession()
    try:
        await hub.start(session)
        for peer in (cpo, *emsps):
            invite = await hub.admin(session, "POST", "/admin/invitations", {"name": peer.name})
            await peer.register_with(hub.base + "/ocpi/versions", invite["token_a"])
        acknowledged: set[str] = set()
        for group in range(TOTAL // GROUP):
            numbers = range(group * GROUP, (group + 1) * GROUP)
            if group in KILL_AFTER_GROUPS:
                # Answered one after the other, then killed at once: expansions are still to come.
                results = [await _push(session, hub, cpo, n) for n in numbers]
                hub.kill9()
                await hub.start(session)
            else:
                results = list(await asyncio.gather(*(_push(session, hub, cpo, n) for n in numbers)))
            acknowledged.update(loc for loc in results if loc is not None)
        assert hub.kills == len(KILL_AFTER_GROUPS)
        assert len(acknowledged) == TOTAL  # nothing was in flight at a kill
        for _ in range(300):  # bounded: ~30 s
            if all(acknowledged <= _got(emsp) for emsp in emsps):
                break
            await asyncio.sleep(0.1)
        for emsp in emsps:
            lost = sorted(acknowledged - _got(emsp))
            assert lost == [], f"{emsp.name}: acknowledged but never delivered: {lost[:10]} ({len(lost)})"
    finally:
        hub.stop()
        await session.close()
        for peer in (cpo, *emsps):
            await peer.close()
