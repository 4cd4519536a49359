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
STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
# An id in a path: a platform's, an agreement's (hub/admin/openapi/agreements.py).
ID_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 0}


def ref(name: str) -> dict[str, Any]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], *required: str, **extra: Any) -> dict[str, Any]:
    """An object schema: its properties, the names it requires, and any further keywords."""
    return {"type": "object", **({"required": list(required)} if required else {}), **extra, "properties": properties}


def array(items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An array schema of ``items``, with any further keywords (minItems ...)."""
    return {"type": "array", **extra, "items": items}


def count(name: str) -> dict[str, Any]:
    """An answer ``{name: N}``: how many were changed, or the id of the one that was."""
    return obj({name: INTEGER}, name)


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A JSON response or request body."""
    return {"description": description, "content": {JSON: {"schema": schema}}}


def request(schema: dict[str, Any], required: bool = True, media: str = JSON) -> dict[str, Any]:
    """A request body of ``media`` (JSON unless told) with this schema."""
    return {"required": required, "content": {media: {"schema": schema}}}


def path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A required path parameter."""
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


ID_PARAM = path_param("id", "Platform id.", ID_SCHEMA)


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
    "Envelope": obj(
        {"status_code": INTEGER, "status_message": STRING, "timestamp": STRING, "data": {}},
        "status_code",
        "timestamp",
    ),
    "Platform": obj(
        {
            "id": INTEGER,
            "name": STRING,
            "status": {"type": "string", "enum": ["PLANNED", "CONNECTED", "OFFLINE", "SUSPENDED", "UNREGISTERED"]},
            "initiated_by": STRING,
            "versions_url": NULLABLE_STRING,
            "version": NULLABLE_STRING,
            "registered": BOOLEAN,
            "roles": array(
                obj(
                    {
                        "country_code": STRING,
                        "party_id": STRING,
                        "role": STRING,
                        "business_details": {"type": "object"},
                    },
                    "country_code",
                    "party_id",
                    "role",
                )
            ),
            "endpoints": array(obj({"identifier": STRING, "role": STRING, "url": STRING}, "identifier", "role", "url")),
            "created_at": STRING,
            "updated_at": STRING,
            "last_seen_in": NULLABLE_STRING,
            "last_seen_out": NULLABLE_STRING,
            "interop": ref("Interop"),
        },
        *("id", "name", "status", "initiated_by", "registered", "roles", "endpoints", "created_at"),
    ),
    "Interop": obj(
        {
            "send_base64": {"type": "boolean", "description": "Send our token Base64-encoded (2.2.1) or raw."},
            "pull_interval": {
                "anyOf": [{"type": "number", "minimum": 60, "maximum": 604800}, {"type": "null"}],
                "description": "Seconds between pulls of a pull-only CPO; null: never.",
            },
        },
        minProperties=1,
        additionalProperties=False,
    ),
    "Invitation": obj(
        {
            "token_a": {"type": "string", "description": "Shown once; give it to the partner."},
            "versions_url": STRING,
            "platform_id": INTEGER,
            "expires_at": STRING,
        },
        *("token_a", "versions_url", "platform_id", "expires_at"),
    ),
    "DeadLetter": obj(
        {
            "id": INTEGER,
            "platform_id": INTEGER,
            "module": STRING,
            "object_key": STRING,
            "method": STRING,
            "url": STRING,
            "request_id": NULLABLE_STRING,
            "correlation_id": NULLABLE_STRING,
            "attempts": INTEGER,
            "created_at": STRING,
            "last_error": NULLABLE_STRING,
            "last_http_status": NULLABLE_INT,
            "last_ocpi_status": NULLABLE_INT,
            "state": {"type": "string", "enum": ["dead", "discarded", "rejected"]},
            "discard_reason": NULLABLE_STRING,
        },
        *("id", "platform_id", "module", "method", "url", "attempts", "created_at"),
    ),
    "TrafficRecord": obj(
        {
            "id": INTEGER,
            "ts": STRING,
            "direction": {"type": "string", "enum": ["in", "out"]},
            "module": NULLABLE_STRING,
            "method": STRING,
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
        *("id", "ts", "direction", "method", "path", "latency_ms"),
    ),
    "Status": obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "reasons": array(STRING),
            "notices": array(STRING),
            "version": STRING,
            "build": obj(
                {"schema": STRING, "commit": STRING},
                description="The schema version (newest migration) and git commit of the running code.",
            ),
            "uptime_seconds": {"type": "number"},
            "totals": {"type": "object"},
            "agreements": obj(
                {"mode": {"type": "string", "enum": ["open", "required"]}, "total": INTEGER, "in_force": INTEGER},
                description="Roaming agreements: the mode (open, required) and how many are stored and in force.",
            ),
            "platforms": array({"type": "object"}),
        },
        *("status", "reasons", "notices", "version", "uptime_seconds", "platforms"),
    ),
}
