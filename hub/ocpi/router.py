"""OcpiRouter: registers OCPI routes with or without a trailing slash and records published endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.keys import OCPI_VERSION, SETTINGS, TOKEN_A_ROUTES

PREFIX = "/ocpi/2.2.1"
# Versions whose module URLs have the 2.2.1 shape ({module}/{sender|receiver}): 2.1.1 has one
# URL per module and no interface roles, so its routes are added by each module's setup.
SAME_SHAPE = {"2.2.1": PREFIX, "2.3.0": "/ocpi/2.3.0"}
PREFIX_211 = "/ocpi/2.1.1"


def tagged(handler: Handler, version: str) -> Handler:
    """The handler, with the request marked as arriving on ``version``'s URLs."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        request[OCPI_VERSION] = version
        return await handler(request)

    wrapped.__doc__ = handler.__doc__
    return wrapped


def raw_tail(request: web.Request) -> list[str]:
    """The raw, still percent-encoded path segments below the matched route's fixed part.

    ``match_info`` holds them decoded, ``%2F`` already a '/': splitting that is how
    ``..%2F..%2Fcredentials`` became three segments (issue 20). routing/protocol/paths.py decodes these.
    """
    fixed = request.match_info.route.resource.canonical.split("{", 1)[0]  # type: ignore[union-attr]
    depth = len([p for p in fixed.split("/") if p])
    return list(request.rel_url.raw_parts[1 + depth :])


def prefix_of(version: str) -> str:
    """The URL prefix of a version's modules."""
    return PREFIX_211 if version == "2.1.1" else SAME_SHAPE[version]


@dataclass(frozen=True)
class Published:
    """One endpoint listed in the hub's version details."""

    identifier: str
    role: str
    path: str  # relative to PREFIX, ending with "/"


class OcpiRouter:
    """Adds routes under /ocpi/2.2.1 and remembers what the version details must list."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.published: list[Published] = []

    def publish(self, identifier: str, role: str, path: str) -> None:
        """List an endpoint in the version details (published URLs end with '/')."""
        self.published.append(Published(identifier, role, path.rstrip("/") + "/"))

    def add(self, method: str, path: str, handler: Handler, *, token_a: bool = False, prefix: str = PREFIX) -> None:
        """Register a route that matches with or without a trailing slash (peers concatenate sloppily).

        Routes under the 2.2.1 prefix are served under the 2.3.0 prefix too (same URL shape).
        """
        if prefix == PREFIX:
            for version, pre in SAME_SHAPE.items():
                self.add_at(method, path, tagged(handler, version), token_a=token_a, prefix=pre)
            return
        self.add_at(method, path, handler, token_a=token_a, prefix=prefix)

    def add_at(self, method: str, path: str, handler: Handler, *, token_a: bool = False, prefix: str) -> None:
        """Register a route under exactly one prefix."""
        full = prefix + path.rstrip("/")
        resource = self.app.router.add_resource(full + "{_slash:/?}")
        resource.add_route(method, handler)
        if method == "GET":
            resource.add_route("HEAD", handler)
        if token_a:
            self.app[TOKEN_A_ROUTES].add(resource)

    def add_tail(self, method: str, path: str, handler: Handler, *, prefix: str = PREFIX) -> None:
        """Register a route for a path and everything below it (``match_info['tail']``)."""
        if prefix == PREFIX:
            for version, pre in SAME_SHAPE.items():
                self.add_tail_at(method, path, tagged(handler, version), prefix=pre)
            return
        self.add_tail_at(method, path, handler, prefix=prefix)

    def add_tail_at(self, method: str, path: str, handler: Handler, *, prefix: str) -> None:
        """Register a tail route under exactly one prefix."""
        # [\s\S], not '.': a decoded %0A must reach routing/protocol/paths.py and its 2001, not fall to a 404.
        resource = self.app.router.add_resource(prefix + path.rstrip("/") + r"{tail:(/[\s\S]*)?}")
        resource.add_route(method, handler)

    def url(self, path: str, version: str = "2.2.1") -> str:
        """Absolute published URL for a path relative to a version's prefix."""
        return self.app[SETTINGS].public_url + prefix_of(version) + "/" + path.lstrip("/")
