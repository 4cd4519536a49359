"""The real hub on 127.0.0.1 in its own thread and event loop, for synchronous clients.

Playwright's sync API and schemathesis both block; they cannot share pytest-asyncio's loop.
Here the app factory, the fake partners and their handshakes run on a private loop, and tests
hand it coroutines with ``run`` (bounded by a timeout).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from config import Settings
from hub.app import create_app
from tests.support.fakes import FakePlatform
from tests.support.hub import ADMIN, HubHandle
from tests.support.ports import free_port

T = TypeVar("T")


class LiveHub:
    """Start with ``LiveHub(tmp_dir, **settings).start()``; ``stop()`` closes everything."""

    def __init__(self, directory: Path, **overrides: Any) -> None:
        delivery = {"silence_check": 0, "offline_after_seconds": 0, **overrides.pop("delivery", {})}
        port = free_port()
        self.settings = Settings(
            host="127.0.0.1",
            port=port,
            database=directory / "hub.sqlite3",
            admin_token=ADMIN,
            request_timeout=10.0,
            connect_timeout=1.0,
            log_json=False,
            allow_private_urls=True,
            delivery=delivery,
            # Tests send missing and wrong admin tokens on purpose (schemathesis, access tests): the
            # per-address login limit (tests/test_admin_guard.py) would turn their 401s into 429s.
            **{"admin_auth_max_failures": 1_000_000, **overrides},
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-hub", daemon=True)
        self.hub: HubHandle | None = None
        self.peers: list[FakePlatform] = []

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT."""
        return self.settings.public_url

    def start(self) -> LiveHub:
        """Run the loop thread and start the hub on it."""
        self._thread.start()
        self.hub = self.run(self._start())
        return self

    async def _start(self) -> HubHandle:
        server = TestServer(create_app(self.settings), host="127.0.0.1", port=self.settings.port)
        await server.start_server()
        return HubHandle(server, aiohttp.ClientSession(), self.settings)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """Run a coroutine on the hub's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def peer(self, *roles: tuple[str, str, str], **kwargs: Any) -> FakePlatform:
        """A fake platform on this loop (closed by stop)."""
        peer = FakePlatform(roles=list(roles), **kwargs)
        await peer.start()
        self.peers.append(peer)
        return peer

    async def pair(self) -> tuple[FakePlatform, FakePlatform]:
        """A CPO (BE*BEC, "Charge Co") and an eMSP (NL*EXA, "Drive Co"), registered through the handshake."""
        assert self.hub is not None
        cpo = await self.peer(("BE", "BEC", "CPO"), name="CPO")
        await cpo.register_with(self.hub.versions_url, await self.hub.invite("Charge Co"))
        emsp = await self.peer(("NL", "EXA", "EMSP"), name="EMSP")
        await emsp.register_with(self.hub.versions_url, await self.hub.invite("Drive Co"))
        return cpo, emsp

    async def operators(self, reader: tuple[str, str], admin: tuple[str, str]) -> None:
        """Create a read-only and an admin console operator, each a (name, password)."""
        assert self.hub is not None
        for (name, password), role in ((reader, "read-only"), (admin, "admin")):
            status, body = await self.hub.admin(
                "POST", "/admin/operators", {"name": name, "role": role, "password": password}
            )
            assert status == 201, body

    async def _stop(self) -> None:
        for peer in self.peers:
            await peer.close()
        if self.hub is not None:
            await self.hub.session.close()
            await self.hub.server.close()

    def stop(self) -> None:
        """Close the hub and the peers, then the loop."""
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
