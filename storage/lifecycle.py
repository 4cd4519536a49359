"""SQL for the platform life cycle beyond registration: open invitations, and an unregistered platform's queue."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Store, Transaction


@dataclass(frozen=True)
class Invitation:
    """A PLANNED platform waiting for its partner to register with token A."""

    platform_id: int
    name: str
    created_at: str
    expires_at: str | None


async def list_invitations(store: Store) -> list[Invitation]:
    """Every invitation whose token A has not been used (expired ones too: they still hold a row)."""
    rows = await store.fetchall(
        "SELECT p.id, p.name, p.created_at, t.expires_at FROM platforms p JOIN tokens t ON t.platform_id = p.id"
        " WHERE p.status = 'PLANNED' AND p.initiated_by = 'party' AND t.kind = 'A' ORDER BY p.id"
    )
    return [Invitation(r["id"], r["name"], r["created_at"], r["expires_at"]) for r in rows]


async def revoke_invitation(tx: Transaction, platform_id: int) -> bool:
    """Delete an unused invitation (its PLANNED platform and token A); False when there is none."""
    row = await tx.fetchone(
        "SELECT 1 FROM platforms p JOIN tokens t ON t.platform_id = p.id"
        " WHERE p.id = ? AND p.status = 'PLANNED' AND p.initiated_by = 'party' AND t.kind = 'A'",
        (platform_id,),
    )
    if row is None:
        return False
    await tx.execute("DELETE FROM platforms WHERE id = ?", (platform_id,))  # tokens go by ON DELETE CASCADE
    return True


async def close_out_queue(tx: Transaction, platform_id: int, *, reason: str, now: str) -> int:
    """The operator offboarded a platform: its pending messages and dead letters become 'discarded'."""
    return await tx.execute_rowcount(
        "UPDATE outbox SET state = 'discarded', discard_reason = ?, finished_at = ?"
        " WHERE receiver_platform_id = ? AND state IN ('pending', 'dead')",
        (reason[:500], now, platform_id),
    )


async def bury_queue(tx: Transaction, platform_id: int, *, reason: str, now: str) -> int:
    """Every pending message for a platform becomes a dead letter with ``reason``; return how many."""
    return await tx.execute_rowcount(
        "UPDATE outbox SET state = 'dead', last_error = ?, finished_at = ?"
        " WHERE receiver_platform_id = ? AND state = 'pending'",
        (reason[:500], now, platform_id),
    )
