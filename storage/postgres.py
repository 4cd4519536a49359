"""The shared backend: PostgreSQL through psycopg 3, for several hub processes on one database.

Writes keep the embedded backend's shape (one connection on one writer thread per process,
group commit, a SAVEPOINT per job); reads come from a small async pool. What several processes
need beyond that lives here too: LISTEN/NOTIFY (``notify``/``subscribe``) and a cluster-wide
lease per role (``try_lead``), a session-level advisory lock that PostgreSQL releases when the
holder's connection ends, so a killed leader is replaced at the next try. Advisory locks are keyed
by schema: one schema is one cluster, whatever else shares the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from storage.db import RESYNC, Listener, Params, Row, Store
from storage.errors import OUTAGES, StorageUnavailable, StoreClosedError
from storage.migrate_postgres import apply_migrations, current_schema, lock_key
from storage.postgres_dialect import PostgresDialect, configure, connection_lost, pg_rows, redact, to_pg

LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is an error, not a hang
READ_POOL_MAX = 8
BUSY_TABLES = ("outbox", "traffic", "objects", "routing_index")  # rows inserted and deleted all day
LISTEN_POLL = 1.0  # seconds the listener waits for notifications before it checks whether to stop
DOWN_READ_WAIT = 1.0  # seconds a read waits for a pooled connection while the server looks unreachable
LEAD_RECHECK = 1.0  # seconds an answer of try_lead is reused (it costs a query)
OWED_MAX = 1_000  # notes kept for resending after a failed NOTIFY (then one RESYNC per channel)
# What a failed NOTIFY raises: the pool's PoolTimeout is a psycopg.Error; a dropped socket, a timeout.
NOTE_ERRORS = (psycopg.Error, OSError, TimeoutError)


class PostgresStore(Store):
    """PostgreSQL store; any number of hub processes may share the database."""

    dialect = PostgresDialect()
    shared = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._pool: AsyncConnectionPool | None = None
        self._listen_conn: psycopg.AsyncConnection[Any] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._listeners: dict[str, list[Listener]] = {}
        self._listened: set[str] = set()  # channels LISTENed to on the current listening connection
        self._wake_task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set once the LISTEN connection is up (tests wait for it)
        self._lead_conn: psycopg.AsyncConnection[Any] | None = None
        self._lead_lock = asyncio.Lock()
        self._leading: set[str] = set()
        self._warned_autovacuum = False
        self._lead_known: dict[str, tuple[bool, float]] = {}  # role -> (leading, when asked), monotonic
        self.schema = ""  # where the tables are (one cluster per schema); read when the writer connects
        self._stop_channel = f"hub_stop_{uuid.uuid4().hex}"  # this store's own: close() wakes its listener
        self._reads_down = False  # the server looked unreachable at the last read or reconnect
        self._owed: dict[tuple[str, str], None] = {}  # (channel, payload) of NOTIFYs not sent yet, in order

    def describe(self) -> str:
        """The server URL without a password."""
        return redact(self.url)

    async def _prepare(self) -> None:
        await asyncio.to_thread(apply_migrations, self.url)

    def _connect_writer(self) -> psycopg.Connection[Any]:
        try:
            conn: psycopg.Connection[Any] = psycopg.connect(
                self.url, autocommit=True, row_factory=pg_rows, connect_timeout=CONNECT_TIMEOUT
            )
        except psycopg.OperationalError as exc:  # down, restarting, refusing: partners are told to retry
            raise StorageUnavailable(f"cannot connect to {self.describe()}: {exc}") from exc
        configure(conn)
        self.schema = current_schema(conn)
        return conn

    def _writer_lost(self) -> bool:
        return connection_lost(self.writer)

    def _begin_transaction(self, conn: Any) -> None:
        # SQLite's BEGIN IMMEDIATE serializes every transaction() on the file; the same promise
        # across processes (registration and admin changes read, then write).
        self.dialect.run(conn, "BEGIN")
        self.dialect.run(conn, "SELECT pg_advisory_xact_lock(?)", (lock_key(self.schema, "transaction"),))

    async def _open_readers(self) -> None:
        async def configure_reader(conn: psycopg.AsyncConnection[Any]) -> None:
            configure(conn)

        self._pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=READ_POOL_MAX,
            kwargs={"autocommit": True, "row_factory": pg_rows, "connect_timeout": CONNECT_TIMEOUT},
            configure=configure_reader,
            timeout=CONNECT_TIMEOUT,
            open=False,
            name="ocpi-hub-readers",
        )
        await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)

    async def _close_readers(self) -> None:
        if self._listen_task is not None:
            task, self._listen_task = self._listen_task, None
            await self._stop_listener(task)
        for conn in (self._listen_conn, self._lead_conn):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()
        self._listen_conn = self._lead_conn = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _stop_listener(self, task: asyncio.Task[None]) -> None:
        """Wake the listener with a NOTIFY on its own channel and let it return by itself.

        A cancel landing inside psycopg's notifies() was seen to hang a shutdown (30 s test
        timeouts, and 3 s teardowns once the wait was bounded): cancelling is the last resort.
        Without the wake-up the listener would still stop within LISTEN_POLL (notifies() waits
        with a timeout), but every close would cost that second.
        """
        if self._listen_conn is not None and self._pool is not None and self.listening.is_set():
            with contextlib.suppress(psycopg.Error, asyncio.TimeoutError):
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    async with self._pool.connection() as conn:
                        await conn.execute("SELECT pg_notify(%s, '')", (self._stop_channel,))
        done, _ = await asyncio.wait([task], timeout=LISTEN_POLL + 1.0)
        if not done:
            LOGGER.warning("the LISTEN task did not stop within %.1f s; cancelling it", LISTEN_POLL + 1.0)
            task.cancel()
            await asyncio.wait([task], timeout=1.0)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read all committed rows on a pooled connection."""
        self._check_open()
        if self._pool is None:
            raise StoreClosedError("the store is closed")
        # After a server restart the pool still holds connections to the old server: each fails at
        # its first use and is discarded. A read is safe to run again, so it tries the next one.
        # While the server looks unreachable (a connection just broke, the writer could not
        # reconnect, the last read found no connection) a read waits DOWN_READ_WAIT for a
        # connection, not CONNECT_TIMEOUT: partners get their 503 in a second, not ten, and once
        # the server is back a connection is made in milliseconds anyway.
        lost: psycopg.OperationalError | None = None
        for _ in range(READ_POOL_MAX + 1):
            wait = DOWN_READ_WAIT if self._reads_down or lost is not None else CONNECT_TIMEOUT
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                async with self._pool.connection(timeout=wait) as conn:
                    cursor = await conn.execute(to_pg(sql), params)
                    rows: list[Any] = await cursor.fetchall()  # PgRow, from the row factory
                    if self._reads_down:  # the server answers again: the writer need not wait its backoff
                        self._reads_down = False
                        self._reachable()
                    return rows
            except PoolTimeout as exc:  # no connection in time: the server is down, or saturated
                self._reads_down = True
                raise StorageUnavailable(f"no database connection within {wait:g} s") from exc
            except psycopg.OperationalError as exc:
                if not connection_lost(conn):
                    raise  # a statement's own error on a healthy connection
                lost = exc
        raise StorageUnavailable(f"the database connection was lost: {lost}") from lost

    def _unreachable(self) -> None:
        self._reads_down = True  # the writer could not reconnect: reads need not wait 10 s to learn it

    # -- several processes ------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """NOTIFY the other processes (our own listener ignores what this process sent).

        Best effort: it follows a committed change, so a failure here must not turn the caller's
        success into an error (an operator retrying a done change, a partner re-pushing). A note
        that could not be sent is kept and sent again by the listening task once the database
        answers (``_resend_owed``); only a crash before that loses it (the others then learn at a
        later change of the same platform, or a restart).
        """
        self._check_open()
        try:
            await self._send_note(channel, payload)
        except NOTE_ERRORS as exc:
            self._owe(channel, payload)
            LOGGER.warning(
                "NOTIFY %s %r not sent (%s): kept, and sent again once the database answers", channel, payload, exc
            )

    async def _send_note(self, channel: str, payload: str) -> None:
        if self._pool is None:
            raise StoreClosedError("the store is closed")
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self._scoped(channel), f"{self.process_id}|{payload}"))

    def _owe(self, channel: str, payload: str) -> None:
        """Keep a note for ``_resend_owed``; past OWED_MAX, one RESYNC per channel stands for all."""
        self._owed[(channel, payload)] = None
        if len(self._owed) > OWED_MAX:  # a long outage: every listener re-reads everything instead
            self._owed = dict.fromkeys((c, RESYNC) for c, _ in self._owed)

    async def _resend_owed(self) -> None:
        """On the listening task: send the notes ``notify`` could not, oldest first, until one fails."""
        while self._owed and not self._closed:
            channel, payload = next(iter(self._owed))
            try:
                await self._send_note(channel, payload)
            except NOTE_ERRORS:
                return  # still unreachable: the next poll tries again
            self._owed.pop((channel, payload), None)
            LOGGER.warning("NOTIFY %s %r sent late (it had failed)", channel, payload)

    def _scoped(self, channel: str) -> str:
        """The channel of this schema's cluster: notifications are per database, clusters per schema."""
        return (
            channel if self.schema in ("", "public") else f"{channel}_{lock_key(self.schema, channel) & 0xFFFFFFFF:08x}"
        )

    def subscribe(self, channel: str, listener: Listener) -> None:
        """LISTEN on ``channel``; the first subscription starts the listening task."""
        channel = self._scoped(channel)
        self._listeners.setdefault(channel, []).append(listener)
        if self._listen_task is None:
            self._listen_task = asyncio.create_task(self._listen(), name="pg-listen")
        elif channel not in self._listened and self.listening.is_set():
            # The listening task LISTENs itself, between two waits: a LISTEN sent from another task
            # on its connection while notifies() held it was lost about once in three (a pusher
            # subscribing after start never heard its peers). Woken at once by our own channel.
            self._wake_task = asyncio.create_task(self._wake_listener(), name="pg-listen-wake")

    async def _listen(self) -> None:
        """Keep one LISTEN connection; reconnect (bounded backoff) when it drops."""
        delay = 0.5
        lost = False
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
                self._listen_conn = conn
                self._listened = set()
                await self._listen_to_new(conn)
                self.listening.set()
                delay = 0.5
                if lost:  # what was sent while we were not listening is gone: every listener re-reads
                    lost = False
                    LOGGER.warning("LISTEN connection back: re-reading what other processes may have changed")
                    for listener in [x for listeners in self._listeners.values() for x in listeners]:
                        await self._call(listener, RESYNC)
                while not self._closed:
                    async for note in conn.notifies(timeout=LISTEN_POLL):
                        if self._closed:  # woken by close() (_stop_listener) or stopping anyway
                            return
                        if note.channel == self._stop_channel:  # woken by a late subscribe()
                            break
                        sender, _, payload = note.payload.partition("|")
                        if sender == self.process_id:
                            continue
                        for listener in list(self._listeners.get(note.channel, [])):
                            await self._call(listener, payload)
                    await self._listen_to_new(conn)  # channels subscribed since the last wait
                    await self._resend_owed()  # at most every LISTEN_POLL while notes are owed
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self.listening.clear()
                lost = True
                LOGGER.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _listen_to_new(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """On the listening task: LISTEN every subscribed channel (and our own) not listened to yet."""
        for channel in [self._stop_channel, *self._listeners]:
            if channel not in self._listened:
                await conn.execute(f'LISTEN "{channel}"')
                self._listened.add(channel)

    async def _wake_listener(self) -> None:
        """NOTIFY our own channel: the listening task stops waiting and LISTENs to new channels."""
        if self._pool is None:
            return
        with contextlib.suppress(psycopg.Error, asyncio.TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT):
                async with self._pool.connection() as conn:
                    await conn.execute("SELECT pg_notify(%s, '')", (self._stop_channel,))

    @staticmethod
    async def _call(listener: Listener, payload: str) -> None:
        try:
            result = listener(payload)
            if asyncio.iscoroutine(result):
                await result
        except OUTAGES as exc:  # the store logs that state itself: one line
            LOGGER.warning("notification listener skipped: %s", exc)
        except Exception:  # one broken listener must not stop the others hearing
            LOGGER.exception("notification listener failed")

    async def maintain(self) -> None:
        """ANALYZE the busy tables (a WARNING once when the server's autovacuum is off).

        The outbox changes fast (every message is inserted, then deleted): without fresh statistics
        the planner checked chain heads through the wrong index, one scan of the queue per row
        (seen: a 10,000-message drain at 5 msgs/s on a server with autovacuum off; 348 after ANALYZE).
        """
        self._check_open()
        if self._pool is None:
            raise StoreClosedError("the store is closed")
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT current_setting('autovacuum') = 'on'")
            row = await cursor.fetchone()
            if not (row and row[0]) and not self._warned_autovacuum:
                self._warned_autovacuum = True
                LOGGER.warning(
                    "autovacuum is off on this server: the hub refreshes its busy tables' statistics,"
                    " but deleted rows are not cleaned up (turn autovacuum on)"
                )
            for table in BUSY_TABLES:
                await conn.execute(f"ANALYZE {table}")

    async def try_lead(self, role: str) -> bool:
        """Hold (or take) the cluster-wide lease for ``role``; False when another process holds it."""
        if self._closed:
            return False
        now = time.monotonic()
        known = self._lead_known.get(role)
        if known is not None and now - known[1] < LEAD_RECHECK:  # the scheduler asks every round
            return known[0]
        leading = await self._try_lead(role)
        self._lead_known[role] = (leading, now)
        return leading

    async def _try_lead(self, role: str) -> bool:
        async with self._lead_lock:
            try:
                if self._lead_conn is None or self._lead_conn.closed:
                    self._lead_conn = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                    )
                if role in self._leading:
                    await self._lead_conn.execute("SELECT 1")  # the lease lives as long as this session
                    return True
                key = lock_key(self.schema, f"lead:{role}")
                cursor = await self._lead_conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                row = await cursor.fetchone()
                if row and row[0]:
                    self._leading.add(role)
                    LOGGER.info("this process (%s) now leads %s", self.process_id, role)
                    return True
                return False
            except psycopg.Error as exc:
                LOGGER.warning("leader lease check failed (%s); not leading %s until it works", exc, role)
                if self._lead_conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await self._lead_conn.close()
                self._lead_conn = None
                self._leading.clear()
                return False
