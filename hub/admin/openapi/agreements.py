"""OpenAPI paths and schemas of the roaming agreements admin API (hub/admin/agreements.py).

Kept apart from hub/admin/openapi/document.py (which merges ``PATHS`` and ``SCHEMAS`` from here) so each file
stays readable.
"""

from __future__ import annotations

from typing import Any

from hub.admin.openapi.schemas import JSON, NULLABLE_STRING, body, operation, query_param, ref
from routing.agreements.input import CSV_COLUMNS, ROLES, STATES
from routing.decide import MODULES

AGREEMENT_ID: dict[str, Any] = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Agreement id.",
    "schema": {"type": "integer", "minimum": 0},
}

_PARTY_IN: dict[str, Any] = {
    "type": "object",
    "required": ["country_code", "party_id", "role"],
    "properties": {
        "country_code": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "party_id": {"type": "string", "pattern": "^[A-Za-z0-9]{3}$"},
        "role": {"type": "string", "enum": list(ROLES)},
    },
}
_MODULES: dict[str, Any] = {
    "anyOf": [
        {"const": "*", "description": "Every module."},
        {"type": "array", "minItems": 1, "items": {"type": "string", "enum": [*MODULES, "*"]}},
        {"type": "null"},
    ]
}
_FIELDS: dict[str, Any] = {
    "modules": _MODULES,
    "state": {"type": ["string", "null"], "enum": [*STATES, None]},
    "valid_from": {**NULLABLE_STRING, "description": "RFC 3339 date-time; null: since ever."},
    "valid_to": {**NULLABLE_STRING, "description": "RFC 3339 date-time, exclusive; null: no end."},
    "reference": {"type": ["string", "null"], "maxLength": 200, "description": "The operator's contract reference."},
}

SCHEMAS: dict[str, Any] = {
    "Agreement": {
        "type": "object",
        "required": ["id", "parties", "modules", "state", "in_force", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "parties": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "required": ["country_code", "party_id", "role", "platform_id"],
                    "properties": {
                        "country_code": {"type": "string"},
                        "party_id": {"type": "string"},
                        "role": {"type": "string"},
                        "platform_id": {"type": ["integer", "null"], "description": "The platform serving it now."},
                    },
                },
            },
            "modules": {"anyOf": [{"const": "*"}, {"type": "array", "items": {"type": "string"}}]},
            "state": {"type": "string", "enum": list(STATES)},
            "valid_from": NULLABLE_STRING,
            "valid_to": NULLABLE_STRING,
            "reference": NULLABLE_STRING,
            "in_force": {"type": "boolean", "description": "Active and inside its validity window now."},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
        },
    }
}

AGREEMENTS: dict[str, Any] = {
    "get": operation(
        "Roaming agreements: all, or those of one platform's parties, one party's, in one state",
        {"200": body({"type": "array", "items": ref("Agreement")}, "The agreements, oldest first.")},
        parameters=[
            query_param("platform_id", {"type": "integer", "minimum": 0}, "Only those of this platform's parties."),
            query_param("party", {"type": "string"}, "Only those of this party, CC*PID."),
            query_param("state", {"type": "string", "enum": list(STATES)}, "Only those in this state."),
        ],
    ),
    "post": operation(
        "Add a roaming agreement between two parties (409 when they have one)",
        {"201": body(ref("Agreement"), "The agreement.")},
        requestBody={
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["parties"],
                        "additionalProperties": False,
                        "properties": {
                            "parties": {"type": "array", "minItems": 2, "maxItems": 2, "items": _PARTY_IN},
                            **_FIELDS,
                        },
                    }
                }
            },
        },
    ),
}

AGREEMENTS_IMPORT: dict[str, Any] = {
    "post": operation(
        "Import agreements from CSV: every row or none; a 400 lists each bad row",
        {
            "201": body(
                {
                    "type": "object",
                    "required": ["imported", "agreements"],
                    "properties": {
                        "imported": {"type": "integer"},
                        "agreements": {"type": "array", "items": ref("Agreement")},
                    },
                },
                "What was imported.",
            )
        },
        requestBody={
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": f"UTF-8 CSV with a header row: {', '.join(CSV_COLUMNS)} (the last five"
                        " optional; modules separated by ';' or spaces, empty or '*' for all).",
                    }
                }
            },
        },
    )
}

AGREEMENT: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "get": operation("One agreement", {"200": body(ref("Agreement"), "The agreement.")}),
    "patch": operation(
        "Change an agreement: the fields given change, the others stay",
        {"200": body(ref("Agreement"), "The agreement.")},
        requestBody={
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "parties": {"type": "array", "minItems": 2, "maxItems": 2, "items": _PARTY_IN},
                            **_FIELDS,
                        },
                    }
                }
            },
        },
    ),
    "delete": operation(
        "Delete an agreement: no new traffic under it; what is queued is still delivered",
        {
            "200": body(
                {"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "integer"}}},
                "The deleted agreement's id.",
            )
        },
    ),
}

AGREEMENT_SUSPEND: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "post": operation(
        "Suspend an agreement: no new traffic under it; what is queued is still delivered",
        {"200": body(ref("Agreement"), "The agreement.")},
    ),
}

AGREEMENT_RESUME: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "post": operation(
        "Resume an agreement (its validity window still applies)", {"200": body(ref("Agreement"), "The agreement.")}
    ),
}

PATHS: dict[str, dict[str, Any]] = {
    "/admin/agreements": AGREEMENTS,
    "/admin/agreements/import": AGREEMENTS_IMPORT,
    "/admin/agreements/{id}": AGREEMENT,
    "/admin/agreements/{id}/suspend": AGREEMENT_SUSPEND,
    "/admin/agreements/{id}/resume": AGREEMENT_RESUME,
}
