"""Hub stand-in URLs: `callbacks/{id}` for async command/profile results, `proxy/{id}` for pages and CDRs."""

from __future__ import annotations

from aiohttp import web

from hub.envelope import read_json
from hub.keys import CLOCK, CORRELATION_ID, PROXIES
from hub.modules.routed import calling_platform, response
from hub.modules.router import OcpiRouter
from routing.clock import iso
from routing.decide import caller_party
from routing.headers import parse_routing_headers


async def post_callback(request: web.Request) -> web.Response:
    """POST {response_url}: the CPO's CommandResult / *ProfileResult, forwarded to the requester."""
    platform = calling_platform(request)
    caller_party(platform, parse_routing_headers(request.headers), None)  # a FROM not its own: 403/2001
    raw = await request.read()
    await read_json(request)  # a result must be JSON; refuse garbage before queueing it
    sent_id = request[CORRELATION_ID] if request.headers.get("X-Correlation-ID") else None
    reply = await request.app[PROXIES].handle_callback(request.match_info["id"], platform, raw, sent_id)
    request[CORRELATION_ID] = reply.headers.pop("X-Correlation-ID", request[CORRELATION_ID])  # echoed on the answer
    return response(reply.status, reply.body, reply.headers)


async def get_proxy(request: web.Request) -> web.Response:
    """GET a proxied next page or CDR."""
    platform = calling_platform(request)
    reply = await request.app[PROXIES].handle_proxy_get(
        request.match_info["id"], platform, request[CORRELATION_ID], iso(request.app[CLOCK].now())
    )
    return response(reply.status, reply.body, reply.headers)


def setup(router: OcpiRouter) -> None:
    """Register the stand-in URLs (not published: they are handed out one by one)."""
    router.add("POST", "/callbacks/{id}", post_callback)
    router.add("GET", "/proxy/{id}", get_proxy)
