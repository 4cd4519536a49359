"""OpenAPI entries of the operator accounts and the audit log (hub/admin/accounts.py).

hub/admin/openapi/document.py gathers them.
"""

from __future__ import annotations

from typing import Any

from hub.admin.openapi.schemas import JSON, NULLABLE_STRING, body, operation, or_empty, query_param

OPERATOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "role", "created_at", "created_by", "disabled_at"],
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["admin", "read-only"]},
        "created_at": {"type": "string"},
        "created_by": {"type": "string"},
        "disabled_at": NULLABLE_STRING,
    },
}

AUDIT_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "ts", "actor", "role", "via", "action", "outcome"],
    "properties": {
        "id": {"type": "integer"},
        "ts": {"type": "string"},
        "actor": {"type": "string"},
        "role": {"type": "string"},
        "via": {"type": "string", "enum": ["console", "admin-api"]},
        "action": {"type": "string"},
        "target": NULLABLE_STRING,
        "outcome": {"type": "string"},
        "address": NULLABLE_STRING,
    },
}

OPERATORS: dict[str, Any] = {
    "get": operation(
        "Operator accounts (never their password hashes)",
        {"200": body({"type": "array", "items": OPERATOR}, "Every operator, in the order they were added.")},
    ),
    "post": operation(
        "Add an operator (admin role only): a named login for the console and the admin API",
        {"201": body(OPERATOR, "The new operator.")},
        requestBody={
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["name", "role", "password"],
                        "properties": {
                            "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
                            "role": {"type": "string", "enum": ["admin", "read-only"]},
                            "password": {"type": "string", "minLength": 12, "maxLength": 1024},
                        },
                    }
                }
            },
        },
    ),
}

NAME_PARAM: dict[str, Any] = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "Operator name.",
    "schema": {"type": "string"},
}

OPERATOR_DISABLE: dict[str, Any] = {
    "parameters": [NAME_PARAM],
    "post": operation(
        "Disable an operator: its logins and console sessions stop working at once",
        {"200": body(OPERATOR, "The operator, now disabled.")},
    ),
}

OPERATOR_ENABLE: dict[str, Any] = {
    "parameters": [NAME_PARAM],
    "post": operation("Enable a disabled operator again", {"200": body(OPERATOR, "The operator, enabled.")}),
}

OPERATOR_PASSWORD: dict[str, Any] = {
    "parameters": [NAME_PARAM],
    "post": operation(
        "Give an operator a new password: its console sessions end",
        {"200": body(OPERATOR, "The operator.")},
        requestBody={
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["password"],
                        "properties": {"password": {"type": "string", "minLength": 12, "maxLength": 1024}},
                    }
                }
            },
        },
    ),
}

AUDIT: dict[str, Any] = {
    "get": operation(
        "Audit log: every change through the console or the admin API, newest first",
        {"200": body({"type": "array", "items": AUDIT_ENTRY}, "The entries.")},
        parameters=[
            query_param("actor", {"type": "string"}, "Only this actor (an operator name, or 'admin-token')."),
            query_param("before", or_empty({"type": "integer", "minimum": 1, "maximum": 2**62}), "Older than id."),
            query_param("limit", or_empty({"type": "integer", "minimum": 1, "maximum": 1000}), "At most (100)."),
        ],
    )
}

PATHS: dict[str, Any] = {
    "/admin/operators": OPERATORS,
    "/admin/operators/{name}/disable": OPERATOR_DISABLE,
    "/admin/operators/{name}/enable": OPERATOR_ENABLE,
    "/admin/operators/{name}/password": OPERATOR_PASSWORD,
    "/admin/audit": AUDIT,
}
