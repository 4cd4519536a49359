"""A demo partner platform for smoke-testing a hub: ``ocpi-hub demo-partner``.

It serves versions, version details (every module, SENDER and RECEIVER) and credentials on
127.0.0.1, registers with the hub using a token A, prints the token the hub issued, and logs
every message the hub routes to it, answering 1000. Operators use it to check a deployment end
to end; the README tour uses it as the partner.

It keeps its tokens in a state file (mode 0600), so a restart reuses its registration instead
of needing a new invitation; when the hub rotates the credentials it prints the new token. A
failure prints the hub's own error envelope and what to do about it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web


class DemoError(Exception):
    """The demo partner cannot start; the message says what the hub answered and what to do."""


MODULES = ("locations", "tariffs", "tokens", "sessions", "cdrs", "commands", "chargingprofiles", "hubclientinfo")


def _envelope(data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": 1000, "timestamp": "1970-01-01T00:00:00Z"}
    if data is not None:
        body["data"] = data
    return body


class DemoPartner:
    """One platform with one role, listening on 127.0.0.1:port."""

    def __init__(
        self, *, role: str, country_code: str, party_id: str, name: str, port: int, state: Path | None = None
    ) -> None:
        self.role, self.country_code, self.party_id, self.name, self.port = role, country_code, party_id, name, port
        self.base = f"http://127.0.0.1:{port}"
        self.token_for_hub = secrets.token_urlsafe(24)  # token B: the hub calls us with it
        self.hub_token: str | None = None  # token C: we call the hub with it
        self.state = state
        self.versions_url = ""

    def say(self, text: str) -> None:
        """One line on stdout, prefixed with our name."""
        print(f"[{self.name}] {text}", flush=True)

    def save(self) -> None:
        """Write our tokens to the state file (0600: it holds credentials)."""
        if self.state is None:
            return
        self.state.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "versions_url": self.versions_url,
            "port": self.port,
            "party": f"{self.country_code}*{self.party_id} {self.role}",
            "token_for_hub": self.token_for_hub,
            "hub_token": self.hub_token,
        }
        fd = os.open(self.state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)

    def load(self, versions_url: str) -> bool:
        """Take the tokens of an earlier run against the same hub, party and port; False if none."""
        if self.state is None or not self.state.is_file():
            return False
        data = json.loads(self.state.read_text())
        party = f"{self.country_code}*{self.party_id} {self.role}"
        if (data.get("versions_url"), data.get("port"), data.get("party")) != (versions_url, self.port, party):
            return False
        self.token_for_hub, self.hub_token = data["token_for_hub"], data["hub_token"]
        self.versions_url = versions_url
        return bool(self.hub_token)

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
        if path == "/ocpi/2.2.1/credentials" and request.method in ("POST", "PUT"):
            return await self._credentials_from_hub(request)
        if path == "/ocpi/2.2.1/credentials" and request.method == "DELETE":
            self.hub_token = None
            if self.state is not None:
                self.state.unlink(missing_ok=True)
            self.say("the hub unregistered us (credentials DELETE); start again with a new token A")
            return web.json_response(_envelope())
        body = await request.text()
        hdr = request.headers
        sender = f"{hdr.get('OCPI-from-country-code', '-')}*{hdr.get('OCPI-from-party-id', '-')}"
        print(f"[{self.name}] got {request.method} {request.path_qs} from {sender} ({len(body)} bytes)", flush=True)
        return web.json_response(_envelope())

    async def _credentials_from_hub(self, request: web.Request) -> web.Response:
        """The hub rotates (credentials PUT): keep its new token, answer with a new one of ours."""
        body = await request.json()
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return web.json_response({"status_code": 2001, "timestamp": "1970-01-01T00:00:00Z"})
        self.hub_token = token
        self.token_for_hub = secrets.token_urlsafe(24)
        self.save()
        self.say(f"credentials rotated by the hub; new token to call the hub with: {token}")
        return web.json_response(_envelope(self.credentials()))

    async def reuse(self, versions_url: str) -> bool:
        """True when the hub still accepts the token from our state file."""
        assert self.hub_token is not None
        auth = {"Authorization": "Token " + base64.b64encode(self.hub_token.encode()).decode()}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.get(versions_url, headers=auth) as resp:
                return resp.status == 200

    async def register(self, versions_url: str, token_a: str) -> None:
        """Party-initiated handshake with the hub: versions, details, POST credentials."""
        auth = {"Authorization": "Token " + base64.b64encode(token_a.encode()).decode()}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            versions = await _data(session, "GET", versions_url, auth)
            details_url = next((v["url"] for v in versions if v.get("version") == "2.2.1"), None)
            if details_url is None:
                raise DemoError(f"the hub at {versions_url} offers no OCPI 2.2.1: {json.dumps(versions)}")
            endpoints = (await _data(session, "GET", details_url, auth))["endpoints"]
            credentials_url = next(e["url"] for e in endpoints if e["identifier"] == "credentials")
            answer = await _data(session, "POST", credentials_url, auth, self.credentials())
        self.hub_token = answer["token"]
        self.versions_url = versions_url
        self.save()


async def _data(
    session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: Any = None
) -> Any:
    """The data of a 1000 answer; anything else is a DemoError quoting the hub's envelope."""
    async with session.request(method, url, headers=headers, json=body) as resp:
        text = await resp.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if resp.status != 200 or not isinstance(answer, dict) or answer.get("status_code") != 1000:
            shown = json.dumps(answer) if answer is not None else text[:300]
            raise DemoError(f"{method} {url} answered HTTP {resp.status}: {shown}")
        return answer.get("data")


def _b64decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except ValueError:
        return ""


def _what_to_do(partner: DemoPartner, exc: DemoError) -> str:
    text = str(exc)
    who = f"{partner.country_code}*{partner.party_id} {partner.role}"
    if "already served by another platform" in text:
        return (
            f"{text}\n  The hub already has a platform serving {who} (an earlier run of this demo?). Restart with"
            f" that run's --state file and --port to reuse it, or unregister it (`ocpi-hub platforms`, then"
            f" `ocpi-hub unregister ID`) and start again with a new token A (`ocpi-hub invite NAME`)."
        )
    if "HTTP 401" in text:
        return (
            f"{text}\n  The hub does not accept this token A (used, expired or mistyped):"
            " `ocpi-hub invite NAME` gives a new one."
        )
    return text


async def run(args: argparse.Namespace) -> None:
    """Start the partner, register (or reuse its registration), then serve until interrupted."""
    state = Path(args.state) if args.state else Path(f"var/demo-partner-{args.country}-{args.party}.json")
    partner = DemoPartner(
        role=args.role.upper(),
        country_code=args.country,
        party_id=args.party,
        name=args.name,
        port=args.port,
        state=state.resolve(),
    )
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", partner.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, "127.0.0.1", args.port).start()
        except OSError as exc:
            raise DemoError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from exc
        try:
            if partner.load(args.versions_url) and await partner.reuse(args.versions_url):
                partner.say(
                    f"reusing its registration as {args.country}*{args.party} {partner.role} (state {state.resolve()})"
                )
            elif args.token_a:
                await partner.register(args.versions_url, args.token_a)
                partner.say(f"registered as {args.country}*{args.party} {partner.role}")
            else:
                raise DemoError(
                    f"no registration to reuse in {state.resolve()}: give a token A (`ocpi-hub invite NAME`)"
                )
        except DemoError as exc:
            raise DemoError(_what_to_do(partner, exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DemoError(f"cannot reach the hub at {args.versions_url}: {exc or type(exc).__name__}") from exc
        partner.say(f"token to call the hub with: {partner.hub_token}")
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def add_parser(add: Any, func: Any) -> None:
    """Register the ``demo-partner`` sub-command (``add`` is the CLI's sub-parser factory)."""
    p = add("demo-partner", func, "run a demo partner platform that registers with a hub (smoke test)")
    p.add_argument("versions_url", help="the hub's versions URL")
    p.add_argument("token_a", nargs="?", help="token A from `ocpi-hub invite` (not needed to reuse a registration)")
    p.add_argument("--role", default="EMSP", choices=["CPO", "EMSP", "NSP", "OTHER", "SCSP", "cpo", "emsp"])
    p.add_argument("--country", default="NL")
    p.add_argument("--party", default="DEM")
    p.add_argument("--name", default="Demo partner")
    p.add_argument("--port", type=int, default=8911)
    p.add_argument(
        "--state", help="file keeping its tokens between runs, mode 0600 (default var/demo-partner-CC-PID.json)"
    )
