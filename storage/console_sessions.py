"""SQL for the operator console's login sessions (migration 0014_console_sessions).

One row per logged-in operator, keyed by the SHA-256 of the cookie value; the hub/console
session store decides what a row means (expiry, admin token or password fingerprint, CSRF,
who logged in and with which role).
"""

from __future__ import annotations

import json

from storage.db import Row, Store, SyncTx

COLUMNS = "key, csrf, admin_fp, expires_at, flashes, actor, role"  # actor, role: migration 0016_operators


def create(
    tx: SyncTx,
    *,
    key: str,
    csrf: str,
    admin_fp: str,
    expires_at: str,
    now: str,
    keep: int,
    actor: str = "admin-token",
    role: str = "admin",
) -> None:
    """Insert a session; drop expired ones, and the oldest beyond ``keep`` (a login flood stays bounded)."""
    tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))
    tx.execute(
        "DELETE FROM console_sessions WHERE key NOT IN"
        " (SELECT key FROM console_sessions ORDER BY expires_at DESC LIMIT ?)",
        (max(keep - 1, 0),),
    )
    tx.execute(
        f"INSERT INTO console_sessions ({COLUMNS}) VALUES (?, ?, ?, ?, '[]', ?, ?)",
        (key, csrf, admin_fp, expires_at, actor, role),
    )


async def get(store: Store, key: str) -> Row | None:
    """The session row for this key, if any (expired or not: the caller decides)."""
    return await store.fetchone(f"SELECT {COLUMNS} FROM console_sessions WHERE key=?", (key,))


async def delete(store: Store, key: str) -> None:
    """Forget a session (logout, expired, or made under another admin token)."""
    await store.write(lambda tx: tx.execute("DELETE FROM console_sessions WHERE key=?", (key,)))


async def set_flashes(store: Store, key: str, flashes: list[tuple[str, str]]) -> None:
    """Replace the messages waiting for the session's next page."""
    text = json.dumps(flashes)
    await store.write(lambda tx: tx.execute("UPDATE console_sessions SET flashes=? WHERE key=?", (text, key)))
