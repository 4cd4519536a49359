"""Copy a SQLite hub database into PostgreSQL (``ocpi-hub copy-to-postgres``).

For a network that grows out of the embedded default: every table of the schema is copied row
for row, keys included (platform ids, object seq, outbox ids), into a PostgreSQL database
brought to the same schema by the shared migration list (storage/migrations/). The tables and
their columns are read from the two schemas, not from a list kept here, so a table added by a
later migration is copied without anyone remembering to; only ``SKIPPED`` names what is left
out, and why.

Safety: the SQLite file's lock (storage/files.py) is held for the whole copy, so no hub writes
to it meanwhile (and none can start on it); the target must be empty; everything runs in one
PostgreSQL transaction, so a failure leaves the target as it was. Rows go over COPY in batches
read from SQLite with ``fetchmany``. Afterwards each identity sequence is moved past the highest
copied key, so rows the hub adds later never collide with copied ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlite_utils import Database

from storage.errors import StorageError
from storage.files import DatabaseLocked, acquire_lock
from storage.migrate_postgres import apply_migrations
from storage.migrate_sqlite import MIGRATIONS, check_schema
from storage.postgres_dialect import redact

# Left out, with the reason the command prints. Each process of the PostgreSQL cluster writes its
# own heartbeat row; the SQLite hub's rows describe a process that will not run there.
SKIPPED = {
    "hub_processes": "per-process heartbeats; the PostgreSQL processes write their own",
    "console_sessions": "operator console logins; operators log in again",
}
BOOKKEEPING = {"_sqlite_migrations", "_hub_migrations"}  # each backend's own migration record
BATCH_ROWS = 5000
CONNECT_TIMEOUT = 10
LOCK_TIMEOUT = "10s"  # a hub already serving the target holds row locks; do not wait forever


class CopyRefused(StorageError):
    """The copy cannot start, or failed and was rolled back: the message says what to do."""


@dataclass(frozen=True)
class Column:
    """One column as both schemas know it: its name and PostgreSQL type (``udt_name``)."""

    name: str
    pg_type: str
    identity: bool


@dataclass(frozen=True)
class Table:
    """One table to copy, its columns in SQLite's order."""

    name: str
    columns: list[Column]


@dataclass
class TableCopy:
    """What was copied into one table."""

    name: str
    rows: int
    seconds: float


@dataclass
class CopyReport:
    """The outcome of one copy, for the CLI."""

    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows copied over all tables."""
        return sum(t.rows for t in self.tables)


def one_line(exc: BaseException) -> str:
    """A driver's (often multi-line) message as one line."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def copy_to_postgres(source: Path, url: str, *, batch_rows: int = BATCH_ROWS) -> CopyReport:
    """Copy every table of the SQLite hub database ``source`` into the empty PostgreSQL database ``url``."""
    started = time.monotonic()
    if not source.is_file():
        raise CopyRefused(f"database {source.resolve()} does not exist: HUB_DATABASE must name the SQLite hub to copy")
    try:
        lock = acquire_lock(source, purpose="ocpi-hub copy-to-postgres")
    except DatabaseLocked as exc:
        raise CopyRefused(f"{exc}: stop the hub before copying its database") from exc
    try:
        _check_sqlite_schema(source)
        report = CopyReport(str(source.resolve()), redact(url), skipped=dict(SKIPPED))
        with _connect(url) as target, _open_sqlite(source) as conn:
            _refuse_other_tables(target, _sqlite_tables(conn), url)
            target.rollback()  # end the read, so the migration's DDL does not wait for this session
            _migrate_target(url)
            tables = _plan(conn, target)
            _lock_empty_target(target, tables, url)
            for table in tables:
                report.tables.append(_copy_table(conn, target, table, batch_rows))
            _move_sequences(target, tables)
            target.commit()
    finally:
        lock.release()
    report.seconds = time.monotonic() - started
    return report


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        raise CopyRefused(f"cannot connect to {redact(url)}: {one_line(exc)}") from exc


def _migrate_target(url: str) -> None:
    """Bring the target to this version's schema (what ``ocpi-hub migrate`` does); new tables if empty."""
    try:
        apply_migrations(url)
    except psycopg.Error as exc:
        raise CopyRefused(f"cannot migrate {redact(url)}: {one_line(exc)}") from exc


@contextmanager
def _open_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """The SQLite file, read-only, in one read transaction (one consistent snapshot)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _check_sqlite_schema(path: Path) -> None:
    """Refuse a file whose migrations are not exactly this version's (newer: SchemaTooNew)."""
    db = Database(str(path))
    try:
        check_schema(db, path)
        pending = [m.name for m in MIGRATIONS.pending(db)]
    except sqlite3.DatabaseError as exc:
        raise CopyRefused(f"{path.resolve()} is not a readable SQLite database: {exc}") from exc
    finally:
        db.close()
    if pending:
        raise CopyRefused(
            f"database {path.resolve()} lacks migration(s) {', '.join(pending)}: run `ocpi-hub migrate` on it"
            " first (with the same HUB_DATABASE), then copy again"
        )


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    """The hub's tables in the SQLite file (its migration record left out)."""
    return [
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        if r[0] not in BOOKKEEPING
    ]


def _refuse_other_tables(target: psycopg.Connection[Any], hub_tables: list[str], url: str) -> None:
    """Refuse a target schema holding tables the hub does not know: it belongs to something else."""
    rows = target.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
    ).fetchall()
    other = [str(r[0]) for r in rows if r[0] not in {*hub_tables, *BOOKKEEPING}]
    if other:
        raise CopyRefused(
            f"{redact(url)} holds tables that are not the hub's ({', '.join(other)}): give the hub a database"
            " (createdb) or schema of its own, nothing was copied"
        )


def _plan(conn: sqlite3.Connection, target: psycopg.Connection[Any]) -> list[Table]:
    """The tables to copy, parents before children, with columns checked against the target's."""
    names = _sqlite_tables(conn)
    source_columns = {n: [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{n}")')] for n in names}
    target_columns: dict[str, dict[str, Column]] = {}
    for table, column, udt, identity in target.execute(
        "SELECT table_name, column_name, udt_name, is_identity FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        if table not in BOOKKEEPING:
            target_columns.setdefault(table, {})[column] = Column(column, udt, identity == "YES")
    only_source = sorted(set(source_columns) - set(target_columns) - set(SKIPPED))
    only_target = sorted(set(target_columns) - set(source_columns) - set(SKIPPED))
    if only_source or only_target:
        raise CopyRefused(
            "the two schemas differ although both are at the latest migration (a bug: please report it):"
            f" only in SQLite {only_source or '-'}, only in PostgreSQL {only_target or '-'}"
        )
    tables: dict[str, Table] = {}
    for name in names:
        if name in SKIPPED:
            continue
        columns = source_columns[name]
        if set(columns) != set(target_columns[name]):
            raise CopyRefused(
                f"table {name} has columns {sorted(columns)} in SQLite but {sorted(target_columns[name])}"
                " in PostgreSQL (a bug: please report it)"
            )
        tables[name] = Table(name, [target_columns[name][c] for c in columns])
    return _parents_first(conn, tables)


def _parents_first(conn: sqlite3.Connection, tables: dict[str, Table]) -> list[Table]:
    """Order the tables so each comes after the tables its foreign keys point to."""
    parents = {
        name: {str(r[2]) for r in conn.execute(f'PRAGMA foreign_key_list("{name}")') if r[2] != name} for name in tables
    }
    ordered: list[Table] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name not in tables:
            return
        if name in path:
            raise CopyRefused(f"foreign keys form a cycle through {' -> '.join((*path, name))}")
        for parent in sorted(parents[name]):
            visit(parent, (*path, name))
        done.add(name)
        ordered.append(tables[name])

    for name in sorted(tables):
        visit(name, ())
    return ordered


def _lock_empty_target(target: psycopg.Connection[Any], tables: list[Table], url: str) -> None:
    """Lock the target's tables against writers for the transaction; refuse any that holds rows."""
    target.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    names = sql.SQL(", ").join(sql.Identifier(t.name) for t in tables)
    try:
        target.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(names))
    except psycopg.errors.LockNotAvailable as exc:
        raise CopyRefused(
            f"{redact(url)} is in use (its tables stayed locked for {LOCK_TIMEOUT}): stop the hubs serving it"
        ) from exc
    filled = []
    for table in tables:
        row = target.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table.name))).fetchone()
        if row and row[0]:
            filled.append(table.name)
    if filled:
        raise CopyRefused(
            f"{redact(url)} already holds data (in {', '.join(filled)}): copy-to-postgres fills an empty database"
            " only; give it a new database (createdb) or schema, nothing was copied"
        )


# What each PostgreSQL column type takes, and how a value SQLite stored with another type
# (SQLite keeps what it was given in a column without affinity, e.g. text in a BLOB) converts.
def _to_int(value: Any) -> int:
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _to_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _to_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


CONVERTERS: dict[str, tuple[type, Callable[[Any], Any]]] = {
    "int8": (int, _to_int),
    "int4": (int, _to_int),
    "int2": (int, _to_int),
    "float8": (float, float),
    "float4": (float, float),
    "text": (str, _to_text),
    "varchar": (str, _to_text),
    "bytea": (bytes, _to_bytes),
}


def _converter(table: Table) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function giving each value of a SQLite row the Python type its PostgreSQL column takes."""
    kinds = []
    for column in table.columns:
        if column.pg_type not in CONVERTERS:
            raise CopyRefused(f"{table.name}.{column.name}: PostgreSQL type {column.pg_type} is not supported")
        kinds.append(CONVERTERS[column.pg_type])

    def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            value if value is None or type(value) is want else to(value)
            for value, (want, to) in zip(row, kinds, strict=True)
        )

    return convert


def _batches(conn: sqlite3.Connection, table: Table, batch_rows: int) -> Iterator[list[tuple[Any, ...]]]:
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    cursor = conn.execute(f'SELECT {columns} FROM "{table.name}" ORDER BY rowid')  # names read from the schema
    while rows := cursor.fetchmany(batch_rows):
        yield rows


def _copy_table(conn: sqlite3.Connection, target: psycopg.Connection[Any], table: Table, batch_rows: int) -> TableCopy:
    """COPY one table's rows, batch by batch; check the target then holds exactly as many."""
    started = time.monotonic()
    convert = _converter(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
    )
    count = 0
    try:
        with target.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types([c.pg_type for c in table.columns])
            for rows in _batches(conn, table, batch_rows):
                for row in rows:
                    copy.write_row(convert(row))
                count += len(rows)
    except (psycopg.Error, ValueError, UnicodeDecodeError) as exc:
        raise CopyRefused(
            f"copying table {table.name} failed after {count} row(s): {one_line(exc)}; nothing was copied"
        ) from exc
    counted = target.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))).fetchone()
    copied = int(counted[0]) if counted else -1
    if copied != count:
        raise CopyRefused(f"table {table.name}: read {count} row(s), PostgreSQL holds {copied}; nothing was copied")
    return TableCopy(table.name, count, time.monotonic() - started)


def _move_sequences(target: psycopg.Connection[Any], tables: list[Table]) -> None:
    """Set each identity sequence past the highest copied key: new rows never reuse a copied id."""
    for table in tables:
        for column in table.columns:
            if column.identity:
                target.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max({}), 0) + 1, false) FROM {}"
                    ).format(sql.Identifier(column.name), sql.Identifier(table.name)),
                    (table.name, column.name),
                )
