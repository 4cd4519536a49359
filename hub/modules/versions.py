"""Versions and version details (version_information_endpoint.asciidoc)."""

from __future__ import annotations

from aiohttp import web

from hub.envelope import ocpi_response
from hub.keys import SETTINGS
from hub.modules.router import PREFIX, OcpiRouter

VERSION = "2.2.1"
ROUTER = web.AppKey("ocpi_router", OcpiRouter)


async def get_versions(request: web.Request) -> web.Response:
    """GET /ocpi/versions: the versions this hub speaks."""
    base = request.app[SETTINGS].public_url
    return ocpi_response(request, [{"version": VERSION, "url": f"{base}{PREFIX}"}])


async def get_version_details(request: web.Request) -> web.Response:
    """GET /ocpi/2.2.1: every module with its SENDER and RECEIVER URLs."""
    router = request.app[ROUTER]
    endpoints = [{"identifier": p.identifier, "role": p.role, "url": router.url(p.path)} for p in router.published]
    return ocpi_response(request, {"version": VERSION, "endpoints": endpoints})


def setup(router: OcpiRouter) -> None:
    """Register the versions endpoints (token A allowed)."""
    router.app[ROUTER] = router
    router.add("GET", "/versions", get_versions, token_a=True, prefix="/ocpi")
    router.add("GET", "", get_version_details, token_a=True)
