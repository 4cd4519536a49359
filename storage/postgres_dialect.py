"""PostgreSQL's dialect of the shared SQL: rows, placeholders, booleans and the ``Dialect``.

What storage/postgres.py's store runs every statement through; kept apart from the store's
connections, listener and leases.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg.adapt import Dumper
from psycopg.pq import Format, PipelineStatus

from storage.db import Cursor, Dialect, Params
from storage.errors import IntegrityError, StorageFull, StorageUnavailable


class PgRow:
    """A row by column name or position, like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple[Any, ...], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str, /) -> Any:
        """The value of a column, by name or position."""
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        """The column names."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Any:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._index, self._values, strict=False))!r})"


def pg_rows(cursor: Any) -> Callable[[Any], PgRow]:
    """Psycopg row factory making PgRow."""
    description = cursor.description or []
    index = {column.name: i for i, column in enumerate(description)}

    def make(values: Any) -> PgRow:
        return PgRow(tuple(values), index)

    return make


class BoolAsInt(Dumper):
    """Python booleans go to the INTEGER columns the shared schema uses for flags (as SQLite stores them)."""

    oid = psycopg.adapters.types["int8"].oid
    format = Format.TEXT

    def dump(self, obj: Any) -> bytes:
        """1 or 0."""
        return b"1" if obj else b"0"


@functools.lru_cache(maxsize=2048)
def to_pg(sql: str) -> str:
    """The shared SQL with psycopg's placeholders: ``?`` becomes ``%s``, a literal ``%`` becomes ``%%``.

    A ``?`` inside a string, a quoted name or a ``--`` comment is text, not a placeholder. The
    result is always run with a parameter sequence (empty when there are none): psycopg turns
    ``%%`` back into ``%`` only then.
    """
    out: list[str] = []
    close: str | None = None  # what ends the literal or comment we are in
    previous = ""
    for char in sql:
        if close:
            if char == close:
                close = None
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            close = char
            out.append(char)
        elif char == "-" and previous == "-":
            close = "\n"
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
        previous = "" if close == "\n" and char == "-" else char
    return "".join(out)


def configure(conn: Any) -> None:
    """Register the hub's adapters on a new connection (booleans as integers, as SQLite stores them)."""
    conn.adapters.register_dumper(bool, BoolAsInt)


def connection_lost(conn: Any) -> bool:
    """Whether a connection is gone (none yet, closed, or broken under a statement by the server)."""
    return conn is None or bool(conn.closed) or bool(conn.broken)


def _reraise_lost(conn: Any, exc: psycopg.OperationalError) -> NoReturn:
    """A connection that broke under the statement is the store's StorageUnavailable; others stay.

    Deadlocks and serialization failures are OperationalErrors too, on a healthy connection:
    they must reach ``transient`` as they are.
    """
    if connection_lost(conn):
        raise StorageUnavailable(f"the database connection was lost: {exc}") from exc
    raise exc


class PostgresDialect(Dialect):
    """Runs the shared SQL on a psycopg connection."""

    name = "postgresql"
    begin = "BEGIN"

    def run(self, conn: Any, sql: str, params: Params = ()) -> Cursor:
        """Execute one statement."""
        try:
            cursor: Cursor = conn.execute(to_pg(sql), params)
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except psycopg.errors.DiskFull as exc:
            raise StorageFull(str(exc)) from exc
        except psycopg.OperationalError as exc:
            _reraise_lost(conn, exc)
        return cursor

    def run_many(self, conn: Any, sql: str, rows: list[Params]) -> None:
        """Execute one statement for many parameter sets (pipelined by psycopg)."""
        if not rows:
            return
        try:
            with conn.cursor() as cursor:
                cursor.executemany(to_pg(sql), rows)
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except psycopg.errors.DiskFull as exc:
            raise StorageFull(str(exc)) from exc
        except psycopg.OperationalError as exc:
            _reraise_lost(conn, exc)

    def insert(self, conn: Any, sql: str, params: Params = ()) -> int:
        """Execute an INSERT ... RETURNING id; return the id."""
        row = self.run(conn, sql + " RETURNING id", params).fetchone()
        return int(row[0])

    def in_transaction(self, conn: Any) -> bool:
        """A connection the server ended has no transaction left to roll back (nor a way to)."""
        return not connection_lost(conn)

    def transient(self, exc: BaseException) -> bool:
        """Deadlocks and serialization failures between processes are cured by running again."""
        return isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure)

    def run_rowcount(self, conn: Any, sql: str, params: Params = ()) -> int:
        """Execute one statement; return how many rows it changed (known only once its result is in)."""
        if conn.pgconn.pipeline_status == PipelineStatus.OFF:
            return self.run(conn, sql, params).rowcount
        with conn.pipeline():  # inside a pipelined batch, leaving a nested block waits for the results
            cursor = self.run(conn, sql, params)
        return cursor.rowcount

    def pipeline(self, conn: Any) -> AbstractContextManager[Any]:
        """Pipeline mode (psycopg): a statement whose result nobody reads does not cost a round trip.

        A read (fetchone, RETURNING id) waits for everything sent before it; an error surfaces at
        the next read or at the end of the block, which is why only the all-or-nothing first
        attempt of a batch runs pipelined (storage/statements.py, apply_batch).
        """
        pipeline: AbstractContextManager[Any] = conn.pipeline()
        return pipeline


def redact(url: str) -> str:
    """The URL without its password, for logs and /status."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
