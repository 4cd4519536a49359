"""Operator accounts: named logins with a role for the console and the admin API, and the audit log.

Two roles: ``admin`` may change things, ``read-only`` may look (every POST/PUT/PATCH/DELETE is
refused with 403). The admin token stays the bootstrap and break-glass credential: whoever
presents it acts as the admin actor ``admin-token``. Operators use the admin API with HTTP
Basic (``name:password``); the console with its login form.

Passwords are kept as scrypt hashes (hashlib.scrypt, RFC 7914) with a random 16-byte salt per
operator; checking one costs ~50 ms of CPU on a worker thread, never on the event loop. A
successful check is remembered for a minute (by a hash of name, password and stored hash), so a
script calling the admin API in a loop does not pay it per call; a changed hash or a disabled
operator is seen at the next call.

Every change through the admin API or the console is appended to the audit log (who, via what,
what, on what, when, how it ended): successes, failures, and refusals of read-only operators.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.admin import guard as adminguard
from hub.admin.params import fields
from hub.keys import CLOCK, SETTINGS, STORE
from routing.clock import iso
from routing.protocol.errors import AuthError, Forbidden, OcpiError
from storage import operators as operator_sql
from storage.operators import AuditEntry, OperatorRow

LOGGER = logging.getLogger(__name__)

ADMIN, READ_ONLY = "admin", "read-only"
ROLES = (ADMIN, READ_ONLY)
ADMIN_TOKEN_ACTOR = "admin-token"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# scrypt cost: N=2^14, r=8, p=1 uses 16 MiB and ~50 ms (the parameters RFC 7914 section 2 names
# for interactive logins); stored with each hash, so raising them later keeps old hashes valid.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_CACHE_SECONDS = 60.0
_CACHE_SIZE = 256


@dataclass(frozen=True)
class Actor:
    """Who is acting: an operator's name (or 'admin-token') and its role."""

    name: str
    role: str

    @property
    def can_act(self) -> bool:
        """May change things (the admin role)."""
        return self.role == ADMIN


TOKEN_ACTOR = Actor(ADMIN_TOKEN_ACTOR, ADMIN)
ACTOR = web.RequestKey("actor", Actor)


# ---- passwords ---------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """scrypt$N$r$p$salt$hash (salt and hash base64): what the database keeps."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored scrypt hash (False for a malformed one)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest, validate=True)
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(found, expected)


def fingerprint(password_hash: str) -> str:
    """What a console session remembers of the operator's hash: a new password logs it out."""
    return hashlib.sha256(b"ocpi-hub operator session|" + password_hash.encode()).hexdigest()[:32]


class _Verified:
    """Recent successful password checks: key -> clock time (bounded, expiring)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()

    @staticmethod
    def key(name: str, password: str, stored: str) -> str:
        return hashlib.sha256(f"{name}\0{password}\0{stored}".encode()).hexdigest()

    def hit(self, key: str) -> bool:
        at = self._seen.get(key)
        return at is not None and time.monotonic() - at < _CACHE_SECONDS

    def add(self, key: str) -> None:
        self._seen[key] = time.monotonic()
        self._seen.move_to_end(key)
        while len(self._seen) > _CACHE_SIZE:
            self._seen.popitem(last=False)


_VERIFIED = _Verified()


async def authenticate(app: web.Application, name: str, password: str) -> tuple[Actor, OperatorRow] | None:
    """The enabled operator with this name and password, or None."""
    if not NAME.match(name) or not password or len(password) > MAX_PASSWORD:
        return None
    row = await operator_sql.get_operator(app[STORE], name)
    if row is None or row.disabled_at is not None:
        # Same cost as a real check, so a name's existence cannot be timed.
        await asyncio.to_thread(verify_password, password, _DUMMY)
        return None
    key = _Verified.key(name, password, row.password_hash)
    if not _VERIFIED.hit(key):
        if not await asyncio.to_thread(verify_password, password, row.password_hash):
            return None
        _VERIFIED.add(key)
    return Actor(row.name, row.role), row


_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def operator_json(row: OperatorRow) -> dict[str, Any]:
    """Public view of an operator: never its hash."""
    return fields(row, "name", "role", "created_at", "created_by", "disabled_at")


# ---- the audit log -------------------------------------------------------------------------------


async def audit(
    app: web.Application,
    actor: Actor,
    *,
    via: str,
    action: str,
    target: str | None = None,
    outcome: str = "ok",
    address: str | None = None,
) -> None:
    """Append one entry (committed before the caller answers; if it cannot be, logged at ERROR)."""
    entry = AuditEntry(
        ts=iso(app[CLOCK].now()),
        actor=actor.name,
        role=actor.role,
        via=via,
        action=action[:200],
        target=None if target is None else target[:200],
        outcome=outcome[:300],
        address=None if address is None else address[:64],
    )
    try:
        await app[STORE].write(lambda tx: operator_sql.append_audit(tx, entry))
    except Exception as exc:
        # The entry follows what it records (the change is committed by now): failing here would
        # answer 500 for a change that happened, and invite a second one. The log keeps it.
        LOGGER.error(
            "audit entry not written (%s): %s (%s) via %s: %s %s -> %s",
            str(exc)[:200] or type(exc).__name__,
            actor.name,
            actor.role,
            via,
            action,
            target or "",
            outcome,
        )
        return
    LOGGER.info("audit: %s (%s) via %s: %s %s -> %s", actor.name, actor.role, via, action, target or "", outcome)


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as the admin API shows it."""
    return fields(entry, "id", "ts", "actor", "role", "via", "action", "target", "outcome", "address")


# ---- the admin API's doors -----------------------------------------------------------------------

# RFC 6750 section 3 / RFC 7617: a 401 names the scheme (and says when a presented token was wrong).
_CHALLENGE = 'Bearer realm="ocpi-hub admin"'
_WRONG_TOKEN = 'Bearer realm="ocpi-hub admin", error="invalid_token"'
_WRONG_LOGIN = 'Basic realm="ocpi-hub admin"'


def _basic(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


async def check_admin_request(request: web.Request) -> Actor:
    """Bearer admin token (actor 'admin-token') or Basic operator login; read-only may only read.

    Failures are logged and rate limited per address like the admin token's (hub/admin/guard.py).
    """
    address = adminguard.before_check(request)
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    actor: Actor | None = None
    if scheme.lower() == "bearer" and value:
        expected = request.app[SETTINGS].admin_token
        if expected is not None and hmac.compare_digest(value.strip().encode(), expected.get_secret_value().encode()):
            actor = TOKEN_ACTOR
        reason, challenge = "wrong token", _WRONG_TOKEN
    elif scheme.lower() == "basic" and value:
        pair = _basic(value)
        found = await authenticate(request.app, *pair) if pair is not None else None
        actor = found[0] if found is not None else None
        reason, challenge = "wrong operator name or password", _WRONG_LOGIN
    else:
        adminguard.record(request, address, ok=False, reason="no bearer token")
        raise AuthError(
            "admin token or operator login required: Authorization: Bearer <token> or Basic <name:password>",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if actor is None:
        adminguard.record(request, address, ok=False, reason=reason)
        raise AuthError(
            "wrong admin token" if challenge == _WRONG_TOKEN else reason, headers={"WWW-Authenticate": challenge}
        )
    adminguard.record(request, address, ok=True)
    request[ACTOR] = actor
    if not actor.can_act and request.method not in SAFE_METHODS:
        await _audit_request(request, actor, "refused: read-only operator", address)
        raise Forbidden(f"operator {actor.name!r} is read-only: it may not {request.method} here")
    return actor


async def _audit_request(request: web.Request, actor: Actor, outcome: str, address: str | None) -> None:
    """Audit an admin API request: its route as the action, the platform or operator it names as the target."""
    await audit(
        request.app,
        actor,
        via="admin-api",
        action=_action(request),
        target=_target(request),
        outcome=outcome,
        address=address,
    )


def _action(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else request.path}"


_KINDS = (
    ("/admin/platforms/", "platform"),
    ("/admin/invitations/", "invitation"),
    ("/admin/operators/", "operator"),
    ("/admin/agreements/", "agreement"),
)


def _target(request: web.Request) -> str | None:
    found = request.match_info.get("id") or request.match_info.get("name")
    if not found:
        return None
    kind = next((k for prefix, k in _KINDS if request.path.startswith(prefix)), "")
    return f"{kind} {found[:100]}".strip()


async def run_audited(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run an admin API handler; a change (not a read) is appended to the audit log with its outcome."""
    actor = request.get(ACTOR)
    if actor is None or request.method in SAFE_METHODS or not request.path.startswith("/admin"):
        return await handler(request)
    outcome = "failed: internal error"
    try:
        response = await handler(request)
        outcome = "ok" if response.status < 400 else f"failed: HTTP {response.status}"
        return response
    except OcpiError as exc:
        outcome = f"failed: {exc.message}"
        raise
    except web.HTTPException as exc:
        outcome = "ok" if exc.status < 400 else f"failed: HTTP {exc.status}"
        raise
    finally:
        await _audit_request(request, actor, outcome, adminguard.client_address(request))
