"""The routed functional modules (locations, tariffs, tokens, sessions, cdrs, commands, chargingprofiles).

Every module has a SENDER and a RECEIVER endpoint on the hub; all share one thin handler,
because what differs between modules is routing knowledge (``routing.decide.MODULES``), not
HTTP handling. The draft's reference paths (docs/DESIGN-NOTES.md, Draft reference paths) map onto the same handler.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from config import Settings
from hub.keys import CALLER, CORRELATION_ID, DIRECTORY, ERROR_HEADERS, REQUEST_ID, ROUTING, SETTINGS, WORKER
from hub.ocpi import versioned
from hub.ocpi.envelope import read_json
from hub.ocpi.router import PREFIX_211, OcpiRouter, raw_tail, tagged
from hub.ocpi.versions import MODULES_211 as VERSION_211_MODULES
from routing.decide import MODULES
from routing.messages import Inbound, PartyRef, RoutingHeaders
from routing.protocol.errors import Forbidden
from routing.protocol.headers import parse_routing_headers
from routing.protocol.paths import decode_segments
from routing.protocol.vocab import InterfaceRole, ModuleID, Role
from routing.registry.identity import live_parties, refs, serves
from storage.models import Platform

# Draft path -> module; the caller's method picks the interface (docs/DESIGN-NOTES.md, Draft reference paths).
DRAFT_ALIASES = {
    "locations": ModuleID.LOCATIONS,
    "sessions": ModuleID.SESSIONS,
    "cdrs": ModuleID.CDRS,
    "commands": ModuleID.COMMANDS,
    "smartcharging": ModuleID.CHARGING_PROFILES,
    "tariffs": ModuleID.TARIFFS,
    "tokens": ModuleID.TOKENS,
}


def calling_platform(request: web.Request) -> Platform:
    """The caller's platform; only registered, non-suspended platforms may use functional modules."""
    platform = request.app[DIRECTORY].platform(request[CALLER].platform_id)
    if platform is None or not platform.registered:
        raise Forbidden("complete the credentials handshake first")
    if platform.status == "SUSPENDED":
        raise Forbidden("this platform is suspended at the hub")
    return platform


def stamp_error_routing(request: web.Request, platform: Platform, routing: RoutingHeaders) -> None:
    """Errors the hub makes on this request answer FROM the hub TO the requester (transport_and_format).

    Worked out only if an error is answered (most requests succeed: ~2 % of a push's loop time
    went to headers nobody sent, issue 22).
    """
    if platform.version == "2.1.1":  # 2.1.1 knows no routing headers (transport_and_format 2.2)
        return
    headers: Callable[[], dict[str, str]] = functools.partial(_error_headers, request.app[SETTINGS], platform, routing)
    request[ERROR_HEADERS] = headers


def _error_headers(settings: Settings, platform: Platform, routing: RoutingHeaders) -> dict[str, str]:
    """FROM the hub TO the FROM party when it is the caller's own, else the caller's first party."""
    to = routing.from_party if routing.from_party is not None and serves(platform, routing.from_party) else None
    to = to or next(iter(refs(live_parties(platform))), None)
    if to is None:
        return {}
    return RoutingHeaders(from_party=PartyRef(settings.country_code, settings.party_id), to_party=to).as_headers()


def response(reply_status: int, body: bytes, headers: Mapping[str, str]) -> web.Response:
    """A relayed or hub-made answer as JSON."""
    return web.Response(body=body, status=reply_status, headers=headers, content_type="application/json")


async def route(request: web.Request, module: str, interface: str) -> web.Response:
    """Parse, hand to the routing service, render."""
    platform = calling_platform(request)
    flow = versioned.begin(request, platform)
    if platform.status == "OFFLINE":  # it is talking to us, so it is alive: resume its queue
        await request.app[WORKER].called_in(platform.id)
    routing = parse_routing_headers(request.headers)
    stamp_error_routing(request, platform, routing)
    segments = decode_segments(raw_tail(request))  # from the raw URL: %2F is no separator (issue 20)
    raw: bytes | None = None
    body = None
    # body_exists, not can_read_body: the pipeline has read the body already (hub/ocpi/pipeline.py).
    if request.method in ("PUT", "PATCH") or (request.method == "POST" and request.body_exists):
        body = await read_json(request)
        raw = await request.read()
    inbound = Inbound(
        module=module,
        interface=interface,
        method=request.method,
        segments=segments,
        query=dict(request.query),
        query_string=request.rel_url.raw_query_string,  # forwarded as sent, never re-decoded
        routing=routing,
        request_id=request[REQUEST_ID],
        correlation_id=request[CORRELATION_ID],
        caller=platform,
        flow=flow,
        raw_body=raw,
        body=body,
    )
    reply = await request.app[ROUTING].handle(inbound)
    # In the caller's version, valid for it, without what it may not see (routing/versions/answers.py).
    body = await versioned.answer(flow, reply.status, reply.body)
    if platform.version == "2.1.1":  # 2.1.1 knows no routing headers (transport_and_format 2.2)
        for name in [k for k in reply.headers if k.lower().startswith("ocpi-")]:
            del reply.headers[name]
    return response(reply.status, body, reply.headers)


def _handler(module: str, interface: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await route(request, module, interface)

    handler.__doc__ = f"{module} {interface} interface of the hub."
    return handler


def _draft_handler(module: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        platform = calling_platform(request)
        cpo = any(p.role == Role.CPO for p in platform.parties)
        if module in (ModuleID.COMMANDS, ModuleID.CHARGING_PROFILES):
            interface = InterfaceRole.SENDER if cpo else InterfaceRole.RECEIVER
        else:
            interface = InterfaceRole.SENDER if request.method == "GET" else InterfaceRole.RECEIVER
        return await route(request, module, interface)

    handler.__doc__ = f"Draft reference path for {module}."
    return handler


def setup(router: OcpiRouter) -> None:
    """Publish and register SENDER and RECEIVER endpoints for every routed module, and the draft aliases."""
    for module in MODULES:
        for interface in (InterfaceRole.SENDER, InterfaceRole.RECEIVER):
            path = f"{module}/{interface.lower()}"
            router.publish(module, interface, path + "/")
            router.add_tail("*", "/" + path, _handler(module, interface))
    for alias, module in DRAFT_ALIASES.items():
        router.add_tail("*", "/" + alias, _draft_handler(module), prefix="/ocpi")
    for module in MODULES_211:
        router.add_tail_at("*", "/" + module, tagged(_handler_211(module), "2.1.1"), prefix=PREFIX_211)


# Functional modules of OCPI 2.1.1: what a 2.1.1 partner can use but its credentials.
MODULES_211 = tuple(m for m in VERSION_211_MODULES if m != ModuleID.CREDENTIALS)


def _handler_211(module: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        platform = calling_platform(request)
        segments = decode_segments(raw_tail(request))
        is_cpo = any(p.role == Role.CPO for p in platform.parties)
        return await route(request, module, versioned.interface_211(module, request.method, segments, is_cpo))

    handler.__doc__ = f"OCPI 2.1.1 {module} (one URL for both interfaces)."
    return handler
