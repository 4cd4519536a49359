"""The one SQLite writer: WAL mode, one write connection behind an asyncio lock, one reader.

Every change runs in ``async with store.transaction() as tx`` (``BEGIN IMMEDIATE`` ... ``COMMIT``),
so a caller that got past the block knows its rows are committed: the hub answers "accepted"
only after that (DESIGN.md section 7). Reads use a second connection, which in WAL mode sees
only committed data and never waits for the writer.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StoreClosedError
from storage.migrations import apply_migrations

LOGGER = logging.getLogger(__name__)

Row = sqlite3.Row
Params = Sequence[Any] | dict[str, Any]


class Transaction:
    """A thin handle on the write connection inside one open transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the last inserted rowid."""
        cursor = await self._conn.execute(sql, params)
        rowid = cursor.lastrowid or 0
        await cursor.close()
        return rowid

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        cursor = await self._conn.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for many parameter sets."""
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Read one row inside the transaction (sees its own uncommitted writes)."""
        async with self._conn.execute(sql, params) as cursor:
            row: Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all rows inside the transaction."""
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class Store:
    """SQLite store with exactly one writer; open() migrates, close() is idempotent."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def open(self) -> None:
        """Create the file if needed, apply pending migrations, open both connections."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(apply_migrations, self.path)
        self._writer = await self._connect()
        self._reader = await self._connect()
        LOGGER.info("store opened at %s", self.path)

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode a COMMIT is on disk before we answer "accepted", even on power loss.
        await conn.execute(f"PRAGMA synchronous={self._synchronous}")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def close(self) -> None:
        """Close both connections; calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            for conn in (self._writer, self._reader):
                if conn is not None:
                    await conn.close()
        self._writer = self._reader = None

    def _check_open(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._closed or self._writer is None or self._reader is None:
            raise StoreClosedError("the store is closed")
        return self._writer, self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Serialize one write transaction; commit on success, roll back on any exception."""
        writer, _ = self._check_open()
        async with self._lock:
            await writer.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(writer)
            except BaseException:
                await writer.execute("ROLLBACK")
                raise
            await writer.execute("COMMIT")

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
        _, reader = self._check_open()
        return list(await reader.execute_fetchall(sql, params))
