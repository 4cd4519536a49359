"""What the tables of rows worked off under a lease share: ``broadcasts`` and ``clientinfo_due``.

A row (a broadcast record, a ClientInfo fan-out) is worked off in chunks, each chunk's progress
committed with its outbox rows. On a shared database the row is leased to one process: a chunk
counts only while that process still holds the lease (``held``), and a clean stop hands every
lease over at once (``release``). Alone (SQLite), every row is the process's own.
"""

from __future__ import annotations

from storage.db import SyncTx

TABLES = frozenset({"broadcasts", "clientinfo_due"})


def held(tx: SyncTx, where: str, params: list[object]) -> tuple[str, list[object]]:
    """``where`` (and its ``params``) narrowed to a row this process holds the lease of, when shared."""
    if tx.owner is None:
        return where, params
    return where + " AND leased_by=?", [*params, tx.owner]


def release(tx: SyncTx, table: str) -> int:
    """A clean stop: this process's rows of ``table`` become anyone's at once (else they wait out their lease)."""
    assert table in TABLES  # a table name in SQL: only these
    if tx.owner is None:
        return 0
    return tx.execute_rowcount(f"UPDATE {table} SET leased_by=NULL, lease_until=NULL WHERE leased_by=?", (tx.owner,))
