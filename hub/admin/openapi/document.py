"""OpenAPI 3.1 document of the admin API (and /status, /health, /metrics), served at /admin/openapi.json.

One dict per path below, gathered in ``PATHS``: a new admin endpoint adds (or extends) one
entry. tests/test_openapi.py runs schemathesis against the running hub with this document, so
a shape that drifts from the handlers fails the suite.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import __version__
from hub.admin.openapi import agreements as openapi_agreements
from hub.admin.openapi import operators as operator_paths
from hub.admin.openapi.schemas import (
    BOOLEAN,
    ERRORS,
    ID_PARAM,
    ID_SCHEMA,
    INTEGER,
    NON_BLANK,
    NULLABLE_STRING,
    PARTNER_FAILED,
    SCHEMAS,
    STRING,
    array,
    body,
    count,
    obj,
    operation,
    or_empty,
    query_param,
    ref,
    request,
)
from hub.keys import SETTINGS
from hub.ocpi.envelope import json_response

# ---- paths: one dict each ---------------------------------------------------------------------------

INVITATIONS: dict[str, Any] = {
    "post": operation(
        "Create an invitation: token A and versions URL for a new partner",
        {"201": body(ref("Invitation"), "The invitation (token A is not stored in the clear).")},
        requestBody=request(obj({"name": NON_BLANK}, "name")),
    ),
    "get": operation(
        "Open invitations: token A not used yet (expired ones flagged)",
        {
            "200": body(
                array(
                    obj(
                        {
                            "platform_id": INTEGER,
                            "name": STRING,
                            "created_at": STRING,
                            "expires_at": NULLABLE_STRING,
                            "expired": BOOLEAN,
                        },
                        *("platform_id", "name", "created_at", "expires_at", "expired"),
                    )
                ),
                "The open invitations.",
            )
        },
    ),
}

INVITATION: dict[str, Any] = {
    "parameters": [ID_PARAM],
    "delete": operation(
        "Revoke an invitation: its token A stops working at once",
        {"200": body(count("revoked"), "The revoked invitation's platform id.")},
    ),
}

CONNECTIONS: dict[str, Any] = {
    "post": operation(
        "Hub-initiated handshake with a partner that gave us its token A",
        {"201": body(ref("Platform"), "The registered platform."), **PARTNER_FAILED},
        requestBody=request(
            obj(
                {"versions_url": NON_BLANK, "token_a": NON_BLANK, "name": {"anyOf": [NON_BLANK, {"type": "null"}]}},
                "versions_url",
                "token_a",
            )
        ),
    )
}

# The answer of most platform operations: the platform as it is now.
_PLATFORM: dict[str, Any] = {"200": body(ref("Platform"), "The platform.")}

PLATFORMS: dict[str, Any] = {
    "get": operation(
        "The platforms with roles, status, version and endpoints, in id order, up to 1000 a page",
        {"200": body(array(ref("Platform")), 'The platforms; a Link header (rel="next") names the next page.')},
        parameters=[
            query_param("after", ID_SCHEMA, "Only platforms with a larger id (the last id of the page before)."),
            query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "At most this many (1000)."),
        ],
    )
}

PLATFORM: dict[str, Any] = {
    "parameters": [ID_PARAM],
    "get": operation("One platform", _PLATFORM),
    "patch": operation(
        "Change the platform's interop settings (token encoding, pull interval of a pull-only CPO)",
        _PLATFORM,
        requestBody=request(obj({"interop": ref("Interop")}, "interop")),
    ),
    "delete": operation(
        "Unregister: credentials DELETE to the peer, every token revoked, its undelivered messages closed out",
        {
            "200": body(
                {"allOf": [ref("Platform"), obj({"peer_answer": STRING})]},
                "The platform as it is now, with what the peer answered.",
            )
        },
    ),
}

PLATFORM_CREDENTIALS: dict[str, Any] = {
    "parameters": [ID_PARAM],
    "put": operation("Hub-initiated credentials rotation", {**_PLATFORM, **PARTNER_FAILED}),
}

PLATFORM_SUSPEND: dict[str, Any] = {
    "parameters": [ID_PARAM],
    "post": operation("Suspend: SUSPENDED, HubClientInfo pushed", _PLATFORM),
}

PLATFORM_RESUME: dict[str, Any] = {
    "parameters": [ID_PARAM],
    "post": operation("Resume: CONNECTED again", _PLATFORM),
}

DEADLETTERS: dict[str, Any] = {
    "get": operation(
        "Dead letters (oldest first); closed-out messages (state=discarded) or those a receiver refused"
        " with an OCPI error (state=rejected), newest first",
        {"200": body(array(ref("DeadLetter")), "The dead letters (no bodies, no tokens).")},
        parameters=[
            query_param("platform_id", ID_SCHEMA, "Only this receiver's."),
            query_param("limit", {"type": "integer", "minimum": 0}, "At most this many (capped at 1000)."),
            query_param(
                "state", {"type": "string", "enum": ["dead", "discarded", "rejected"]}, "Which list (default dead)."
            ),
        ],
    )
}

# Which dead letters a re-drive or a discard is about (null counts as absent).
_LETTER_SELECTION: dict[str, Any] = {
    "platform_id": {"type": ["integer", "null"], "minimum": 0},
    "ids": {"type": ["array", "null"], "items": ID_SCHEMA},
}


def _letters_operation(summary: str, answer: str, text: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """A POST on dead letters whose answer is {count: N}."""
    return {"post": operation(summary, {"200": body(count(answer), text)}, requestBody=request(schema, required))}


DEADLETTERS_DISCARD = _letters_operation(
    "Discard dead letters with a reason: kept for the record, never sent, no longer a /status fault",
    "discarded",
    "How many were discarded.",
    # one of platform_id, ids or all=true is required
    obj(
        {"reason": {"type": "string", "minLength": 1, "maxLength": 500}, **_LETTER_SELECTION, "all": BOOLEAN}, "reason"
    ),
    required=True,
)

DEADLETTERS_REDRIVE = _letters_operation(
    "Re-drive dead letters into the queue: all, one platform's, or these ids",
    "redriven",
    "How many went back to the queue.",
    obj(dict(_LETTER_SELECTION)),
    required=False,
)

TRAFFIC: dict[str, Any] = {
    "get": operation(
        "Traffic log: the newest matching records, oldest first",
        {"200": body(array(ref("TrafficRecord")), "Matching records.")},
        parameters=[
            query_param("correlation_id", {"type": "string"}, "X-Correlation-ID: every leg of a message."),
            query_param("request_id", {"type": "string"}, "X-Request-ID."),
            query_param("platform_id", or_empty({"type": "integer", "minimum": 1, "maximum": 2**62}), "Platform id."),
            query_param("module", {"type": "string"}, "OCPI module, e.g. sessions."),
            query_param("http_status", or_empty({"type": "integer", "minimum": 1, "maximum": 999}), "HTTP status."),
            query_param("ocpi_status", or_empty({"type": "integer", "minimum": 1, "maximum": 9999}), "OCPI code."),
            # Parsed liberally (RFC 3339, 'Z' optional, naive means UTC), so no 'format' is claimed.
            query_param("since", {"type": "string"}, "At or after this date-time, e.g. 2026-11-25T10:00:00Z."),
            query_param("until", {"type": "string"}, "At or before this date-time."),
            query_param(
                "kind",
                {"type": "string", "enum": ["partner", "admin", "other", "all", ""]},
                "partner (rows of a known platform), admin (admin API calls), other (unknown callers, probes)"
                " or all (the default here; the console and CLI default to partner).",
            ),
            query_param("direction", {"type": "string", "enum": ["in", "out", ""]}, "In to the hub or out."),
            query_param(
                "failed",
                {"type": "string", "enum": ["true", "false", "1", "0", "on", ""]},
                "Only failures: no answer or HTTP 400 and above.",
            ),
            query_param("before", or_empty({"type": "integer", "minimum": 1, "maximum": 2**62}), "Older than row id."),
            query_param("after", or_empty({"type": "integer", "minimum": 1, "maximum": 2**62}), "Newer than row id."),
            query_param("limit", or_empty({"type": "integer", "minimum": 1, "maximum": 10000}), "At most (100)."),
        ],
    )
}

STATUS: dict[str, Any] = {
    "get": operation(
        "Hub status: ok, degraded (with reasons) or down, and every platform's figures",
        {"200": body(ref("Status"), "ok or degraded."), "503": body(ref("Status"), "down: the store is unreadable.")},
    )
}

HEALTH: dict[str, Any] = {
    "get": {
        "summary": "Liveness: the process answers and the store is readable",
        "security": [],
        "responses": {
            "200": body(obj({"status": {"const": "ok"}}, "status"), "ok"),
            **ERRORS,
        },
    }
}

METRICS: dict[str, Any] = {
    "get": operation(
        "Prometheus metrics (text exposition format)",
        {"200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
}

OPENAPI: dict[str, Any] = {
    "get": operation("This document", {"200": body({"type": "object"}, "The OpenAPI 3.1 document.")}),
}

PATHS: dict[str, dict[str, Any]] = {
    "/admin/invitations": INVITATIONS,
    "/admin/connections": CONNECTIONS,
    "/admin/platforms": PLATFORMS,
    "/admin/invitations/{id}": INVITATION,
    "/admin/platforms/{id}": PLATFORM,
    "/admin/platforms/{id}/credentials": PLATFORM_CREDENTIALS,
    "/admin/platforms/{id}/suspend": PLATFORM_SUSPEND,
    "/admin/platforms/{id}/resume": PLATFORM_RESUME,
    "/admin/deadletters": DEADLETTERS,
    "/admin/deadletters/redrive": DEADLETTERS_REDRIVE,
    "/admin/deadletters/discard": DEADLETTERS_DISCARD,
    "/admin/traffic": TRAFFIC,
    **openapi_agreements.PATHS,
    **operator_paths.PATHS,
    "/admin/openapi.json": OPENAPI,
    "/status": STATUS,
    "/health": HEALTH,
    "/metrics": METRICS,
}


def document(server_url: str) -> dict[str, Any]:
    """The whole OpenAPI document, with the hub's public URL as its server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OCPI hub admin API",
            "version": __version__,
            "description": "Operate the hub: invitations, platforms, agreements, dead letters, traffic, status, "
            "operators. Every call needs `Authorization: Bearer <admin token>` or an operator's "
            "`Basic <name:password>` (a read-only operator may only GET) unless marked otherwise; "
            "errors are OCPI envelopes.",
        },
        "servers": [{"url": server_url}],
        "security": [{"adminToken": []}, {"operator": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "operator": {"type": "http", "scheme": "basic"},
            },
            "schemas": {**SCHEMAS, **openapi_agreements.SCHEMAS},
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /admin/openapi.json (admin token, like every /admin path)."""
    return json_response(document(request.app[SETTINGS].public_url))


def setup(app: web.Application) -> None:
    """Register /admin/openapi.json."""
    app.router.add_get("/admin/openapi.json", openapi_json)
