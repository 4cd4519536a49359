"""The write connection as a job sees it: the dialect of each backend, SyncTx, and the group-commit batch.

``Store.write(fn)`` queues ``fn``; the writer thread runs every job queued meanwhile in one
transaction; when one of them fails, the batch runs again with each job in its own SAVEPOINT so
one job's failure undoes only that job (storage/db.py has the Store around it). A batch of one
job is its own transaction.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

LOGGER = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
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

    def in_transaction(self, conn: Any) -> bool:
        """Whether a transaction is open on ``conn`` (one to roll back); assumed when unknown."""
        return True

    def run_rowcount(self, conn: Any, sql: str, params: Params = ()) -> int:
        """Execute one statement; return how many rows it changed."""
        return self.run(conn, sql, params).rowcount

    def pipeline(self, conn: Any) -> AbstractContextManager[Any]:
        """A block whose statements need not wait for each other's results (PostgreSQL's pipeline mode)."""
        return contextlib.nullcontext()


class SyncTx:
    """The write connection as seen by a ``Store.write`` job, running on the writer thread."""

    def __init__(self, conn: Any, dialect: Dialect, owner: str | None = None) -> None:
        self.conn = conn
        self.dialect = dialect
        # This process's id when other processes share the database (outbox leases), else None.
        self.owner = owner
        # Object locks held until COMMIT (storage/outbox.py lock_object): taken once per transaction.
        self.locks: set[tuple[str, str]] = set()

    def lock(self, module: str, object_key: str) -> None:
        """Shared database: hold the object's advisory lock until COMMIT (once per transaction).

        Why and where: storage/outbox.py ``lock_object``. Alone (SQLite) the one writer already
        serializes every job, so there is nothing to take.
        """
        if self.owner is None or (module, object_key) in self.locks:
            return
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '|' || ? || '|' || ?, 0))",
            (module, object_key),
        )
        self.locks.add((module, object_key))

    def execute(self, sql: str, params: Params = ()) -> None:
        """Run one statement."""
        self.dialect.run(self.conn, sql, params)

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table keyed by ``id``; return the new row's id."""
        return self.dialect.insert(self.conn, sql, params)

    def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        return self.dialect.run_rowcount(self.conn, sql, params)

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
Lock = tuple[str, str]  # (module, object_key): see SyncTx.lock


def _run_job(tx: SyncTx, job: Job) -> tuple[bool, Any]:
    """One job in its own SAVEPOINT; a transient failure (deadlock) runs it again."""
    run = tx.dialect.run
    for attempt in range(TRANSIENT_RETRIES):
        run(tx.conn, "SAVEPOINT job")
        try:
            value = job(tx)
        except Exception as exc:  # one job's failure must not undo the others
            if not tx.dialect.in_transaction(tx.conn):
                # The backend undid the whole transaction (SQLite after SQLITE_FULL or SQLITE_BUSY):
                # the jobs before this one are gone too, so the batch fails with this error.
                raise
            run(tx.conn, "ROLLBACK TO SAVEPOINT job")
            run(tx.conn, "RELEASE SAVEPOINT job")
            tx.locks.clear()  # a rolled-back savepoint may have let go of locks: take them again
            if tx.dialect.transient(exc) and attempt + 1 < TRANSIENT_RETRIES:
                LOGGER.info("write job hit %s; running it again", type(exc).__name__)
                continue
            return False, exc
        run(tx.conn, "RELEASE SAVEPOINT job")
        return True, value
    raise AssertionError("unreachable")  # pragma: no cover


def _run_alone(tx: SyncTx, job: Job, locks: Sequence[Lock]) -> tuple[bool, Any]:
    """One job as its own transaction (no SAVEPOINT); a transient failure (deadlock) runs it again."""
    run = tx.dialect.run
    for attempt in range(TRANSIENT_RETRIES):
        run(tx.conn, tx.dialect.begin)
        tx.locks.clear()
        try:
            _take(tx, locks)
            value = job(tx)
            run(tx.conn, "COMMIT")
        except Exception as exc:
            rollback(tx.conn, tx.dialect)
            if tx.dialect.transient(exc) and attempt + 1 < TRANSIENT_RETRIES:
                LOGGER.info("write job hit %s; running it again", type(exc).__name__)
                continue
            return False, exc
        except BaseException:
            rollback(tx.conn, tx.dialect)
            raise
        return True, value
    raise AssertionError("unreachable")  # pragma: no cover


def _take(tx: SyncTx, locks: Sequence[Lock]) -> None:
    # Every object lock the batch's jobs will take, first and in one order: two processes whose
    # batches touch the same objects queue behind each other instead of deadlocking (which
    # PostgreSQL would only break after deadlock_timeout, a second).
    for module, object_key in locks:
        tx.lock(module, object_key)


def _run_together(tx: SyncTx, jobs: list[Job], locks: Sequence[Lock]) -> list[tuple[bool, Any]] | None:
    """Every job in one transaction, pipelined, without SAVEPOINTs; None (rolled back) if any failed."""
    conn, dialect = tx.conn, tx.dialect
    tx.locks.clear()
    try:
        with dialect.pipeline(conn):
            dialect.run(conn, dialect.begin)
            _take(tx, locks)
            values = [job(tx) for job in jobs]
            dialect.run(conn, "COMMIT")
    except Exception as exc:
        rollback(conn, dialect)
        LOGGER.debug("a batch of %d write job(s) failed (%s): running them one by one", len(jobs), exc)
        return None
    except BaseException:
        rollback(conn, dialect)
        raise
    return [(True, value) for value in values]


def apply_batch(
    conn: Any, dialect: Dialect, jobs: list[Job], owner: str | None, locks: Sequence[Lock] = ()
) -> list[tuple[bool, Any]]:
    """On the writer thread: every job of the batch, one COMMIT for all of them.

    First all together, pipelined (PostgreSQL sends the statements whose results nobody reads
    without waiting for each) and without SAVEPOINTs: a job that fails is rare (input is checked
    before it is queued), and round trips are what a push costs on PostgreSQL. If any job fails,
    that attempt is rolled back and the batch runs again the careful way: one job alone as its
    own transaction, several each in its own SAVEPOINT, so only the failing job is undone (and
    its error is the one it raised). Jobs only touch the database, so running one twice is safe;
    the deadlock retry relies on that too. ``locks``: the object locks the jobs declared, taken
    first, in sorted order.
    """
    tx = SyncTx(conn, dialect, owner)
    locks = sorted(set(locks)) if owner is not None else []
    together = _run_together(tx, jobs, locks)
    if together is not None:
        return together
    if len(jobs) == 1:
        return [_run_alone(tx, jobs[0], locks)]
    # The careful way (after a failure): each job takes its own locks inside its SAVEPOINT, where a
    # deadlock is retried for that job alone.
    dialect.run(conn, dialect.begin)
    tx.locks.clear()
    try:
        outcomes = [_run_job(tx, job) for job in jobs]
        dialect.run(conn, "COMMIT")
    except BaseException:
        rollback(conn, dialect)
        raise
    return outcomes


def rollback(conn: Any, dialect: Dialect) -> None:
    """Roll back; on a connection that is gone there is nothing to roll back (the original error counts)."""
    if not dialect.in_transaction(conn):
        return  # the backend undid it already (SQLite after SQLITE_FULL): a ROLLBACK would only fail
    try:
        dialect.run(conn, "ROLLBACK")
    except Exception as exc:
        LOGGER.warning("ROLLBACK failed (%s): the connection is replaced before the next write", exc)
