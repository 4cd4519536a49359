"""SQL for dead letters: list them, re-drive them into the queue, or discard them with a reason.

A dead letter is an outbox row in state 'dead' (storage/outbox.py buries and expires them);
discarded ones stay as 'discarded' with the operator's reason, for the record, and are never sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Store, SyncTx
from storage.outbox import Message, message_from_row


async def dead_letters(store: Store, *, platform_id: int | None = None, limit: int = 100) -> list[Message]:
    """Dead letters, oldest first (without their bodies)."""
    return await _listed(store, "dead", "id", platform_id, limit)


async def discarded(store: Store, *, platform_id: int | None = None, limit: int = 100) -> list[Message]:
    """Closed-out messages (discarded dead letters, an unregistered platform's queue), newest first."""
    return await _listed(store, "discarded", "id DESC", platform_id, limit)


async def rejected(store: Store, *, platform_id: int | None = None, limit: int = 100) -> list[Message]:
    """Messages the receiver answered with a final non-1xxx OCPI status (kept for inspection), newest first."""
    return await _listed(store, "rejected", "id DESC", platform_id, limit)


# Every column but the body: listings show where a message went and why it died, never what it
# carried, and 1,000 bodies of up to max_body_bytes each must not be read to list them.
_LISTED = (
    "id, receiver_platform_id, module, object_key, method, url, request_id, headers, NULL AS body, state,"
    " attempts, created_at, next_attempt_at, deadline_at, last_error, last_http_status, last_ocpi_status,"
    " discard_reason"
)


async def _listed(store: Store, state: str, order: str, platform_id: int | None, limit: int) -> list[Message]:
    """Messages in ``state`` for a listing, without their bodies (``body`` is None)."""
    sql = f"SELECT {_LISTED} FROM outbox WHERE state=?"
    params: list[object] = [state]
    if platform_id is not None:
        sql += " AND receiver_platform_id=?"
        params.append(platform_id)
    rows = await store.fetchall(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])
    return [message_from_row(r) for r in rows]


def redrive(
    tx: SyncTx,
    *,
    now: str,
    deadline_at: str,
    cdr_deadline_at: str | None = None,
    platform_id: int | None = None,
    ids: Sequence[int] | None = None,
) -> int:
    """Dead letters back to pending with fresh attempts and a fresh deadline (CDRs their own); return how many."""
    sql = (
        "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?, leased_by=NULL, lease_until=NULL,"
        " deadline_at=CASE WHEN module='cdrs' THEN ? ELSE ? END, finished_at=NULL"
        " WHERE state='dead'"
    )
    params: list[object] = [now, cdr_deadline_at or deadline_at, deadline_at]
    return _update_chosen(tx, sql, params, platform_id=platform_id, ids=ids)


def discard(
    tx: SyncTx, *, reason: str, now: str, platform_id: int | None = None, ids: Sequence[int] | None = None
) -> int:
    """Dead letters closed out with the operator's reason: kept for the record, never sent; return how many."""
    sql = "UPDATE outbox SET state='discarded', discard_reason=?, finished_at=? WHERE state='dead'"
    return _update_chosen(tx, sql, [reason[:500], now], platform_id=platform_id, ids=ids)


def _update_chosen(
    tx: SyncTx, sql: str, params: list[object], *, platform_id: int | None, ids: Sequence[int] | None
) -> int:
    # Narrowed to one receiver and/or these ids; an empty id list chooses nothing (not everything).
    if platform_id is not None:
        sql += " AND receiver_platform_id=?"
        params.append(platform_id)
    if ids is not None:
        if not ids:
            return 0
        sql += f" AND id IN ({','.join('?' * len(ids))})"
        params.extend(ids)
    return tx.execute_rowcount(sql, params)
