"""Liveness (/health, no auth) and the operator's overview (/status, admin token unless public)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from hub import __version__
from hub.envelope import json_response
from hub.keys import STARTED_AT, STORE
from storage import platforms as platform_sql


async def health(request: web.Request) -> web.Response:
    """GET /health: the process answers and the store is readable."""
    await request.app[STORE].fetchone("SELECT 1")
    return json_response({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    """GET /status: version, uptime, and every platform with its roles and status."""
    platforms = await platform_sql.list_platforms(request.app[STORE])
    reasons: list[str] = [f"platform {p.id} ({p.name}) is OFFLINE" for p in platforms if p.status == "OFFLINE"]
    body: dict[str, Any] = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "version": __version__,
        "uptime_seconds": round(time.monotonic() - request.app[STARTED_AT], 3),
        "platforms": [
            {
                "id": p.id,
                "name": p.name,
                "status": p.status,
                "version": p.version,
                "roles": [{"country_code": r.country_code, "party_id": r.party_id, "role": r.role} for r in p.parties],
                "last_seen_in": p.last_seen_in,
                "last_seen_out": p.last_seen_out,
            }
            for p in platforms
        ],
    }
    return json_response(body)


def setup(app: web.Application) -> None:
    """Register /health and /status."""
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
