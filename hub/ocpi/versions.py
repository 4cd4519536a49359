"""Versions and version details (version_information_endpoint.asciidoc), for 2.1.1, 2.2.1, 2.3.0.

The hub speaks three versions: 2.2.1 and 2.3.0 publish each module's SENDER and RECEIVER URLs;
2.1.1 has one URL per module and no interface roles (2.1.1 version_information_endpoint.md).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.keys import SETTINGS
from hub.ocpi.envelope import ocpi_response
from hub.ocpi.router import PREFIX_211, SAME_SHAPE, OcpiRouter, prefix_of, tagged
from routing.protocol.vocab import ModuleID
from routing.versions import SUPPORTED

VERSION = "2.2.1"
ROUTER = web.AppKey("ocpi_router", OcpiRouter)
# Modules a 2.1.1 partner can use (no charging profiles, no hub client info in 2.1.1).
MODULES_211 = (
    ModuleID.CREDENTIALS,
    ModuleID.LOCATIONS,
    ModuleID.TARIFFS,
    ModuleID.TOKENS,
    ModuleID.SESSIONS,
    ModuleID.CDRS,
    ModuleID.COMMANDS,
)


async def get_versions(request: web.Request) -> web.Response:
    """GET /ocpi/versions: the versions this hub speaks, highest first."""
    base = request.app[SETTINGS].public_url
    return ocpi_response(request, [{"version": v, "url": f"{base}{prefix_of(v)}"} for v in SUPPORTED])


def details_handler(version: str) -> Handler:
    """GET /ocpi/{version}: every module the hub serves in that version."""

    async def get_version_details(request: web.Request) -> web.Response:
        router = request.app[ROUTER]
        if version == "2.1.1":
            seen = dict.fromkeys(p.identifier for p in router.published if p.identifier in MODULES_211)
            endpoints = [{"identifier": m, "url": router.url(m + "/", "2.1.1")} for m in seen]
        else:
            endpoints = [
                {"identifier": p.identifier, "role": p.role, "url": router.url(p.path, version)}
                for p in router.published
            ]
        return ocpi_response(request, {"version": version, "endpoints": endpoints})

    get_version_details.__doc__ = f"GET /ocpi/{version}: version details."
    return get_version_details


def setup(router: OcpiRouter) -> None:
    """Register the versions endpoints (token A allowed)."""
    router.app[ROUTER] = router
    router.add("GET", "/versions", get_versions, token_a=True, prefix="/ocpi")
    for version, prefix in [*SAME_SHAPE.items(), ("2.1.1", PREFIX_211)]:
        router.add_at("GET", "", tagged(details_handler(version), version), token_a=True, prefix=prefix)
