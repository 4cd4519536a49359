"""The outbox's per-push statements do not grow with the queue (issue 22), and keep their meaning.

SQLite: the plans of the statements every push or scheduler round runs must probe an index by
chain, receiver or deadline, never walk a receiver's queue; a claim with a skipped receiver that
holds thousands of rows returns the others' chain heads in acceptance order; a broadcast's
legs enqueued at once (``enqueue_many``) are blocked and coalesced exactly as one by one.
The retention sweep's chunks of finished messages and audit entries read their indexes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import outbox as outbox_sql
from storage import outcomes as outcome_sql
from storage import retention as retention_sql
from storage.sqlite import SqliteStore
from tests.support.outbox import (
    DEADLINE,
    T0,
    T1,
    check_claims_skip_a_backlog_in_acceptance_order,
    check_delete_delivered,
    check_enqueue_many_coalesces_like_one_by_one,
    platforms,
    queue_backlog_and_others,
)


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


async def test_deleting_delivered_messages_searches_by_id_not_the_whole_outbox(store: SqliteStore) -> None:
    plan = await _plan(store, outcome_sql.delete_pairs_sql(2), (1, 2, 1, "a", 2, "b"))
    searches = [line for line in plan.splitlines() if "outbox" in line]
    assert searches and all("SCAN outbox" not in line for line in searches), plan


async def test_expiry_reads_only_what_expires(store: SqliteStore) -> None:
    plan = await _plan(
        store, "SELECT id FROM outbox WHERE state='pending' AND deadline_at<=? AND request_id NOT IN (?)", (T1, "x")
    )
    assert "outbox_deadline" in plan, plan


async def test_a_claim_skips_a_receivers_backlog_and_keeps_acceptance_order(store: SqliteStore) -> None:
    await queue_backlog_and_others(store, 2000)
    await check_claims_skip_a_backlog_in_acceptance_order(store)


async def test_enqueue_many_blocks_and_coalesces_like_one_by_one(store: SqliteStore) -> None:
    await check_enqueue_many_coalesces_like_one_by_one(store)


async def test_delivered_rows_are_deleted_in_one_statement_matching_id_and_request_id(store: SqliteStore) -> None:
    await check_delete_delivered(store)


async def test_the_retention_sweep_reads_finished_messages_and_audit_entries_by_index(store: SqliteStore) -> None:
    # A chunk of old finished messages (and the /status count per state) must come from
    # outbox_finished, not a walk of the outbox a dead receiver's backlog may fill.
    plan = await _plan(store, retention_sql.FINISHED_IDS, ("dead", T0, T1, 500))
    assert "outbox_finished" in plan and "SCAN outbox" not in plan and "TEMP B-TREE" not in plan, plan
    plan = await _plan(store, retention_sql.FINISHED_FIGURES, ("dead",))
    assert "COVERING INDEX outbox_finished" in plan, plan
    plan = await _plan(store, retention_sql.delete_finished_sql(2), (1, 2, "dead", T0, T1))
    assert "USING INTEGER PRIMARY KEY" in plan, plan  # the chunk's ids, not every old row of the state
    plan = await _plan(store, retention_sql.AUDIT_IDS, (T0, 500))
    assert "audit_log_ts" in plan and "SCAN audit_log" not in plan, plan
    plan = await _plan(store, retention_sql.delete_audit_sql(2), (1, 2, T0))
    assert "USING INTEGER PRIMARY KEY" in plan, plan
