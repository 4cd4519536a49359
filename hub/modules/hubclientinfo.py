"""HubClientInfo SENDER interface of the hub: the paginated list of every party's ClientInfo."""

from __future__ import annotations

from aiohttp import web

from hub.envelope import ocpi_response
from hub.keys import DIRECTORY, SETTINGS
from hub.modules.router import OcpiRouter
from routing.clientinfo import all_client_info
from routing.getall import next_link, page_params


async def get_client_info(request: web.Request) -> web.Response:
    """GET list of ClientInfo, with the hub's pagination (mod_hub_client_info, Sender interface)."""
    query = dict(request.query)
    offset, limit, date_from, date_to = page_params(query)
    items = [
        i
        for i in all_client_info(request.app[DIRECTORY])
        if (date_from is None or i["last_updated"] >= date_from) and (date_to is None or i["last_updated"] < date_to)
    ]
    page = items[offset : offset + limit]
    headers = {"X-Total-Count": str(len(items)), "X-Limit": "1000"}
    base = f"{request.app[SETTINGS].public_url}/ocpi/2.2.1/hubclientinfo/"
    link = next_link(base, query, offset, limit, len(page), len(items))
    if link:
        headers["Link"] = link
    return ocpi_response(request, page, headers=headers)


def setup(router: OcpiRouter) -> None:
    """Publish and register the hubclientinfo SENDER endpoint."""
    router.publish("hubclientinfo", "SENDER", "hubclientinfo/")
    router.add("GET", "/hubclientinfo", get_client_info)
