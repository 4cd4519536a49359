"""The one SQLite writer: WAL mode, one write connection on one thread behind an asyncio lock, one reader.

Every change runs in ``async with store.transaction() as tx`` (``BEGIN IMMEDIATE`` ... ``COMMIT``),
so a caller that got past the block knows its rows are committed: the hub answers "accepted"
only after that (docs/DESIGN-NOTES.md, Delivery). Reads use a second connection, which in WAL mode sees
only committed data and never waits for the writer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.errors import StoreClosedError
from storage.files import DatabaseLock, acquire_lock, create_database, tighten
from storage.migrations import apply_migrations

LOGGER = logging.getLogger(__name__)

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")


class SyncTx:
    """The write connection as seen by a ``Store.write`` job, running on the writer thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the last inserted rowid."""
        return self.conn.execute(sql, params).lastrowid or 0

    def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter sets."""
        self.conn.executemany(sql, rows)

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one row (sees this transaction's own writes)."""
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all rows."""
        return list(self.conn.execute(sql, params).fetchall())


Job = Callable[[SyncTx], Any]


def _apply_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[tuple[bool, Any]]:
    """On the writer thread: every job in its own SAVEPOINT, one COMMIT for all of them."""
    tx = SyncTx(conn)
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[tuple[bool, Any]] = []
    try:
        for job in jobs:
            conn.execute("SAVEPOINT job")
            try:
                value = job(tx)
            except Exception as exc:  # one job's failure must not undo the others
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((True, value))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


class Transaction:
    """A handle on the write connection inside one open transaction (statements run on the writer thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the last inserted rowid."""
        return await self._store.run_on_writer(lambda c: c.execute(sql, params).lastrowid or 0)

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        return await self._store.run_on_writer(lambda c: c.execute(sql, params).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter sets."""
        batch = list(rows)
        await self._store.run_on_writer(lambda c: c.executemany(sql, batch))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one row inside the transaction (sees its own uncommitted writes)."""
        row: Row | None = await self._store.run_on_writer(lambda c: c.execute(sql, params).fetchone())
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all rows inside the transaction."""
        rows: list[Row] = await self._store.run_on_writer(lambda c: c.execute(sql, params).fetchall())
        return rows


class Store:
    """SQLite store with exactly one writer; open() migrates, close() is idempotent.

    Two ways to write, both serialized on the one writer connection and thread:
    ``transaction()`` for multi-step changes written as async code (registration, admin), and
    ``write(fn)`` for the hot path: ``fn(tx)`` (a SyncTx) runs synchronously on the writer thread inside
    a SAVEPOINT, and every job queued while the previous commit was in flight shares the next
    COMMIT (group commit: one fsync for many accepted messages, each caller answered only after
    it).
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._writer: sqlite3.Connection | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Job, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._file_lock: DatabaseLock | None = None
        self.commits = 0  # physical COMMITs (for the benchmark and tests)

    async def open(self) -> None:
        """Lock the database (one hub per file), create it (0600) if needed, migrate, open both connections.

        Refusing a database that does not exist is the CLI's decision (``serve`` without
        ``--init``); the store creates it, logging a WARNING, for callers that asked for it.
        """
        self._file_lock = acquire_lock(self.path)
        try:
            await asyncio.to_thread(self._prepare_file)
        except BaseException:
            self._file_lock.release()
            raise
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer = await self.run_on_writer(lambda _: self._connect_sync())
        self._reader = await aiosqlite.connect(self.path, isolation_level=None)
        self._reader.row_factory = sqlite3.Row
        for pragma in self._pragmas():
            await self._reader.execute(pragma)
        LOGGER.info("store opened at %s", self.path)

    def _prepare_file(self) -> None:
        create_database(self.path)
        tighten(self.path)
        apply_migrations(self.path)

    def _pragmas(self) -> list[str]:
        return [
            "PRAGMA journal_mode=WAL",
            # FULL: in WAL mode a COMMIT is on disk before we answer "accepted", even on power loss.
            f"PRAGMA synchronous={self._synchronous}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
        ]

    def _connect_sync(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in self._pragmas():
            conn.execute(pragma)
        return conn

    async def run_on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread (callers hold the lock or are opening the store)."""
        if self._writer_thread is None:
            raise StoreClosedError("the store is closed")
        conn = self._writer
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread, fn, conn)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Close both connections; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        async with self._lock:
            if self._writer is not None:
                writer = self._writer
                await self.run_on_writer(lambda _: writer.close())
            if self._reader is not None:
                await self._reader.close()
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
        self._writer = None
        self._reader = None
        self._writer_thread = None
        if self._file_lock is not None:
            self._file_lock.release()

    def _check_open(self) -> aiosqlite.Connection:
        if self._closed or self._writer is None or self._reader is None:
            raise StoreClosedError("the store is closed")
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Serialize one write transaction; commit on success, roll back on any exception."""
        self._check_open()
        async with self._lock:
            await self.run_on_writer(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield Transaction(self)
            except BaseException:
                await self.run_on_writer(lambda c: c.execute("ROLLBACK"))
                raise
            await self.run_on_writer(lambda c: c.execute("COMMIT"))
            self.commits += 1

    async def write(self, fn: Callable[[SyncTx], T]) -> T:
        """Run ``fn(tx)`` atomically on the writer thread; return once it is committed (group commit)."""
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            async with self._lock:
                batch, self._pending = self._pending, []
                jobs = [fn for fn, _ in batch]
                try:
                    outcomes = await self.run_on_writer(functools.partial(_apply_batch, jobs=jobs))
                    self.commits += 1
                except Exception as exc:  # the COMMIT itself failed: nobody's job is durable
                    outcomes = [(False, exc)] * len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one committed row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all committed rows, in one job on the reader thread.

        Executing and fetching as separate jobs would let another task's query run in between
        on the same connection and share its still-open read transaction, i.e. an old WAL
        snapshot that misses rows committed meanwhile (seen as stale reads under load).
        """
        reader = self._check_open()
        return list(await reader.execute_fetchall(sql, params))
