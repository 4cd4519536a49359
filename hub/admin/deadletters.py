"""Admin API for dead letters (docs/DESIGN-NOTES.md, Admin API and CLI): list, re-drive or discard them.

Discarding closes a dead letter out: the row stays (state 'discarded', with the operator's
reason) for the record, is never sent, and no longer makes /status degraded.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from hub.admin.params import fields, positive_int
from hub.keys import CLOCK, SETTINGS, STORE, WORKER
from hub.ocpi.envelope import json_response, read_json
from routing.clock import iso
from routing.protocol.errors import InvalidParameters
from storage import deadletters as deadletters_sql
from storage.outbox import Message

LOGGER = logging.getLogger(__name__)


def message_json(message: Message) -> dict[str, Any]:
    """A dead letter as operators see it: where it was going and why it died (no body, no token)."""
    return {
        "id": message.id,
        "platform_id": message.receiver_platform_id,
        **fields(message, "module", "object_key", "method", "url"),
        "request_id": message.headers.get("X-Request-ID"),
        "correlation_id": message.headers.get("X-Correlation-ID"),
        **fields(message, "attempts", "created_at", "last_error", "last_http_status", "last_ocpi_status"),
        **fields(message, "state", "discard_reason"),
    }


def _int_param(value: Any, name: str) -> int | None:
    if value is None:
        return None
    number = positive_int(value)
    if number is None:
        raise InvalidParameters(f"'{name}' must be a positive integer")
    return number


_LISTS = {
    "dead": deadletters_sql.dead_letters,
    "discarded": deadletters_sql.discarded,
    # The receiver's final answer was an OCPI error (2xxx/3xxx): never retried, kept so an operator
    # can see what a partner refused and why (its status codes below), until retention.dead_letters.
    "rejected": deadletters_sql.rejected,
}
MAX_REASON = 500


async def list_dead_letters(request: web.Request) -> web.Response:
    """GET /admin/deadletters[?platform_id=&limit=&state=dead|discarded|rejected]."""
    platform_id = _int_param(request.query.get("platform_id"), "platform_id")
    limit = _int_param(request.query.get("limit"), "limit") or 100
    state = request.query.get("state", "dead")
    if state not in _LISTS:
        raise InvalidParameters("'state' must be 'dead', 'discarded' or 'rejected'")
    letters = await _LISTS[state](request.app[STORE], platform_id=platform_id, limit=min(limit, 1000))
    return json_response([message_json(m) for m in letters])


async def _selection(request: web.Request) -> tuple[dict[str, Any], int | None, list[int] | None]:
    # The body of redrive and discard: {"platform_id": N} and/or {"ids": [..]} narrow the choice.
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise InvalidParameters("body must be a JSON object")
    platform_id = _int_param(body.get("platform_id"), "platform_id")
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or not all(_int_param(i, "ids") is not None for i in ids)):
        raise InvalidParameters("'ids' must be a list of message ids")
    return body, platform_id, [int(i) for i in ids] if ids is not None else None


async def redrive(request: web.Request) -> web.Response:
    """POST /admin/deadletters/redrive {} | {"platform_id": N} | {"ids": [..]}: back to the queue."""
    _, platform_id, ids = await _selection(request)
    count = await redrive_letters(request.app, platform_id=platform_id, ids=ids)
    return json_response({"redriven": count})


def discard_reason(value: Any) -> str:
    """The operator's reason for a discard: required, one printable line of at most MAX_REASON characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameters("'reason' is required: say why these dead letters are given up")
    reason = value.strip()
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise InvalidParameters(f"'reason' must be one printable line of at most {MAX_REASON} characters")
    return reason


async def discard(request: web.Request) -> web.Response:
    """POST /admin/deadletters/discard {"reason": .., "platform_id": N | "ids": [..] | "all": true}."""
    body, platform_id, ids = await _selection(request)
    reason = discard_reason(body.get("reason"))
    if not isinstance(body.get("all", False), bool):
        raise InvalidParameters("'all' must be true or false")
    if platform_id is None and ids is None and body.get("all") is not True:
        # Unlike a re-drive, a discard cannot be undone: discarding everything must be said.
        raise InvalidParameters("choose what to discard: 'platform_id', 'ids', or \"all\": true")
    count = await discard_letters(request.app, reason=reason, platform_id=platform_id, ids=ids)
    return json_response({"discarded": count})


async def discard_letters(app: web.Application, *, reason: str, platform_id: int | None, ids: list[int] | None) -> int:
    """Close dead letters out with ``reason`` (all, one platform's, or these ids); how many were discarded."""
    now = iso(app[CLOCK].now())
    count: int = await app[STORE].write(
        lambda tx: deadletters_sql.discard(tx, reason=reason, now=now, platform_id=platform_id, ids=ids)
    )
    if count:
        LOGGER.warning("%d dead letter(s) discarded by the operator: %s", count, reason)
    return count


async def redrive_letters(app: web.Application, *, platform_id: int | None, ids: list[int] | None) -> int:
    """Put dead letters back in the queue (all, one platform's, or these ids); how many were re-driven."""
    now = app[CLOCK].now()
    delivery = app[SETTINGS].delivery
    count: int = await app[STORE].write(
        lambda tx: deadletters_sql.redrive(
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
    app.router.add_post("/admin/deadletters/discard", discard)
