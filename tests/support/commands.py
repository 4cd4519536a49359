"""Shared scaffolding for the command, charging-profile and authorize tests.

A network of two fake CPOs and two fake eMSPs, all registered through the real credentials
handshake, plus small helpers to script the fakes' answers and to check headers on the wire.
Payloads are hand-written from the 2.2.1 spec tables (no official command examples exist).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.fakes import FakePlatform, Received, envelope
from tests.support.waiting import wait_for

Party = tuple[str, str, str]  # (country_code, party_id, role)

CPO1: Party = ("BE", "BEC", "CPO")
CPO2: Party = ("DE", "DEC", "CPO")
EMSP1: Party = ("NL", "EXA", "EMSP")
EMSP2: Party = ("FR", "FRE", "EMSP")

Rule = tuple[str, Any]  # (path part, data | Callable[[request, body], Awaitable[web.StreamResponse]])


@dataclass
class Net:
    """The hub and four registered platforms."""

    hub: Any
    cpo1: FakePlatform
    cpo2: FakePlatform
    emsp1: FakePlatform
    emsp2: FakePlatform


async def connect(hub: Any, make_peer: Callable[..., Awaitable[FakePlatform]], role: Party) -> FakePlatform:
    """Start a fake platform and register it with the hub through the real handshake."""
    peer = await make_peer(role, name=role[1])
    await peer.register_with(hub.versions_url, await hub.invite(role[1]))
    return peer


async def network(hub: Any, make_peer: Callable[..., Awaitable[FakePlatform]]) -> Net:
    """Two CPOs and two eMSPs connected to one hub."""
    peers = [await connect(hub, make_peer, role) for role in (CPO1, CPO2, EMSP1, EMSP2)]
    # ClientInfo goes out after each registration's answer: let every platform hear of the three
    # others before a test counts what the peers received.
    for peer in peers:
        await wait_for(lambda p=peer: len(p.requests_to("/hubclientinfo/")) >= 3)  # type: ignore[misc]
    return Net(hub, *peers)


def routing(frm: Party, to: Party | None = None, *, correlation: str | None = None) -> dict[str, str]:
    """OCPI-from (and OCPI-to unless open routing) headers, with an X-Request-ID and optional X-Correlation-ID."""
    out = {
        "OCPI-from-country-code": frm[0],
        "OCPI-from-party-id": frm[1],
        "X-Request-ID": "req-" + frm[1].lower(),
    }
    if to is not None:
        out["OCPI-to-country-code"] = to[0]
        out["OCPI-to-party-id"] = to[1]
    if correlation is not None:
        out["X-Correlation-ID"] = correlation
    return out


def hdr(headers: Any, name: str) -> str | None:
    """A header value by case-insensitive name (fakes record a plain dict)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def assert_parties(headers: Any, frm: Party, to: Party) -> None:
    """FROM and TO headers name exactly these parties (CiString: compared case-insensitively)."""
    got = (
        (hdr(headers, "OCPI-from-country-code") or "").upper(),
        (hdr(headers, "OCPI-from-party-id") or "").upper(),
        (hdr(headers, "OCPI-to-country-code") or "").upper(),
        (hdr(headers, "OCPI-to-party-id") or "").upper(),
    )
    assert got == (frm[0], frm[1], to[0], to[1]), got


def assert_token(received: Received, peer: FakePlatform) -> None:
    """The hub called ``peer`` with the token ``peer`` issued to it, base64-encoded (2.2.1)."""
    expected = "Token " + base64.b64encode(peer.token_for_hub.encode()).decode()
    assert received.headers["Authorization"] == expected


def script(*rules: Rule, delay: float = 0.0) -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    """A module_responder: the first rule whose path part is in the request path answers.

    A rule's value is the envelope ``data`` to answer with (HTTP 200, 1000), or a coroutine
    function taking (request, body) for anything else. Unmatched requests get an empty 1000.
    """

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)  # bounded: only used to provoke the hub's command_timeout
        for part, value in rules:
            if part in request.path_qs:
                if callable(value):
                    result: web.StreamResponse = await value(request, body)
                    return result
                return web.json_response(envelope(value))
        return web.json_response(envelope())

    return respond


def ocpi(status: int, code: int, data: Any = None, message: str | None = None) -> Any:
    """A rule value answering with a chosen HTTP status and OCPI status code."""

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response(envelope(data, code, message), status=status)

    return respond


def raw(status: int, text: str, content_type: str = "text/html") -> Any:
    """A rule value answering with a non-OCPI body."""

    async def respond(request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(status=status, text=text, content_type=content_type)

    return respond


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of ``body`` without ``keys``."""
    return {k: v for k, v in body.items() if k not in keys}


def parsed(received: Received) -> Any:
    """The exact JSON the peer received (from the raw bytes, not re-encoded by the fake)."""
    return json.loads(received.raw)


def token(party: Party = EMSP1, uid: str = "012345678") -> dict[str, Any]:
    """A full Token object (mod_tokens, Token) owned by an eMSP."""
    return {
        "country_code": party[0],
        "party_id": party[1],
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{party[0]}-{party[1]}-C12345678-X",
        "visual_number": "DF000-2001-8999-1",
        "issuer": "TheNewMotion",
        "group_id": "DF000-2001-8999",
        "valid": True,
        "whitelist": "ALLOWED",
        "language": "nl",
        "last_updated": "2026-11-25T10:00:00Z",
    }


def location(cpo: Party, location_id: str) -> dict[str, Any]:
    """A minimal Location (mod_locations) with one EVSE and one connector."""
    return {
        "country_code": cpo[0],
        "party_id": cpo[1],
        "id": location_id,
        "publish": True,
        "address": "Stationsplein 1",
        "city": "Brussel",
        "country": "BEL",
        "coordinates": {"latitude": "50.845", "longitude": "4.357"},
        "evses": [
            {
                "uid": "EVSE-1",
                "evse_id": f"{cpo[0]}*{cpo[1]}*E1",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 32,
                        "last_updated": "2026-11-25T10:00:00Z",
                    }
                ],
                "last_updated": "2026-11-25T10:00:00Z",
            }
        ],
        "time_zone": "Europe/Brussels",
        "last_updated": "2026-11-25T10:00:00Z",
    }


def session(cpo: Party, emsp: Party, session_id: str, location_id: str = "LOC-1") -> dict[str, Any]:
    """A minimal ACTIVE Session (mod_sessions) of ``cpo`` for a token of ``emsp``."""
    return {
        "country_code": cpo[0],
        "party_id": cpo[1],
        "id": session_id,
        "start_date_time": "2026-11-25T11:00:00Z",
        "kwh": 0.0,
        "cdr_token": {
            "country_code": emsp[0],
            "party_id": emsp[1],
            "uid": "012345678",
            "type": "RFID",
            "contract_id": f"{emsp[0]}-{emsp[1]}-C12345678-X",
        },
        "auth_method": "COMMAND",
        "location_id": location_id,
        "evse_uid": "EVSE-1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-11-25T11:00:00Z",
    }


async def push_location(net: Net, cpo: FakePlatform, party: Party, location_id: str) -> None:
    """The CPO broadcasts a Location (TO = hub), which teaches the hub who owns ``location_id``."""
    status, body, _ = await net.hub.call(
        "PUT",
        f"/ocpi/2.2.1/locations/receiver/{party[0]}/{party[1]}/{location_id}",
        token=cpo.hub_token,
        json=location(party, location_id),
        headers=routing(party, ("NL", "HUB", "HUB")),
    )
    assert status == 200 and body["status_code"] == 1000, body


async def push_session(net: Net, cpo: FakePlatform, party: Party, emsp: Party, session_id: str) -> None:
    """The CPO sends a Session to the eMSP, which teaches the hub who owns ``session_id`` and where it went."""
    status, body, _ = await net.hub.call(
        "PUT",
        f"/ocpi/2.2.1/sessions/receiver/{party[0]}/{party[1]}/{session_id}",
        token=cpo.hub_token,
        json=session(party, emsp, session_id),
        headers=routing(party, emsp),
    )
    assert status == 200 and body["status_code"] == 1000, body


CMD = "/ocpi/2.2.1/commands/receiver/"
CALLBACKS = "/ocpi/2.2.1/callbacks/"


def command_body(command: str, response_url: str, **ids: str) -> dict[str, Any]:
    """A command body per the mod_commands tables, plus a vendor field the hub must not touch."""
    bodies: dict[str, dict[str, Any]] = {
        "START_SESSION": {
            "token": token(),
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
            "connector_id": "1",
            "authorization_reference": "AUTH-REF-1",
        },
        "STOP_SESSION": {"session_id": ids.get("session_id", "SESS-1")},
        "RESERVE_NOW": {
            "token": token(),
            "expiry_date": "2026-11-25T14:00:00Z",
            "reservation_id": ids.get("reservation_id", "RES-1"),
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
        },
        "CANCEL_RESERVATION": {"reservation_id": ids.get("reservation_id", "RES-1")},
        "UNLOCK_CONNECTOR": {
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
            "connector_id": "1",
        },
    }
    return {"response_url": response_url, **bodies[command], "x_vendor": {"note": "ünïcode", "n": 1.5}}


def accept(command: str, timeout: int = 30) -> tuple[str, Any]:
    return (CMD + command, {"result": "ACCEPTED", "timeout": timeout, "message": [{"language": "en", "text": "ok"}]})


def peers_except(net: Net, *keep: FakePlatform) -> list[FakePlatform]:
    return [p for p in (net.cpo1, net.cpo2, net.emsp1, net.emsp2) if p not in keep]


async def send_command(
    net: Net,
    command: str,
    *,
    cpo: FakePlatform,
    cpo_party: Party,
    emsp: FakePlatform = None,  # type: ignore[assignment]
    emsp_party: Party = EMSP1,
    direct: bool = True,
    correlation: str = "corr-cmd",
    expect_status: int = 200,
    **ids: str,
) -> tuple[dict[str, Any], str, Any]:
    """POST the command as the eMSP; check the synchronous leg on the wire; return (body sent, hub URL, answer)."""
    emsp = emsp or net.emsp1
    original = f"{emsp.base}/ocpi/2.2.1/commands/sender/{command}/cb-{correlation}?ref=42"
    body = command_body(command, original, **ids)
    before = len(cpo.requests_to(CMD + command))
    status, answer, headers = await net.hub.call(
        "POST",
        CMD + command,
        token=emsp.hub_token,
        json=body,
        headers=routing(emsp_party, cpo_party if direct else None, correlation=correlation),
    )
    assert status == expect_status, answer
    got = cpo.requests_to(CMD + command)
    assert len(got) == before + 1
    fwd = got[-1]
    assert fwd.method == "POST" and fwd.path == CMD + command
    sent = parsed(fwd)
    hub_url = sent["response_url"]
    assert hub_url.startswith(net.hub.base + CALLBACKS) and len(hub_url) > len(net.hub.base + CALLBACKS) + 20
    assert {**sent, "response_url": original} == body  # nothing else changed, unknown fields survive
    assert_parties(fwd.headers, emsp_party, cpo_party)
    assert_token(fwd, cpo)
    assert fwd.headers["X-Correlation-ID"] == correlation
    assert fwd.headers["X-Request-ID"] not in ("", "req-" + emsp_party[1].lower())
    assert_parties(headers, cpo_party, emsp_party)
    assert headers["X-Correlation-ID"] == correlation
    return body, hub_url, answer


async def post_result(
    net: Net,
    cpo: FakePlatform,
    cpo_party: Party,
    emsp: FakePlatform,
    emsp_party: Party,
    hub_url: str,
    original: str,
    result: dict[str, Any],
    correlation: str,
) -> None:
    """The CPO POSTs the CommandResult to the hub URL; the eMSP gets it at its own URL; the CPO gets its answer."""
    before = len(emsp.received)
    status, answer, headers = await net.hub.call(
        "POST", hub_url, token=cpo.hub_token, json=result, headers=routing(cpo_party, emsp_party)
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    assert answer["status_message"] == "thanks from " + emsp_party[1]
    assert_parties(headers, emsp_party, cpo_party)
    assert len(emsp.received) == before + 1
    got = emsp.received[-1]
    assert got.method == "POST" and f"{emsp.base}{got.path}?ref=42" == original and got.query == {"ref": "42"}
    assert parsed(got) == result
    assert_token(got, emsp)
    assert got.headers["X-Correlation-ID"] == correlation
    assert_parties(got.headers, cpo_party, emsp_party)
    assert got.headers["X-Request-ID"] != "req-" + cpo_party[1].lower()


def emsp_thanks(party: Party, part: str = "/commands/sender/") -> tuple[str, Any]:
    """The eMSP's answer to a result POSTed at its response_url (the CPO must get it back)."""
    return (part, ocpi(200, 1000, message="thanks from " + party[1]))
