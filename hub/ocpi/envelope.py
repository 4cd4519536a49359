"""The one OCPI envelope renderer for HTTP answers (transport_and_format, Response format).

Every answer on an OCPI path is ``{data?, status_code, status_message, timestamp}`` with
``Content-Type: application/json``, built by routing/protocol/envelope.py; errors are rendered from the
error tree, never by handlers. ``error_response`` is the one place an error becomes an HTTP
answer: its status from ``routing.protocol.errors.http_status`` (OCPI or admin API), and on functional
module paths the routing headers FROM = the hub, TO = the requester (transport_and_format,
Message Routing: errors the hub makes itself are answers of the hub).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hub.keys import CLOCK, ERROR_HEADERS
from routing.clock import iso
from routing.protocol.envelope import DuplicateKey, dumps, envelope, per_thread_decoder, unique_keys
from routing.protocol.errors import InvalidJson, InvalidParameters, OcpiError, http_status

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def is_admin(request: web.Request) -> bool:
    """Whether the request is for the admin API (plain HTTP semantics for errors)."""
    return request.path.startswith("/admin")


def envelope_body(
    request: web.Request, *, data: Any = None, status_code: int = 1000, message: str | None = None
) -> dict[str, Any]:
    """The envelope dict, stamped with the hub's clock."""
    return envelope(data=data, status_code=status_code, message=message, timestamp=iso(request.app[CLOCK].now()))


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
    return web.json_response(body, status=http_status, headers=headers, dumps=dumps)


def error_response(request: web.Request, error: OcpiError) -> web.Response:
    """Render an OcpiError: its HTTP status for this API, its OCPI code, its message, routing headers."""
    body = envelope_body(request, data=error.data, status_code=error.status_code, message=error.message)
    routing = request.get(ERROR_HEADERS)
    headers = routing() if routing is not None else {}
    headers.update(error.headers)
    return web.json_response(body, status=http_status(error, admin=is_admin(request)), headers=headers, dumps=dumps)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """Plain JSON (admin and status answers, which have their own documented shapes)."""
    return web.json_response(data, status=status, dumps=dumps)


_decoder = per_thread_decoder(object_pairs_hook=unique_keys)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; InvalidJson (HTTP 400) when it is not, 2001 when a key comes twice.

    Duplicate keys are refused anywhere in the body (issue 20): the hub checks one parse of the
    body and forwards its bytes, and parsers disagree on which of two values wins (RFC 8259 4:
    names SHOULD be unique), so an owner check could see the caller's party and the receiver
    another.
    """
    raw = await request.read()
    if not raw.strip():
        raise InvalidJson("request body is empty; a JSON object is required")
    try:
        # What json.loads does with bytes, with one decoder per thread (not one built per call).
        parsed = _decoder().decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
        if _SURROGATE_ESCAPE.search(raw) is not None:
            # "\ud800" alone parses, but is no character: it cannot be stored or sent as UTF-8
            # (RFC 8259 section 8.2). Only bodies with such an escape pay for this check.
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        return parsed
    except DuplicateKey as exc:
        raise InvalidParameters(f"duplicate key {exc.key[:40]!r} in one JSON object; send every key once") from exc
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise InvalidJson(f"request body is not valid JSON: {str(exc)[:120]}") from exc
