"""A full or unreachable database, seen from the wire: 503 with Retry-After and nothing stored.

Full: /status and /metrics say so, the operator's log has one ERROR, and writes resume by
themselves once there is room. SQLite's ``PRAGMA max_page_count`` makes the file "full"
(SQLITE_FULL, the error a full file system gives) without filling the machine's disk;
PostgreSQL's disk_full is checked at the dialect. Unreachable (PostgreSQL): the server ends the
hub's connections, as a restart or failover does, or a TCP proxy between the two is cut
(tests/support/tcp_proxy.py). Locked (SQLite): another connection holds the write lock. And the
WAL file does not keep a burst's size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
import pytest

from hub.keys import STORE
from hub.observe.traffic.recorder import TRAFFIC
from routing.tasks import report_round_failure
from storage.errors import StorageFull, StorageUnavailable
from storage.postgres import PostgresStore
from storage.postgres_dialect import PostgresDialect
from storage.sqlite import SqliteStore
from tests.support.backends import needs_postgres
from tests.support.console import Console
from tests.support.hub import ADMIN, HubHandle
from tests.support.ops import DIRECT, pair, session
from tests.support.tcp_proxy import CuttableProxy
from tests.support.waiting import settle, until, wait_for

CAP = 1_000  # bounded: pushes tried before the capped file must have refused one


async def _cap(store: Any, pages: int | None) -> None:
    """Cap the SQLite file at its current size (None: lift the cap), on the writer thread."""
    await store.run_on_writer(lambda c: c.execute(f"PRAGMA max_page_count = {pages or 2**31 - 2}").fetchone())


async def _page_count(store: Any) -> int:
    return int(await store.run_on_writer(lambda c: c.execute("PRAGMA page_count").fetchone()[0]))


async def _push(hub: HubHandle, cpo: Any, session_id: str) -> tuple[int, Any, Any]:
    body = session(session_id)
    body["meter_id"] = "M" * 255  # the longest the field allows: the file fills in fewer pushes
    return await hub.call(
        "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session_id}", token=cpo.hub_token, json=body, headers=DIRECT
    )


async def _metric(hub: HubHandle, name: str) -> float | None:
    async with hub.session.get(hub.base + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
        text = await r.text()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else None


async def test_a_full_database_refuses_with_503_keeps_nothing_and_resumes_by_itself(
    hub: HubHandle, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = hub.app[STORE]
    assert isinstance(store, SqliteStore)
    cpo, emsp = await pair(hub, make_peer)
    await settle(hub)
    await _cap(store, await _page_count(store))

    refused: list[tuple[str, Any, Any]] = []
    for n in range(CAP):
        status, body, headers = await _push(hub, cpo, f"F{n}")
        if status != 200:
            refused.append((f"F{n}", body, headers))
            status, body, headers = await _push(hub, cpo, f"G{n}")  # a second one: still refused
            refused.append((f"G{n}", body, headers))
            assert status == 503, body
            break
        assert body["status_code"] == 1000, body
    assert refused, f"{CAP} pushes fitted in a capped file"
    # Pushes at the same moment share a commit (group commit): SQLite undoes the whole transaction
    # on SQLITE_FULL, so each of them is refused alike (they were 500s: the savepoint was gone).
    together = await asyncio.gather(*[_push(hub, cpo, f"C{n}") for n in range(8)])
    assert [(status, body["status_code"]) for status, body, _ in together] == [(503, 3000)] * 8, together
    refused += [(f"C{n}", body, headers) for n, (_, body, headers) in enumerate(together)]
    for _, body, headers in refused:
        assert body["status_code"] == 3000 and "database is full" in body["status_message"], body
        assert headers["Retry-After"] == "30"
    await settle(hub)
    received = {r.path.rsplit("/", 1)[-1] for r in emsp.requests_to("/sessions/receiver/")}
    assert not {sid for sid, _, _ in refused} & received  # nothing of a refused push went anywhere

    for n in range(CAP):  # the admin API too (a small row may still fit in a page's free room)
        status, body = await hub.admin("POST", "/admin/invitations", {"name": f"while full {n}"})
        if status != 201:
            break
    assert status == 503 and "database is full" in str(body), body
    _, overview = await hub.admin("GET", "/status")
    assert overview["status"] == "degraded", overview["reasons"]
    [reason] = [r for r in overview["reasons"] if r.startswith("database full:")]
    assert overview["database"]["full"]["refused_writes"] >= 2, overview["database"]
    assert await _metric(hub, "ocpi_hub_database_full") == 1.0
    full_lines = [r for r in caplog.records if r.levelno == logging.ERROR and "is full" in r.getMessage()]
    assert len(full_lines) == 1  # once when it starts, not once per refused write
    assert not [r for r in caplog.records if "ROLLBACK failed" in r.getMessage()]  # SQLite undid it itself
    traffic = hub.app[TRAFFIC]
    for n in range(3):  # three flushes of traffic records that do not fit: one line, not three
        await _push(hub, cpo, f"T{n}")
        await traffic.flush()
    dropped = await _metric(hub, "ocpi_hub_traffic_log_dropped_total")
    assert dropped is not None and dropped > 0
    assert len([r for r in caplog.records if "records are dropped while the database is full" in r.getMessage()]) == 1

    await _cap(store, None)  # the operator freed space
    store.full_quiet = 0.0  # (the state ends with the first commit after the last refusal, not 60 s on)
    sid = refused[0][0]
    status, body, _ = await _push(hub, cpo, sid)
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: any(r.path.endswith(f"/sessions/receiver/BE/BEC/{sid}") for r in emsp.received))
    _, overview = await hub.admin("GET", "/status")
    assert overview["database"]["full"] is None and reason not in overview["reasons"], overview["reasons"]
    assert await _metric(hub, "ocpi_hub_database_full") == 0.0
    assert any("takes writes again" in r.getMessage() for r in caplog.records)


async def test_a_console_change_on_a_full_database_is_a_503_page(hub: HubHandle) -> None:
    store = hub.app[STORE]
    console = Console(hub.base)
    try:
        assert await console.login() == 303
        await _cap(store, await _page_count(store))
        for n in range(CAP):  # invitations until one does not fit
            status, text, _ = await console.post("/console/invitations", {"csrf": console.csrf, "name": f"P{n}"})
            if status != 200:
                break
        assert status == 503 and "Database full" in text, text[:500]
    finally:
        await _cap(store, None)
        await console.close()


async def test_little_free_disk_degrades_status_and_is_a_metric(start_hub: Any) -> None:
    hub = await start_hub(status_disk_free_min_mb=10**12)  # more than any disk: always below
    _, overview = await hub.admin("GET", "/status")
    free = overview["database"]["disk_free_bytes"]
    assert isinstance(free, int) and free > 0
    assert overview["status"] == "degraded"
    assert [r for r in overview["reasons"] if r.startswith("database disk:")], overview["reasons"]
    scraped = await _metric(hub, "ocpi_hub_database_disk_free_bytes")  # free space moves: not equal
    assert scraped is not None and scraped > 0
    assert overview["database"]["full"] is None


async def test_without_a_floor_free_disk_is_only_a_figure(hub: HubHandle) -> None:
    _, overview = await hub.admin("GET", "/status")  # the tests' settings: status_disk_free_min_mb = 0
    assert overview["database"]["disk_free_bytes"] > 0
    assert not [r for r in overview["reasons"] if r.startswith("database")], overview["reasons"]


class _DiskFullConn:
    def execute(self, sql: str, params: Any = ()) -> Any:
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    def cursor(self) -> Any:
        return self

    def executemany(self, sql: str, rows: Any) -> None:
        self.execute(sql)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_postgres_disk_full_is_the_stores_full_error() -> None:
    dialect = PostgresDialect()
    with pytest.raises(StorageFull, match="No space left"):
        dialect.run(_DiskFullConn(), "INSERT INTO t VALUES (?)", (1,))
    with pytest.raises(StorageFull):
        dialect.run_many(_DiskFullConn(), "INSERT INTO t VALUES (?)", [(1,)])


@needs_postgres
async def test_a_lost_database_connection_is_a_503_and_the_next_push_goes_through(
    shared_database: str, start_hub: Any, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await start_hub(database=shared_database)
    cpo, emsp = await pair(hub, make_peer)
    await settle(hub)
    writer = hub.app[STORE].writer
    async with await psycopg.AsyncConnection.connect(shared_database, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (writer.info.backend_pid,))
    status, body, headers = await _push(hub, cpo, "LOST")
    assert (status, body["status_code"]) == (503, 3000), body  # was 500 "internal error"
    assert "database is unavailable" in body["status_message"] and headers["Retry-After"] == "5", body
    status, body, _ = await _push(hub, cpo, "NEXT")  # on a new write connection
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/NEXT") for r in emsp.received))
    await settle(hub)
    assert not [r for r in emsp.received if r.path.endswith("/LOST")]  # the refused push was kept nowhere
    assert not [r for r in caplog.records if "ROLLBACK failed" in r.getMessage()]  # nothing to roll back there


@needs_postgres
async def test_an_unreachable_server_is_tried_with_backoff_and_writes_are_refused_between(
    shared_database: str, start_hub: Any, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """While the server stays down, not every batch tries to connect (and logs it): the writes in
    between are refused at once, each a 503; once it is back, the next try reconnects."""
    hub = await start_hub(database=shared_database)
    cpo, emsp = await pair(hub, make_peer)
    await settle(hub)
    store = hub.app[STORE]
    connect = store._connect_writer  # type: ignore[attr-defined]
    tries: list[int] = []

    def down() -> Any:
        tries.append(1)
        raise StorageUnavailable("cannot connect: connection refused")  # what _connect_writer raises then

    store._connect_writer = down  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(shared_database, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (store.writer.info.backend_pid,))
    answers = [await _push(hub, cpo, f"DOWN{n}") for n in range(6)]
    assert [(a[0], a[1]["status_code"], a[2]["Retry-After"]) for a in answers] == [(503, 3000, "5")] * 6
    assert len(tries) <= 2, tries  # one try, then refusals until the backoff's next try (0.5 s)
    assert len([r for r in caplog.records if "writes are refused (503)" in r.getMessage()]) == len(tries)

    store._connect_writer = connect  # type: ignore[attr-defined]
    store._reconnect_at = 0.0  # type: ignore[attr-defined]  # (not waiting out the backoff)
    status, body, _ = await _push(hub, cpo, "BACK")
    assert (status, body["status_code"]) == (200, 1000), body
    assert any("back after" in r.getMessage() for r in caplog.records)
    await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/BACK") for r in emsp.received))
    assert not [r for r in emsp.received if "/DOWN" in r.path]


def test_a_server_that_refuses_connections_is_the_stores_unavailable_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")  # nothing listens on port 1
    with pytest.raises(StorageUnavailable, match="cannot connect"):
        store._connect_writer()  # type: ignore[attr-defined]


async def test_a_sqlite_file_another_program_holds_locked_is_a_503_and_nothing_more(
    hub: HubHandle, make_peer: Any
) -> None:
    store = hub.app[STORE]
    cpo, emsp = await pair(hub, make_peer)
    await settle(hub)
    await store.run_on_writer(lambda c: c.execute("PRAGMA busy_timeout = 0").fetchone())  # (not 5 s each)
    shell = sqlite3.connect(store.path, isolation_level=None)  # an operator's sqlite3 shell
    try:
        shell.execute("BEGIN IMMEDIATE")  # holds the write lock
        status, body, headers = await _push(hub, cpo, "LOCKED")
        assert (status, body["status_code"], headers["Retry-After"]) == (503, 3000, "5"), body
        assert "database is unavailable" in body["status_message"]
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    status, body, _ = await _push(hub, cpo, "FREE")
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/FREE") for r in emsp.received))
    assert not [r for r in emsp.received if r.path.endswith("/LOCKED")]


async def test_the_wal_file_is_cut_back_after_a_burst(tmp_path: Path) -> None:
    """A burst (a bulk import) must not leave its size in the WAL file for ever."""
    store = SqliteStore(tmp_path / "hub.sqlite3")
    store.wal_size_limit = 1 << 20  # (64 MB in production: a test's burst would take too long)
    await store.open()
    wal = Path(str(store.path) + "-wal")
    try:

        def burst(tx: Any) -> None:
            tx.execute("CREATE TABLE scratch (x BLOB)")
            tx.executemany("INSERT INTO scratch VALUES (?)", [(os.urandom(2000),) for _ in range(3000)])

        await store.write(burst)
        assert wal.stat().st_size > 4 << 20
        await store.write(lambda tx: tx.execute("DELETE FROM scratch"))
        for _ in range(3):  # the WAL is reset by the first write after a complete checkpoint
            await store.write(lambda tx: tx.execute("INSERT INTO scratch VALUES (1)"))
        assert wal.stat().st_size <= 1 << 20
    finally:
        await store.close()


@needs_postgres
async def test_reads_after_a_server_restart_go_through_on_fresh_connections(
    shared_database: str, start_hub: Any, make_peer: Any
) -> None:
    """A restart leaves the read pool holding dead connections: a read tries the next one, and the
    operator's next look at the platforms is an answer, not a 503."""
    hub = await start_hub(database=shared_database)
    await pair(hub, make_peer)
    await settle(hub)
    pool = hub.app[STORE]._pool  # type: ignore[attr-defined]
    held = [await pool.getconn() for _ in range(3)]  # (three idle connections, as after some load)
    pids = [conn.info.backend_pid for conn in held]
    for conn in held:
        await pool.putconn(conn)
    async with await psycopg.AsyncConnection.connect(shared_database, autocommit=True) as admin:
        for pid in pids:  # what a restart does to them
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    for _ in range(3):
        status, body = await hub.admin("GET", "/admin/platforms")
        assert status == 200 and len(body) == 2, body


def test_a_round_failed_by_the_database_is_one_line_anything_else_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.rounds")
    report_round_failure(logger, "outbox worker round", 1.0, StorageUnavailable("connection refused"))
    report_round_failure(logger, "outbox worker round", 1.0, StorageFull("database or disk is full"))
    report_round_failure(logger, "outbox worker round", 1.0, KeyError("a bug"))
    lines = [(r.levelname, r.exc_info is not None) for r in caplog.records if r.name == "tests.rounds"]
    assert lines == [("WARNING", False), ("WARNING", False), ("ERROR", True)]


@needs_postgres
async def test_a_database_outage_is_503s_and_everything_resumes_after_it(
    shared_database: str, start_hub: Any, make_peer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub reaches PostgreSQL through a proxy that is cut (every connection: writer, reads,
    LISTEN) and restored: pushes meanwhile are 503s, nothing of them is kept, no traceback is
    logged, and once the server is back pushes are delivered again with no restart."""
    server = urlsplit(shared_database)
    proxy = CuttableProxy(server.hostname or "127.0.0.1", server.port or 5432)
    port = await proxy.start()
    try:
        hub = await start_hub(database=urlunsplit(server._replace(netloc=f"{server.username}@127.0.0.1:{port}")))
        cpo, emsp = await pair(hub, make_peer)
        await settle(hub)
        proxy.cut()
        answers = [await _push(hub, cpo, f"OUT{n}") for n in range(5)]
        assert [(a[0], a[1]["status_code"], a[2]["Retry-After"]) for a in answers] == [(503, 3000, "5")] * 5
        async with hub.session.get(hub.base + "/health") as r:
            assert r.status == 503  # a load balancer sees it too
        proxy.restore()
        status, body, _ = await until(lambda: _push(hub, cpo, "AFTER"), lambda a: a[0] == 200, timeout=20, step=0.2)
        assert (status, body["status_code"]) == (200, 1000), body
        await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/AFTER") for r in emsp.received))
        await settle(hub)
        assert not [r for r in emsp.received if "/OUT" in r.path]
        status, platforms = await hub.admin("GET", "/admin/platforms")
        assert status == 200 and len(platforms) == 2
        tracebacks = [r.getMessage() for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
        assert tracebacks == []
    finally:
        await proxy.close()
