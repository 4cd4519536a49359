"""HubClientInfo SENDER interface of the hub: the paginated list of every party's ClientInfo."""

from __future__ import annotations

from aiohttp import web

from hub.keys import CALLER, CLIENT_INFO, DIRECTORY, OCPI_VERSION, SETTINGS
from hub.ocpi.envelope import ocpi_response
from hub.ocpi.router import OcpiRouter
from routing.getall import MAX_LIMIT, next_link, page_request
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.versions import CORE, version_prefix


async def get_client_info(request: web.Request) -> web.Response:
    """GET list of ClientInfo, with the hub's pagination (mod_hub_client_info, Sender interface)."""
    query = dict(request.query)
    want = page_request(query)
    viewer = request.app[DIRECTORY].platform(request[CALLER].platform_id)
    items = request.app[CLIENT_INFO].visible(viewer, want.date_from, want.date_to)
    page = [dict(i) for i in items[want.offset : want.offset + want.limit]]  # shared objects: copied
    headers = {"X-Total-Count": str(len(items)), "X-Limit": str(MAX_LIMIT)}
    if page and want.offset + len(page) < len(items):
        # On the caller's own version prefix (2.3.0 is served on the same shape), like every Link.
        base = f"{request.app[SETTINGS].public_url}{version_prefix(request.get(OCPI_VERSION, CORE))}/hubclientinfo/"
        headers["Link"] = next_link(base, query, want.offset + len(page), want.limit)
    return ocpi_response(request, page, headers=headers)


def setup(router: OcpiRouter) -> None:
    """Publish and register the hubclientinfo SENDER endpoint."""
    router.publish(ModuleID.HUB_CLIENT_INFO, InterfaceRole.SENDER, "hubclientinfo/")
    router.add("GET", "/hubclientinfo", get_client_info)
