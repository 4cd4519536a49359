"""SQL for inbound credentials tokens, stored only as SHA-256 hashes (docs/DESIGN-NOTES.md, Identity and tokens)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from storage.db import Store, Transaction
from storage.models import TokenRecord


def token_hash(token: str) -> str:
    """SHA-256 hex digest of a token: the only form in which inbound tokens are kept."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def add_token(
    tx: Transaction, platform_id: int, token: str, *, kind: str, now: str, expires_at: str | None = None
) -> None:
    """Store the hash of a new inbound token for a platform."""
    await tx.execute(
        "INSERT INTO tokens (token_hash, platform_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        (token_hash(token), platform_id, kind, now, expires_at),
    )


async def find_token(store: Store | Transaction, hashes: Sequence[str]) -> TokenRecord | None:
    """The first stored token among the candidate hashes, if any."""
    if not hashes:
        return None
    marks = ",".join("?" * len(hashes))
    row = await store.fetchone(
        f"SELECT token_hash, platform_id, kind, expires_at FROM tokens WHERE token_hash IN ({marks})",
        tuple(hashes),
    )
    if row is None:
        return None
    return TokenRecord(
        token_hash=row["token_hash"], platform_id=row["platform_id"], kind=row["kind"], expires_at=row["expires_at"]
    )


async def revoke_tokens(
    tx: Transaction, platform_id: int, *, kind: str | None = None, keep_hash: str | None = None
) -> None:
    """Delete a platform's inbound tokens (of one kind), optionally keeping one."""
    sql = "DELETE FROM tokens WHERE platform_id=?"
    params: list[object] = [platform_id]
    if kind is not None:
        sql += " AND kind=?"
        params.append(kind)
    if keep_hash is not None:
        sql += " AND token_hash<>?"
        params.append(keep_hash)
    await tx.execute(sql, params)


async def consume_token(tx: Transaction, hash_: str) -> bool:
    """Delete one inbound token by hash; True only for the caller that actually removed it."""
    return await tx.execute_rowcount("DELETE FROM tokens WHERE token_hash=?", (hash_,)) == 1


async def revoke_token(tx: Transaction, hash_: str) -> None:
    """Delete one inbound token by hash."""
    await tx.execute("DELETE FROM tokens WHERE token_hash=?", (hash_,))
