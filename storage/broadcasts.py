"""SQL for broadcast records: one row per accepted broadcast push, until it is in the outbox (0020).

A broadcast push commits the hub's stored copy and one row here, and is answered; the expander
(routing/expander.py) turns the row into the per-receiver outbox rows afterwards, a chunk of
receivers per commit, each commit moving ``done_through`` (the highest receiver platform id
expanded) with its rows, and deletes the row with the last chunk. Records of one object are
expanded oldest first (``claim`` hands out only an object's oldest record), and a directed push
of an object waits while a record of it is pending (``pending``): so per-object order holds as
if every leg had been committed with the push.

Several processes on one PostgreSQL database: a record is leased to the process that accepted
it (and then to whoever claims it after its lease ran out: that process died); ``advance`` and
``finish`` change it only while the lease and the progress are still the ones the chunk started
from, else ``LostBroadcast`` undoes the chunk's outbox rows (no receiver twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage import leases
from storage.db import Row, Store, SyncTx


class LostBroadcast(Exception):
    """The record moved on (or was taken over) since this chunk started: its rows must not commit."""


@dataclass(frozen=True)
class NewBroadcast:
    """A broadcast push to commit with the hub's copy before the hub answers."""

    module: str
    object_key: str
    method: str
    segments: list[str]
    query_string: str
    sender_platform_id: int
    sender_country_code: str
    sender_party_id: str
    correlation_id: str
    body: bytes | None
    origin: dict[str, Any]  # routing/versions/wire.py, flow_origin: what the translation needs
    created_at: str


@dataclass(frozen=True)
class Broadcast(NewBroadcast):
    """A stored record."""

    id: int = 0
    done_through: int = 0


_COLUMNS = (
    "module, object_key, method, segments, query_string, sender_platform_id, sender_country_code,"
    " sender_party_id, correlation_id, body, origin, created_at, leased_by, lease_until"
)


def add(tx: SyncTx, record: NewBroadcast, *, lease_until: str | None = None) -> int:
    """Insert a record (leased to this process when shared: it expands what it accepted); return its id."""
    leased = tx.owner is not None and lease_until is not None
    return tx.insert(
        f"INSERT INTO broadcasts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.module,
            record.object_key,
            record.method,
            json.dumps(record.segments),
            record.query_string,
            record.sender_platform_id,
            record.sender_country_code,
            record.sender_party_id,
            record.correlation_id,
            record.body,
            json.dumps(record.origin),
            record.created_at,
            tx.owner if leased else None,
            lease_until if leased else None,
        ),
    )


_PENDING = "SELECT 1 FROM broadcasts WHERE module=? AND object_key=? LIMIT 1"


def pending(tx: SyncTx, module: str, object_key: str) -> bool:
    """Whether a broadcast of this object is not fully in the outbox yet (inside a write job)."""
    return (
        tx.fetchone("SELECT 1 FROM broadcasts WHERE module=? AND object_key=? LIMIT 1", (module, object_key))
        is not None
    )


async def pending_read(store: Store, module: str, object_key: str) -> bool:
    """``pending`` on committed data (a waiter polling for the expansion to finish)."""
    row = await store.fetchone(_PENDING, (module, object_key))
    return row is not None


async def count(store: Store) -> int:
    """Records not fully expanded yet (for /status and tests)."""
    row = await store.fetchone("SELECT count(*) AS n FROM broadcasts")
    return int(row["n"]) if row is not None else 0


def _record(row: Row) -> Broadcast:
    return Broadcast(
        id=int(row["id"]),
        module=row["module"],
        object_key=row["object_key"],
        method=row["method"],
        segments=list(json.loads(row["segments"])),
        query_string=row["query_string"],
        sender_platform_id=int(row["sender_platform_id"]),
        sender_country_code=row["sender_country_code"],
        sender_party_id=row["sender_party_id"],
        correlation_id=row["correlation_id"],
        body=bytes(row["body"]) if row["body"] is not None else None,
        origin=dict(json.loads(row["origin"])),
        created_at=row["created_at"],
        done_through=int(row["done_through"]),
    )


# Only an object's oldest record: a later one of the same object waits for it (per-object order).
_HEAD = (
    " AND NOT EXISTS (SELECT 1 FROM broadcasts p WHERE p.module=b.module AND p.object_key=b.object_key AND p.id<b.id)"
)


async def claim(store: Store, *, now: str, lease_until: str, limit: int) -> list[Broadcast]:
    """The records to expand now, oldest first.

    Alone (SQLite): every record, in acceptance order (this process expands them one at a time,
    so one object's records go in order). Shared: objects' oldest records that no other live
    process holds, leased to this one in the same statement (``FOR UPDATE SKIP LOCKED``).
    """
    owner = store.owner
    if owner is None:
        rows = await store.fetchall("SELECT * FROM broadcasts ORDER BY id LIMIT ?", (limit,))
        return [_record(r) for r in rows]
    sql = (
        "UPDATE broadcasts SET leased_by=?, lease_until=? WHERE id IN ("
        "SELECT b.id FROM broadcasts b WHERE (b.leased_by IS NULL OR b.leased_by=? OR b.lease_until<=?)"
        + _HEAD
        + " ORDER BY b.id LIMIT ? FOR UPDATE OF b SKIP LOCKED) RETURNING *"
    )
    values = [owner, lease_until, owner, now, limit]
    rows = await store.write(lambda tx: tx.fetchall(sql, values))
    return sorted((_record(r) for r in rows), key=lambda r: r.id)


def _mine(tx: SyncTx, record_id: int, done_through: int) -> tuple[str, list[object]]:
    return leases.held(tx, "id=? AND done_through=?", [record_id, done_through])


def advance(tx: SyncTx, record_id: int, *, done_from: int, done_through: int, lease_until: str) -> None:
    """Record a chunk's progress (with its outbox rows, in one job); LostBroadcast if it moved meanwhile."""
    where, params = _mine(tx, record_id, done_from)
    changed = tx.execute_rowcount(
        f"UPDATE broadcasts SET done_through=?, lease_until=? WHERE {where}", [done_through, lease_until, *params]
    )
    if changed != 1:
        raise LostBroadcast(f"broadcast {record_id} moved on from {done_from}")


def finish(tx: SyncTx, record_id: int, *, done_from: int) -> None:
    """The last chunk is in the outbox: the record goes (with that chunk's rows, in one job)."""
    where, params = _mine(tx, record_id, done_from)
    if tx.execute_rowcount(f"DELETE FROM broadcasts WHERE {where}", params) != 1:
        raise LostBroadcast(f"broadcast {record_id} moved on from {done_from}")


def release(tx: SyncTx) -> int:
    """A clean stop: this process's records become anyone's at once (else they wait out their lease)."""
    return leases.release(tx, "broadcasts")
