"""Admin API for dead letters (DESIGN.md section 11): list them and re-drive them into the queue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from hub.envelope import json_response, read_json
from hub.keys import CLOCK, SETTINGS, STORE, WORKER
from hub.params import positive_int
from routing.clock import iso
from routing.errors import InvalidParameters
from storage import outbox as outbox_sql
from storage.outbox import Message


def message_json(message: Message) -> dict[str, Any]:
    """A dead letter as operators see it: where it was going and why it died (no body, no token)."""
    return {
        "id": message.id,
        "platform_id": message.receiver_platform_id,
        "module": message.module,
        "object_key": message.object_key,
        "method": message.method,
        "url": message.url,
        "request_id": message.headers.get("X-Request-ID"),
        "correlation_id": message.headers.get("X-Correlation-ID"),
        "attempts": message.attempts,
        "created_at": message.created_at,
        "last_error": message.last_error,
        "last_http_status": message.last_http_status,
    }


def _int_param(value: Any, name: str) -> int | None:
    if value is None:
        return None
    number = positive_int(value)
    if number is None:
        raise InvalidParameters(f"'{name}' must be a positive integer")
    return number


async def list_dead_letters(request: web.Request) -> web.Response:
    """GET /admin/deadletters[?platform_id=&limit=]."""
    platform_id = _int_param(request.query.get("platform_id"), "platform_id")
    limit = _int_param(request.query.get("limit"), "limit") or 100
    letters = await outbox_sql.dead_letters(request.app[STORE], platform_id=platform_id, limit=min(limit, 1000))
    return json_response([message_json(m) for m in letters])


async def redrive(request: web.Request) -> web.Response:
    """POST /admin/deadletters/redrive {} | {"platform_id": N} | {"ids": [..]}: back to the queue."""
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise InvalidParameters("body must be a JSON object")
    platform_id = _int_param(body.get("platform_id"), "platform_id")
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(_int_param(i, "ids") is not None for i in ids)):
        raise InvalidParameters("'ids' must be a list of message ids")
    chosen = [int(i) for i in ids] if ids is not None else None
    count = await redrive_letters(request.app, platform_id=platform_id, ids=chosen)
    return json_response({"redriven": count})


async def redrive_letters(app: web.Application, *, platform_id: int | None, ids: list[int] | None) -> int:
    """Put dead letters back in the queue (all, one platform's, or these ids); how many were re-driven."""
    now = app[CLOCK].now()
    delivery = app[SETTINGS].delivery
    count: int = await app[STORE].write(
        lambda tx: outbox_sql.redrive(
            tx,
            now=iso(now),
            deadline_at=iso(now + timedelta(seconds=delivery.max_age)),
            cdr_deadline_at=iso(now + timedelta(seconds=delivery.cdr_max_age)),
            platform_id=platform_id,
            ids=ids,
        )
    )
    app[WORKER].refresh()  # a re-driven letter may head a chain again
    return count


def setup(app: web.Application) -> None:
    """Register the dead-letter routes."""
    app.router.add_get("/admin/deadletters", list_dead_letters)
    app.router.add_post("/admin/deadletters/redrive", redrive)
