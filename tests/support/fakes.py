"""Fake OCPI platforms: real aiohttp servers on 127.0.0.1 that record what they receive."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

Responder = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]

FUNCTIONAL = ("locations", "sessions", "cdrs", "tariffs", "tokens", "commands", "chargingprofiles")


def envelope(data: Any = None, status_code: int = 1000, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "timestamp": "2026-11-25T12:00:00Z"}
    if data is not None:
        body["data"] = data
    if message:
        body["status_message"] = message
    return body


def b64(token: str) -> str:
    return base64.b64encode(token.encode()).decode()


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class FakePlatform:
    """A CPO/eMSP platform: versions, details, credentials and recording module endpoints."""

    roles: list[tuple[str, str, str]]  # (country_code, party_id, role)
    name: str = "Fake"
    modules: tuple[str, ...] = FUNCTIONAL + ("hubclientinfo",)
    offer_versions: tuple[str, ...] = ("2.1.1", "2.2.1")
    received: list[Received] = field(default_factory=list)
    # token the hub must use to call us (we issue it) and token we use to call the hub
    token_for_hub: str = field(default_factory=lambda: "fake-" + secrets.token_hex(8))
    hub_token: str | None = None
    hub_url: str | None = None
    # token A we give the hub for hub-initiated connections
    token_a: str = field(default_factory=lambda: "fakeA-" + secrets.token_hex(8))
    registered: bool = False
    versions_override: Responder | None = None
    details_override: Responder | None = None
    credentials_override: Responder | None = None
    module_responder: Responder | None = None
    call_back_hub_on_post: bool = True
    accept_base64: bool = True  # False: like many 2.1.1 implementations, only the raw token works
    callback_result: Any = None
    version: str = "2.2.1"  # the OCPI version it speaks (2.1.1: flat credentials, no roles in details)
    # The name in its URLs: "localhost" makes several fakes share one host name (cookies are kept
    # per host name, never per port; an IP address gets none from a default cookie jar).
    host: str = "127.0.0.1"
    _server: TestServer | None = None

    def __post_init__(self) -> None:
        if self.version != "2.2.1" and self.offer_versions == ("2.1.1", "2.2.1"):
            self.offer_versions = (self.version,)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakePlatform:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base}/ocpi/versions"

    def credentials_body(self, token: str | None = None) -> dict[str, Any]:
        if self.version == "2.1.1":  # one flat party, no role (2.1.1 credentials.md)
            c, p, _ = self.roles[0]
            return {
                "token": token or self.token_for_hub,
                "url": self.versions_url,
                "business_details": {"name": f"{self.name} {p}"},
                "party_id": p,
                "country_code": c,
            }
        return {
            "token": token or self.token_for_hub,
            "url": self.versions_url,
            "roles": [
                {"role": r, "party_id": p, "country_code": c, "business_details": {"name": f"{self.name} {p}"}}
                for c, p, r in self.roles
            ],
        }

    def details(self) -> dict[str, Any]:
        v = self.version
        if v == "2.1.1":  # one URL per module, no interface role
            mods = ("credentials",) + tuple(m for m in self.modules if m not in ("chargingprofiles", "hubclientinfo"))
            return {"version": v, "endpoints": [{"identifier": m, "url": f"{self.base}/ocpi/{v}/{m}"} for m in mods]}
        endpoints = [{"identifier": "credentials", "role": "RECEIVER", "url": f"{self.base}/ocpi/{v}/credentials"}]
        for module in self.modules:
            for role in ("SENDER", "RECEIVER"):
                endpoints.append(
                    {"identifier": module, "role": role, "url": f"{self.base}/ocpi/{v}/{module}/{role.lower()}"}
                )
        return {"version": v, "endpoints": endpoints}

    def requests_to(self, path_part: str) -> list[Received]:
        return [r for r in self.received if path_part in r.path]

    # ---- serving -----------------------------------------------------------------------------

    def _authorized(self, request: web.Request, allowed: set[str]) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Token "):
            return False
        value = header[6:]
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except Exception:
            decoded = ""
        return value in allowed or (self.accept_base64 and decoded in allowed)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = await request.json() if raw else None
        except ValueError:
            body = None
        self.received.append(
            Received(request.method, request.path, dict(request.query), dict(request.headers), body, raw)
        )
        path = request.path.rstrip("/")
        allowed = {self.token_for_hub, self.token_a}
        if not self._authorized(request, allowed):
            return web.json_response(envelope(status_code=2000, message="unauthorized"), status=401)
        if path == "/ocpi/versions":
            if self.versions_override:
                return await self.versions_override(request, body)
            data = [{"version": v, "url": f"{self.base}/ocpi/{v}"} for v in self.offer_versions]
            return web.json_response(envelope(data))
        if path == f"/ocpi/{self.version}":
            if self.details_override:
                return await self.details_override(request, body)
            return web.json_response(envelope(self.details()))
        if path == f"/ocpi/{self.version}/credentials":
            if self.credentials_override:
                return await self.credentials_override(request, body)
            return await self._credentials(request, body)
        if self.module_responder:
            return await self.module_responder(request, body)
        return web.json_response(envelope())

    async def _credentials(self, request: web.Request, body: Any) -> web.StreamResponse:
        if request.method in ("POST", "PUT"):
            # Like a real party: call the hub back with the token it just gave us.
            self.hub_token = body["token"]
            self.hub_url = body["url"]
            if self.call_back_hub_on_post:
                async with aiohttp.ClientSession() as s:
                    async with s.get(self.hub_url, headers={"Authorization": "Token " + b64(self.hub_token)}) as r:
                        self.callback_result = (r.status, await r.json())
            self.token_for_hub = "fakeC-" + secrets.token_hex(8)
            self.registered = True
            return web.json_response(envelope(self.credentials_body()))
        if request.method == "DELETE":
            self.registered = False
            return web.json_response(envelope())
        return web.json_response(envelope(self.credentials_body()))

    # ---- acting as a client of the hub -------------------------------------------------------

    async def register_with(self, hub_versions_url: str, token_a: str, *, raw_token: bool = False) -> dict[str, Any]:
        """Party-initiated handshake: read the hub's versions with token A and POST our credentials."""
        auth = {"Authorization": "Token " + (token_a if raw_token else b64(token_a))}
        async with aiohttp.ClientSession() as s:
            async with s.get(hub_versions_url, headers=auth) as r:
                versions = await r.json()
            details_url = next(v["url"] for v in versions["data"] if v["version"] == self.version)
            async with s.get(details_url, headers=auth) as r:
                details = await r.json()
            creds_url = next(e["url"] for e in details["data"]["endpoints"] if e["identifier"] == "credentials")
            async with s.post(creds_url, json=self.credentials_body(), headers=auth) as r:
                answer = await r.json()
                assert r.status == 200 and answer.get("status_code") == 1000, answer
        self.hub_token = answer["data"]["token"]
        self.hub_url = hub_versions_url
        self.registered = True
        return answer
