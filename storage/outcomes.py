"""SQL of what happens to an outbox message after an attempt: finish, retry later, bury, expire.

Shared database: only the lease holder records an outcome (``_mine``), and a row id is matched
with its request id, since row ids are reused after deletes (storage/outbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import SyncTx


def _this(message_id: int, request_id: str | None) -> tuple[str, tuple[object, ...]]:
    # Row ids are reused after deletes: with its request id, a late record never hits a newer message.
    if not request_id:
        return "id=?", (message_id,)
    return "id=? AND request_id=?", (message_id, request_id)


def _mine(tx: SyncTx, message_id: int, request_id: str | None) -> tuple[str, tuple[object, ...]]:
    # Shared: a process whose lease was taken over (it stalled past lease_until) must not reschedule
    # or bury what the new holder is sending; its late record changes nothing.
    where, key = _this(message_id, request_id)
    if tx.owner is None:
        return where, key
    return where + " AND (leased_by IS NULL OR leased_by=?)", (*key, tx.owner)


def finish(
    tx: SyncTx,
    message_id: int,
    *,
    http_status: int,
    ocpi_status: int | None,
    state: str,
    now: str,
    request_id: str | None = None,
) -> None:
    """Record a final answer: 'delivered' rows are deleted, 'rejected' (non-1xxx) ones kept for inspection."""
    where, key = _this(message_id, request_id)
    if state == "delivered":
        tx.execute(f"DELETE FROM outbox WHERE {where}", key)
        return
    tx.execute(
        "UPDATE outbox SET state=?, attempts=attempts+1, last_http_status=?, last_ocpi_status=?, finished_at=?"
        f" WHERE {where}",
        (state, http_status, ocpi_status, now, *key),
    )


def delete_delivered(tx: SyncTx, messages: Sequence[tuple[int, str | None]]) -> None:
    """Delete delivered messages, given as (id, request id), in a few statements instead of one each.

    A fan-out delivers thousands a second: one DELETE per row (and its index updates) was the
    largest part of the writer's time (issue 22). Same matching as ``finish``.
    """
    by_request = [m for m in messages if m[1]]
    by_id = [m[0] for m in messages if not m[1]]
    for at in range(0, len(by_request), _PER_STATEMENT):
        chunk = by_request[at : at + _PER_STATEMENT]
        tx.execute(
            delete_pairs_sql(len(chunk)),
            (*(message_id for message_id, _ in chunk), *(value for pair in chunk for value in pair)),
        )
    for at in range(0, len(by_id), _PER_STATEMENT):
        ids = by_id[at : at + _PER_STATEMENT]
        tx.execute(f"DELETE FROM outbox WHERE id IN ({', '.join('?' for _ in ids)})", tuple(ids))


_PER_STATEMENT = 500  # well under SQLite's and PostgreSQL's bound on parameters per statement


def delete_pairs_sql(n: int) -> str:
    """The DELETE of ``n`` (id, request id) pairs: ids first, then the pairs."""
    ids = ", ".join("?" for _ in range(n))
    pairs = ", ".join("(?, ?)" for _ in range(n))
    # "id IN" too: SQLite plans a row-value IN (VALUES ...) alone as a scan of the whole outbox (a
    # backlog of 20,000 for a dead receiver made every other delivery slower); with it, by primary key.
    return f"DELETE FROM outbox WHERE id IN ({ids}) AND (id, request_id) IN (VALUES {pairs})"


def retry_later(
    tx: SyncTx,
    message_id: int,
    *,
    next_attempt_at: str,
    error: str,
    http_status: int | None,
    request_id: str | None = None,
) -> None:
    """Count a failed attempt and schedule the next one (giving up the lease: any process may retry it)."""
    where, key = _mine(tx, message_id, request_id)
    tx.execute(
        "UPDATE outbox SET attempts=attempts+1, next_attempt_at=?, last_error=?, last_http_status=?,"
        f" leased_by=NULL, lease_until=NULL WHERE {where}",
        (next_attempt_at, error[:500], http_status, *key),
    )


def bury(tx: SyncTx, message_id: int, *, error: str, now: str, request_id: str | None = None) -> None:
    """Turn a message into a dead letter."""
    where, key = _mine(tx, message_id, request_id)
    tx.execute(
        f"UPDATE outbox SET state='dead', attempts=attempts+1, last_error=?, finished_at=? WHERE {where}",
        (error[:500], now, *key),
    )


def reschedule_now(tx: SyncTx, platform_id: int, *, now: str) -> int:
    """A receiver is back: its pending messages are due now instead of after their backoff."""
    return tx.execute_rowcount(
        "UPDATE outbox SET next_attempt_at=? WHERE receiver_platform_id=? AND state='pending' AND next_attempt_at>?",
        (now, platform_id, now),
    )


def expire(tx: SyncTx, *, now: str, skip_request_ids: Sequence[str] = ()) -> int:
    """Pending messages past their deadline become dead letters, attempted or not (max_age)."""
    sql = (
        "UPDATE outbox SET state='dead', finished_at=?,"
        " last_error=coalesce(last_error || ' (then expired: max_age)', 'expired: undelivered within max_age')"
        " WHERE state='pending' AND deadline_at<=?"
    )
    params: list[object] = [now, now]
    if skip_request_ids:
        sql += f" AND request_id NOT IN ({','.join('?' * len(skip_request_ids))})"
        params.extend(skip_request_ids)
    if tx.owner is not None:  # being sent by another live process: left to its attempt
        sql += " AND (leased_by IS NULL OR leased_by=? OR lease_until<=?)"
        params.extend([tx.owner, now])
    return tx.execute_rowcount(sql, params)


def delete(tx: SyncTx, message_id: int, *, request_id: str | None = None) -> None:
    """Remove a message (on_receiver_down = 'fail': the sender got the error instead)."""
    where, key = _this(message_id, request_id)
    tx.execute(f"DELETE FROM outbox WHERE {where}", key)
