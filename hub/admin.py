"""Admin API (DESIGN.md section 11): JSON in and out, bearer admin token (checked in auth middleware).

The shapes here are a contract: the CLI and operators' scripts drive the hub through them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from hub.envelope import json_response, read_json
from hub.keys import REGISTRY, SETTINGS, STORE
from hub.params import positive_int
from routing.clock import iso, parse_iso
from routing.errors import InvalidParameters, NotFound, OcpiError
from storage import platforms as platform_sql
from storage.models import Platform


def platform_json(platform: Platform) -> dict[str, Any]:
    """Public view of a platform: never its tokens."""
    return {
        "id": platform.id,
        "name": platform.name,
        "status": platform.status,
        "initiated_by": platform.initiated_by,
        "versions_url": platform.versions_url,
        "version": platform.version,
        "registered": platform.registered,
        "roles": [
            {
                "country_code": p.country_code,
                "party_id": p.party_id,
                "role": p.role,
                "business_details": p.business_details,
            }
            for p in platform.parties
        ],
        "endpoints": [{"identifier": e.module, "role": e.role, "url": e.url} for e in platform.endpoints],
        "created_at": platform.created_at,
        "updated_at": platform.updated_at,
        "last_seen_in": platform.last_seen_in,
        "last_seen_out": platform.last_seen_out,
    }


def _platform_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    number = positive_int(raw)
    if number is None:
        raise NotFound(f"platform {raw[:40]!r} does not exist")
    return number


def _string_field(body: Any, name: str, *, required: bool = True) -> str | None:
    if not isinstance(body, dict):
        raise InvalidParameters("body must be a JSON object")
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameters(f"'{name}' must be a non-empty string")
    return value.strip()


_ROLES = ("CPO", "EMSP", "NAP", "NSP", "OTHER", "SCSP")


def _role_field(body: Any) -> str | None:
    """Optional "role": what an OCPI 2.1.1 partner serves (its credentials name none)."""
    role = _string_field(body, "role", required=False)
    if role is not None and role.upper() not in _ROLES:
        raise InvalidParameters(f"'role' must be one of {', '.join(_ROLES)}")
    return role.upper() if role else None


def _upstream_failure(exc: OcpiError) -> OcpiError:
    # A failed handshake is the partner's fault, not the admin's request: 502 with the OCPI code.
    exc._http_status = 502
    return exc


async def create_invitation(request: web.Request) -> web.Response:
    """POST /admin/invitations {"name"[, "role"]}: 201 {"token_a", "versions_url", "platform_id", "expires_at"}."""
    body = await read_json(request)
    name = _string_field(body, "name")
    assert name is not None
    platform, token_a = await request.app[REGISTRY].invite(name, role=_role_field(body))
    settings = request.app[SETTINGS]
    expires_at = parse_iso(platform.created_at) + timedelta(seconds=settings.token_a_ttl)
    return json_response(
        {
            "token_a": token_a,
            "versions_url": settings.versions_url,
            "platform_id": platform.id,
            "expires_at": iso(expires_at),
        },
        status=201,
    )


async def create_connection(request: web.Request) -> web.Response:
    """POST /admin/connections {"versions_url", "token_a"[, "name", "role"]}: 201 platform."""
    body = await read_json(request)
    versions_url = _string_field(body, "versions_url")
    token_a = _string_field(body, "token_a")
    name = _string_field(body, "name", required=False)
    assert versions_url is not None and token_a is not None
    try:
        platform = await request.app[REGISTRY].connect(versions_url, token_a, name=name, role=_role_field(body))
    except OcpiError as exc:
        if exc.status_code >= 3000:
            raise _upstream_failure(exc) from exc
        if exc.status_code == 2001:  # the party's roles collide with another platform's
            exc._http_status = 409
        raise
    return json_response(platform_json(platform), status=201)


async def list_platforms(request: web.Request) -> web.Response:
    """GET /admin/platforms."""
    platforms = await platform_sql.list_platforms(request.app[STORE])
    return json_response([platform_json(p) for p in platforms])


async def get_platform(request: web.Request) -> web.Response:
    """GET /admin/platforms/{id}."""
    return json_response(platform_json(await request.app[REGISTRY].get(_platform_id(request))))


async def rotate_credentials(request: web.Request) -> web.Response:
    """PUT /admin/platforms/{id}/credentials: hub-initiated rotation."""
    try:
        platform = await request.app[REGISTRY].rotate(_platform_id(request))
    except OcpiError as exc:
        if exc.status_code >= 3000:
            raise _upstream_failure(exc) from exc
        raise
    return json_response(platform_json(platform))


async def suspend(request: web.Request) -> web.Response:
    """POST /admin/platforms/{id}/suspend."""
    return json_response(platform_json(await request.app[REGISTRY].set_status(_platform_id(request), "SUSPENDED")))


async def resume(request: web.Request) -> web.Response:
    """POST /admin/platforms/{id}/resume."""
    return json_response(platform_json(await request.app[REGISTRY].set_status(_platform_id(request), "CONNECTED")))


async def delete_platform(request: web.Request) -> web.Response:
    """DELETE /admin/platforms/{id}: credentials DELETE to the peer, tokens revoked."""
    platform, peer_answer = await request.app[REGISTRY].disconnect(_platform_id(request))
    return json_response({**platform_json(platform), "peer_answer": peer_answer})


def setup(app: web.Application) -> None:
    """Register the admin routes."""
    r = app.router
    r.add_post("/admin/invitations", create_invitation)
    r.add_post("/admin/connections", create_connection)
    r.add_get("/admin/platforms", list_platforms)
    r.add_get("/admin/platforms/{id}", get_platform)
    r.add_put("/admin/platforms/{id}/credentials", rotate_credentials)
    r.add_post("/admin/platforms/{id}/suspend", suspend)
    r.add_post("/admin/platforms/{id}/resume", resume)
    r.add_delete("/admin/platforms/{id}", delete_platform)
