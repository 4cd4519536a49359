"""The Store interface itself (storage/db.py), the same on the SQLite file and on PostgreSQL.

Everything the routing and delivery code relies on without knowing the backend: insert ids, group
commit where a failing job undoes only itself, roll back on exception, one IntegrityError, rows by name and
position, booleans into INTEGER flags, the ``?`` conversion, and reads that see committed data only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from storage.backends import open_store
from storage.db import Store, SyncTx
from storage.errors import IntegrityError
from storage.migrations import postgres_ddl
from tests.support.backends import Databases
from tests.support.waiting import until, wait_for

pytestmark = pytest.mark.both_backends

SCRATCH = """CREATE TABLE scratch (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    flag INTEGER NOT NULL DEFAULT 0,
    amount REAL,
    note TEXT
)"""


@pytest.fixture
async def store(databases: Databases) -> AsyncIterator[Store]:
    opened = open_store(databases.new("store"))
    await opened.open()
    ddl = postgres_ddl(SCRATCH) if opened.dialect.name == "postgresql" else SCRATCH
    async with opened.transaction() as tx:
        await tx.execute(ddl)
    yield opened
    await opened.close()


def add(name: str, **columns: Any) -> Callable[[SyncTx], int]:
    """A write job inserting one scratch row; returns its id."""
    names = ["name", *columns]
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO scratch ({', '.join(names)}) VALUES ({marks})"
    return lambda tx: tx.insert(sql, (name, *columns.values()))


async def names(store: Store) -> list[str]:
    return [row["name"] for row in await store.fetchall("SELECT name FROM scratch ORDER BY id")]


async def test_insert_returns_the_new_rows_id(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.insert("INSERT INTO scratch (name) VALUES (?)", ("a",))
        second = await tx.insert("INSERT INTO scratch (name) VALUES (?)", ("b",))
    third = await store.write(add("c"))
    assert first < second < third
    rows = await store.fetchall("SELECT id, name FROM scratch ORDER BY id")
    assert [(row["id"], row["name"]) for row in rows] == [(first, "a"), (second, "b"), (third, "c")]


async def test_queued_write_jobs_share_one_commit_and_a_failing_job_undoes_only_itself(store: Store) -> None:
    def job(n: int) -> Callable[[SyncTx], int]:
        def run(tx: SyncTx) -> int:
            tx.execute("INSERT INTO scratch (name) VALUES (?)", (f"n{n}",))
            if n == 2:
                raise ValueError("job 2 fails after its insert")
            if n == 4:  # a constraint error: on PostgreSQL it aborts the transaction up to the SAVEPOINT
                tx.execute("INSERT INTO scratch (name) VALUES (?)", ("n0",))
            return n

        return run

    before = store.commits
    results = await asyncio.gather(*(store.write(job(n)) for n in range(6)), return_exceptions=True)
    assert store.commits == before + 1  # queued together: one COMMIT
    assert [results[n] for n in (0, 1, 3, 5)] == [0, 1, 3, 5]
    assert isinstance(results[2], ValueError) and isinstance(results[4], IntegrityError)
    assert await names(store) == ["n0", "n1", "n3", "n5"]
    # The writer is fine afterwards.
    await store.write(add("after"))
    assert (await names(store))[-1] == "after"


async def test_jobs_of_one_batch_see_each_others_writes_and_their_own_counts(store: Store) -> None:
    """A batch runs its jobs in order in one transaction (pipelined on PostgreSQL): what a job
    reads, counts or gets back as an id reflects every statement before it."""

    def rename(old: str, new: str) -> Callable[[SyncTx], int]:
        return lambda tx: tx.execute_rowcount("UPDATE scratch SET name=? WHERE name=?", (new, old))

    def read(name: str) -> Callable[[SyncTx], int]:
        return lambda tx: len(tx.fetchall("SELECT id FROM scratch WHERE name=?", (name,)))

    jobs = [add("a"), add("b"), rename("a", "c"), read("c"), rename("a", "d"), add("e")]
    before = store.commits
    results = await asyncio.gather(*(store.write(job) for job in jobs))
    assert store.commits == before + 1
    assert results[1] == results[0] + 1 and results[5] > results[1]
    assert results[2:5] == [1, 1, 0]
    assert await names(store) == ["c", "b", "e"]


async def test_transaction_rolls_back_on_exception(store: Store) -> None:
    await store.write(add("kept"))
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("dropped",))
            await tx.execute("UPDATE scratch SET note=? WHERE name=?", ("touched", "kept"))
            row = await tx.fetchone("SELECT count(*) AS n FROM scratch")
            assert row is not None and row["n"] == 2  # the transaction sees its own writes
            raise RuntimeError("changed my mind")
    rows = await store.fetchall("SELECT name, note FROM scratch")
    assert [(row["name"], row["note"]) for row in rows] == [("kept", None)]
    async with store.transaction() as tx:  # the connection is usable again
        await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("next",))
    assert await names(store) == ["kept", "next"]


def _duplicate_in_write(store: Store) -> Awaitable[Any]:
    return store.write(add("dup"))


async def _duplicate_in_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("dup",))


async def _duplicate_insert_in_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.insert("INSERT INTO scratch (name) VALUES (?)", ("dup",))


async def _duplicate_in_executemany(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.executemany("INSERT INTO scratch (name) VALUES (?)", [("fresh",), ("dup",)])


async def _null_in_write(store: Store) -> None:
    await store.write(lambda tx: tx.execute("INSERT INTO scratch (name) VALUES (?)", (None,)))


async def _missing_platform(store: Store) -> None:  # a foreign key of the real schema
    await store.write(
        lambda tx: tx.execute(
            "INSERT INTO endpoints (platform_id, module, role, url) VALUES (?, ?, ?, ?)",
            (999, "locations", "RECEIVER", "http://127.0.0.1:9/x"),
        )
    )


@pytest.mark.parametrize(
    "violate",
    [
        _duplicate_in_write,
        _duplicate_in_transaction,
        _duplicate_insert_in_transaction,
        _duplicate_in_executemany,
        _null_in_write,
        _missing_platform,
    ],
    ids=["unique-write", "unique-transaction", "unique-insert", "unique-executemany", "not-null", "foreign-key"],
)
async def test_a_refused_write_is_storage_integrity_error(
    store: Store, violate: Callable[[Store], Awaitable[Any]]
) -> None:
    await store.write(add("dup"))
    with pytest.raises(IntegrityError):
        await violate(store)
    assert await names(store) == ["dup"]  # nothing of the refused write is left


async def test_rows_by_name_and_by_position(store: Store) -> None:
    await store.write(add("row", flag=1, amount=2.5, note="n"))
    row = await store.fetchone("SELECT id, name, flag, amount, note AS remark FROM scratch")
    assert row is not None
    assert row["name"] == row[1] == "row" and row["flag"] == row[2] == 1
    assert row["amount"] == 2.5 and row["remark"] == row[4] == "n"
    assert row.keys() == ["id", "name", "flag", "amount", "remark"] and len(row) == 5
    assert dict(row) == {"id": row[0], "name": "row", "flag": 1, "amount": 2.5, "remark": "n"}
    assert tuple(row) == (row[0], "row", 1, 2.5, "n")
    assert await store.fetchone("SELECT name FROM scratch WHERE name=?", ("none",)) is None
    in_tx = await store.write(lambda tx: tx.fetchone("SELECT name, flag FROM scratch"))
    assert in_tx is not None and (in_tx["name"], in_tx[1]) == ("row", 1)


async def test_booleans_go_into_integer_columns_as_one_and_zero(store: Store) -> None:
    await store.write(add("yes", flag=True))
    await store.write(add("no", flag=False))
    async with store.transaction() as tx:
        await tx.execute("UPDATE scratch SET amount=? WHERE flag=?", (1.5, True))
    rows = await store.fetchall(
        "SELECT name, flag, amount FROM scratch WHERE flag=? OR flag=? ORDER BY id", (True, False)
    )
    assert [(row["name"], row["flag"], row["amount"]) for row in rows] == [("yes", 1, 1.5), ("no", 0, None)]
    row = await store.fetchone("SELECT count(*) AS n FROM scratch WHERE flag=?", (False,))
    assert row is not None and row["n"] == 1


async def test_percent_and_question_mark_in_literals_and_comments_survive_the_placeholder_conversion(
    store: Store,
) -> None:
    note = "100% sure? yes -- really"
    await store.write(lambda tx: tx.execute(f"INSERT INTO scratch (name, note) VALUES ('what?', '{note}') -- why? 5%"))
    row = await store.fetchone("SELECT name, note, 'a%b?' AS lit FROM scratch WHERE note LIKE '100%' -- a? 5%\n")
    assert row is not None and (row["name"], row["note"], row["lit"]) == ("what?", note, "a%b?")
    row = await store.fetchone(
        'SELECT ? AS p, "odd?%" AS q FROM (SELECT note, \'x\' AS "odd?%" FROM scratch) s'
        " WHERE note LIKE '100%' -- really? 5%\n AND note<>?",
        ("given", "other"),
    )
    assert row is not None and (row["p"], row["q"]) == ("given", "x")


async def test_reads_see_only_committed_data(store: Store) -> None:
    await store.write(add("before"))
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO scratch (name) VALUES (?)", ("uncommitted",))
            await tx.execute("UPDATE scratch SET note=? WHERE name=?", ("changed", "before"))
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    rows = await store.fetchall("SELECT name, note FROM scratch ORDER BY id")
    assert [(row["name"], row["note"]) for row in rows] == [("before", None)]
    release.set()
    await task
    rows = await store.fetchall("SELECT name, note FROM scratch ORDER BY id")
    assert [(row["name"], row["note"]) for row in rows] == [("before", "changed"), ("uncommitted", None)]


async def test_one_leader_per_role_within_a_database_and_none_shared_across_databases(
    store: Store, databases: Databases
) -> None:
    if store.dialect.name == "sqlite":
        assert await store.try_lead("sweeps")  # one process per SQLite file: it always leads
        return
    assert await store.try_lead("sweeps")
    same = open_store(store.describe())  # the same schema (the test URL has no password to redact)
    other = open_store(databases.new("other"))  # another schema: another cluster
    await same.open()
    await other.open()
    try:
        assert not await same.try_lead("sweeps") and await same.try_lead("probes")
        assert await other.try_lead("sweeps")
        await store.close()  # the leader goes away: the server drops its lock as the session ends
        freed = await until(lambda: same.try_lead("sweeps"), bool, step=0.025)
        assert freed, "the lease was not free after its holder closed"
    finally:
        await same.close()
        await other.close()


async def test_notifications_reach_the_same_database_only(store: Store, databases: Databases) -> None:
    if store.dialect.name == "sqlite":
        return  # one process per SQLite file: nobody to tell
    same = open_store(store.describe())
    other_url = databases.new("other")  # another schema: another cluster
    other, other_peer = open_store(other_url), open_store(other_url)
    for opened in (same, other, other_peer):
        await opened.open()
    heard_same: asyncio.Queue[str] = asyncio.Queue()
    heard_other: list[str] = []
    try:
        same.subscribe("ocpi_hub_cache", heard_same.put_nowait)
        other.subscribe("ocpi_hub_cache", heard_other.append)
        for listener in (same, other):
            await asyncio.wait_for(listener.listening.wait(), 5)  # type: ignore[attr-defined]
        await store.notify("ocpi_hub_cache", "registry")
        assert await asyncio.wait_for(heard_same.get(), 5) == "registry"
        # The server hands notifications to a listener in commit order: once ``other`` hears its own
        # cluster's later one, a stray "registry" would have come before it.
        await other_peer.notify("ocpi_hub_cache", "own cluster")
        await wait_for(lambda: bool(heard_other), what="the other cluster hears its own notification")
        assert heard_other == ["own cluster"]
    finally:
        for opened in (same, other, other_peer):
            await opened.close()


async def test_a_request_commit_does_not_wait_behind_a_background_backlog(store: Store) -> None:
    """Background jobs (delivery outcomes, fan-out legs) go BACKGROUND_PER_COMMIT per commit; a job a
    partner waits for joins the next commit whatever their backlog (issue 22)."""
    from storage.db import BACKGROUND_PER_COMMIT

    backlog = 6 * BACKGROUND_PER_COMMIT
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    running = threading.Event()

    def blocker(tx: SyncTx) -> int:  # holds the writer until the backlog and the request are queued
        running.set()
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(timeout=10)
        return tx.insert("INSERT INTO scratch (name) VALUES (?)", ("blocker",))

    first = asyncio.create_task(store.write(blocker, background=True))
    await wait_for(running.is_set, timeout=5)  # the writer is busy with the blocker's batch
    done: list[str] = []

    async def background(n: int) -> None:
        await store.write(add(f"b{n}"), background=True)
        done.append(f"b{n}")

    async def urgent() -> None:
        await store.write(add("request"))
        done.append("request")

    tasks = [asyncio.create_task(background(n)) for n in range(backlog)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(urgent()))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *tasks)
    # The request went in the first commit after the blocker's, with at most one share of the backlog.
    assert done.index("request") <= BACKGROUND_PER_COMMIT
    assert sorted(done) == sorted([*(f"b{n}" for n in range(backlog)), "request"])
    assert len(await names(store)) == backlog + 2


async def test_background_jobs_progress_under_a_steady_stream_of_requests(store: Store) -> None:
    """Every commit takes some background jobs: requests arriving all the time never starve them."""
    stop = asyncio.Event()

    async def requests(stream: int) -> None:
        n = 0
        while not stop.is_set() and n < 20_000:  # bounded: stops by itself
            await store.write(add(f"r{stream}-{n}"))
            n += 1

    streams = [asyncio.create_task(requests(stream)) for stream in range(4)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(store.write(add(f"b{n}"), background=True) for n in range(100))), timeout=20
        )
        assert not any(stream.done() for stream in streams)  # done while the requests kept coming
    finally:
        stop.set()
        await asyncio.gather(*streams)
    rows = await names(store)
    assert sum(1 for name in rows if name.startswith("b")) == 100


async def test_a_slow_read_does_not_hold_the_others(store: Store) -> None:
    """A read that takes a second (an overview's counts over a million rows) leaves the other reads free.

    SQLite reads went through one connection: /health, GET-all pages and open-routing lookups
    waited behind /status's counts (0.7 s at 1,000,000 stored objects). PostgreSQL has its pool.
    """
    if store.dialect.name == "postgresql":
        slow_sql = "SELECT pg_sleep(1.0) IS NULL AS done"
    else:  # about a second of SQLite's own work on this machine
        slow_sql = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000)"
            " SELECT count(*) AS done FROM c"
        )
    slow = asyncio.create_task(store.fetchall(slow_sql))
    await asyncio.sleep(0.05)  # the slow read is on its connection
    for _ in range(3):
        rows = await asyncio.wait_for(store.fetchall("SELECT 1 AS one"), 5)
        assert rows[0]["one"] == 1
    assert not slow.done()  # the quick reads did not wait for it
    await asyncio.wait_for(slow, 60)
