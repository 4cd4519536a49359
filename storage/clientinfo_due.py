"""SQL for HubClientInfo fan-outs still owed: one row per registration, status or agreement change (0022, 0024).

The registry commits a row here in the same transaction as the change that owes the network
its ClientInfo PUTs (``add``), then answers; the pusher (routing/registry/clientinfo.py) turns
the row into outbox rows afterwards, a chunk per commit, each commit moving the row's progress
(``phase``, ``done_through``: the highest platform id of that phase already in the outbox) with
its rows, and deletes the row with the last chunk. So a kill -9 at any point neither loses nor
repeats a PUT; rows left by a crash are pushed at the next start. Rows are pushed one at a time,
oldest first, across all processes (``claim`` hands out only the oldest row): a partner never
sees an older status overtake a newer one.

Several processes on one PostgreSQL database: a row is leased to the process that committed it
(and then to whoever claims it after its lease ran out: that process died); ``advance`` and
``finish`` change it only while the lease and the progress are still the ones the chunk started
from, else ``LostClientInfo`` undoes the chunk's outbox rows (no receiver twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage import leases
from storage.db import Row, Store, SyncTx, Transaction

ANNOUNCE = 0  # phase 0: every other platform hears of the changed platform's parties
BACKFILL = 1  # phase 1: a platform that has just registered hears of everyone's


class LostClientInfo(Exception):
    """The row moved on (or was taken over) since this chunk started: its rows must not commit."""


@dataclass(frozen=True)
class NewDue:
    """A fan-out to commit with the registration or status change that owes it."""

    platform_id: int
    status: str
    registered: bool
    created_at: str


@dataclass(frozen=True)
class Due(NewDue):
    """A stored row and how far its fan-out got."""

    id: int = 0
    phase: int = ANNOUNCE
    done_through: int = 0
    agreements: str | None = None  # an agreement change's row (0024): its changes, JSON; None: a platform's

    @property
    def progress(self) -> tuple[int, int]:
        """(phase, platform id) of the last platform already in the outbox."""
        return self.phase, self.done_through


async def add(tx: Transaction, due: NewDue, *, owner: str | None, lease_until: str) -> int:
    """Insert a row inside the change's transaction (leased to ``owner`` when shared); its id."""
    return await tx.insert(
        "INSERT INTO clientinfo_due (platform_id, status, registered, created_at, leased_by, lease_until)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            due.platform_id,
            due.status,
            1 if due.registered else 0,
            due.created_at,
            owner,
            lease_until if owner is not None else None,
        ),
    )


async def count(store: Store) -> int:
    """Fan-outs not fully in the outbox yet (for tests and /status)."""
    row = await store.fetchone("SELECT count(*) AS n FROM clientinfo_due")
    return int(row["n"]) if row is not None else 0


async def registered_after(store: Store, due_id: int) -> set[int]:
    """Platforms whose registration is a later row still to push (it covers them both ways)."""
    rows = await store.fetchall(
        "SELECT DISTINCT platform_id FROM clientinfo_due WHERE id>? AND registered=1", (due_id,)
    )
    return {int(r["platform_id"]) for r in rows}


def add_agreements(tx: SyncTx, changes: str, *, created_at: str, owner: str | None, lease_until: str) -> int:
    """Insert an agreement change's row inside the change's write job; its id.

    ``changes``: JSON, read back by the pusher only (routing/registry/clientinfo.py);
    ``done_through`` counts the changes already in the outbox. platform_id 0: no platform's.
    """
    return tx.insert(
        "INSERT INTO clientinfo_due (platform_id, status, registered, created_at, agreements, leased_by, lease_until)"
        " VALUES (0, '', 0, ?, ?, ?, ?)",
        (created_at, changes, owner, lease_until if owner is not None else None),
    )


def _due(row: Row) -> Due:
    return Due(
        id=int(row["id"]),
        platform_id=int(row["platform_id"]),
        status=row["status"],
        registered=bool(row["registered"]),
        created_at=row["created_at"],
        phase=int(row["phase"]),
        done_through=int(row["done_through"]),
        agreements=row["agreements"],
    )


async def claim(store: Store, *, now: str, lease_until: str, limit: int) -> list[Due]:
    """The rows to push now, oldest first.

    Alone (SQLite): up to ``limit`` rows in order (this process pushes them one at a time).
    Shared: the oldest row of all, if no other live process holds it, leased to this one in the
    same statement (``FOR UPDATE SKIP LOCKED``); a later row waits until it is gone.
    """
    owner = store.owner
    if owner is None:
        rows = await store.fetchall("SELECT * FROM clientinfo_due ORDER BY id LIMIT ?", (limit,))
        return [_due(r) for r in rows]
    sql = (
        "UPDATE clientinfo_due SET leased_by=?, lease_until=? WHERE id IN ("
        "SELECT c.id FROM clientinfo_due c WHERE (c.leased_by IS NULL OR c.leased_by=? OR c.lease_until<=?)"
        " AND NOT EXISTS (SELECT 1 FROM clientinfo_due p WHERE p.id<c.id)"
        " ORDER BY c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED) RETURNING *"
    )
    values = [owner, lease_until, owner, now]
    rows = await store.write(lambda tx: tx.fetchall(sql, values))
    return [_due(r) for r in rows]


def _mine(tx: SyncTx, due_id: int, done_from: tuple[int, int]) -> tuple[str, list[object]]:
    return leases.held(tx, "id=? AND phase=? AND done_through=?", [due_id, *done_from])


def advance(
    tx: SyncTx, due_id: int, *, done_from: tuple[int, int], done_through: tuple[int, int], lease_until: str
) -> None:
    """Record a chunk's progress (with its outbox rows, in one job); LostClientInfo if it moved meanwhile."""
    where, params = _mine(tx, due_id, done_from)
    changed = tx.execute_rowcount(
        f"UPDATE clientinfo_due SET phase=?, done_through=?, lease_until=? WHERE {where}",
        [*done_through, lease_until, *params],
    )
    if changed != 1:
        raise LostClientInfo(f"ClientInfo fan-out {due_id} moved on from {done_from}")


def finish(tx: SyncTx, due_id: int, *, done_from: tuple[int, int]) -> None:
    """The last chunk is in the outbox: the row goes (with that chunk's rows, in one job)."""
    where, params = _mine(tx, due_id, done_from)
    if tx.execute_rowcount(f"DELETE FROM clientinfo_due WHERE {where}", params) != 1:
        raise LostClientInfo(f"ClientInfo fan-out {due_id} moved on from {done_from}")


def release(tx: SyncTx) -> int:
    """A clean stop: this process's rows become anyone's at once (else they wait out their lease)."""
    return leases.release(tx, "clientinfo_due")
