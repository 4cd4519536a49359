"""Two hub processes' stores on one PostgreSQL database: leases, per-object order, leader lease, NOTIFY.

Each test opens two PostgresStore objects on one fresh schema, as two processes would; the
outbox functions are the ones the scheduler calls (storage/outbox.py). Times are explicit
ISO strings, so lease expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from storage import claims as claims_sql
from storage import outbox as outbox_sql
from storage import outcomes as outcome_sql
from storage.db import SyncTx
from storage.errors import StorageUnavailable
from storage.outbox import NewMessage
from storage.postgres import PostgresStore
from tests.support.backends import needs_postgres, postgres_schema, postgres_url
from tests.support.waiting import until, wait_for

pytestmark = needs_postgres

T0 = "2026-11-29T12:00:00.000Z"
T1 = "2026-11-29T12:00:10.000Z"  # within a lease taken at T0
T2 = "2026-11-29T12:01:00.000Z"  # past it
LEASE = "2026-11-29T12:00:30.000Z"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores (two processes) on one fresh schema."""
    with postgres_schema() as url:
        a, b = PostgresStore(url), PostgresStore(url)
        await a.open()
        await b.open()
        await a.write(_platform)
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


async def queued_for_a_lock(a: PostgresStore, b: PostgresStore, b_work: asyncio.Future[Any]) -> None:
    """Wait (bounded) until the server shows b's writer waiting for an advisory lock a holds."""

    async def waiting() -> int:
        row = await a.fetchone(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype='advisory' AND NOT granted AND pid=?",
            (b.writer.info.backend_pid,),
        )
        assert not b_work.done(), "b's work ran while a held the lock"
        return int(row["n"]) if row is not None else 0

    assert await until(waiting, lambda n: n > 0, step=0.01) > 0, "b never queued behind a's lock"


def _platform(tx: SyncTx) -> None:
    tx.execute(
        "INSERT INTO platforms (id, name, status, initiated_by, created_at, updated_at)"
        " VALUES (1, 'receiver', 'CONNECTED', 'hub', ?, ?)",
        (T0, T0),
    )


def _message(key: str, n: int, *, lease_until: str | None = None) -> NewMessage:
    return NewMessage(
        receiver_platform_id=1,
        module="sessions",
        object_key=key,
        method="PUT",
        url=f"http://127.0.0.1:9/sessions/{key}",
        headers={"X-Request-ID": f"{key}-{n}"},
        body=b"{}",
        created_at=T0,
        deadline_at="2026-11-30T12:00:00.000Z",
        request_id=f"{key}-{n}-{uuid.uuid4().hex[:6]}",
        lease_until=lease_until,
    )


async def _enqueue(store: PostgresStore, message: NewMessage) -> tuple[int, bool]:
    result: tuple[int, bool] = await store.write(lambda tx: outbox_sql.enqueue(tx, message))
    return result


async def _claim(store: PostgresStore, now: str = T1, limit: int = 100) -> list[str]:
    rows = await claims_sql.claim_heads(store, now=now, lease_until=LEASE, limit=limit)
    return [r.object_key for r in rows]


async def test_a_claimed_head_is_not_claimable_by_another_process_until_its_lease_expires(pair) -> None:
    a, b = pair
    for key in ("A", "B", "C"):
        await _enqueue(a, _message(key, 1))
    assert await _claim(a) == ["A", "B", "C"]
    assert await _claim(b) == []  # leased to a until LEASE
    assert await _claim(a) == ["A", "B", "C"]  # its own leases: a may read them again
    assert await _claim(b, now=T2) == ["A", "B", "C"]  # a died: its leases ran out


async def test_only_the_head_of_a_chain_is_claimable_across_processes(pair) -> None:
    a, b = pair
    first, _ = await _enqueue(a, _message("S", 1))
    _, blocked = await _enqueue(b, _message("S", 2))
    assert blocked  # b saw a's committed message of the same object
    assert await _claim(a) == ["S"]
    assert await _claim(b) == []  # the head is a's; the second waits behind it
    rows = await claims_sql.claim_heads(a, now=T1, lease_until=LEASE, limit=10)
    assert [r.id for r in rows] == [first]
    await a.write(
        lambda tx: outcome_sql.finish(tx, first, http_status=200, ocpi_status=1000, state="delivered", now=T1)
    )
    assert await _claim(b) == ["S"]


async def test_concurrent_claims_never_hand_one_message_to_two_processes(pair) -> None:
    a, b = pair
    for n in range(60):
        await _enqueue(a, _message(f"K{n}", 1))
    got_a: list[str] = []
    got_b: list[str] = []
    for _ in range(6):
        ra, rb = await asyncio.gather(_claim(a, limit=7), _claim(b, limit=7))
        got_a += ra
        got_b += rb
        # Each process delivers what it claimed (deleting it), then claims again.
        for store, keys in ((a, ra), (b, rb)):
            for key in keys:
                await store.write(
                    lambda tx, key=key: tx.execute("DELETE FROM outbox WHERE object_key=?", (key,))  # type: ignore[misc]
                )
    assert not set(got_a) & set(got_b)
    assert len(got_a) + len(got_b) == len(set(got_a) | set(got_b))


async def test_the_fast_path_lease_keeps_a_push_in_its_process_until_it_lets_go(pair) -> None:
    a, b = pair
    message_id, blocked = await _enqueue(a, _message("F", 1, lease_until=LEASE))
    assert not blocked
    assert await _claim(b) == []  # a is sending it right now
    assert await claims_sql.next_due_at(b) == LEASE  # b looks again when a's lease would run out
    # a's attempt failed: the retry may be made by any process.
    await a.write(lambda tx: outcome_sql.retry_later(tx, message_id, next_attempt_at=T1, error="503", http_status=503))
    assert await _claim(b) == ["F"]


async def test_a_late_record_from_a_process_that_lost_its_lease_changes_nothing(pair) -> None:
    a, b = pair
    message_id, _ = await _enqueue(a, _message("L", 1, lease_until=LEASE))
    assert await _claim(b, now=T2) == ["L"]  # a stalled past its lease: b took over
    await a.write(lambda tx: outcome_sql.bury(tx, message_id, error="late", now=T2))
    await a.write(
        lambda tx: outcome_sql.retry_later(tx, message_id, next_attempt_at=T2, error="late", http_status=None)
    )
    row = await outbox_sql.get(b, message_id)
    assert row is not None and row.state == "pending" and row.attempts == 0


async def test_expiry_leaves_a_message_another_live_process_is_sending(pair) -> None:
    a, b = pair
    await _enqueue(a, _message("E", 1, lease_until="2026-12-01T00:00:00.000Z"))
    expired = await b.write(lambda tx: outcome_sql.expire(tx, now="2026-11-30T13:00:00.000Z"))
    assert expired == 0
    expired = await b.write(lambda tx: outcome_sql.expire(tx, now="2026-12-01T00:00:01.000Z"))
    assert expired == 1


async def test_a_heartbeat_renews_the_leases_of_its_process_only(pair) -> None:
    a, b = pair
    await _enqueue(a, _message("R", 1, lease_until=LEASE))
    await _enqueue(b, _message("Q", 1, lease_until=LEASE))
    renewed = await a.write(lambda tx: claims_sql.renew_leases(tx, lease_until="2026-11-29T13:00:00.000Z"))
    assert renewed == 1
    assert await _claim(b, now=T2) == ["Q"]  # a's lease on R now runs to 13:00; Q is b's own
    assert await _claim(a, now=T2) == ["R", "Q"]  # b did not renew: its lease on Q ran out


async def test_one_leader_per_role_and_a_new_one_when_it_dies(pair) -> None:
    a, b = pair
    assert await a.try_lead("maintenance")
    assert await a.try_lead("maintenance")  # still a's
    assert not await b.try_lead("maintenance")
    assert await b.try_lead("pull")  # another role, another lease
    await a.close()  # the leader's session ends: PostgreSQL releases its lock (once it sees the end)
    # Bounded: the server ends a's session within moments.
    assert await until(lambda: b.try_lead("maintenance"), bool), "b never took over the maintenance lease"


async def test_notify_reaches_the_other_process_not_the_sender(pair) -> None:
    a, b = pair
    heard_a: list[str] = []
    heard_b: asyncio.Queue[str] = asyncio.Queue()
    a.subscribe("ocpi_hub_cache", heard_a.append)
    b.subscribe("ocpi_hub_cache", heard_b.put_nowait)
    await asyncio.wait_for(asyncio.gather(a.listening.wait(), b.listening.wait()), 5)
    await a.notify("ocpi_hub_cache", "registry")
    assert await asyncio.wait_for(heard_b.get(), 5) == "registry"
    # b answers after hearing it: the server hands notifications to each listener in commit order,
    # so once a hears b's answer, its own "registry" would have come before (not a wait for nothing).
    await b.notify("ocpi_hub_cache", "answer")
    await wait_for(lambda: bool(heard_a), what="a hears b's answer")
    assert heard_a == ["answer"]


async def test_a_channel_subscribed_while_listening_is_heard_at_once(pair, monkeypatch) -> None:
    """A subscribe() after the LISTEN connection is up takes effect without waiting for the poll.

    The poll is stretched to a minute: the late channel is heard only because the listening task
    was woken to LISTEN to it (before, a LISTEN sent beside notifies() was lost about once in three).
    """
    import storage.postgres as pg

    a, b = pair
    monkeypatch.setattr(pg, "LISTEN_POLL", 60.0)
    b.subscribe("ocpi_hub_cache", lambda _payload: None)
    await asyncio.wait_for(b.listening.wait(), 5)
    heard: asyncio.Queue[str] = asyncio.Queue()
    b.subscribe("ocpi_hub_late", heard.put_nowait)
    await wait_for(lambda: b._scoped("ocpi_hub_late") in b._listened, what="b listens to the late channel")
    await a.notify("ocpi_hub_late", "late")
    assert await asyncio.wait_for(heard.get(), 5) == "late"


async def test_close_wakes_the_listener_instead_of_cancelling_it(pair, monkeypatch) -> None:
    """close() NOTIFYs the store's own channel: the listener returns by itself, not cancelled.

    With the poll stretched to a minute, a close that relied on the poll (or on cancelling
    inside psycopg's notifies(), which once hung shutdowns) would not finish within the bound.
    """
    import storage.postgres as pg

    a, _ = pair
    monkeypatch.setattr(pg, "LISTEN_POLL", 60.0)
    polling = asyncio.Event()
    notifies = psycopg.AsyncConnection.notifies

    def entering(conn: psycopg.AsyncConnection[Any], **kwargs: Any) -> Any:
        polling.set()  # the listener is about to wait in notifies() with the long poll
        return notifies(conn, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "notifies", entering)
    a.subscribe("ocpi_hub_cache", lambda _payload: None)
    await asyncio.wait_for(polling.wait(), 5)
    task = a._listen_task
    assert task is not None
    await asyncio.wait_for(a.close(), 10)
    assert task.done() and not task.cancelled()


async def test_the_object_lock_makes_a_second_process_wait_for_the_first_commit(pair) -> None:
    """Two processes' jobs for one object: the second reads only after the first committed.

    Without the lock both would read the same stored copy and the later write would drop the
    earlier one's change (a PATCH appending a charging period, say).
    """
    a, b = pair
    a_holds, release = threading.Event(), threading.Event()

    def first(tx: SyncTx) -> None:
        outbox_sql.lock_object(tx, "sessions", "BE/BEC/S1")
        # A batch is pipelined (storage/statements.py): reading a result is what proves the
        # server ran the lock statement before it; signalling earlier let b take the lock first.
        tx.fetchone("SELECT 1 AS one")
        a_holds.set()
        release.wait(5)  # bounded: the test releases it
        tx.execute(
            "INSERT INTO platforms (id, name, status, initiated_by, created_at, updated_at)"
            " VALUES (2, 'marker', 'CONNECTED', 'hub', ?, ?)",
            (T0, T0),
        )

    def second(tx: SyncTx) -> bool:
        outbox_sql.lock_object(tx, "sessions", "BE/BEC/S1")
        return tx.fetchone("SELECT id FROM platforms WHERE id=2") is not None

    a_write = asyncio.create_task(a.write(first))
    assert await asyncio.to_thread(a_holds.wait, 5)
    b_write = asyncio.create_task(b.write(second))
    await queued_for_a_lock(a, b, b_write)
    release.set()
    await a_write
    assert await asyncio.wait_for(b_write, 5) is True


async def test_two_batches_locking_the_same_objects_wait_instead_of_deadlocking(pair, caplog) -> None:
    """Process a's batch locks Y then X, b's X then Y: the declared locks are taken first, sorted.

    Taken in job order instead, a holds Y and wants X while b holds X and wants Y: PostgreSQL
    breaks that deadlock only after deadlock_timeout (a second) and a batch runs again.
    """
    caplog.set_level(logging.DEBUG, logger="storage.statements")
    a, b = pair
    a_holds, release = threading.Event(), threading.Event()

    def job(key: str, result: str, *, hold: bool = False) -> Callable[[SyncTx], str]:
        def run(tx: SyncTx) -> str:
            outbox_sql.lock_object(tx, "sessions", key)
            tx.fetchone("SELECT 1")  # the lock is held now (a pipelined batch would send it later)
            if hold:
                a_holds.set()
                release.wait(5)  # bounded: the test releases it
            return result

        return run

    def write(store: PostgresStore, key: str, result: str, *, hold: bool = False) -> Awaitable[str]:
        return store.write(job(key, result, hold=hold), locks=[("sessions", key)])

    first = asyncio.gather(write(a, "Y", "a1", hold=True), write(a, "X", "a2"))  # one batch
    assert await asyncio.to_thread(a_holds.wait, 5)
    second = asyncio.gather(write(b, "X", "b1"), write(b, "Y", "b2"))
    await queued_for_a_lock(a, b, second)
    release.set()
    assert await asyncio.wait_for(first, 10) == ["a1", "a2"]
    assert await asyncio.wait_for(second, 10) == ["b1", "b2"]
    assert "deadlock" not in caplog.text.lower()


async def test_a_lost_write_connection_fails_one_batch_and_is_replaced(pair) -> None:
    a, _ = pair
    with psycopg.connect(postgres_url(), autocommit=True) as conn:  # what a server restart does to the writer
        conn.execute("SELECT pg_terminate_backend(%s)", (a.writer.info.backend_pid,))
    with pytest.raises(StorageUnavailable):  # the store's own error: the HTTP layer answers 503, retry later
        await _enqueue(a, _message("W", 1))  # not committed: the sender is told so, not "accepted"
    message_id, blocked = await _enqueue(a, _message("W", 2))  # on a new connection
    assert not blocked  # the failed batch left nothing behind
    assert await outbox_sql.get(a, message_id) is not None


async def test_maintenance_refreshes_the_outbox_statistics(pair) -> None:
    a, _ = pair
    await _enqueue(a, _message("M", 1))
    await a.maintain()
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(last_analyze, last_autoanalyze) IS NOT NULL FROM pg_stat_user_tables"
            " WHERE relname = 'outbox' AND schemaname = %s",
            (a.schema,),
        ).fetchone()
    assert row == (True,)
