"""OcpiRouter: registers OCPI routes with or without a trailing slash and records published endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.keys import SETTINGS, TOKEN_A_ROUTES

PREFIX = "/ocpi/2.2.1"


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
        """Register a route that matches with or without a trailing slash (peers concatenate sloppily)."""
        full = prefix + path.rstrip("/")
        resource = self.app.router.add_resource(full + "{_slash:/?}")
        resource.add_route(method, handler)
        if method == "GET":
            resource.add_route("HEAD", handler)
        if token_a:
            self.app[TOKEN_A_ROUTES].add(resource)

    def add_tail(self, method: str, path: str, handler: Handler, *, prefix: str = PREFIX) -> None:
        """Register a route for a path and everything below it (``match_info['tail']``)."""
        resource = self.app.router.add_resource(prefix + path.rstrip("/") + "{tail:(/.*)?}")
        resource.add_route(method, handler)

    def url(self, path: str) -> str:
        """Absolute published URL for a path relative to the prefix."""
        return self.app[SETTINGS].public_url + PREFIX + "/" + path.lstrip("/")
