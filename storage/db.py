"""The storage interface: one Store, two backends (SQLite file, PostgreSQL server).

Every change runs either in ``async with store.transaction() as tx`` or as a job given to
``store.write(fn)``; a caller that got past either knows its rows are committed, so the hub
answers "accepted" only after that (docs/DESIGN-NOTES.md, Delivery). Reads see committed data
only. SQL is written once, with ``?`` placeholders, in the dialect both backends share; the
PostgreSQL backend converts the placeholders (storage/postgres.py).

Both backends write through one connection on one writer thread per process: ``write`` jobs
queued while a COMMIT is in flight share the next COMMIT (group commit), and one job's failure
undoes only that job (storage/statements.py, apply_batch). The routing and delivery code never learns
which backend it talks to; the few questions whose answer differs (claiming outbox rows across
processes, the cluster leader, cache invalidation) are methods here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.errors import StorageFull, StorageUnavailable, StoreClosedError
from storage.statements import Cursor, Dialect, Job, Lock, Params, Row, SyncTx, apply_batch, rollback

__all__ = ["Cursor", "Dialect", "Job", "Listener", "Params", "Row", "Store", "SyncTx", "Transaction"]

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# Background jobs per COMMIT. A delivery outcome costs ~20-50 us on the writer thread, a chunk of
# fan-out legs a few ms: a request's commit waits behind at most a few ms of them.
BACKGROUND_PER_COMMIT = 32
RECONNECT_MIN, RECONNECT_MAX = 0.5, 10.0  # seconds between tries to reopen a lost write connection
FULL_QUIET = 60.0  # seconds without a write refused for space before the store counts as no longer full


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


@dataclass
class Full:
    """Writes refused because the database or its disk is full, since the last one that committed."""

    since: float  # time.time() of the first refusal
    last: float  # and of the latest
    refused: int = 0


# The payload every listener gets when notifications may have been missed (the LISTEN connection
# was lost and is back): re-read whatever it caches.
RESYNC = "*resync"


class Store(ABC):
    """One writer connection on one thread per process; open() migrates, close() is idempotent.

    Two ways to write, both serialized on that connection: ``transaction()`` for multi-step
    changes written as async code (registration, admin), and ``write(fn)`` for the hot path:
    ``fn(tx)`` (a SyncTx) runs on the writer thread, and every job queued while the previous
    commit was in flight shares the next COMMIT (group commit: one fsync for many accepted
    messages, each caller answered only after it; a failing job undoes only itself).
    """

    dialect: Dialect
    shared = False  # True when other hub processes may use the same database (PostgreSQL)

    def __init__(self) -> None:
        self.writer: Any = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Job, Sequence[Lock], asyncio.Future[Any]]] = []
        # Jobs nobody is waiting to answer a partner for (delivery outcomes, fan-out legs, traffic
        # rows): each commit takes at most BACKGROUND_PER_COMMIT of them, so a request's commit
        # waits behind a bounded batch, not behind a fan-out's whole backlog (issue 22).
        self._background: collections.deque[tuple[Job, Sequence[Lock], asyncio.Future[Any]]] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._opened = False
        self.commits = 0  # physical COMMITs (for the benchmark and tests)
        self.full: Full | None = None  # set while writes fail for lack of space (/status, /metrics)
        # A nearly full file still takes a small write now and then (a row that fits a page's free
        # room): the state ends only with a commit this long after the last refusal, not flapping.
        self.full_quiet = FULL_QUIET
        self._lost_since: float | None = None  # time.monotonic() since the write connection is lost
        self._reconnect_at = 0.0  # no reconnect attempt before this (monotonic)
        self._reconnect_delay = 0.0
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

    def _unreachable(self) -> None:  # noqa: B027 - only PostgreSQL's reads care
        """The writer could not reconnect: the server is unreachable (reads may stop waiting long for it)."""

    def _reachable(self) -> None:
        """The server answered (a read got through): the writer's next write tries at once, not at its backoff."""
        self._reconnect_at = 0.0

    def disk_free_bytes(self) -> int | None:
        """Free bytes on the database's file system; None where the hub cannot see it (a server's)."""
        return None

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
                await self.run_on_writer(lambda c: run(c, "COMMIT"))
            except BaseException as exc:
                await self.run_on_writer(lambda c: rollback(c, self.dialect))
                if isinstance(exc, StorageFull):
                    self._note_space(refused=1, committed=False)
                raise
            self.commits += 1
            if self.full is not None:
                self._note_space(refused=0, committed=True)

    def _begin_transaction(self, conn: Any) -> None:
        self.dialect.run(conn, self.dialect.begin)

    def _writer_lost(self) -> bool:
        """True when the write connection is gone (a database server restart): reconnect before writing."""
        return False

    async def _ensure_writer(self) -> None:
        """Reopen a lost write connection; while the server stays unreachable, fail fast between tries.

        Every batch would otherwise try to connect (and log it): hundreds of attempts and lines a
        second during an outage. Tries back off from 0.5 to 10 s; the writes in between are
        refused at once (StorageUnavailable: partners get 503 and send again).
        """
        if not self._writer_lost():
            return
        now = time.monotonic()
        if now < self._reconnect_at:
            raise StorageUnavailable(
                f"the database {self.describe()} is unreachable; next try in {self._reconnect_at - now:.1f} s"
            )
        if self._lost_since is None:
            self._lost_since = now
            LOGGER.warning("the write connection to %s was lost; reconnecting", self.describe())
        old = self.writer
        try:
            self.writer = await self.run_on_writer(lambda _: self._connect_writer())
        except StorageUnavailable as exc:
            self._unreachable()
            self._reconnect_delay = (
                min(self._reconnect_delay * 2, RECONNECT_MAX) if self._reconnect_delay else RECONNECT_MIN
            )
            self._reconnect_at = time.monotonic() + self._reconnect_delay
            LOGGER.warning(
                "%s; writes are refused (503) until it works, next try in %.1f s", exc, self._reconnect_delay
            )
            raise
        LOGGER.warning("write connection to %s back after %.1f s", self.describe(), time.monotonic() - self._lost_since)
        self._lost_since, self._reconnect_at, self._reconnect_delay = None, 0.0, 0.0
        with contextlib.suppress(Exception):
            old.close()

    async def write(self, fn: Callable[[SyncTx], T], *, locks: Sequence[Lock] = (), background: bool = False) -> T:
        """Run ``fn(tx)`` atomically on the writer thread; return once it is committed (group commit).

        ``locks``: the objects (module, key) ``fn`` will lock; on a shared database the batch
        takes them all first, in one order (storage/statements.py, apply_batch). ``background``:
        no partner waits for this commit; it may wait for those a partner does wait for.
        """
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        (self._background if background else self._pending).append((fn, locks, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    def _next_batch(self) -> list[tuple[Job, Sequence[Lock], asyncio.Future[Any]]]:
        """Every waiting request's job, and background jobs up to BACKGROUND_PER_COMMIT."""
        batch, self._pending = self._pending, []
        background = self._background  # never starved: every commit takes some of it
        batch.extend(background.popleft() for _ in range(min(len(background), BACKGROUND_PER_COMMIT)))
        return batch

    async def _flush(self) -> None:
        while self._pending or self._background:
            async with self._lock:
                batch = self._next_batch()
                jobs = [fn for fn, _, _ in batch]
                locks = [lock for _, job_locks, _ in batch for lock in job_locks]
                try:
                    await self._ensure_writer()
                    apply = functools.partial(
                        apply_batch, dialect=self.dialect, jobs=jobs, owner=self.owner, locks=locks
                    )
                    outcomes = await self.run_on_writer(apply)
                    self.commits += 1
                except Exception as exc:  # the COMMIT itself failed: nobody's job is durable
                    outcomes = [(False, exc)] * len(batch)
            if self.full is not None or not all(ok for ok, _ in outcomes):
                refused = sum(1 for ok, value in outcomes if not ok and isinstance(value, StorageFull))
                self._note_space(refused=refused, committed=any(ok for ok, _ in outcomes))
            for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _note_space(self, *, refused: int, committed: bool) -> None:
        """Follow the full state: one ERROR when writes start failing for space, one line when they stop."""
        now = time.time()
        if refused:
            if self.full is None:
                self.full = Full(since=now, last=now)
                LOGGER.error(
                    "the database %s is full: writes are refused (partners are answered 503, nothing is"
                    " stored) until space is freed; they resume by themselves",
                    self.describe(),
                )
            self.full.refused += refused
            self.full.last = now
        elif committed and self.full is not None and now - self.full.last >= self.full_quiet:
            LOGGER.warning(
                "the database takes writes again (%d refused in %.0f s while it was full)",
                self.full.refused,
                self.full.last - self.full.since,
            )
            self.full = None

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
        """Keep the busy tables' planner statistics fresh (PostgreSQL: ANALYZE)."""
