"""Credentials module, hub side of the party-initiated handshake (credentials.asciidoc).

GET returns the hub's credentials for the caller, POST registers (token A), PUT rotates,
DELETE unregisters. 405 for POST when registered and PUT/DELETE when not. Served on the
2.1.1, 2.2.1 and 2.3.0 URLs: the body is in the shape of the URL's version.
"""

from __future__ import annotations

from aiohttp import web

from hub.keys import CALLER, OCPI_VERSION, REGISTRY
from hub.ocpi.envelope import ocpi_response, read_json
from hub.ocpi.router import PREFIX_211, OcpiRouter, tagged
from routing.protocol.vocab import InterfaceRole, ModuleID


def _version(request: web.Request) -> str:
    return str(request.get(OCPI_VERSION, "2.2.1"))


async def get_credentials(request: web.Request) -> web.Response:
    """GET: the credentials the caller uses to reach us (its own token echoed: we keep only hashes)."""
    caller = request[CALLER]
    return ocpi_response(
        request, await request.app[REGISTRY].credentials_for(caller.raw_token, _version(request), caller.platform_id)
    )


async def post_credentials(request: web.Request) -> web.Response:
    """POST: register a party that holds a token A."""
    body = await read_json(request)
    data = await request.app[REGISTRY].register(request[CALLER].token, body, version=_version(request))
    return ocpi_response(request, data)


async def put_credentials(request: web.Request) -> web.Response:
    """PUT: re-read the party's endpoints and issue a new token C."""
    body = await read_json(request)
    data = await request.app[REGISTRY].update(request[CALLER].token, body, version=_version(request))
    return ocpi_response(request, data)


async def delete_credentials(request: web.Request) -> web.Response:
    """DELETE: unregister the calling party."""
    await request.app[REGISTRY].unregister(request[CALLER].token)
    return ocpi_response(request)


def setup(router: OcpiRouter) -> None:
    """Register and publish the credentials endpoint (token A allowed on every method)."""
    router.publish(ModuleID.CREDENTIALS, InterfaceRole.SENDER, "credentials/")
    for method, handler in (
        ("GET", get_credentials),
        ("POST", post_credentials),
        ("PUT", put_credentials),
        ("DELETE", delete_credentials),
    ):
        router.add(method, "/credentials", handler, token_a=True)
        router.add_at(method, "/credentials", tagged(handler, "2.1.1"), token_a=True, prefix=PREFIX_211)
        # The original draft's reference path for registration (docs/DESIGN-NOTES.md, Draft reference paths).
        router.add(method, "/registrations", handler, token_a=True, prefix="/ocpi")
