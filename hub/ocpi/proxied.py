"""Hub stand-in URLs: `callbacks/{id}` for async command/profile results, `proxy/{id}` for pages and CDRs."""

from __future__ import annotations

from aiohttp import web

from hub.keys import CLOCK, CORRELATION_ID, PROXIES
from hub.ocpi import versioned
from hub.ocpi.envelope import read_json
from hub.ocpi.routed import calling_platform, response
from hub.ocpi.router import PREFIX_211, OcpiRouter, raw_tail, tagged
from routing.clock import iso
from routing.decide import caller_party
from routing.protocol.headers import parse_routing_headers
from routing.protocol.paths import decode_segments


def stand_in_id(request: web.Request) -> str:
    """The id of a stand-in URL, read from the raw path like every routed segment (2001 for '..' and the like)."""
    return "/".join(decode_segments(raw_tail(request)))


async def post_callback(request: web.Request) -> web.Response:
    """POST {response_url}: the CPO's CommandResult / *ProfileResult, forwarded to the requester."""
    platform = calling_platform(request)
    flow = versioned.begin(request, platform)
    caller_party(platform, parse_routing_headers(request.headers), None)  # a FROM not its own: 403/2001
    proxy_id = stand_in_id(request)
    raw = await request.read()
    await read_json(request)  # a result must be JSON; refuse garbage before queueing it
    sent_id = request[CORRELATION_ID] if request.headers.get("X-Correlation-ID") else None
    reply = await request.app[PROXIES].handle_callback(proxy_id, platform, raw, sent_id, flow)
    request[CORRELATION_ID] = reply.headers.pop("X-Correlation-ID", request[CORRELATION_ID])  # echoed on the answer
    return response(reply.status, reply.body, reply.headers)


async def get_proxy(request: web.Request) -> web.Response:
    """GET a proxied next page or CDR."""
    platform = calling_platform(request)
    flow = versioned.begin(request, platform)
    reply = await request.app[PROXIES].handle_proxy_get(
        stand_in_id(request), platform, request[CORRELATION_ID], iso(request.app[CLOCK].now()), flow
    )
    # Page 2+ in the caller's version, like page 1 (routing/versions/wire.py, open_answer).
    body = await versioned.answer(flow, reply.status, reply.body)
    return response(reply.status, body, reply.headers)


def setup(router: OcpiRouter) -> None:
    """Register the stand-in URLs (not published: they are handed out one by one)."""
    router.add("POST", "/callbacks/{id}", post_callback)
    router.add("GET", "/proxy/{id}", get_proxy)
    # A 2.1.1 partner is handed stand-ins under its own version's prefix (routing/proxies.py).
    router.add_at("POST", "/callbacks/{id}", tagged(post_callback, "2.1.1"), prefix=PREFIX_211)
    router.add_at("GET", "/proxy/{id}", tagged(get_proxy, "2.1.1"), prefix=PREFIX_211)
