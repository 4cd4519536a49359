"""A demo partner platform for smoke-testing a hub: ``ocpi-hub demo-partner``.

It serves versions, version details (every module, SENDER and RECEIVER) and credentials on
127.0.0.1, registers with the hub using a token A, prints the token the hub issued, and logs
every message the hub routes to it, answering 1000. Operators use it to check a deployment end
to end; the README tour uses it as the partner.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
from typing import Any

import aiohttp
from aiohttp import web

MODULES = ("locations", "tariffs", "tokens", "sessions", "cdrs", "commands", "chargingprofiles", "hubclientinfo")


def _envelope(data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": 1000, "timestamp": "1970-01-01T00:00:00Z"}
    if data is not None:
        body["data"] = data
    return body


class DemoPartner:
    """One platform with one role, listening on 127.0.0.1:port."""

    def __init__(self, *, role: str, country_code: str, party_id: str, name: str, port: int) -> None:
        self.role, self.country_code, self.party_id, self.name, self.port = role, country_code, party_id, name, port
        self.base = f"http://127.0.0.1:{port}"
        self.token_for_hub = secrets.token_urlsafe(24)  # token B: the hub calls us with it
        self.hub_token: str | None = None  # token C: we call the hub with it

    def credentials(self) -> dict[str, Any]:
        """Our Credentials object."""
        return {
            "token": self.token_for_hub,
            "url": f"{self.base}/ocpi/versions",
            "roles": [
                {
                    "role": self.role,
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                    "business_details": {"name": self.name},
                }
            ],
        }

    async def handle(self, request: web.Request) -> web.Response:
        """Serve versions/details/credentials; log and acknowledge everything else."""
        path = request.path.rstrip("/")
        auth = request.headers.get("Authorization", "")[6:]
        if self.token_for_hub not in (auth, _b64decode(auth)):
            return web.json_response({"status_code": 2000, "timestamp": "1970-01-01T00:00:00Z"}, status=401)
        if path == "/ocpi/versions":
            return web.json_response(_envelope([{"version": "2.2.1", "url": f"{self.base}/ocpi/2.2.1"}]))
        if path == "/ocpi/2.2.1":
            endpoints = [
                {"identifier": "credentials", "role": "RECEIVER", "url": f"{self.base}/ocpi/2.2.1/credentials"}
            ]
            endpoints += [
                {"identifier": m, "role": r, "url": f"{self.base}/ocpi/2.2.1/{m}/{r.lower()}"}
                for m in MODULES
                for r in ("SENDER", "RECEIVER")
            ]
            return web.json_response(_envelope({"version": "2.2.1", "endpoints": endpoints}))
        if path == "/ocpi/2.2.1/credentials" and request.method != "GET":
            return web.json_response(_envelope(self.credentials() if request.method != "DELETE" else None))
        body = await request.text()
        hdr = request.headers
        sender = f"{hdr.get('OCPI-from-country-code', '-')}*{hdr.get('OCPI-from-party-id', '-')}"
        print(f"[{self.name}] got {request.method} {request.path_qs} from {sender} ({len(body)} bytes)", flush=True)
        return web.json_response(_envelope())

    async def register(self, versions_url: str, token_a: str) -> None:
        """Party-initiated handshake with the hub: versions, details, POST credentials."""
        auth = {"Authorization": "Token " + base64.b64encode(token_a.encode()).decode()}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(versions_url, headers=auth) as resp:
                versions = (await resp.json())["data"]
            details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
            async with session.get(details_url, headers=auth) as resp:
                endpoints = (await resp.json())["data"]["endpoints"]
            credentials_url = next(e["url"] for e in endpoints if e["identifier"] == "credentials")
            async with session.post(credentials_url, json=self.credentials(), headers=auth) as resp:
                answer = await resp.json()
        if answer.get("status_code") != 1000:
            raise RuntimeError(f"registration refused: {json.dumps(answer)}")
        self.hub_token = answer["data"]["token"]


def _b64decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except ValueError:
        return ""


async def run(args: argparse.Namespace) -> None:
    """Start the partner, register, then serve until interrupted."""
    partner = DemoPartner(
        role=args.role.upper(), country_code=args.country, party_id=args.party, name=args.name, port=args.port
    )
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    try:
        await partner.register(args.versions_url, args.token_a)
        print(f"[{partner.name}] registered as {args.country}*{args.party} {partner.role}", flush=True)
        print(f"[{partner.name}] token to call the hub with: {partner.hub_token}", flush=True)
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def add_parser(sub: Any, func: Any) -> None:
    """Register the ``demo-partner`` sub-command."""
    p = sub.add_parser("demo-partner", help="run a demo partner platform that registers with a hub (smoke test)")
    p.add_argument("versions_url", help="the hub's versions URL")
    p.add_argument("token_a", help="token A from `ocpi-hub invite`")
    p.add_argument("--role", default="EMSP", choices=["CPO", "EMSP", "NSP", "OTHER", "SCSP", "cpo", "emsp"])
    p.add_argument("--country", default="NL")
    p.add_argument("--party", default="DEM")
    p.add_argument("--name", default="Demo partner")
    p.add_argument("--port", type=int, default=8911)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=func)
