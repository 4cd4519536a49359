"""The crash drills of the HubClientInfo fan-outs: a sink for every seeded platform, the due rows'
progress read from the hub's database, and the kill -9 right after an answer (or mid-way)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path

import aiohttp
from aiohttp import web

from tests.support.fakes import envelope
from tests.support.processes import HubProcess

INFO = "/ocpi/2.2.1/hubclientinfo/receiver/"
# The drill hub's settings: quick retries, so what the restart resumes is done within the test.
DRILL_SETTINGS = {
    "HUB_REQUEST_TIMEOUT": "5",
    "HUB_DELIVERY__INITIAL_BACKOFF": "0.1",
    "HUB_DELIVERY__MAX_BACKOFF": "0.5",
    "HUB_DELIVERY__PROBE_MAX_BACKOFF": "0.5",
    "HUB_DELIVERY__MAX_ATTEMPTS": "1000",
    "HUB_DELIVERY__SILENCE_CHECK": "0",
}


class Sink:
    """Every seeded platform's endpoints: records each ClientInfo PUT by the token it came with."""

    def __init__(self) -> None:
        # token the hub called with -> path -> the X-Request-IDs it arrived with
        self.got: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _any(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.method == "PUT" and request.path.startswith(INFO):
            token = base64.b64decode(request.headers.get("Authorization", "")[6:]).decode()
            self.got[token][request.path].add(request.headers.get("X-Request-ID", ""))
        return web.json_response(envelope())


def fan_outs(db: Path) -> list[tuple[int, int]]:
    """The progress (phase, done_through) of each clientinfo_due row in the hub's database."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        due = conn.execute("SELECT phase, done_through FROM clientinfo_due ORDER BY id").fetchall()
    return [(int(p), int(d)) for p, d in due]


async def act_then_kill(
    session: aiohttp.ClientSession, hub: HubProcess, db: Path, act: Callable[[], Awaitable[None]], *, mid_way: bool
) -> None:
    """Run ``act`` (answered: its fan-out row committed); kill -9 at once, or (``mid_way``) once a chunk is committed.

    Waits first for what the last restart resumed; restarts the hub on the same database after the kill.
    """
    for _ in range(3000):  # bounded: ~30 s for what the restart resumed to be committed
        due = fan_outs(db)
        if not due:
            break
        await asyncio.sleep(0.01)
    assert not due, f"the fan-outs resumed at the restart did not end: {due}"
    await act()
    for _ in range(2000):  # bounded: a few seconds
        if not mid_way:
            break
        due = fan_outs(db)
        if not due or due[0] != (0, 0):
            break
        await asyncio.sleep(0.002)
    hub.kill9()  # answered: the fan-out row is committed, its PUTs none or only partly
    due = fan_outs(db)
    print(f"killed with the fan-out at {due}")
    assert len(due) == 1, "the fan-out was over before the kill: nothing was tested (seed more platforms)"
    if mid_way:
        assert due[0] != (0, 0), "killed before the first chunk"
    await hub.start(session)
