"""The database's files: one hub per database, mode 0600, backup and restore of a live hub, schema checks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from storage import files
from storage.migrate_sqlite import MIGRATIONS
from storage.sqlite import SqliteStore as Store
from tests.support.hub import cli
from tests.support.ops import pair, push_session

LATEST = MIGRATIONS._migrations[-1].name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_second_store_on_the_same_database_is_refused(tmp_path):
    db = tmp_path / "hub.sqlite3"
    first = Store(db)
    await first.open()
    try:
        second = Store(db)
        with pytest.raises(files.DatabaseLocked) as err:
            await second.open()
        assert str(err.value).startswith(f"database {db} is in use by hub pid {os.getpid()}")
    finally:
        await first.close()
    again = Store(db)  # released on close
    await again.open()
    await again.close()


async def test_every_file_of_the_database_is_0600(hub, make_peer, tmp_path, capsys, cli_env, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE", str(hub.settings.database))
    cpo, _ = await pair(hub, make_peer)
    await push_session(hub, cpo, "S1")  # the WAL and SHM exist while the hub runs
    db = hub.settings.database_path
    side = [Path(str(db) + "-wal"), Path(str(db) + "-shm"), files.lock_path(db)]
    assert all(p.exists() for p in side)
    assert {str(p): mode(p) for p in [db, *side]} == {str(p): 0o600 for p in [db, *side]}
    code, out, _ = await cli(capsys, "backup", str(tmp_path / "b" / "copy.sqlite3"), "--json")
    assert code == 0 and mode(Path(json.loads(out)["backup"])) == 0o600


async def test_an_older_world_readable_database_is_tightened(tmp_path):
    db = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (x)")
    os.chmod(db, 0o644)
    store = Store(db)
    await store.open()
    await store.close()
    assert mode(db) == 0o600


async def test_backup_of_a_running_hub_under_traffic_restores(hub, make_peer, tmp_path, capsys, cli_env, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE", str(hub.settings.database))
    cpo, _ = await pair(hub, make_peer)
    for i in range(5):
        await push_session(hub, cpo, f"BEFORE-{i}")
    backup = tmp_path / "backup.sqlite3"

    async def traffic() -> int:
        sent = 0
        for i in range(40):  # bounded: pushes keep committing while the backup copies pages
            await push_session(hub, cpo, f"DURING-{i}")
            sent += 1
        return sent

    pushing = asyncio.create_task(traffic())
    code, out, err = await cli(capsys, "backup", str(backup))
    assert (code, err) == (0, ""), err
    assert out.startswith(f"backup of {hub.settings.database} written to {backup} (")
    assert await pushing == 40
    with closing(sqlite3.connect(backup)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        ids = {r[0] for r in conn.execute("SELECT object_id FROM objects WHERE module='sessions'")}
    assert {f"BEFORE-{i}" for i in range(5)} <= ids
    # A backup is not overwritten by mistake.
    code, _, err = await cli(capsys, "backup", str(backup))
    assert code == 2 and err.strip() == f"ocpi-hub: {backup} already exists; back up to a new file name"

    # Restore is refused while a hub runs on the database...
    code, _, err = await cli(capsys, "restore", str(backup))
    assert code == 2 and "is in use by hub pid" in err
    # ...and works into another database (as after stopping the hub), keeping what it replaced.
    target = tmp_path / "restored.sqlite3"
    with closing(sqlite3.connect(target)) as conn:
        conn.execute("CREATE TABLE placeholder (x)")
    monkeypatch.setenv("HUB_DATABASE", str(target))
    code, out, err = await cli(capsys, "restore", str(backup))
    assert code == 0, err
    assert f"restored {target} from {backup}" in out and f"{target}.before-restore" in out
    assert mode(target) == 0o600 and mode(Path(f"{target}.before-restore")) == 0o600
    store = Store(target)
    await store.open()
    try:
        rows = await store.fetchall("SELECT object_id FROM objects WHERE module='sessions'")
        assert {r["object_id"] for r in rows} == ids
    finally:
        await store.close()


async def test_restore_refuses_what_is_not_a_hub_backup(tmp_path, capsys, cli_env):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    code, _, err = await cli(capsys, "restore", str(junk))
    assert code == 2 and str(junk) in err and len(err.strip().splitlines()) == 1
    code, _, err = await cli(capsys, "restore", str(tmp_path / "missing.sqlite3"))
    assert code == 2 and "does not exist" in err


def _future_schema(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('ocpi_hub', '9999_future', 'x')"
        )
        conn.commit()


async def test_an_older_binary_refuses_a_newer_schema(tmp_path, capsys, monkeypatch):
    db = tmp_path / "hub.sqlite3"
    store = Store(db)
    await store.open()
    await store.close()
    _future_schema(db)
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_DATABASE", str(db))
    for argv in (["migrate"], ["migrate", "--dry-run"], ["migrate", "--list"], ["serve"]):
        code, out, err = await cli(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert err == (
            f"ocpi-hub: database {db} has schema 9999_future, newer than this ocpi-hub knows (latest {LATEST}):"
            " run the newer version, or restore the backup taken before the upgrade\n"
        ), argv


async def test_migrate_dry_run_changes_nothing(tmp_path, capsys, monkeypatch):
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    db = tmp_path / "new" / "hub.sqlite3"
    monkeypatch.setenv("HUB_DATABASE", str(db))
    code, out, _ = await cli(capsys, "migrate", "--dry-run")
    assert code == 0 and not db.exists() and not db.parent.exists()
    assert (
        out.splitlines()[0]
        == f"database {db} (would be created): {len(MIGRATIONS._migrations)} pending migration(s), nothing changed"
    )
    assert "+ CREATE TABLE platforms (" in out and "+ CREATE INDEX objects_owner ON objects" in out
    code, out, _ = await cli(capsys, "migrate")
    assert code == 0 and mode(db) == 0o600
    code, out, _ = await cli(capsys, "migrate", "--dry-run", "--json")
    assert (code, json.loads(out)) == (0, [])
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL


async def test_serve_refuses_a_missing_database(tmp_path, capsys, monkeypatch):
    for name in [n for n in os.environ if n.startswith("HUB_")]:
        monkeypatch.delenv(name)
    db = tmp_path / "typo" / "hub.sqlite3"
    monkeypatch.setenv("HUB_DATABASE", str(db))
    code, out, err = await cli(capsys, "serve")
    assert (code, out) == (2, "")
    assert err == (
        f"ocpi-hub: database {db} does not exist; create it with `ocpi-hub migrate`"
        " (or start with `ocpi-hub serve --init`), or fix HUB_DATABASE\n"
    )
    assert not db.parent.exists()  # nothing created, not even the directory


def test_an_existing_database_switches_to_incremental_vacuum(tmp_path):
    from storage.migrate_sqlite import apply_migrations

    db = tmp_path / "old.sqlite3"
    apply_migrations(db, stop_before="0009_objects_owner_index")  # as an older hub left it
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    assert apply_migrations(db)[:2] == ["0009_objects_owner_index", "0010_incremental_vacuum"]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2


async def test_creating_a_database_is_a_warning(tmp_path, caplog):
    db = tmp_path / "new.sqlite3"
    store = Store(db)
    with caplog.at_level(logging.WARNING, logger="storage.files"):
        await store.open()
    await store.close()
    assert [r.getMessage() for r in caplog.records if r.name == "storage.files"] == [
        f"created a new, empty database at {db}"
    ]
    caplog.clear()
    again = Store(db)  # an existing database is opened quietly
    with caplog.at_level(logging.WARNING, logger="storage.files"):
        await again.open()
    await again.close()
    assert not [r for r in caplog.records if r.name == "storage.files"]
