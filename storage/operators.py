"""SQL for operator accounts and the audit log (migration 0016_operators).

The hub/operators module decides what the rows mean (password checks, roles); here are only
the reads and writes. The audit log is append-only: nothing here updates or deletes a row (the
retention sweep trims entries older than ``retention.audit_log``: storage/retention.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Store, SyncTx


@dataclass(frozen=True)
class OperatorRow:
    """One operator account (its password hash included: never shown, never logged)."""

    id: int
    name: str
    role: str
    password_hash: str
    created_at: str
    created_by: str
    disabled_at: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One change: who, through what, did what to what, when, and how it ended."""

    ts: str
    actor: str
    role: str
    via: str
    action: str
    target: str | None
    outcome: str
    address: str | None
    id: int = 0


_OPERATOR = "id, name, role, password_hash, created_at, created_by, disabled_at"
_AUDIT = "id, ts, actor, role, via, action, target, outcome, address"


def add_operator(tx: SyncTx, *, name: str, role: str, password_hash: str, now: str, created_by: str) -> bool:
    """Insert an operator; False when the name is taken (disabled ones keep their name)."""
    if tx.fetchone("SELECT 1 FROM operators WHERE name = ?", (name,)) is not None:
        return False
    tx.execute(
        "INSERT INTO operators (name, role, password_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
        (name, role, password_hash, now, created_by),
    )
    return True


def disable_operator(tx: SyncTx, name: str, *, now: str) -> bool:
    """Disable an enabled operator; False when there is no such enabled operator."""
    return (
        tx.execute_rowcount("UPDATE operators SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL", (now, name))
        > 0
    )


def enable_operator(tx: SyncTx, name: str) -> bool:
    """Enable a disabled operator again; False when there is no such disabled operator."""
    return (
        tx.execute_rowcount(
            "UPDATE operators SET disabled_at = NULL WHERE name = ? AND disabled_at IS NOT NULL", (name,)
        )
        > 0
    )


def set_password(tx: SyncTx, name: str, *, password_hash: str) -> bool:
    """Replace an operator's password hash; False when there is no such operator."""
    return tx.execute_rowcount("UPDATE operators SET password_hash = ? WHERE name = ?", (password_hash, name)) > 0


async def get_operator(store: Store, name: str) -> OperatorRow | None:
    """The operator of this name, enabled or not."""
    row = await store.fetchone(f"SELECT {_OPERATOR} FROM operators WHERE name = ?", (name,))
    return None if row is None else OperatorRow(**dict(row))


async def list_operators(store: Store) -> list[OperatorRow]:
    """Every operator, in the order they were added."""
    rows = await store.fetchall(f"SELECT {_OPERATOR} FROM operators ORDER BY id")
    return [OperatorRow(**dict(r)) for r in rows]


def append_audit(tx: SyncTx, entry: AuditEntry) -> None:
    """Append one entry to the audit log."""
    tx.execute(
        "INSERT INTO audit_log (ts, actor, role, via, action, target, outcome, address)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.ts, entry.actor, entry.role, entry.via, entry.action, entry.target, entry.outcome, entry.address),
    )


async def audit_entries(
    store: Store, *, actor: str | None = None, before: int | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest ``limit`` entries (older than entry ``before``), newest first."""
    where: list[str] = []
    params: list[object] = []
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
    if before is not None:
        where.append("id < ?")
        params.append(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await store.fetchall(f"SELECT {_AUDIT} FROM audit_log {clause} ORDER BY id DESC LIMIT ?", (*params, limit))
    return [AuditEntry(**dict(r)) for r in rows]
