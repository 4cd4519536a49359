"""Admin API (docs/DESIGN-NOTES.md, Admin API and CLI): JSON in and out, bearer admin token (auth middleware).

The shapes here are a contract: the CLI and operators' scripts drive the hub through them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from hub.admin.params import fields, positive_int
from hub.keys import REGISTRY, SETTINGS, STORE
from hub.ocpi.envelope import json_response, read_json
from routing.clock import iso, iso_or_none
from routing.protocol.errors import InvalidParameters, NotFound
from routing.protocol.vocab import PARTY_ROLES
from storage import platforms as platform_sql
from storage.models import Platform


def platform_json(platform: Platform) -> dict[str, Any]:
    """Public view of a platform: never its tokens."""
    return {
        **fields(platform, "id", "name", "status", "initiated_by", "versions_url", "version", "registered"),
        "roles": [fields(p, "country_code", "party_id", "role", "business_details") for p in platform.parties],
        "endpoints": [{"identifier": e.module, "role": e.role, "url": e.url} for e in platform.endpoints],
        "interop": fields(platform, "send_base64", "pull_interval"),
        # Timestamps are datetimes past storage (storage/times.py): the OCPI DateTime text here.
        "created_at": iso(platform.created_at),
        "updated_at": iso(platform.updated_at),
        "last_seen_in": iso_or_none(platform.last_seen_in),
        "last_seen_out": iso_or_none(platform.last_seen_out),
    }


def platform_id(request: web.Request) -> int:
    """The platform {id} of the URL; 404 for anything that is not one (admin API and console alike)."""
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


def _role_field(body: Any) -> str | None:
    """Optional "role": what an OCPI 2.1.1 partner serves (its credentials name none)."""
    role = _string_field(body, "role", required=False)
    if role is not None and role.upper() not in PARTY_ROLES:
        raise InvalidParameters(f"'role' must be one of {', '.join(PARTY_ROLES)}")
    return role.upper() if role else None


async def create_invitation(request: web.Request) -> web.Response:
    """POST /admin/invitations {"name"[, "role"]}: 201 {"token_a", "versions_url", "platform_id", "expires_at"}."""
    body = await read_json(request)
    name = _string_field(body, "name")
    assert name is not None
    return json_response(await invite(request.app, name, role=_role_field(body)), status=201)


async def invite(app: web.Application, name: str, *, role: str | None = None) -> dict[str, Any]:
    """Create an invitation: {"token_a", "versions_url", "platform_id", "expires_at"} (token A shown once)."""
    platform, token_a = await app[REGISTRY].invite(name, role=role)
    settings = app[SETTINGS]
    expires_at = platform.created_at + timedelta(seconds=settings.token_a_ttl)
    return {
        "token_a": token_a,
        "versions_url": settings.versions_url,
        "platform_id": platform.id,
        "expires_at": iso(expires_at),
    }


async def create_connection(request: web.Request) -> web.Response:
    """POST /admin/connections {"versions_url", "token_a"[, "name", "role"]}: 201 platform."""
    body = await read_json(request)
    versions_url = _string_field(body, "versions_url")
    token_a = _string_field(body, "token_a")
    name = _string_field(body, "name", required=False)
    assert versions_url is not None and token_a is not None
    platform = await request.app[REGISTRY].connect(versions_url, token_a, name=name, role=_role_field(body))
    return json_response(platform_json(platform), status=201)


PAGE = 1000  # platforms per page of GET /admin/platforms (at most, and by default)


async def list_platforms(request: web.Request) -> web.Response:
    """GET /admin/platforms[?after=ID][&limit=N]: platforms in id order, a page at a time.

    Up to ``limit`` (default and at most PAGE) after the id ``after``; a ``Link: <...>;
    rel="next"`` names the next page. One answer with all 10,000 platforms of a big network
    and their endpoints was 22 MB and ~0.6 s of the event loop.
    """
    query = request.query
    after = positive_int(query["after"]) if "after" in query else None
    limit = positive_int(query["limit"]) if "limit" in query else PAGE
    if ("after" in query and after is None) or limit is None or not 1 <= limit <= PAGE:
        raise InvalidParameters(f"'after' must be a platform id and 'limit' an integer from 1 to {PAGE}")
    platforms = await platform_sql.list_platforms(request.app[STORE], after=after, limit=limit + 1)
    response = json_response([platform_json(p) for p in platforms[:limit]])
    if len(platforms) > limit:
        base = request.app[SETTINGS].public_url
        response.headers["Link"] = f'<{base}/admin/platforms?after={platforms[limit - 1].id}&limit={limit}>; rel="next"'
    return response


async def get_platform(request: web.Request) -> web.Response:
    """GET /admin/platforms/{id}."""
    return json_response(platform_json(await request.app[REGISTRY].get(platform_id(request))))


async def rotate_credentials(request: web.Request) -> web.Response:
    """PUT /admin/platforms/{id}/credentials: hub-initiated rotation."""
    platform = await request.app[REGISTRY].rotate(platform_id(request))
    return json_response(platform_json(platform))


async def update_interop(request: web.Request) -> web.Response:
    """PATCH /admin/platforms/{id} {"interop": {"send_base64"?, "pull_interval"?}}: per-platform settings."""
    body = await read_json(request)
    interop = body.get("interop") if isinstance(body, dict) else None
    if not isinstance(interop, dict) or not interop or set(interop) - {"send_base64", "pull_interval"}:
        raise InvalidParameters('body must be {"interop": {"send_base64": bool, "pull_interval": seconds|null}}')
    registry = request.app[REGISTRY]
    current = await registry.get(platform_id(request))
    send_base64 = interop.get("send_base64", current.send_base64)
    if not isinstance(send_base64, bool):
        raise InvalidParameters("'send_base64' must be true or false")
    pull_interval = interop.get("pull_interval", current.pull_interval)
    if pull_interval is not None and (
        isinstance(pull_interval, bool)
        or not isinstance(pull_interval, int | float)
        or not 60 <= pull_interval <= 7 * 86400
    ):
        raise InvalidParameters("'pull_interval' must be null (never) or seconds from 60 to 604800")
    platform = await registry.set_interop(current.id, send_base64=send_base64, pull_interval=pull_interval)
    return json_response(platform_json(platform))


async def suspend(request: web.Request) -> web.Response:
    """POST /admin/platforms/{id}/suspend."""
    return json_response(platform_json(await request.app[REGISTRY].set_status(platform_id(request), "SUSPENDED")))


async def resume(request: web.Request) -> web.Response:
    """POST /admin/platforms/{id}/resume."""
    return json_response(platform_json(await request.app[REGISTRY].set_status(platform_id(request), "CONNECTED")))


async def delete_platform(request: web.Request) -> web.Response:
    """DELETE /admin/platforms/{id}: credentials DELETE to the peer, tokens revoked."""
    platform, peer_answer = await request.app[REGISTRY].disconnect(platform_id(request))
    return json_response({**platform_json(platform), "peer_answer": peer_answer})


def setup(app: web.Application) -> None:
    """Register the admin routes."""
    r = app.router
    r.add_post("/admin/invitations", create_invitation)
    r.add_post("/admin/connections", create_connection)
    r.add_get("/admin/platforms", list_platforms)
    r.add_get("/admin/platforms/{id}", get_platform)
    r.add_patch("/admin/platforms/{id}", update_interop)
    r.add_put("/admin/platforms/{id}/credentials", rotate_credentials)
    r.add_post("/admin/platforms/{id}/suspend", suspend)
    r.add_post("/admin/platforms/{id}/resume", resume)
    r.add_delete("/admin/platforms/{id}", delete_platform)
