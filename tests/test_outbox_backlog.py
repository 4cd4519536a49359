"""The outbox's per-push statements do not grow with the queue (issue 22), and keep their meaning.

SQLite: the plans of the statements every push or scheduler round runs must probe an index by
chain, receiver or deadline, never walk a receiver's queue; a claim with a skipped receiver that
holds thousands of rows returns the others' chain heads in acceptance order; a broadcast's
legs enqueued at once (``enqueue_many``) are blocked and coalesced exactly as one by one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import claims as claims_sql
from storage import outbox as outbox_sql
from storage.outbox import NewMessage
from storage.sqlite import SqliteStore
from tests.support.outbox import DEADLINE, LEASE, T0, T1, outbox_message, platforms


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "hub.sqlite3")
    await s.open()
    await s.write(platforms)
    try:
        yield s
    finally:
        await s.close()


async def _plan(store: SqliteStore, sql: str, params: tuple[object, ...]) -> str:
    rows = await store.fetchall("EXPLAIN QUERY PLAN " + sql, params)
    return "\n".join(str(r["detail"]) for r in rows)


async def test_the_enqueue_statement_probes_the_chain_not_the_receivers_queue(store: SqliteStore) -> None:
    chain = (1, "sessions", "S1")
    params = (*chain, "PUT", "u", "r", "{}", b"{}", T0, T0, DEADLINE, *chain, None, *chain, None, *chain)
    plan = await _plan(store, outbox_sql._INSERT, params)
    searches = [line for line in plan.splitlines() if "outbox" in line]
    assert searches and all("outbox_chain" in line for line in searches), plan


async def test_expiry_reads_only_what_expires(store: SqliteStore) -> None:
    plan = await _plan(
        store, "SELECT id FROM outbox WHERE state='pending' AND deadline_at<=? AND request_id NOT IN (?)", (T1, "x")
    )
    assert "outbox_deadline" in plan, plan


async def test_a_claim_skips_a_receivers_backlog_and_keeps_acceptance_order(store: SqliteStore) -> None:
    backlog = [outbox_message(1, f"B{n}", n) for n in range(2000)]
    await store.write(lambda tx: outbox_sql.enqueue_many(tx, backlog))
    for n, (pid, key) in enumerate([(2, "A"), (3, "B"), (2, "A"), (2, "C")]):
        message = outbox_message(pid, key, n)
        await store.write(lambda tx, m=message: outbox_sql.enqueue(tx, m))
    rows = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, skip_receivers=[1])
    # Receiver 1 skipped; chain (2, A) gives only its head; ids in acceptance order.
    assert [(r.receiver_platform_id, r.object_key) for r in rows] == [(2, "A"), (3, "B"), (2, "C")]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    first_a = rows[0]
    in_flight = [first_a.request_id]
    assert await claims_sql.next_due_at(store, skip_receivers=[1], skip_request_ids=in_flight) == T0
    everyone = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=5)
    assert len(everyone) == 5 and everyone[0].receiver_platform_id == 1  # the oldest rows first, at most 5
    assert await claims_sql.next_due_at(store, skip_receivers=[1, 2, 3]) is None
    # A batch shared among receivers: at most per_receiver of each, still the oldest first.
    shared = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, per_receiver=1)
    assert [(r.receiver_platform_id, r.object_key) for r in shared] == [(1, "B0"), (2, "A"), (3, "B")]


async def test_enqueue_many_blocks_and_coalesces_like_one_by_one(store: SqliteStore) -> None:
    def patch(pid: int, n: int, body: bytes) -> NewMessage:
        return outbox_message(pid, "LOC1", n, body=body, module="locations")

    first = [patch(1, 0, b'{"status":"CHARGING"}'), patch(2, 0, b'{"status":"CHARGING"}')]
    assert await store.write(lambda tx: outbox_sql.enqueue_many(tx, first, coalesce=True)) == [False, False]
    # Receiver 1 already has this exact PATCH pending (coalesced: no new row); receiver 2 gets
    # another body (a new row, behind the first); receiver 3 had nothing (its chain head).
    second = [patch(1, 1, b'{"status":"CHARGING"}'), patch(2, 1, b'{"status":"AVAILABLE"}')]
    second.append(patch(3, 1, b'{"status":"CHARGING"}'))
    assert await store.write(lambda tx: outbox_sql.enqueue_many(tx, second, coalesce=True)) == [True, True, False]
    rows = await store.fetchall("SELECT id, receiver_platform_id AS pid, request_id, body FROM outbox ORDER BY id")
    # Ids order each chain (one receiver's copies of one object); across receivers they mean nothing.
    assert sorted((r["pid"], r["request_id"]) for r in rows) == [
        (1, "1-LOC1-0"),
        (2, "2-LOC1-0"),
        (2, "2-LOC1-1"),
        (3, "3-LOC1-1"),
    ]
    newer = next(r for r in rows if r["request_id"] == "2-LOC1-1")
    assert newer["body"] == b'{"status":"AVAILABLE"}'
    assert newer["id"] > next(r["id"] for r in rows if r["request_id"] == "2-LOC1-0")
    stored = await outbox_sql.get(store, newer["id"])
    assert stored is not None and stored.headers == {"X-Request-ID": "2-LOC1-1"} and stored.state == "pending"
