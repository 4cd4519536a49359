"""Lean fake OCPI peers for the benchmark: answer at once, count what they get.

Each peer is one aiohttp server on its own 127.0.0.1 port (like real partners on separate hosts,
so the hub's per-host connection limit applies per partner). It serves versions, version details
(SENDER and RECEIVER for every module) and credentials, so the hub's real handshake works, and
answers every module request with a prebuilt 1000 envelope. Requests whose X-Correlation-ID
starts with ``t-`` are *tracked*: the first arrival time (``time.perf_counter``) is kept per
correlation id, which is how broadcast fan-out and drain progress are measured. The load
generator runs in the same process, so those times share one clock.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

MODULES = ("locations", "sessions", "cdrs", "tariffs", "tokens", "commands", "chargingprofiles", "hubclientinfo")
OK_BODY = b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00.000Z"}'
TRACK_PREFIX = "t-"


def b64(token: str) -> str:
    """``Authorization: Token`` value as 2.2.1 wants it."""
    return base64.b64encode(token.encode()).decode()


def envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "status_code": 1000, "timestamp": "2026-01-01T00:00:00.000Z"}


@dataclass
class Peer:
    """One fake platform serving one party (country_code, party_id, role)."""

    name: str
    country_code: str
    party_id: str
    role: str
    token_for_hub: str = field(default_factory=lambda: "bench-" + secrets.token_hex(8))
    hub_token: str | None = None  # token C the hub gave us
    platform_id: int | None = None  # the hub's id for us (from the invitation)
    port: int = 0
    received: int = 0
    duplicates: int = 0  # tracked correlation ids that arrived more than once
    arrivals: dict[str, float] = field(default_factory=dict, repr=False)
    _per_prefix: Counter[str] = field(default_factory=Counter, repr=False)  # distinct arrivals by prefix
    _runner: web.AppRunner | None = field(default=None, repr=False)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> Peer:
        """Listen on ``port`` (same port again after stop(), for the drain scenario) or a free one."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port if port is None else port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Close the listener and every open connection (the hub sees connection refused)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base}/ocpi/versions"

    def tracked(self, prefix: str) -> int:
        """How many distinct tracked correlation ids with this prefix arrived."""
        # Counted as they arrive (ids are ``{prefix}{n}``): a wait polling 100,000 arrivals every
        # 20 ms by a scan would load this process more than the hub it measures.
        return self._per_prefix.get(prefix, 0)

    def credentials(self) -> dict[str, Any]:
        return {
            "token": self.token_for_hub,
            "url": self.versions_url,
            "roles": [
                {
                    "role": self.role,
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                    "business_details": {"name": self.name},
                }
            ],
        }

    def details(self) -> dict[str, Any]:
        endpoints = [{"identifier": "credentials", "role": "RECEIVER", "url": f"{self.base}/ocpi/2.2.1/credentials"}]
        for module in MODULES:
            for role in ("SENDER", "RECEIVER"):
                endpoints.append(
                    {"identifier": module, "role": role, "url": f"{self.base}/ocpi/2.2.1/{module}/{role.lower()}"}
                )
        return {"version": "2.2.1", "endpoints": endpoints}

    # ---- serving -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        path = request.path.rstrip("/")
        if path == "/ocpi/versions":
            return web.json_response(envelope([{"version": "2.2.1", "url": f"{self.base}/ocpi/2.2.1"}]))
        if path == "/ocpi/2.2.1":
            return web.json_response(envelope(self.details()))
        if path == "/ocpi/2.2.1/credentials":
            return web.json_response(envelope(self.credentials()))
        self.received += 1
        correlation = request.headers.get("X-Correlation-ID", "")
        if correlation.startswith(TRACK_PREFIX):
            if correlation in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[correlation] = time.perf_counter()
                self._per_prefix[correlation.rstrip("0123456789")] += 1
        return web.Response(body=OK_BODY, content_type="application/json")

    # ---- acting as a client of the hub -------------------------------------------------------

    async def register_with(self, session: aiohttp.ClientSession, versions_url: str, token_a: str) -> None:
        """Party-initiated handshake: versions and details with token A, POST credentials, keep token C."""
        auth = {"Authorization": "Token " + b64(token_a)}
        async with session.get(versions_url, headers=auth) as r:
            versions = await r.json()
        details_url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
        async with session.get(details_url, headers=auth) as r:
            details = await r.json()
        creds_url = next(e["url"] for e in details["data"]["endpoints"] if e["identifier"] == "credentials")
        async with session.post(creds_url, json=self.credentials(), headers=auth) as r:
            answer = await r.json()
            if r.status != 200 or answer.get("status_code") != 1000:
                raise RuntimeError(f"registration of {self.name} failed: {r.status} {answer}")
        self.hub_token = answer["data"]["token"]

    def auth(self) -> dict[str, str]:
        """Headers to call the hub as this peer."""
        assert self.hub_token is not None, "register first"
        return {"Authorization": "Token " + b64(self.hub_token)}

    def routing(self, to: Peer | None) -> dict[str, str]:
        """OCPI-from (this peer) and, for a directed message, OCPI-to headers."""
        headers = {"OCPI-from-country-code": self.country_code, "OCPI-from-party-id": self.party_id}
        if to is not None:
            headers["OCPI-to-country-code"] = to.country_code
            headers["OCPI-to-party-id"] = to.party_id
        return headers


async def invite(session: aiohttp.ClientSession, hub_url: str, admin_token: str, name: str) -> tuple[str, str, int]:
    """POST /admin/invitations: (token_a, versions_url, platform_id)."""
    async with session.post(
        f"{hub_url}/admin/invitations", json={"name": name}, headers={"Authorization": f"Bearer {admin_token}"}
    ) as r:
        data = await r.json()
        if r.status != 201:
            raise RuntimeError(f"invitation failed: {r.status} {data}")
    return data["token_a"], data["versions_url"], int(data["platform_id"])


async def start_and_register(session: aiohttp.ClientSession, hub_url: str, admin_token: str, peers: list[Peer]) -> None:
    """Start every peer and register it with the hub through the real handshake."""
    for peer in peers:
        if peer._runner is None:
            await peer.start()
        token_a, versions_url, peer.platform_id = await invite(session, hub_url, admin_token, peer.name)
        await peer.register_with(session, versions_url, token_a)


async def stop_all(peers: list[Peer]) -> None:
    for peer in peers:
        await peer.stop()
