"""The embedded backend: one SQLite file in WAL mode, one writer thread, one aiosqlite reader.

In WAL mode a reader sees only committed data and never waits for the writer. The file is
locked for the life of the store (storage/files.py): one hub process per SQLite database.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import aiosqlite

from storage.db import Cursor, Dialect, Params, Row, Store
from storage.errors import IntegrityError, StorageFull, StorageUnavailable, StoreClosedError
from storage.files import DatabaseLock, acquire_lock, create_database, tighten
from storage.migrate_sqlite import apply_migrations


class SqliteDialect(Dialect):
    """SQLite runs the shared SQL as written."""

    name = "sqlite"
    begin = "BEGIN IMMEDIATE"  # take the write lock now, not at the first write

    def run(self, conn: Any, sql: str, params: Params = ()) -> Cursor:
        """Execute one statement."""
        try:
            cursor: sqlite3.Cursor = conn.execute(sql, params)
        except sqlite3.Error as exc:
            _reraise(exc)
        return cursor

    def run_many(self, conn: Any, sql: str, rows: list[Params]) -> None:
        """Execute one statement for many parameter sets."""
        try:
            conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            _reraise(exc)

    def insert(self, conn: Any, sql: str, params: Params = ()) -> int:
        """Execute an INSERT; return its rowid."""
        try:
            return int(conn.execute(sql, params).lastrowid or 0)
        except sqlite3.Error as exc:
            _reraise(exc)

    def in_transaction(self, conn: Any) -> bool:
        """SQLite rolls a transaction back by itself on some errors (SQLITE_FULL): nothing left to undo."""
        return bool(conn.in_transaction)


def _reraise(exc: sqlite3.Error) -> NoReturn:
    """Raise the store's own error for what the hub must tell apart (a constraint, a full disk)."""
    if isinstance(exc, sqlite3.IntegrityError):
        raise IntegrityError(str(exc)) from exc
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        raise StorageFull(str(exc)) from exc
    if code == sqlite3.SQLITE_BUSY:  # another program (an sqlite3 shell) held the write lock past busy_timeout
        raise StorageUnavailable(f"the database file is locked by another program: {exc}") from exc
    raise exc


class SqliteStore(Store):
    """SQLite store with exactly one writer (the file lock keeps other processes out)."""

    dialect = SqliteDialect()
    # The WAL file keeps the size of the largest burst it ever held (a bulk import: gigabytes) unless
    # told otherwise; after each reset it is cut back to this (SQLite, PRAGMA journal_size_limit).
    wal_size_limit = 64 * 1024 * 1024

    # Read connections, each with its own thread (WAL: readers never wait for each other or for
    # the writer). With one, a slow read held every other: at 1,000,000 stored objects /status's
    # counts took ~0.6 s, and /health, GET-all pages and open-routing lookups waited behind them.
    readers = 3

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        super().__init__()
        self.path = Path(path)
        self._synchronous = synchronous
        self._readers: list[aiosqlite.Connection] = []
        self._reading: list[int] = []  # reads in progress on each reader
        self._file_lock: DatabaseLock | None = None

    def describe(self) -> str:
        """The file's absolute path."""
        return str(self.path.resolve())

    def disk_free_bytes(self) -> int | None:
        """Free bytes on the file system that holds the database file (and its WAL)."""
        return shutil.disk_usage(self.path.parent).free

    async def _prepare(self) -> None:
        """Lock the database (one hub per file), create it (0600) if needed, migrate.

        Refusing a database that does not exist is the CLI's decision (``serve`` without
        ``--init``); the store creates it, logging a WARNING, for callers that asked for it.
        """
        self._file_lock = acquire_lock(self.path)
        try:
            await asyncio.to_thread(self._prepare_file)
        except BaseException:
            self._release()
            raise

    def _prepare_file(self) -> None:
        create_database(self.path)
        tighten(self.path)
        apply_migrations(self.path)

    def _release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    def _pragmas(self) -> list[str]:
        return [
            "PRAGMA journal_mode=WAL",
            # FULL: in WAL mode a COMMIT is on disk before we answer "accepted", even on power loss.
            f"PRAGMA synchronous={self._synchronous}",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
            f"PRAGMA journal_size_limit={int(self.wal_size_limit)}",
        ]

    def _connect_writer(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in self._pragmas():
            conn.execute(pragma)
        return conn

    async def _open_readers(self) -> None:
        try:
            for _ in range(self.readers):
                reader = await aiosqlite.connect(self.path, isolation_level=None)
                self._readers.append(reader)
                self._reading.append(0)
                reader.row_factory = sqlite3.Row
                for pragma in self._pragmas():
                    await reader.execute(pragma)
        except BaseException:
            await self._close_readers()
            raise

    async def _close_readers(self) -> None:
        readers, self._readers, self._reading = self._readers, [], []
        for reader in readers:
            await reader.close()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all committed rows, in one job on the reader thread.

        Executing and fetching as separate jobs would let another task's query run in between
        on the same connection and share its still-open read transaction, i.e. an old WAL
        snapshot that misses rows committed meanwhile (seen as stale reads under load).
        """
        self._check_open()
        if not self._readers:
            raise StoreClosedError("the store is closed")
        # The reader with the fewest reads in progress (the first when all are free).
        number = min(range(len(self._readers)), key=self._reading.__getitem__)
        reader, reading = self._readers[number], self._reading
        reading[number] += 1
        try:
            return list(await reader.execute_fetchall(sql, params))
        finally:
            if reading is self._reading:  # (the store may have closed meanwhile)
                reading[number] -= 1
