"""The running hub as tests talk to it (HubHandle), the admin token, the CLI in-process, the fixtures' types."""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from config import Settings
from hub.cli.main import main as cli_main
from tests.support.fakes import FakePlatform, b64

ADMIN = "admin-secret-token"


class HubHandle:
    """The running hub and helpers to talk to it the way partners and operators do."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.server = server
        self.session = session
        self.settings = settings
        self.app = server.app

    @property
    def base(self) -> str:
        return self.settings.public_url

    @property
    def versions_url(self) -> str:
        return self.settings.versions_url

    async def admin(self, method: str, path: str, json: Any = None, token: str = ADMIN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.base + path, json=json, headers=headers) as r:
            return r.status, await r.json()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        raw_token: bool = False,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Token " + (token if raw_token else b64(token))
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, json=json, data=data, headers=hdrs) as r:
            text = await r.text()
            try:
                body = _json.loads(text)
            except ValueError:
                body = text
            return r.status, body, r.headers

    async def invite(self, name: str = "party", role: str | None = None) -> str:
        request: dict[str, Any] = {"name": name} | ({"role": role} if role else {})
        status, body = await self.admin("POST", "/admin/invitations", request)
        assert status == 201, body
        return str(body["token_a"])


def accepted(answer: tuple[int, Any, Any]) -> bool:
    """HTTP 200 with OCPI 1000 (``answer``: what HubHandle.call returns)."""
    status, body, _ = answer
    return status == 200 and isinstance(body, dict) and body.get("status_code") == 1000


StartHub = Callable[..., Awaitable[HubHandle]]  # the start_hub fixture
MakePeer = Callable[..., Awaitable[FakePlatform]]  # the make_peer fixture


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in a thread (it runs its own event loop); return exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err
