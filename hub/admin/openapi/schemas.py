"""Building blocks of the admin API's OpenAPI document: helpers and the component schemas.

hub/admin/openapi/document.py holds the paths (one dict each); the shapes they share live here.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
# A non-blank string as the handlers judge it: Python's str.strip also removes \x1c-\x1f and \x85.
NON_BLANK: dict[str, Any] = {"type": "string", "pattern": r"[^\s\u001c-\u001f\u0085]"}
NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
NULLABLE_INT: dict[str, Any] = {"type": ["integer", "null"]}
ID_PARAM: dict[str, Any] = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Platform id.",
    "schema": {"type": "integer", "minimum": 0},
}


def ref(name: str) -> dict[str, Any]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A JSON response or request body."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


ERRORS: dict[str, Any] = {"default": body(ref("Envelope"), "An error as an OCPI envelope (never a traceback).")}
# The partner (not the admin's request) failed: its OCPI 3xxx code in an envelope, HTTP 502.
PARTNER_FAILED: dict[str, Any] = {"502": body(ref("Envelope"), "The partner failed the exchange (OCPI 3xxx).")}


def operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An operation with the shared error answer."""
    return {"summary": summary, "responses": {**responses, **ERRORS}, **extra}


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A traffic query value, where an empty value means 'not given' (as an HTML form sends it)."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


# ---- components ---------------------------------------------------------------------------------

SCHEMAS: dict[str, Any] = {
    "Envelope": {
        "type": "object",
        "required": ["status_code", "timestamp"],
        "properties": {
            "status_code": {"type": "integer"},
            "status_message": {"type": "string"},
            "timestamp": {"type": "string"},
            "data": {},
        },
    },
    "Platform": {
        "type": "object",
        "required": ["id", "name", "status", "initiated_by", "registered", "roles", "endpoints", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "status": {"type": "string", "enum": ["PLANNED", "CONNECTED", "OFFLINE", "SUSPENDED", "UNREGISTERED"]},
            "initiated_by": {"type": "string"},
            "versions_url": NULLABLE_STRING,
            "version": NULLABLE_STRING,
            "registered": {"type": "boolean"},
            "roles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["country_code", "party_id", "role"],
                    "properties": {
                        "country_code": {"type": "string"},
                        "party_id": {"type": "string"},
                        "role": {"type": "string"},
                        "business_details": {"type": "object"},
                    },
                },
            },
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["identifier", "role", "url"],
                    "properties": {
                        "identifier": {"type": "string"},
                        "role": {"type": "string"},
                        "url": {"type": "string"},
                    },
                },
            },
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "last_seen_in": NULLABLE_STRING,
            "last_seen_out": NULLABLE_STRING,
            "interop": {"$ref": "#/components/schemas/Interop"},
        },
    },
    "Interop": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "send_base64": {"type": "boolean", "description": "Send our token Base64-encoded (2.2.1) or raw."},
            "pull_interval": {
                "anyOf": [{"type": "number", "minimum": 60, "maximum": 604800}, {"type": "null"}],
                "description": "Seconds between pulls of a pull-only CPO; null: never.",
            },
        },
    },
    "Invitation": {
        "type": "object",
        "required": ["token_a", "versions_url", "platform_id", "expires_at"],
        "properties": {
            "token_a": {"type": "string", "description": "Shown once; give it to the partner."},
            "versions_url": {"type": "string"},
            "platform_id": {"type": "integer"},
            "expires_at": {"type": "string"},
        },
    },
    "DeadLetter": {
        "type": "object",
        "required": ["id", "platform_id", "module", "method", "url", "attempts", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "platform_id": {"type": "integer"},
            "module": {"type": "string"},
            "object_key": {"type": "string"},
            "method": {"type": "string"},
            "url": {"type": "string"},
            "request_id": NULLABLE_STRING,
            "correlation_id": NULLABLE_STRING,
            "attempts": {"type": "integer"},
            "created_at": {"type": "string"},
            "last_error": NULLABLE_STRING,
            "last_http_status": NULLABLE_INT,
            "state": {"type": "string", "enum": ["dead", "discarded"]},
            "discard_reason": NULLABLE_STRING,
        },
    },
    "TrafficRecord": {
        "type": "object",
        "required": ["id", "ts", "direction", "method", "path", "latency_ms"],
        "properties": {
            "id": {"type": "integer"},
            "ts": {"type": "string"},
            "direction": {"type": "string", "enum": ["in", "out"]},
            "module": NULLABLE_STRING,
            "method": {"type": "string"},
            "path": {"type": "string", "description": "Token uids redacted; never a body."},
            "platform_id": NULLABLE_INT,
            "from_party": NULLABLE_STRING,
            "to_party": NULLABLE_STRING,
            "http_status": NULLABLE_INT,
            "ocpi_status": NULLABLE_INT,
            "attempt": NULLABLE_INT,
            "request_id": NULLABLE_STRING,
            "correlation_id": NULLABLE_STRING,
            "latency_ms": {"type": "number"},
            "error": NULLABLE_STRING,
        },
    },
    "Status": {
        "type": "object",
        "required": ["status", "reasons", "notices", "version", "uptime_seconds", "platforms"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "notices": {"type": "array", "items": {"type": "string"}},
            "version": {"type": "string"},
            "build": {
                "type": "object",
                "description": "The schema version (newest migration) and git commit of the running code.",
                "properties": {"schema": {"type": "string"}, "commit": {"type": "string"}},
            },
            "uptime_seconds": {"type": "number"},
            "totals": {"type": "object"},
            "agreements": {
                "type": "object",
                "description": "Roaming agreements: the mode (open, required) and how many are stored and in force.",
                "properties": {
                    "mode": {"type": "string", "enum": ["open", "required"]},
                    "total": {"type": "integer"},
                    "in_force": {"type": "integer"},
                },
            },
            "platforms": {"type": "array", "items": {"type": "object"}},
        },
    },
}
