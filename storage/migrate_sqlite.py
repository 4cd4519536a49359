"""The SQLite applier of storage/migrations/ (sqlite-utils ``Migrations``).

Each migration runs in one transaction together with its record in ``_sqlite_migrations``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from storage.errors import SchemaTooNew
from storage.migrations import STEPS, Step

__all__ = ["MIGRATIONS", "SchemaTooNew", "apply_migrations", "check_schema", "dry_run", "list_migrations"]

MIGRATIONS = Migrations("ocpi_hub")


def _register(step: Step) -> None:
    def run(db: Database) -> None:
        if isinstance(step.sqlite, str):
            _run_script(db, step.sqlite)
        else:
            step.sqlite(db)

    MIGRATIONS(name=step.name, transactional=step.transactional)(run)


for _step in STEPS:
    _register(_step)


def _run_script(db: Database, script: str) -> None:
    """Run statements one by one: executescript() would COMMIT and break the migration's atomicity."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


def check_schema(db: Database, path: Path | str) -> None:
    """Refuse a database with migrations this binary does not know (written by a newer version).

    An older binary on a newer schema would misread or corrupt it; the operator either upgrades
    or restores the backup taken before the upgrade (docs/DEPLOY.md, rollback).
    """
    known = {m.name for m in MIGRATIONS._migrations}
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
    if unknown:
        raise SchemaTooNew(
            f"database {Path(path).resolve()} has schema {unknown[-1]}, newer than this ocpi-hub knows"
            f" (latest {MIGRATIONS._migrations[-1].name}): run the newer version, or restore the backup"
            " taken before the upgrade"
        )


def apply_migrations(path: Path | str, *, stop_before: str | None = None) -> list[str]:
    """Apply pending migrations to the file; return the names applied now."""
    db = Database(str(path))
    try:
        check_schema(db, path)
        pending = [m.name for m in MIGRATIONS.pending(db)]
        if stop_before is not None and stop_before in pending:
            pending = pending[: pending.index(stop_before)]
        MIGRATIONS.apply(db, stop_before=stop_before)
        return pending
    finally:
        db.close()


def dry_run(path: Path | str) -> list[tuple[str, list[str]]]:
    """What ``migrate`` would do: each pending migration with the schema objects it adds or changes.

    The migrations run against an in-memory copy of the database; the file is not touched.
    """
    memory = sqlite3.connect(":memory:")
    try:
        if Path(path).exists():
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                source.backup(memory)
            finally:
                source.close()
        db = Database(memory)
        check_schema(db, path)
        plan: list[tuple[str, list[str]]] = []
        for migration in MIGRATIONS.pending(db):
            before = _schema(memory)
            MIGRATIONS.apply(db, stop_before=_next_name(migration.name))
            after = _schema(memory)
            changes = [f"+ {after[k]}" for k in after if before.get(k) != after[k]]
            changes += [f"- {kind} {name}" for kind, name in before if (kind, name) not in after]
            plan.append((migration.name, changes or ["(no schema change: data or file settings only)"]))
        return plan
    finally:
        memory.close()


def _next_name(name: str) -> str | None:
    names = [m.name for m in MIGRATIONS._migrations]
    index = names.index(name)
    return names[index + 1] if index + 1 < len(names) else None


def _schema(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute(
        "SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        " AND name NOT LIKE '_sqlite_migrations%'"
    ).fetchall()
    return {(t, n): " ".join(sql.split()) or f"{t} {n}" for t, n, sql in rows}


def list_migrations(path: Path | str) -> list[tuple[str, str | None]]:
    """Every known migration with its applied-at time (None when pending)."""
    db = Database(str(path))
    try:
        check_schema(db, path)
        applied = {m.name: m.applied_at for m in MIGRATIONS.applied(db)}
        return [(m.name, applied.get(m.name)) for m in MIGRATIONS._migrations]
    finally:
        db.close()
