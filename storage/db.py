"""The storage interface: one Store, two backends (SQLite file, PostgreSQL server).

Every change runs either in ``async with store.transaction() as tx`` or as a job given to
``store.write(fn)``; a caller that got past either knows its rows are committed, so the hub
answers "accepted" only after that (docs/DESIGN-NOTES.md, Delivery). Reads see committed data
only. SQL is written once, with ``?`` placeholders, in the dialect both backends share; the
PostgreSQL backend converts the placeholders (storage/postgres.py).

Both backends write through one connection on one writer thread per process: ``write`` jobs
queued while a COMMIT is in flight share the next COMMIT (group commit), each in its own
SAVEPOINT so one job's failure undoes only that job. The routing and delivery code never learns
which backend it talks to; the few questions whose answer differs (claiming outbox rows across
processes, the cluster leader, cache invalidation) are methods here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from storage.errors import StoreClosedError

LOGGER = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")
TRANSIENT_RETRIES = 3  # a deadlock between two hub processes' batches: run the job again


class Row(Protocol):
    """A result row: by column name or position (sqlite3.Row and storage.postgres.PgRow)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]:
        """The column names."""

    def __len__(self) -> int: ...


class Cursor(Protocol):
    """What a backend's ``run`` returns."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> list[Any]:
        """The remaining rows."""


class Dialect(ABC):
    """How one backend runs a statement on its (synchronous) write connection."""

    name: str
    begin: str  # the statement that opens a write transaction

    @abstractmethod
    def run(self, conn: Any, sql: str, params: Params = ()) -> Cursor:
        """Execute one statement written with ``?`` placeholders."""

    @abstractmethod
    def run_many(self, conn: Any, sql: str, rows: list[Params]) -> None:
        """Execute one statement for many parameter sets."""

    @abstractmethod
    def insert(self, conn: Any, sql: str, params: Params = ()) -> int:
        """Execute an INSERT into a table with an ``id`` key; return the new id."""

    def transient(self, exc: BaseException) -> bool:
        """True for an error that running the job again can cure (a deadlock between processes)."""
        return False


class SyncTx:
    """The write connection as seen by a ``Store.write`` job, running on the writer thread."""

    def __init__(self, conn: Any, dialect: Dialect, owner: str | None = None) -> None:
        self.conn = conn
        self.dialect = dialect
        # This process's id when other processes share the database (outbox leases), else None.
        self.owner = owner

    def execute(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        self.dialect.run(self.conn, sql, params)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table keyed by ``id``; return the new row's id."""
        return self.dialect.insert(self.conn, sql, params)

    def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        return self.dialect.run(self.conn, sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter sets."""
        self.dialect.run_many(self.conn, sql, list(rows))

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one row (sees this transaction's own writes)."""
        row: Row | None = self.dialect.run(self.conn, sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all rows."""
        return list(self.dialect.run(self.conn, sql, params).fetchall())


Job = Callable[[SyncTx], Any]


def _run_job(tx: SyncTx, job: Job) -> tuple[bool, Any]:
    """One job in its own SAVEPOINT; a transient failure (deadlock) runs it again."""
    run = tx.dialect.run
    for attempt in range(TRANSIENT_RETRIES):
        run(tx.conn, "SAVEPOINT job")
        try:
            value = job(tx)
        except Exception as exc:  # one job's failure must not undo the others
            run(tx.conn, "ROLLBACK TO SAVEPOINT job")
            run(tx.conn, "RELEASE SAVEPOINT job")
            if tx.dialect.transient(exc) and attempt + 1 < TRANSIENT_RETRIES:
                LOGGER.info("write job hit %s; running it again", type(exc).__name__)
                continue
            return False, exc
        run(tx.conn, "RELEASE SAVEPOINT job")
        return True, value
    raise AssertionError("unreachable")  # pragma: no cover


def _run_alone(tx: SyncTx, job: Job) -> tuple[bool, Any]:
    """A batch of one job: its own transaction, no SAVEPOINT (two round trips fewer on PostgreSQL)."""
    run = tx.dialect.run
    for attempt in range(TRANSIENT_RETRIES):
        run(tx.conn, tx.dialect.begin)
        try:
            value = job(tx)
            run(tx.conn, "COMMIT")
        except Exception as exc:
            _rollback(tx.conn, tx.dialect)
            if tx.dialect.transient(exc) and attempt + 1 < TRANSIENT_RETRIES:
                LOGGER.info("write job hit %s; running it again", type(exc).__name__)
                continue
            return False, exc
        except BaseException:
            _rollback(tx.conn, tx.dialect)
            raise
        return True, value
    raise AssertionError("unreachable")  # pragma: no cover


def _apply_batch(conn: Any, dialect: Dialect, jobs: list[Job], owner: str | None) -> list[tuple[bool, Any]]:
    """On the writer thread: every job in its own SAVEPOINT, one COMMIT for all of them."""
    tx = SyncTx(conn, dialect, owner)
    if len(jobs) == 1:
        return [_run_alone(tx, jobs[0])]
    dialect.run(conn, dialect.begin)
    try:
        outcomes = [_run_job(tx, job) for job in jobs]
        dialect.run(conn, "COMMIT")
    except BaseException:
        _rollback(conn, dialect)
        raise
    return outcomes


def _rollback(conn: Any, dialect: Dialect) -> None:
    """Roll back; on a connection that is gone there is nothing to roll back (the original error counts)."""
    try:
        dialect.run(conn, "ROLLBACK")
    except Exception as exc:
        LOGGER.warning("ROLLBACK failed (%s): the connection is replaced before the next write", exc)


class Transaction:
    """A handle on the write connection inside one open transaction (statements run on the writer thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._tx = SyncTx(store.writer, store.dialect, store.owner)

    async def execute(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        await self._store.run_on_writer(lambda _: self._tx.execute(sql, params))

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table keyed by ``id``; return the new row's id."""
        return await self._store.run_on_writer(lambda _: self._tx.insert(sql, params))

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        return await self._store.run_on_writer(lambda _: self._tx.execute_rowcount(sql, params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter sets."""
        batch = list(rows)
        await self._store.run_on_writer(lambda _: self._tx.executemany(sql, batch))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one row inside the transaction (sees its own uncommitted writes)."""
        return await self._store.run_on_writer(lambda _: self._tx.fetchone(sql, params))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all rows inside the transaction."""
        return await self._store.run_on_writer(lambda _: self._tx.fetchall(sql, params))


Listener = Callable[[str], Awaitable[None] | None]


class Store(ABC):
    """One writer connection on one thread per process; open() migrates, close() is idempotent.

    Two ways to write, both serialized on that connection: ``transaction()`` for multi-step
    changes written as async code (registration, admin), and ``write(fn)`` for the hot path:
    ``fn(tx)`` (a SyncTx) runs on the writer thread inside a SAVEPOINT, and every job queued
    while the previous commit was in flight shares the next COMMIT (group commit: one fsync for
    many accepted messages, each caller answered only after it).
    """

    dialect: Dialect
    shared = False  # True when other hub processes may use the same database (PostgreSQL)

    def __init__(self) -> None:
        self.writer: Any = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Job, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._opened = False
        self.commits = 0  # physical COMMITs (for the benchmark and tests)
        # Unique per process start: names this process in leases, heartbeats and notifications.
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"

    @property
    def owner(self) -> str | None:
        """The lease owner name when processes share the database; None when this one is alone."""
        return self.process_id if self.shared else None

    # -- life cycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Prepare and migrate the database, then open the writer and the readers."""
        await self._prepare()
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.dialect.name}-writer")
        try:
            self.writer = await self.run_on_writer(lambda _: self._connect_writer())
            await self._open_readers()
        except BaseException:
            await self._shutdown()
            raise
        self._opened = True
        LOGGER.info("store opened: %s", self.describe())

    async def close(self) -> None:
        """Close every connection; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            await self.run_on_writer(lambda _: writer.close())
        await self._close_readers()
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None
        self._release()

    @abstractmethod
    async def _prepare(self) -> None:
        """Create (if asked) and migrate the database; take whatever lock the backend needs."""

    @abstractmethod
    def _connect_writer(self) -> Any:
        """On the writer thread: open the write connection."""

    @abstractmethod
    async def _open_readers(self) -> None:
        """Open the connection(s) reads use."""

    @abstractmethod
    async def _close_readers(self) -> None:
        """Close them."""

    def _release(self) -> None:  # noqa: B027 - only the SQLite backend holds something
        """Give back what _prepare took (the SQLite file lock)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs and /status (never a password)."""

    # -- writing --------------------------------------------------------------------------

    async def run_on_writer(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` on the writer thread (callers hold the lock or are opening the store)."""
        if self._writer_thread is None:
            raise StoreClosedError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread, fn, self.writer)

    def _check_open(self) -> None:
        if self._closed or not self._opened:
            raise StoreClosedError("the store is closed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Serialize one write transaction; commit on success, roll back on any exception."""
        self._check_open()
        run = self.dialect.run
        async with self._lock:
            await self._ensure_writer()
            await self.run_on_writer(lambda c: self._begin_transaction(c))
            try:
                yield Transaction(self)
            except BaseException:
                await self.run_on_writer(lambda c: _rollback(c, self.dialect))
                raise
            await self.run_on_writer(lambda c: run(c, "COMMIT"))
            self.commits += 1

    def _begin_transaction(self, conn: Any) -> None:
        self.dialect.run(conn, self.dialect.begin)

    def _writer_lost(self) -> bool:
        """True when the write connection is gone (a database server restart): reconnect before writing."""
        return False

    async def _ensure_writer(self) -> None:
        if not self._writer_lost():
            return
        LOGGER.warning("the write connection to %s was lost; reconnecting", self.describe())
        old = self.writer
        self.writer = await self.run_on_writer(lambda _: self._connect_writer())
        with contextlib.suppress(Exception):
            old.close()

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
                    await self._ensure_writer()
                    apply = functools.partial(_apply_batch, dialect=self.dialect, jobs=jobs, owner=self.owner)
                    outcomes = await self.run_on_writer(apply)
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

    # -- reading --------------------------------------------------------------------------

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one committed row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all committed rows."""

    # -- several processes on one database --------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:  # noqa: B027 - one process: nobody to tell
        """Tell the other hub processes on this database (nothing to tell with one process)."""

    def subscribe(self, channel: str, listener: Listener) -> None:  # noqa: B027 - one process: nobody tells
        """Call ``listener(payload)`` when another process notifies ``channel``."""

    async def try_lead(self, role: str) -> bool:
        """True while this process holds the cluster-wide lease for ``role`` (always, alone)."""
        return True

    async def maintain(self) -> None:  # noqa: B027 - SQLite needs nothing (retention vacuums the file)
        """Keep the busy tables' planner statistics fresh (and, where the server does not, vacuum them)."""


def open_store(database: str | Path) -> Store:
    """The store for a database setting: a ``postgresql://`` URL or a SQLite file path."""
    text = str(database)
    if text.startswith(("postgresql://", "postgres://")):
        from storage.postgres import PostgresStore

        return PostgresStore(text)
    from storage.sqlite import SqliteStore

    return SqliteStore(Path(text))
