"""Admin API for open invitations: list them, revoke one (its token A stops working at once)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.admin.params import positive_int
from hub.keys import CLOCK, DIRECTORY, REGISTRY, STORE
from hub.ocpi.envelope import json_response
from routing.clock import iso
from routing.protocol.errors import NotFound
from storage import lifecycle as lifecycle_sql


async def open_invitations(app: web.Application) -> list[dict[str, Any]]:
    """Invitations whose token A was not used: the admin API's list and the console's table."""
    now = iso(app[CLOCK].now())
    return [
        {
            "platform_id": i.platform_id,
            "name": i.name,
            "created_at": i.created_at,
            "expires_at": i.expires_at,
            "expired": i.expires_at is not None and i.expires_at <= now,
        }
        for i in await lifecycle_sql.list_invitations(app[STORE])
    ]


async def list_invitations(request: web.Request) -> web.Response:
    """GET /admin/invitations: [{"platform_id", "name", "created_at", "expires_at", "expired"}]."""
    return json_response(await open_invitations(request.app))


async def revoke(app: web.Application, raw: str) -> int:
    """Remove the open invitation ``raw`` (PLANNED platform and token A); NotFound when there is none."""
    platform_id = positive_int(raw)
    if platform_id is None or not await app[REGISTRY].revoke_invitation(platform_id):
        raise NotFound(f"no open invitation {raw[:40]!r}")
    await app[DIRECTORY].refresh(platform_id)  # this platform only (a reload of 10,000 is ~1.3 s)
    return platform_id


async def revoke_invitation(request: web.Request) -> web.Response:
    """DELETE /admin/invitations/{id}: the PLANNED platform and its token A are removed."""
    return json_response({"revoked": await revoke(request.app, request.match_info["id"])})


def setup(app: web.Application) -> None:
    """Register the invitation routes (POST /admin/invitations lives in hub/admin/platforms.py)."""
    app.router.add_get("/admin/invitations", list_invitations)
    app.router.add_delete("/admin/invitations/{id}", revoke_invitation)
