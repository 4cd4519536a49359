"""Admin API for operator accounts and the audit log (who may log in, and who changed what).

The rules (roles, password hashing, authentication, the audit entries) are in hub/admin/accounts.py;
these are the routes: list, add, disable, enable, new password, and the audit log's reader.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hub.admin.accounts import (
    ACTOR,
    ADMIN_TOKEN_ACTOR,
    MAX_PASSWORD,
    MIN_PASSWORD,
    NAME,
    ROLES,
    Actor,
    audit_json,
    hash_password,
    operator_json,
)
from hub.admin.params import positive_int
from hub.keys import CLOCK, STORE
from hub.ocpi.envelope import json_response, read_json
from routing.clock import iso
from routing.protocol.errors import InvalidParameters, NotFound
from storage import operators as operator_sql
from storage.operators import OperatorRow


def check_new(name: Any, role: Any, password: Any) -> tuple[str, str, str]:
    """Validate a new operator's fields (InvalidParameters names the first bad one)."""
    if not isinstance(name, str) or not NAME.match(name) or name == ADMIN_TOKEN_ACTOR:
        raise InvalidParameters("'name' must be 1-64 letters, digits or . _ @ - (and not 'admin-token')")
    if role not in ROLES:
        raise InvalidParameters(f"'role' must be one of {', '.join(ROLES)}")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParameters(f"'password' must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return name, str(role), password


async def add_operator(app: web.Application, actor: Actor, name: str, role: str, password: str) -> OperatorRow:
    """Create an operator (its password hashed off the event loop)."""
    hashed = await asyncio.to_thread(hash_password, password)
    now = iso(app[CLOCK].now())
    added = await app[STORE].write(
        lambda tx: operator_sql.add_operator(
            tx, name=name, role=role, password_hash=hashed, now=now, created_by=actor.name
        )
    )
    if not added:
        raise InvalidParameters(f"an operator named {name!r} exists already")
    row = await operator_sql.get_operator(app[STORE], name)
    assert row is not None
    return row


async def disable_operator(app: web.Application, name: str) -> OperatorRow:
    """Disable an operator: its logins and console sessions stop working at once."""
    now = iso(app[CLOCK].now())
    if not await app[STORE].write(lambda tx: operator_sql.disable_operator(tx, name, now=now)):
        raise NotFound(f"no enabled operator {name[:64]!r}")
    row = await operator_sql.get_operator(app[STORE], name)
    assert row is not None
    return row


async def enable_operator(app: web.Application, name: str) -> OperatorRow:
    """Enable a disabled operator again (it logs in with the password it had)."""
    if not await app[STORE].write(lambda tx: operator_sql.enable_operator(tx, name)):
        raise NotFound(f"no disabled operator {name[:64]!r}")
    row = await operator_sql.get_operator(app[STORE], name)
    assert row is not None
    return row


async def set_password(app: web.Application, name: str, password: str) -> OperatorRow:
    """Give an operator a new password: its console sessions end (their fingerprint no longer matches)."""
    hashed = await asyncio.to_thread(hash_password, password)
    if not await app[STORE].write(lambda tx: operator_sql.set_password(tx, name, password_hash=hashed)):
        raise NotFound(f"no operator {name[:64]!r}")
    row = await operator_sql.get_operator(app[STORE], name)
    assert row is not None
    return row


async def list_operators(request: web.Request) -> web.Response:
    """GET /admin/operators: every operator (name, role, created, disabled), never a hash."""
    return json_response([operator_json(r) for r in await operator_sql.list_operators(request.app[STORE])])


async def create_operator(request: web.Request) -> web.Response:
    """POST /admin/operators {"name", "role", "password"}: 201 with the operator."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidParameters('body must be {"name": ..., "role": "admin"|"read-only", "password": ...}')
    name, role, password = check_new(body.get("name"), body.get("role"), body.get("password"))
    row = await add_operator(request.app, request[ACTOR], name, role, password)
    return json_response(operator_json(row), status=201)


async def disable(request: web.Request) -> web.Response:
    """POST /admin/operators/{name}/disable."""
    return json_response(operator_json(await disable_operator(request.app, request.match_info["name"])))


async def enable(request: web.Request) -> web.Response:
    """POST /admin/operators/{name}/enable."""
    return json_response(operator_json(await enable_operator(request.app, request.match_info["name"])))


async def change_password(request: web.Request) -> web.Response:
    """POST /admin/operators/{name}/password {"password"}: a new password (the old sessions end)."""
    body = await read_json(request)
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParameters(f"'password' must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return json_response(operator_json(await set_password(request.app, request.match_info["name"], password)))


async def list_audit(request: web.Request) -> web.Response:
    """GET /admin/audit?actor=&before=&limit=: the newest entries first."""
    query = request.query
    limit = positive_int(query.get("limit") or "100")
    if limit is None or not 1 <= limit <= 1000:
        raise InvalidParameters("'limit' must be an integer from 1 to 1000")
    before = positive_int(query["before"]) if query.get("before") else None
    if query.get("before") and (before is None or not 1 <= before <= 2**62):
        raise InvalidParameters("'before' must be an entry id")
    actor = query.get("actor") or None
    entries = await operator_sql.audit_entries(request.app[STORE], actor=actor, before=before, limit=limit)
    return json_response([audit_json(e) for e in entries])


def setup(app: web.Application) -> None:
    """Register the operator and audit routes."""
    r = app.router
    r.add_get("/admin/operators", list_operators)
    r.add_post("/admin/operators", create_operator)
    r.add_post("/admin/operators/{name}/disable", disable)
    r.add_post("/admin/operators/{name}/enable", enable)
    r.add_post("/admin/operators/{name}/password", change_password)
    r.add_get("/admin/audit", list_audit)
