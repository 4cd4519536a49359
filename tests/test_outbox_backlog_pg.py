"""PostgreSQL: the scheduler's claim and due-time queries read only the receivers they do not skip (issue 22).

The SQLite side is tests/test_outbox_backlog.py. Here the statements run under EXPLAIN ANALYZE on
a fresh, unanalyzed schema (an outbox that filled within the last minute, before autovacuum's
statistics: the case of migration 0013), and the test counts the outbox rows each plan touched:
an OFFLINE receiver's 2,000 queued rows must not be among them. A broadcast's legs
(``enqueue_many``) go in as one statement per group and block and coalesce as one by one.
The retention sweep's chunk of old finished messages reads none of the pending or younger rows.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from storage import claims as claims_sql
from storage import outbox as outbox_sql
from storage import retention as retention_sql
from storage.postgres import PostgresStore
from tests.support.backends import postgres_schema
from tests.support.outbox import (
    LEASE,
    T0,
    T1,
    check_claims_skip_a_backlog_in_acceptance_order,
    check_delete_delivered,
    check_enqueue_many_coalesces_like_one_by_one,
    outbox_message,
    platforms,
    queue_backlog_and_others,
)

URL = os.environ.get("HUB_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="PostgreSQL tests: set HUB_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test"
)

BACKLOG = 2000


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    with postgres_schema() as url:
        s = PostgresStore(url)
        await s.open()
        await s.write(platforms)
        try:
            yield s
        finally:
            await s.close()


class _Recorder:
    """Stands in for the store and for its transaction: keeps the statement instead of running it."""

    def __init__(self, owner: str | None) -> None:
        self.owner = owner
        self.sql = ""
        self.params: list[Any] = []

    def _keep(self, sql: str, params: Any) -> list[Any]:
        self.sql, self.params = sql, list(params)
        return []

    async def write(self, job: Any) -> Any:
        return job(self)

    def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        return self._keep(sql, params)

    async def fetchone(self, sql: str, params: Any = ()) -> None:
        self._keep(sql, params)


def _outbox_rows_touched(plan: Any) -> int:
    """Outbox rows the executed plan read: returned or filtered out, times the node's loops."""
    total = 0
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == "outbox":
            seen = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            total += seen * node.get("Actual Loops", 1)
        stack.extend(node.get("Plans", []))
    return int(total)


async def _explain(store: PostgresStore, recorder: _Recorder) -> int:
    sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + recorder.sql
    rows = await store.write(lambda tx: tx.fetchall(sql, recorder.params))
    return _outbox_rows_touched(rows[0][0])


async def _backlog_and_others(store: PostgresStore) -> None:
    await queue_backlog_and_others(store, BACKLOG)


async def test_a_claim_reads_none_of_a_skipped_receivers_backlog(store: PostgresStore) -> None:
    await _backlog_and_others(store)
    recorder = _Recorder(store.owner)
    await claims_sql.claim_heads(
        recorder,  # type: ignore[arg-type]
        now=T1,
        lease_until=LEASE,
        limit=10,
        skip_receivers=[1],
        skip_request_ids=["x"],
        per_receiver=8,
    )
    touched = await _explain(store, recorder)
    assert touched < 100, touched  # receiver 1's 2,000 rows would be 2,000+
    recorder = _Recorder(store.owner)
    await claims_sql.next_due_at(recorder, skip_receivers=[1], skip_request_ids=["x"])  # type: ignore[arg-type]
    touched = await _explain(store, recorder)
    assert touched < 100, touched


async def test_the_chain_head_check_probes_the_chain_not_the_receivers_queue(store: PostgresStore) -> None:
    # 300 objects queued for receiver 2, each its chain's head: checking a head must probe its
    # chain (outbox_chain), not walk receiver 2's queue (300 x 300 rows when it did).
    queued = [outbox_message(2, f"H{n}", n) for n in range(300)]
    await store.write(lambda tx: [outbox_sql.enqueue(tx, m) for m in queued])
    recorder = _Recorder(store.owner)
    await claims_sql.next_due_at(recorder, skip_receivers=[1])  # type: ignore[arg-type]
    touched = await _explain(store, recorder)
    assert touched < 10 * 300, touched  # a few plan nodes over the 300 (read, lock, lease); a walk per head: 90,000
    recorder = _Recorder(store.owner)
    await claims_sql.claim_heads(recorder, now=T1, lease_until=LEASE, limit=300)  # type: ignore[arg-type]
    touched = await _explain(store, recorder)
    assert touched < 10 * 300, touched  # a few plan nodes over the 300 (read, lock, lease); a walk per head: 90,000


async def test_a_claim_skips_a_receivers_backlog_and_keeps_acceptance_order(store: PostgresStore) -> None:
    await _backlog_and_others(store)
    await check_claims_skip_a_backlog_in_acceptance_order(store)
    # Only the heads of receivers 2 and 3 are leased, to this process.
    leased = await store.fetchall(
        "SELECT leased_by FROM outbox WHERE receiver_platform_id<>1 AND lease_until=?", (LEASE,)
    )
    assert [r["leased_by"] for r in leased] == [store.owner] * 3


async def test_another_process_lease_holds_a_head_and_counts_as_due_when_it_ends(store: PostgresStore) -> None:
    await _backlog_and_others(store)
    # This process claims receiver 2's and 3's heads; seen from another owner they are not due
    # before the lease ends, and not claimable.
    mine = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, skip_receivers=[1])
    assert len(mine) == 3
    await store.write(
        lambda tx: tx.execute("UPDATE outbox SET leased_by='other-process' WHERE lease_until=?", (LEASE,))
    )
    again = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, skip_receivers=[1])
    assert again == []
    assert await claims_sql.next_due_at(store, skip_receivers=[1]) == LEASE
    later = "2026-12-05T10:02:00.000Z"  # past the lease: the other process is gone, take over
    until = "2026-12-05T10:03:00.000Z"
    taken = await claims_sql.claim_heads(store, now=later, lease_until=until, limit=10, skip_receivers=[1])
    assert [(r.receiver_platform_id, r.object_key) for r in taken] == [(2, "A"), (3, "B"), (2, "C")]


async def test_enqueue_many_blocks_and_coalesces_like_one_by_one(store: PostgresStore) -> None:
    await check_enqueue_many_coalesces_like_one_by_one(store)


async def test_delivered_rows_are_deleted_in_one_statement_matching_id_and_request_id(store: PostgresStore) -> None:
    await check_delete_delivered(store)


async def test_a_retention_chunk_reads_only_old_finished_messages(store: PostgresStore) -> None:
    # 2,000 pending, 2,000 dead letters younger than the window, 10 old ones (one object each, one
    # leg per receiver: one statement per group).
    pending = [outbox_message(10_000 + n, "P", n) for n in range(BACKLOG)]
    young = [outbox_message(20_000 + n, "Y", n) for n in range(BACKLOG)]
    old = [outbox_message(30_000 + n, "O", n) for n in range(10)]
    await store.write(lambda tx: outbox_sql.enqueue_many(tx, pending + young + old))
    await store.write(
        lambda tx: tx.execute(
            "UPDATE outbox SET state='dead', finished_at=CASE WHEN object_key='O' THEN ? ELSE ? END"
            " WHERE object_key IN ('Y', 'O')",
            (T0, LEASE),
        )
    )
    sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + retention_sql.FINISHED_IDS
    rows = await store.write(lambda tx: tx.fetchall(sql, ("dead", T1, T1, 5)))
    assert _outbox_rows_touched(rows[0][0]) < 100, rows  # a scan would read 4,000+
    ids = await retention_sql.finished_ids(store, "dead", before=T1, now=T1, limit=5)
    assert len(ids) == 5
    sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + retention_sql.delete_finished_sql(len(ids))
    rows = await store.write(lambda tx: tx.fetchall(sql, (*ids, "dead", T1, T1)))
    assert _outbox_rows_touched(rows[0][0]) < 100, rows
    left = await store.fetchone("SELECT count(*) AS n FROM outbox WHERE state='dead' AND finished_at < ?", (T1,))
    assert left is not None and left["n"] == 5
