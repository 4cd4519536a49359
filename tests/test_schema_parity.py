"""Both backends' schemas from the one list in storage/migrations/ hold the same tables and columns.

A SQLite file and a PostgreSQL schema are migrated to the latest step; the tables, their columns
(name, type family, NOT NULL) and the explicitly created indexes must match, migration
bookkeeping and the indexes a migration drops on one backend on purpose aside. PostgreSQL comes
from HUB_TEST_POSTGRES_URL (skipped when unset).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from storage import migrate_postgres, migrate_sqlite
from storage.migrations import STEPS
from tests.support.backends import Databases, require_postgres

BOOKKEEPING = {"_hub_migrations", "_sqlite_migrations"}
# Indexes one backend drops on purpose, with the migration that says why.
SQLITE_ONLY_INDEXES = {
    "outbox_queue_order",  # 0018_outbox_queue_indexes: SQLite's per-receiver claims
    "outbox_queue_due",
}
# 0013 dropped outbox_receiver on PostgreSQL (its planner misused it), 0018 on SQLite too; 0018
# drops outbox_due on SQLite only (its claims read the per-receiver indexes); 0021 gives
# PostgreSQL's per-receiver claims their own partial index of pending rows.
POSTGRES_ONLY_INDEXES = {"outbox_due", "outbox_pending_queue"}
Columns = dict[str, dict[str, tuple[str, bool]]]  # table -> column -> (type family, NOT NULL)


def sqlite_family(declared: str) -> str:
    """SQLite's type affinity of a declared type (datatype3.html, 3.1)."""
    declared = declared.upper()
    if "INT" in declared:
        return "integer"
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in declared or not declared:
        return "blob"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


POSTGRES_FAMILIES = {
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "text": "text",
    "character varying": "text",
    "double precision": "real",
    "real": "real",
    "bytea": "blob",
    "numeric": "numeric",
}


def sqlite_schema(path: Path) -> tuple[Columns, set[str]]:
    with closing(sqlite3.connect(path)) as conn:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
            if r[0] not in BOOKKEEPING
        ]
        columns: Columns = {}
        for table in names:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            # A primary key column counts as NOT NULL: PostgreSQL makes it so, SQLite only for its
            # rowid (a TEXT key without NOT NULL takes NULL there, a quirk no writer relies on).
            columns[table] = {c[1]: (sqlite_family(c[2]), bool(c[3] or c[5])) for c in info}
        indexes = {
            r[0]
            for r in conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")
            if r[1] not in BOOKKEEPING
        }
    return columns, indexes


def postgres_schema(url: str) -> tuple[Columns, set[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        columns: Columns = {}
        for table, column, data_type, nullable in conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        ):
            if table in BOOKKEEPING:
                continue
            family = POSTGRES_FAMILIES.get(data_type, data_type)
            columns.setdefault(table, {})[column] = (family, nullable == "NO")
        # Indexes created by CREATE INDEX, not those behind PRIMARY KEY / UNIQUE constraints.
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
                " WHERE n.nspname = current_schema() AND t.relname NOT LIKE '\\_hub%'"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            )
        }
    return columns, indexes


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    require_postgres()
    made = Databases("postgres", tmp_path)
    yield str(made.new(migrated=False))
    made.drop()


def test_both_backends_hold_the_same_tables_columns_and_indexes(tmp_path: Path, postgres_url: str) -> None:
    path = tmp_path / "parity.sqlite3"
    assert migrate_sqlite.apply_migrations(path) == [step.name for step in STEPS]
    assert migrate_postgres.apply_migrations(postgres_url) == [step.name for step in STEPS]
    sqlite_columns, sqlite_indexes = sqlite_schema(path)
    pg_columns, pg_indexes = postgres_schema(postgres_url)

    assert sorted(pg_columns) == sorted(sqlite_columns)
    for table, expected in sqlite_columns.items():
        assert list(pg_columns[table]) == list(expected), f"{table}: column names or order differ"
        assert pg_columns[table] == expected, f"{table}: column types or NOT NULL differ"
    assert pg_indexes - POSTGRES_ONLY_INDEXES == sqlite_indexes - SQLITE_ONLY_INDEXES
    # The comparison saw the schema, not two empty sets.
    assert {"platforms", "outbox", "objects", "traffic", "hub_processes"} <= set(sqlite_columns)
    assert {"parties_identity", "outbox_chain", "objects_order", "traffic_platform"} <= sqlite_indexes
