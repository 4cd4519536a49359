"""Numbered, append-only schema migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add the next number. Each migration runs in one
transaction together with its record in ``_sqlite_migrations``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("ocpi_hub")


@MIGRATIONS(name="0001_initial")
def _m0001_initial(db: Database) -> None:
    _run_script(
        db,
        """
        CREATE TABLE platforms (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,            -- PLANNED, CONNECTED, OFFLINE, SUSPENDED
            versions_url TEXT,
            version TEXT,
            token_out TEXT,                  -- the token we use to call them (theirs, as received)
            send_base64 INTEGER NOT NULL DEFAULT 1,
            initiated_by TEXT NOT NULL,      -- 'party' (invitation) or 'hub' (connection)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_seen_in TEXT,
            last_seen_out TEXT
        );
        CREATE TABLE endpoints (
            platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
            module TEXT NOT NULL,
            role TEXT NOT NULL,              -- SENDER / RECEIVER
            url TEXT NOT NULL,
            PRIMARY KEY (platform_id, module, role)
        );
        CREATE TABLE parties (
            platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            role TEXT NOT NULL,
            business_details TEXT NOT NULL DEFAULT '{}',
            last_updated TEXT NOT NULL,
            PRIMARY KEY (platform_id, country_code, party_id, role)
        );
        -- CiStrings compare case-insensitively: one party+role is served by one platform.
        CREATE UNIQUE INDEX parties_identity
            ON parties (upper(country_code), upper(party_id), role);
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,     -- sha256 hex of an inbound token; never the token
            platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,              -- 'A' (invitation, single use) or 'C' (live)
            created_at TEXT NOT NULL,
            expires_at TEXT
        );
        CREATE INDEX tokens_platform ON tokens (platform_id);
        """,
    )


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


def apply_migrations(path: Path | str, *, stop_before: str | None = None) -> list[str]:
    """Apply pending migrations to the file; return the names applied now."""
    db = Database(str(path))
    try:
        pending = [m.name for m in MIGRATIONS.pending(db)]
        if stop_before is not None and stop_before in pending:
            pending = pending[: pending.index(stop_before)]
        MIGRATIONS.apply(db, stop_before=stop_before)
        return pending
    finally:
        db.close()


def list_migrations(path: Path | str) -> list[tuple[str, str | None]]:
    """Every known migration with its applied-at time (None when pending)."""
    db = Database(str(path))
    try:
        applied = {m.name: m.applied_at for m in MIGRATIONS.applied(db)}
        return [(m.name, applied.get(m.name)) for m in MIGRATIONS._migrations]
    finally:
        db.close()
