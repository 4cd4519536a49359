"""Which process sends which outbox message: claims of chain heads, leases and their renewal.

Only the oldest pending message of a chain (receiver, module, object_key) is ever due
(storage/outbox.py). When several hub processes share the database (``store.owner`` set:
PostgreSQL), a message being sent is leased to one process (``leased_by`` until
``lease_until``): heads are claimed with ``FOR UPDATE SKIP LOCKED``, a head leased to another
live process is not claimable (so neither is anything behind it: per-object order holds across
processes), a live process renews its leases with its heartbeat, and an expired lease (its
process died) is taken over. Alone (SQLite), a claim is a plain read.

Both backends read the queue receiver by receiver (issue 22): the receivers with pending rows by
a skip scan (one index probe each: SQLite's outbox_queue_order, PostgreSQL's partial
outbox_pending_queue), then each receiver not skipped (OFFLINE, at its cap) in acceptance order.
A receiver the round skips costs one probe, however many rows it has queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Row, Store, SyncTx
from storage.outbox import Message, message_from_row

_HEAD = (
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.receiver_platform_id=o.receiver_platform_id"
    " AND p.module=o.module AND p.object_key=o.object_key AND p.state='pending' AND p.id<o.id)"
)
# PostgreSQL, the same check made to probe outbox_chain by the whole chain key. On an unanalyzed
# outbox (filled within the last minute) the planner pulled it up into an anti join that probed by
# receiver alone, or took the partial outbox_pending_queue (receiver, id): either way every head
# checked walked its receiver's queue (765 ms with 1,000 queued; tests/test_outbox_backlog_pg.py).
# OFFSET 0 keeps it a subplan per row, and the state as an expression is no index's key or
# predicate, so only outbox_chain (by receiver, module, object_key) serves it: 903 -> 3 ms there.
_HEAD_PG = _HEAD.replace("p.state='pending'", "p.state||''='pending'")[:-1] + " OFFSET 0)"
# The receivers with pending rows, by a skip scan (one index probe per receiver: SQLite's
# outbox_queue_due of 0018, PostgreSQL's outbox_pending_queue of 0021), so a round never walks the
# rows of a receiver it skips (OFFLINE, full).
_RECEIVERS = (
    "WITH RECURSIVE r(pid) AS ("
    "SELECT (SELECT min(receiver_platform_id) FROM outbox WHERE state='pending')"
    " UNION ALL SELECT (SELECT min(receiver_platform_id) FROM outbox"
    " WHERE state='pending' AND receiver_platform_id>r.pid) FROM r WHERE r.pid IS NOT NULL)"
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
    per_receiver: int | None = None,
) -> list[Message]:
    """Pending messages due now that are the oldest pending of their chain, in acceptance order.

    Alone, a plain read, at most ``per_receiver`` (default ``limit``) of each receiver's. Shared,
    the rows are leased to this process until ``lease_until`` in the same statement; rows another
    process is claiming right now are skipped, not waited for.
    """
    owner = store.owner
    each = min(limit, per_receiver or limit)
    if owner is None:
        return await _claim_alone(store, now, limit, each, skip_receivers, skip_request_ids)
    pids, pid_params = _pid_skips(skip_receivers)
    rids, rid_params = _rid_skips(skip_request_ids)
    # Per receiver not skipped, its due, claimable chain heads in id order (outbox_pending_queue),
    # locked as read (SKIP LOCKED: another process claiming them now is not waited for); the
    # oldest ``limit`` of them are leased. Heads locked here beyond the limit stay unleased and
    # their locks end with this statement's transaction. ``= ANY(ARRAY(...))``: the rows to lease
    # are found by primary key; with ``IN (...)`` an unanalyzed outbox got a hash join over a
    # sequential scan of every row (tests/test_outbox_backlog_pg.py).
    sql = (
        _RECEIVERS + " UPDATE outbox SET leased_by=?, lease_until=? WHERE id = ANY(ARRAY("
        "SELECT c.id FROM r CROSS JOIN LATERAL (SELECT o.id FROM outbox o WHERE o.state='pending'"
        " AND o.receiver_platform_id=r.pid AND o.next_attempt_at<=?"
        + _FREE
        + rids
        + _HEAD_PG
        + " ORDER BY o.id LIMIT ? FOR UPDATE OF o SKIP LOCKED) c"
        " WHERE r.pid IS NOT NULL" + pids + " ORDER BY c.id LIMIT ?)) RETURNING *"
    )
    values = [owner, lease_until, now, owner, now, *rid_params, each, *pid_params, limit]
    claimed: list[Row] = await store.write(lambda tx: tx.fetchall(sql, values))
    return sorted((message_from_row(r) for r in claimed), key=lambda m: m.id)


def _pid_skips(skip_receivers: Sequence[int]) -> tuple[str, list[object]]:
    if not skip_receivers:
        return "", []
    return f" AND r.pid NOT IN ({','.join('?' * len(skip_receivers))})", list(skip_receivers)


def _rid_skips(skip_request_ids: Sequence[str]) -> tuple[str, list[object]]:
    if not skip_request_ids:  # messages being sent (row ids are reused after deletes; request ids never)
        return "", []
    return f" AND o.request_id NOT IN ({','.join('?' * len(skip_request_ids))})", list(skip_request_ids)


async def _claim_alone(
    store: Store, now: str, limit: int, each: int, skip_receivers: Sequence[int], skip_request_ids: Sequence[str]
) -> list[Message]:
    # Per receiver not skipped: its due chain heads in id order (outbox_queue_order; the unary +
    # keeps SQLite from ranging over next_attempt_at and sorting a whole backlog instead), at most
    # ``each``; then the oldest ``limit`` of them all. Cost: receivers with pending rows x
    # log(rows) + receivers read x ``each``, whatever the skipped receivers hold.
    pids, pid_params = _pid_skips(skip_receivers)
    rids, rid_params = _rid_skips(skip_request_ids)
    rows = await store.fetchall(
        _RECEIVERS + " SELECT m.* FROM r JOIN outbox m ON m.id IN ("
        "SELECT o.id FROM outbox o WHERE o.state='pending' AND o.receiver_platform_id=r.pid"
        " AND +o.next_attempt_at<=?" + rids + _HEAD + " ORDER BY o.id LIMIT ?)"
        " WHERE r.pid IS NOT NULL" + pids + " ORDER BY m.id LIMIT ?",
        [now, *rid_params, each, *pid_params, limit],
    )
    return [message_from_row(r) for r in rows]


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
    if store.owner is None:
        # Alone: per receiver not skipped, its earliest head through outbox_queue_due (0018).
        pids, pid_params = _pid_skips(skip_receivers)
        rids, rid_params = _rid_skips(skip_request_ids)
        alone = await store.fetchone(
            _RECEIVERS + " SELECT min((SELECT o.next_attempt_at FROM outbox o WHERE o.state='pending'"
            " AND o.receiver_platform_id=r.pid" + rids + _HEAD + " ORDER BY o.next_attempt_at LIMIT 1)) AS t"
            " FROM r WHERE r.pid IS NOT NULL" + pids,
            [*rid_params, *pid_params],
        )
        return alone["t"] if alone and alone["t"] is not None else None
    # Shared: per receiver not skipped, the earliest of its heads (outbox_pending_queue). A head
    # another process holds is due here only when its lease runs out (that process died).
    pids, pid_params = _pid_skips(skip_receivers)
    rids, rid_params = _rid_skips(skip_request_ids)
    due = (
        "CASE WHEN o.leased_by IS NOT NULL AND o.leased_by<>? AND o.lease_until>o.next_attempt_at"
        " THEN o.lease_until ELSE o.next_attempt_at END"
    )
    row = await store.fetchone(
        _RECEIVERS + f" SELECT min((SELECT min({due}) FROM outbox o WHERE o.state='pending'"
        " AND o.receiver_platform_id=r.pid" + rids + _HEAD_PG + ")) AS t FROM r WHERE r.pid IS NOT NULL" + pids,
        [store.owner, *rid_params, *pid_params],
    )
    return row["t"] if row and row["t"] is not None else None
