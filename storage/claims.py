"""Which process sends which outbox message: claims of chain heads, leases and their renewal.

Only the oldest pending message of a chain (receiver, module, object_key) is ever due
(storage/outbox.py). When several hub processes share the database (``store.owner`` set:
PostgreSQL), a message being sent is leased to one process (``leased_by`` until
``lease_until``): heads are claimed with ``FOR UPDATE SKIP LOCKED``, a head leased to another
live process is not claimable (so neither is anything behind it: per-object order holds across
processes), a live process renews its leases with its heartbeat, and an expired lease (its
process died) is taken over. Alone (SQLite), a claim is a plain read.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Row, Store, SyncTx
from storage.outbox import Message, message_from_row


def _skips(skip_receivers: Sequence[int], skip_request_ids: Sequence[str]) -> tuple[str, list[object]]:
    extra = ""
    params: list[object] = []
    if skip_receivers:
        extra += f" AND o.receiver_platform_id NOT IN ({','.join('?' * len(skip_receivers))})"
        params.extend(skip_receivers)
    if skip_request_ids:  # messages being sent (row ids are reused after deletes; request ids never)
        extra += f" AND o.request_id NOT IN ({','.join('?' * len(skip_request_ids))})"
        params.extend(skip_request_ids)
    return extra, params


_HEAD = (
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.receiver_platform_id=o.receiver_platform_id"
    " AND p.module=o.module AND p.object_key=o.object_key AND p.state='pending' AND p.id<o.id)"
)
# Shared database: claimable unless another process holds a lease that has not expired yet.
_FREE = " AND (o.leased_by IS NULL OR o.leased_by=? OR o.lease_until<=?)"


async def claim_heads(
    store: Store,
    *,
    now: str,
    lease_until: str,
    limit: int,
    skip_receivers: Sequence[int] = (),
    skip_request_ids: Sequence[str] = (),
) -> list[Message]:
    """Pending messages due now that are the oldest pending of their chain, in acceptance order.

    Alone, a plain read. Shared, the rows are leased to this process until ``lease_until`` in the
    same statement; rows another process is claiming right now are skipped, not waited for.
    """
    extra, params = _skips(skip_receivers, skip_request_ids)
    owner = store.owner
    if owner is None:
        rows = await store.fetchall(
            "SELECT o.* FROM outbox o WHERE o.state='pending' AND o.next_attempt_at<=?"
            + extra
            + _HEAD
            + " ORDER BY o.id LIMIT ?",
            [now, *params, limit],
        )
        return [message_from_row(r) for r in rows]
    sql = (
        "UPDATE outbox SET leased_by=?, lease_until=? WHERE id IN ("
        "SELECT o.id FROM outbox o WHERE o.state='pending' AND o.next_attempt_at<=?"
        + _FREE
        + extra
        + _HEAD
        + " ORDER BY o.id LIMIT ? FOR UPDATE OF o SKIP LOCKED) RETURNING *"
    )
    values = [owner, lease_until, now, owner, now, *params, limit]
    claimed: list[Row] = await store.write(lambda tx: tx.fetchall(sql, values))
    return sorted((message_from_row(r) for r in claimed), key=lambda m: m.id)


def renew_leases(tx: SyncTx, *, lease_until: str) -> int:
    """Extend every lease this process holds (its heartbeat): a live process keeps what it claimed."""
    if tx.owner is None:
        return 0
    return tx.execute_rowcount(
        "UPDATE outbox SET lease_until=? WHERE leased_by=? AND state='pending'", (lease_until, tx.owner)
    )


async def next_due_at(
    store: Store, *, skip_receivers: Sequence[int] = (), skip_request_ids: Sequence[str] = ()
) -> str | None:
    """The earliest next_attempt_at of a chain head not being sent (None when there is none).

    Only heads count: a message behind a head that backs off is not due before it, and counting
    it (or a head in flight) would wake the worker at once, again and again, for nothing.
    """
    extra, params = _skips(skip_receivers, skip_request_ids)
    due = "o.next_attempt_at"
    if store.owner is not None:
        # A head another process holds is due here only if its lease runs out (that process died).
        due = (
            "CASE WHEN o.leased_by IS NOT NULL AND o.leased_by<>? AND o.lease_until>o.next_attempt_at"
            " THEN o.lease_until ELSE o.next_attempt_at END"
        )
        params = [store.owner, *params]
    row = await store.fetchone(
        f"SELECT min({due}) AS t FROM outbox o WHERE o.state='pending'" + extra + _HEAD,
        params,
    )
    return row["t"] if row and row["t"] is not None else None
