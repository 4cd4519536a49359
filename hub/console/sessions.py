"""Console sessions: logged-in operators, each with its own CSRF token, kept in the database.

The cookie carries only a random session id; the database keeps its SHA-256, the CSRF token,
the expiry, the messages for the next page, who logged in (an operator, or 'admin-token') and a
fingerprint of the credential used: the admin token, or the operator's password hash. An
operator's session ends when the operator is disabled or its password changes. Every hub
process on the database knows every session (`serve --workers N`, a load balancer), a restart
keeps operators logged in, and changing the admin token logs out every admin-token session
(their fingerprint no longer matches). Logging out deletes the row, so a cookie
copied before logout is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from hub.admin.accounts import ADMIN_TOKEN_ACTOR, TOKEN_ACTOR, Actor
from hub.admin.accounts import fingerprint as password_fingerprint
from routing.clock import Clock, iso, parse_iso
from storage import console_sessions as session_sql
from storage import operators as operator_sql
from storage.db import Store

LOGGER = logging.getLogger("hub.console")

MAX_SESSIONS = 1000  # bounded: the oldest sessions are dropped past this (a login flood cannot grow the table)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def fingerprint(admin_token: str) -> str:
    """What a session remembers of the admin token it was made with (not the token: a hash of it)."""
    return hashlib.sha256(b"ocpi-hub console session|" + admin_token.encode()).hexdigest()[:32]


@dataclass
class Session:
    """One logged-in operator: CSRF token and messages to show on the next page."""

    key: str
    csrf: str
    actor: Actor = TOKEN_ACTOR
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind 'ok' | 'error', text)
    changed: bool = False  # flashes added or shown: written back when the request ends

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page (post/redirect/get)."""
        self.flashes.append((kind, text))
        self.changed = True

    def take_flashes(self) -> list[tuple[str, str]]:
        """The queued messages, once."""
        taken, self.flashes = self.flashes, []
        self.changed = self.changed or bool(taken)
        return taken

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time check of a form's CSRF token."""
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf.encode())


class SessionStore:
    """Sessions keyed by the hash of their cookie value; expiry by the hub's clock."""

    def __init__(self, store: Callable[[], Store], clock: Clock, ttl: float, admin_token: str) -> None:
        self._stores = store  # the hub's store, opened after the console is set up
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._admin_fp = fingerprint(admin_token)

    async def create(self, actor: Actor = TOKEN_ACTOR, password_hash: str | None = None) -> tuple[str, Session]:
        """A new session for ``actor``; returns the cookie value (never stored as such) and the session.

        ``password_hash``: the operator's (its fingerprint is kept); None for the admin token.
        """
        session_id = secrets.token_urlsafe(32)
        session = Session(key=_key(session_id), csrf=secrets.token_urlsafe(32), actor=actor)
        credential = self._admin_fp if password_hash is None else password_fingerprint(password_hash)
        now = self._clock.now()
        await self._store.write(
            lambda tx: session_sql.create(
                tx,
                key=session.key,
                csrf=session.csrf,
                admin_fp=credential,
                expires_at=iso(now + self._ttl),
                now=iso(now),
                keep=MAX_SESSIONS,
                actor=actor.name,
                role=actor.role,
            )
        )
        return session_id, session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session for this cookie value, or None (unknown, logged out, expired, other admin token)."""
        if not session_id or len(session_id) > 200:
            return None
        key = _key(session_id)
        row = await session_sql.get(self._store, key)
        if row is None:
            return None
        actor = await self._actor(row["actor"], row["admin_fp"])
        if parse_iso(row["expires_at"]) <= self._clock.now() or actor is None:
            await session_sql.delete(self._store, key)
            return None
        flashes = [(k, t) for k, t in json.loads(row["flashes"])]
        return Session(key=key, csrf=row["csrf"], actor=actor, flashes=flashes)

    async def _actor(self, name: str, credential: str) -> Actor | None:
        """Who the session is for, if its credential still holds (role as the operator has it now)."""
        if name == ADMIN_TOKEN_ACTOR:
            return TOKEN_ACTOR if hmac.compare_digest(credential, self._admin_fp) else None
        operator = await operator_sql.get_operator(self._store, name)
        if operator is None or operator.disabled_at is not None:
            return None
        if not hmac.compare_digest(credential, password_fingerprint(operator.password_hash)):
            return None
        return Actor(operator.name, operator.role)

    async def save(self, session: Session) -> None:
        """Write back the session's messages if the request changed them (best effort: they are cosmetic)."""
        if not session.changed:
            return
        try:
            await session_sql.set_flashes(self._store, session.key, session.flashes)
        except Exception as exc:  # a lost message must not turn the page into an error
            LOGGER.warning("console: could not keep the session's messages: %s", exc)
        session.changed = False

    async def delete(self, session_id: str | None) -> None:
        """Log out: the cookie value is worthless from now on."""
        if session_id and len(session_id) <= 200:
            await session_sql.delete(self._store, _key(session_id))

    @property
    def _store(self) -> Store:
        return self._stores()

    @property
    def ttl_seconds(self) -> int:
        """Cookie Max-Age."""
        return int(self._ttl.total_seconds())
