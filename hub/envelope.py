"""The one OCPI envelope renderer (transport_and_format, Response format).

Every answer on an OCPI path is ``{data?, status_code, status_message?, timestamp}`` with
``Content-Type: application/json``; errors are rendered from the error tree, never by handlers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hub.keys import CLOCK
from routing.clock import iso
from routing.errors import InvalidJson, OcpiError


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def envelope_body(
    request: web.Request, *, data: Any = None, status_code: int = 1000, message: str | None = None
) -> dict[str, Any]:
    """The envelope dict, stamped with the hub's clock."""
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    if message:
        body["status_message"] = message
    body["timestamp"] = iso(request.app[CLOCK].now())
    return body


def ocpi_response(
    request: web.Request,
    data: Any = None,
    *,
    status_code: int = 1000,
    message: str | None = None,
    http_status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Render a success (or any given code) as an OCPI envelope."""
    body = envelope_body(request, data=data, status_code=status_code, message=message)
    return web.json_response(body, status=http_status, headers=headers, dumps=_dumps)


def error_response(request: web.Request, error: OcpiError) -> web.Response:
    """Render an OcpiError: its HTTP status, its OCPI code, its message."""
    body = envelope_body(request, data=error.data, status_code=error.status_code, message=error.message)
    return web.json_response(body, status=error.status, headers=error.headers or None, dumps=_dumps)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Plain JSON (admin and status answers, which have their own documented shapes)."""
    return web.json_response(data, status=status, dumps=_dumps)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; InvalidJson (HTTP 400) when it is not."""
    raw = await request.read()
    if not raw.strip():
        raise InvalidJson("request body is empty; a JSON object is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidJson(f"request body is not valid JSON: {str(exc)[:120]}") from exc
