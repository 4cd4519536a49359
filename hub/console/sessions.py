"""Console sessions: a server-side store of logged-in operators, each with its own CSRF token.

The cookie carries only a random session id; the store keeps its SHA-256, the CSRF token and
the expiry. Logging out deletes the entry, so a cookie copied before logout is refused. The
store lives in memory: a restart logs every operator out, which is the safe direction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from routing.clock import Clock

MAX_SESSIONS = 1000  # bounded: the oldest session is dropped past this (a login flood cannot grow memory)


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Session:
    """One logged-in operator: CSRF token, expiry and messages to show on the next page."""

    csrf: str
    expires_at: datetime
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind 'ok' | 'error', text)

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page (post/redirect/get)."""
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        """The queued messages, once."""
        taken, self.flashes = self.flashes, []
        return taken

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time check of a form's CSRF token."""
        return bool(presented) and hmac.compare_digest(str(presented).encode(), self.csrf.encode())


class SessionStore:
    """In-memory sessions keyed by the hash of their cookie value; expiry by the hub's clock."""

    def __init__(self, clock: Clock, ttl: float) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._sessions: dict[str, Session] = {}

    def create(self) -> tuple[str, Session]:
        """A new session; returns the cookie value (never stored as such) and the session."""
        self._prune()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), expires_at=self._clock.now() + self._ttl)
        self._sessions[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for this cookie value, or None (unknown, logged out or expired)."""
        if not session_id or len(session_id) > 200:
            return None
        key = _key(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= self._clock.now():
            del self._sessions[key]
            return None
        return session

    def delete(self, session_id: str | None) -> None:
        """Log out: the cookie value is worthless from now on."""
        if session_id:
            self._sessions.pop(_key(session_id), None)

    def _prune(self) -> None:
        now = self._clock.now()
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]

    @property
    def ttl_seconds(self) -> int:
        """Cookie Max-Age."""
        return int(self._ttl.total_seconds())
