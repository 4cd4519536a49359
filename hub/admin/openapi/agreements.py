"""OpenAPI paths and schemas of the roaming agreements admin API (hub/admin/agreements.py).

Kept apart from hub/admin/openapi/document.py (which merges ``PATHS`` and ``SCHEMAS`` from here) so each file
stays readable.
"""

from __future__ import annotations

from typing import Any

from hub.admin.openapi.schemas import (
    ID_SCHEMA,
    INTEGER,
    NULLABLE_STRING,
    STRING,
    array,
    body,
    count,
    obj,
    operation,
    path_param,
    query_param,
    ref,
    request,
)
from routing.agreements.input import CSV_COLUMNS, ROLES, STATES
from routing.decide import MODULES

AGREEMENT_ID = path_param("id", "Agreement id.", ID_SCHEMA)

_PARTY_IN = obj(
    {
        "country_code": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
        "party_id": {"type": "string", "pattern": "^[A-Za-z0-9]{3}$"},
        "role": {"type": "string", "enum": list(ROLES)},
    },
    *("country_code", "party_id", "role"),
)
# The two parties of an agreement, as the admin gives them.
_PARTIES_IN = array(_PARTY_IN, minItems=2, maxItems=2)
_MODULES: dict[str, Any] = {
    "anyOf": [
        {"const": "*", "description": "Every module."},
        array({"type": "string", "enum": [*MODULES, "*"]}, minItems=1),
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
    "Agreement": obj(
        {
            "id": INTEGER,
            "parties": array(
                obj(
                    {
                        "country_code": STRING,
                        "party_id": STRING,
                        "role": STRING,
                        "platform_id": {"type": ["integer", "null"], "description": "The platform serving it now."},
                    },
                    *("country_code", "party_id", "role", "platform_id"),
                ),
                minItems=2,
                maxItems=2,
            ),
            "modules": {"anyOf": [{"const": "*"}, array(STRING)]},
            "state": {"type": "string", "enum": list(STATES)},
            "valid_from": NULLABLE_STRING,
            "valid_to": NULLABLE_STRING,
            "reference": NULLABLE_STRING,
            "in_force": {"type": "boolean", "description": "Active and inside its validity window now."},
            "created_at": STRING,
            "updated_at": STRING,
        },
        *("id", "parties", "modules", "state", "in_force", "created_at", "updated_at"),
    )
}
# The answer of most agreement operations: the agreement as it is now.
_AGREEMENT: dict[str, Any] = {"200": body(ref("Agreement"), "The agreement.")}

AGREEMENTS: dict[str, Any] = {
    "get": operation(
        "Roaming agreements: all, or those of one platform's parties, one party's, in one state",
        {"200": body(array(ref("Agreement")), "The agreements, oldest first.")},
        parameters=[
            query_param("platform_id", ID_SCHEMA, "Only those of this platform's parties."),
            query_param("party", {"type": "string"}, "Only those of this party, CC*PID."),
            query_param("state", {"type": "string", "enum": list(STATES)}, "Only those in this state."),
        ],
    ),
    "post": operation(
        "Add a roaming agreement between two parties (409 when they have one)",
        {"201": body(ref("Agreement"), "The agreement.")},
        requestBody=request(obj({"parties": _PARTIES_IN, **_FIELDS}, "parties", additionalProperties=False)),
    ),
}

AGREEMENTS_IMPORT: dict[str, Any] = {
    "post": operation(
        "Import agreements from CSV: every row or none; a 400 lists each bad row",
        {
            "201": body(
                obj({"imported": INTEGER, "agreements": array(ref("Agreement"))}, "imported", "agreements"),
                "What was imported.",
            )
        },
        requestBody=request(
            {
                "type": "string",
                "description": f"UTF-8 CSV with a header row: {', '.join(CSV_COLUMNS)} (the last five"
                " optional; modules separated by ';' or spaces, empty or '*' for all).",
            },
            media="text/csv",
        ),
    )
}

AGREEMENT: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "get": operation("One agreement", _AGREEMENT),
    "patch": operation(
        "Change an agreement: the fields given change, the others stay",
        _AGREEMENT,
        requestBody=request(obj({"parties": _PARTIES_IN, **_FIELDS}, additionalProperties=False)),
    ),
    "delete": operation(
        "Delete an agreement: no new traffic under it; what is queued is still delivered",
        {"200": body(count("deleted"), "The deleted agreement's id.")},
    ),
}

AGREEMENT_SUSPEND: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "post": operation(
        "Suspend an agreement: no new traffic under it; what is queued is still delivered",
        _AGREEMENT,
    ),
}

AGREEMENT_RESUME: dict[str, Any] = {
    "parameters": [AGREEMENT_ID],
    "post": operation("Resume an agreement (its validity window still applies)", _AGREEMENT),
}

PATHS: dict[str, dict[str, Any]] = {
    "/admin/agreements": AGREEMENTS,
    "/admin/agreements/import": AGREEMENTS_IMPORT,
    "/admin/agreements/{id}": AGREEMENT,
    "/admin/agreements/{id}/suspend": AGREEMENT_SUSPEND,
    "/admin/agreements/{id}/resume": AGREEMENT_RESUME,
}
