"""OpenAPI entries of the operator accounts and the audit log (hub/admin/accounts.py).

hub/admin/openapi/document.py gathers them.
"""

from __future__ import annotations

from typing import Any

from hub.admin.openapi.schemas import (
    INTEGER,
    NULLABLE_STRING,
    STRING,
    array,
    body,
    obj,
    operation,
    or_empty,
    path_param,
    query_param,
    request,
)

_ROLE: dict[str, Any] = {"type": "string", "enum": ["admin", "read-only"]}
_PASSWORD: dict[str, Any] = {"type": "string", "minLength": 12, "maxLength": 1024}

OPERATOR = obj(
    {"name": STRING, "role": _ROLE, "created_at": STRING, "created_by": STRING, "disabled_at": NULLABLE_STRING},
    *("name", "role", "created_at", "created_by", "disabled_at"),
)

AUDIT_ENTRY = obj(
    {
        "id": INTEGER,
        "ts": STRING,
        "actor": STRING,
        "role": STRING,
        "via": {"type": "string", "enum": ["console", "admin-api"]},
        "action": STRING,
        "target": NULLABLE_STRING,
        "outcome": STRING,
        "address": NULLABLE_STRING,
    },
    *("id", "ts", "actor", "role", "via", "action", "outcome"),
)

OPERATORS: dict[str, Any] = {
    "get": operation(
        "Operator accounts (never their password hashes)",
        {"200": body(array(OPERATOR), "Every operator, in the order they were added.")},
    ),
    "post": operation(
        "Add an operator (admin role only): a named login for the console and the admin API",
        {"201": body(OPERATOR, "The new operator.")},
        requestBody=request(
            obj(
                {
                    "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"},
                    "role": _ROLE,
                    "password": _PASSWORD,
                },
                *("name", "role", "password"),
            )
        ),
    ),
}

NAME_PARAM = path_param("name", "Operator name.", STRING)

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
        requestBody=request(obj({"password": _PASSWORD}, "password")),
    ),
}

AUDIT: dict[str, Any] = {
    "get": operation(
        "Audit log: every change through the console or the admin API, newest first",
        {"200": body(array(AUDIT_ENTRY), "The entries.")},
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
