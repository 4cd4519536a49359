"""Numbered, append-only migrations: empty -> latest, idempotent, listable, stoppable (DESIGN-NOTES.md, Storage)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from storage import migrate_sqlite as migrations
from storage.migrate_sqlite import MIGRATIONS, apply_migrations, list_migrations
from storage.sqlite import SqliteStore as Store

ALL = [m.name for m in MIGRATIONS._migrations]
FOUNDATION_TABLES = {"platforms", "endpoints", "parties", "tokens", "_sqlite_migrations"}


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def applied_rows(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]


def test_names_are_numbered_and_ordered():
    assert ALL[0] == "0001_initial"
    numbers = [int(name.split("_", 1)[0]) for name in ALL]
    # Numbers are reserved per branch (docs: main 0006-0007, ..., versions 0011), so a branch
    # may skip some: they only have to be unique and in order.
    assert numbers == sorted(set(numbers)) and numbers[0] == 1


def test_empty_database_to_latest(tmp_path):
    db = tmp_path / "new.sqlite3"
    assert apply_migrations(db) == ALL
    assert applied_rows(db) == ALL
    assert tables(db) >= FOUNDATION_TABLES
    with closing(sqlite3.connect(db)) as conn, conn:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(tokens)")}
        assert cols == {"token_hash", "platform_id", "kind", "created_at", "expires_at"}
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(parties)")}
        assert "parties_identity" in indexes


def test_applying_twice_is_a_no_op(tmp_path):
    db = tmp_path / "twice.sqlite3"
    apply_migrations(db)
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO platforms (name, status, initiated_by, created_at, updated_at)"
            " VALUES ('p', 'PLANNED', 'hub', 'x', 'x')"
        )
    before = list_migrations(db)
    assert apply_migrations(db) == []
    assert list_migrations(db) == before
    assert applied_rows(db) == ALL
    with closing(sqlite3.connect(db)) as conn, conn:
        assert conn.execute("SELECT name FROM platforms").fetchall() == [("p",)]


def test_list_shows_applied_and_pending(tmp_path):
    db = tmp_path / "list.sqlite3"
    assert list_migrations(db) == [(name, None) for name in ALL]
    apply_migrations(db)
    listed = list_migrations(db)
    assert [name for name, _ in listed] == ALL
    assert all(isinstance(at, str) and at.startswith("20") for _, at in listed)


def test_stop_before_leaves_later_ones_pending(tmp_path):
    db = tmp_path / "stop.sqlite3"
    assert apply_migrations(db, stop_before=ALL[0]) == []
    assert list_migrations(db) == [(name, None) for name in ALL]
    assert "platforms" not in tables(db)
    if len(ALL) > 1:
        assert apply_migrations(db, stop_before=ALL[-1]) == ALL[:-1]
        listed = dict(list_migrations(db))
        assert listed[ALL[-1]] is None and all(listed[n] for n in ALL[:-1])
    assert apply_migrations(db) == (ALL[-1:] if len(ALL) > 1 else ALL)
    assert applied_rows(db) == ALL


def test_stop_before_an_applied_migration_is_refused(tmp_path):
    db = tmp_path / "late.sqlite3"
    apply_migrations(db)
    with pytest.raises(ValueError, match="already"):
        apply_migrations(db, stop_before=ALL[0])


def test_failing_migration_rolls_back_entirely(tmp_path, monkeypatch):
    db = tmp_path / "fail.sqlite3"
    trial = Migrations(MIGRATIONS.name)
    trial._migrations = list(MIGRATIONS._migrations)

    @trial(name="9999_broken")
    def _broken(database: Database) -> None:
        migrations._run_script(database, "CREATE TABLE half_done (x INTEGER);\nCREATE TABLE half_done (x INTEGER);\n")

    monkeypatch.setattr(migrations, "MIGRATIONS", trial)
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(db)
    assert "half_done" not in tables(db)
    assert dict(list_migrations(db))["9999_broken"] is None
    assert applied_rows(db) == ALL


def test_incomplete_statement_is_refused(tmp_path):
    database = Database(str(tmp_path / "x.sqlite3"))
    try:
        with pytest.raises(ValueError, match="incomplete"):
            migrations._run_script(database, "CREATE TABLE t (x INTEGER)")
    finally:
        database.close()


async def test_store_open_migrates_and_uses_wal(tmp_path):
    path = tmp_path / "sub" / "store.sqlite3"
    store = Store(path)
    await store.open()
    try:
        assert [r["name"] for r in await store.fetchall("SELECT name FROM _sqlite_migrations ORDER BY id")] == ALL
        row = await store.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
    finally:
        await store.close()
        await store.close()  # idempotent


def test_0008_backfills_outbox_request_id_from_the_headers(tmp_path):
    db = tmp_path / "rid.sqlite3"
    apply_migrations(db, stop_before="0008_outbox_request_id")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO outbox (receiver_platform_id, module, object_key, method, url, headers, state, created_at,"
            " next_attempt_at, deadline_at)"
            " VALUES (1, 'sessions', 'k', 'PUT', 'http://x', ?, 'pending', 't', 't', 't')",
            ('{"X-Request-ID": "rid-1", "X-Correlation-ID": "c"}',),
        )
    apply_migrations(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT request_id FROM outbox").fetchall() == [("rid-1",)]


def test_0017_backfills_token_contract_ids(tmp_path):
    """Tokens stored before 0017 are found by contract_id too (2.1.1 auth_id lookups)."""
    db = tmp_path / "alt.sqlite3"
    apply_migrations(db, stop_before="0017_objects_origin")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO objects (module, object_key, recipient, country_code, party_id, object_id, last_updated, body)"
            " VALUES ('tokens', 'DE/E22/U1/RFID', '', 'DE', 'E22', 'U1', 't', ?)",
            ('{"uid":"U1","contract_id":"de-e22-c1"}',),
        )
    apply_migrations(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT alt_id, origin_version FROM objects").fetchall() == [("DE-E22-C1", None)]
