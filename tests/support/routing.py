"""Shared helpers for the routing tests: a four-platform network, OCPI examples, scripted answers.

The OCPI example payloads loaded by ``example`` come unmodified from the official OCPI repository
(github.com/ocpi/ocpi, tag 2.2.1). Copyright (c) 2014-2021 EVRoaming Foundation, licensed under the
Creative Commons Attribution-NoDerivatives 4.0 International Public License
(https://creativecommons.org/licenses/by-nd/4.0/legalcode). Tests change copies in memory only.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.keys import DIRECTORY, STORE, WORKER
from tests.support.fakes import FakePlatform, Received, Responder, envelope
from tests.support.hub import HubHandle, MakePeer
from tests.support.waiting import settle, wait_for

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi-examples-2.2.1"

CPO1 = ("BE", "BEC", "CPO")  # owner in location_example.json and cdr_example.json
CPO2 = ("DE", "ALL", "CPO")  # owner in the tariff examples
EMSP1 = ("NL", "TNM", "EMSP")  # owner in token_put_example.json
EMSP2 = ("DE", "TNM", "EMSP")  # owner in token_example_2_full_rfid.json
HUB = ("NL", "HUB")


@cache
def _example_text(name: str) -> str:
    return (EXAMPLES / name).read_text()


def example(name: str) -> Any:
    """A fresh copy of an official OCPI 2.2.1 example payload (license: see the module docstring)."""
    return copy.deepcopy(json.loads(_example_text(name)))


def session_for(cpo: tuple[str, str, str], emsp: tuple[str, str, str], session_id: str = "101") -> dict[str, Any]:
    """session_example_1_simple_start.json owned by ``cpo`` with a cdr_token of ``emsp``."""
    session = example("session_example_1_simple_start.json")
    session["country_code"], session["party_id"], session["id"] = cpo[0], cpo[1], session_id
    session["cdr_token"]["country_code"], session["cdr_token"]["party_id"] = emsp[0], emsp[1]
    return dict(session)


def cdr_for(cpo: tuple[str, str, str], emsp: tuple[str, str, str], cdr_id: str = "12345") -> dict[str, Any]:
    """cdr_example.json owned by ``cpo`` with a cdr_token of ``emsp``."""
    cdr = example("cdr_example.json")
    cdr["country_code"], cdr["party_id"], cdr["id"] = cpo[0], cpo[1], cdr_id
    cdr["cdr_token"]["country_code"], cdr["cdr_token"]["party_id"] = emsp[0], emsp[1]
    return dict(cdr)


def rh(frm: tuple[str, ...] | None = None, to: tuple[str, ...] | None = None, **extra: str) -> dict[str, str]:
    """Routing headers (and any extra headers, underscores meaning dashes)."""
    out = {k.replace("_", "-"): v for k, v in extra.items()}
    if frm is not None:
        out["OCPI-from-country-code"], out["OCPI-from-party-id"] = frm[0], frm[1]
    if to is not None:
        out["OCPI-to-country-code"], out["OCPI-to-party-id"] = to[0], to[1]
    return out


def party_of(req: Received, side: str) -> tuple[str, str] | None:
    """(country_code, party_id) of the FROM or TO headers a fake received, or None."""
    cc = req.headers.get(f"OCPI-{side}-country-code")
    pid = req.headers.get(f"OCPI-{side}-party-id")
    return (cc, pid) if cc and pid else None


def answers(
    data: Any = None,
    *,
    status_code: int = 1000,
    http: int = 200,
    headers: dict[str, str] | None = None,
    message: str | None = None,
) -> Responder:
    """A module_responder that always gives this OCPI answer."""

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response(envelope(data, status_code=status_code, message=message), status=http, headers=headers)

    return respond


def raw_answer(text: str, *, http: int = 200, content_type: str = "text/html") -> Responder:
    """A module_responder that answers something that is not OCPI."""

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(text=text, status=http, content_type=content_type)

    return respond


@dataclass
class Net:
    """The hub and four platforms registered through the real handshake."""

    hub: HubHandle
    cpo1: FakePlatform
    cpo2: FakePlatform
    emsp1: FakePlatform
    emsp2: FakePlatform

    @property
    def peers(self) -> list[FakePlatform]:
        return [self.cpo1, self.cpo2, self.emsp1, self.emsp2]

    def clear(self) -> None:
        """Forget what the fakes received so far (registration and ClientInfo traffic)."""
        for peer in self.peers:
            peer.received.clear()

    async def call(self, method: str, path: str, peer: FakePlatform, **kwargs: Any) -> tuple[int, Any, Any]:
        """The hub called by ``peer`` with its token C."""
        return await self.hub.call(method, path, token=peer.hub_token, **kwargs)

    async def platform_id(self, peer: FakePlatform) -> int:
        status, body = await self.hub.admin("GET", "/admin/platforms")
        assert status == 200, body
        items = body if isinstance(body, list) else body.get("platforms", body.get("data", []))
        return int(next(p["id"] for p in items if p["versions_url"] == peer.versions_url))


async def connect(hub: HubHandle, make_peer: MakePeer, *roles: tuple[str, str, str], **kw: Any) -> FakePlatform:
    """A fake platform registered with the hub through token A and the credentials POST."""
    peer = await make_peer(*roles, **kw)
    await peer.register_with(hub.versions_url, await hub.invite(roles[0][1]))
    return peer


async def quiet_network(hub: HubHandle, make_peer: MakePeer) -> Net:
    """Two CPOs and two eMSPs registered, without waiting for ClientInfo (agreements may hold it back)."""
    return Net(
        hub,
        await connect(hub, make_peer, CPO1, name="CPO one"),
        await connect(hub, make_peer, CPO2, name="CPO two"),
        await connect(hub, make_peer, EMSP1, name="eMSP one"),
        await connect(hub, make_peer, EMSP2, name="eMSP two"),
    )


async def network(hub: HubHandle, make_peer: MakePeer) -> Net:
    """Two CPOs and two eMSPs, each on its own platform, all CONNECTED, ClientInfo settled."""
    net = await quiet_network(hub, make_peer)
    # Each registration pushes ClientInfo to the platforms registered before it, and tells the new
    # one about those already there: every platform hears of the three others. Let that settle.
    try:
        for peer in net.peers:
            await wait_for(lambda p=peer: len(p.requests_to("/hubclientinfo/")) >= 3)  # type: ignore[misc]
    except AssertionError as exc:  # rare on a loaded machine: say what was where, for the next one
        raise AssertionError(await _clientinfo_state(net)) from exc
    # A fake records a push when it arrives, the hub its outcome (last_seen_out...) after the answer:
    # let those writes land too, or a test's "before" snapshot of /admin/platforms races them.
    await settle(hub)
    net.clear()
    return net


def _as_dict(row: Any) -> dict[str, Any]:
    names = row.keys()  # a Row iterates its values, not its column names
    return {name: row[name] for name in names}


async def _clientinfo_state(net: Net) -> str:
    """What each fake got and what the hub still holds, when ClientInfo did not settle in time."""
    store = net.hub.app[STORE]
    lines = ["HubClientInfo did not settle:"]
    for peer in net.peers:
        lines.append(f"  {peer.name}: {[r.path for r in peer.requests_to('/hubclientinfo/')]}")
    for table in ("clientinfo_due", "outbox"):
        rows = await store.fetchall(f"SELECT * FROM {table}")
        lines.append(f"  {table}: {[_as_dict(row) for row in rows]}")
    worker = net.hub.app[WORKER]
    paused = [p.id for p in net.hub.app[DIRECTORY].platforms() if worker.is_paused(p.id)]
    lines.append(f"  worker: in_flight={worker.in_flight} paused={paused}")
    return "\n".join(lines)


async def put_session_to(
    hub: HubHandle, cpo: FakePlatform, to: tuple[str, str, str], session_id: str
) -> tuple[int, Any]:
    """CPO1's session ``session_id`` PUT directly to ``to`` through ``hub`` with ``cpo``'s token: (status, body)."""
    status, body, _ = await hub.call(
        "PUT",
        f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session_id}",
        token=cpo.hub_token,
        json=session_for(CPO1, to, session_id),
        headers=rh(CPO1, to),
    )
    return status, body


def module_requests(peer: FakePlatform, module: str) -> list[Received]:
    """Requests a fake received on one module (any interface)."""
    return [r for r in peer.received if f"/ocpi/2.2.1/{module}/" in r.path + "/"]
