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


class SchemaTooNew(Exception):
    """The database was migrated by a newer ocpi-hub than this one."""


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


@MIGRATIONS(name="0002_routing")
def _m0002_routing(db: Database) -> None:
    _run_script(
        db,
        """
        -- Broadcast store for GET-all (docs/DESIGN-NOTES.md, Storage). visible_to NULL means every party
        -- may read it; sessions and CDRs are visible only to the party they were routed to.
        CREATE TABLE objects (
            seq INTEGER PRIMARY KEY,
            module TEXT NOT NULL,
            object_key TEXT NOT NULL,          -- upper(country_code/party_id/id[/type])
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            object_id TEXT NOT NULL,
            visible_to TEXT,                   -- 'CC*PID' upper, or NULL for everyone
            last_updated TEXT NOT NULL,        -- canonical UTC ISO string, sortable
            body TEXT NOT NULL,
            UNIQUE (module, object_key)
        );
        CREATE INDEX objects_page ON objects (module, last_updated, seq);
        CREATE INDEX objects_visible ON objects (module, visible_to, last_updated, seq);
        -- Learned from traffic, for open routing: who owns a location/session/token/reservation.
        CREATE TABLE routing_index (
            kind TEXT NOT NULL,                -- location, session, token, reservation
            object_id TEXT NOT NULL,           -- upper
            country_code TEXT NOT NULL,        -- owner party (upper)
            party_id TEXT NOT NULL,
            peer_country_code TEXT,            -- session: the eMSP it was sent to (upper)
            peer_party_id TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (kind, object_id, country_code, party_id)
        );
        -- Hub URLs handed out in place of a partner's own (docs/DESIGN-NOTES.md, Callbacks and stand-in URLs).
        CREATE TABLE proxies (
            id TEXT PRIMARY KEY,               -- opaque, unguessable
            kind TEXT NOT NULL,                -- callback, page, cdr
            module TEXT NOT NULL,
            target_url TEXT NOT NULL,          -- the partner URL this stands for
            target_platform_id INTEGER NOT NULL,  -- whose URL it is (we call it with their token)
            allowed_platform_id INTEGER NOT NULL, -- who may call the hub URL
            from_country_code TEXT,            -- routing parties of the original request
            from_party_id TEXT,
            to_country_code TEXT,
            to_party_id TEXT,
            correlation_id TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX proxies_expiry ON proxies (expires_at);
        """,
    )


@MIGRATIONS(name="0003_outbox")
def _m0003_outbox(db: Database) -> None:
    _run_script(
        db,
        """
        -- Durable outbox (docs/DESIGN-NOTES.md, Delivery): a push is a row here before the hub answers.
        -- id is the acceptance order; (receiver_platform_id, module, object_key) is the order chain.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            receiver_platform_id INTEGER NOT NULL,
            module TEXT NOT NULL,
            object_key TEXT NOT NULL,
            method TEXT NOT NULL,
            url TEXT NOT NULL,
            headers TEXT NOT NULL,             -- JSON: X-Request-ID (same on every retry), X-Correlation-ID, routing
            body BLOB,
            state TEXT NOT NULL,               -- pending, rejected (final non-1xxx answer), dead
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            deadline_at TEXT NOT NULL,         -- max_age: dead letter after this
            last_error TEXT,
            last_http_status INTEGER,
            last_ocpi_status INTEGER,
            finished_at TEXT
        );
        CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
        CREATE INDEX outbox_chain ON outbox (receiver_platform_id, module, object_key, state, id);
        CREATE INDEX outbox_receiver ON outbox (receiver_platform_id, state, created_at);
        """,
    )


@MIGRATIONS(name="0004_traffic")
def _m0004_traffic(db: Database) -> None:
    _run_script(
        db,
        """
        -- Traffic log (docs/DESIGN-NOTES.md, Observability): one row per request in and per call out, newest
        -- `traffic_log_rows` kept. Never a body, a token or a token uid (paths are redacted).
        CREATE TABLE traffic (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,                  -- OCPI DateTime when the exchange finished
            direction TEXT NOT NULL,           -- 'in' (to the hub) or 'out' (hub to a platform)
            module TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,                -- redacted path (+ harmless query keys); host for 'out'
            platform_id INTEGER,               -- caller ('in') or receiver ('out'), when known
            from_party TEXT,                   -- 'CC*PID' from the routing headers
            to_party TEXT,
            http_status INTEGER,               -- NULL: no answer (timeout, connection problem)
            ocpi_status INTEGER,
            attempt INTEGER,
            request_id TEXT,
            correlation_id TEXT,
            latency_ms REAL,
            error TEXT
        );
        CREATE INDEX traffic_correlation ON traffic (correlation_id);
        CREATE INDEX traffic_platform ON traffic (platform_id, id);
        """,
    )


@MIGRATIONS(name="0005_outbox_order_index")
def _m0005_outbox_order_index(db: Database) -> None:
    # due_heads walks pending rows in acceptance order and stops at its LIMIT; without this index
    # SQLite sorted every due row first (11 ms with 10,000 queued, once per worker round).
    _run_script(db, "CREATE INDEX outbox_state_order ON outbox (state, id);")


@MIGRATIONS(name="0006_recipients_and_stable_order")
def _m0006_recipients_and_stable_order(db: Database) -> None:
    # Stored copies are kept per recipient ('' = broadcast): a directed push is confidential to
    # its recipient, and copies sent to different parties no longer overwrite each other. seq is
    # the creation order that an update keeps (stable pagination); pages are read by keyset.
    _run_script(
        db,
        """
        CREATE TABLE objects_new (
            seq INTEGER PRIMARY KEY,
            module TEXT NOT NULL,
            object_key TEXT NOT NULL,          -- upper(country_code/party_id/id[/type])
            recipient TEXT NOT NULL,           -- 'CC*PID' upper of a directed push, '' when broadcast
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            object_id TEXT NOT NULL,           -- upper
            last_updated TEXT NOT NULL,        -- canonical UTC ISO string, sortable
            body TEXT NOT NULL,
            UNIQUE (module, object_key, recipient)
        );
        INSERT INTO objects_new (seq, module, object_key, recipient, country_code, party_id, object_id,
                                 last_updated, body)
            SELECT seq, module, object_key, coalesce(visible_to, ''), country_code, party_id, upper(object_id),
                   last_updated, body FROM objects ORDER BY seq;
        DROP TABLE objects;
        ALTER TABLE objects_new RENAME TO objects;
        CREATE INDEX objects_order ON objects (module, seq);
        CREATE INDEX objects_recipient ON objects (module, recipient, seq);
        CREATE INDEX objects_id ON objects (module, object_id);
        -- A note on an exchange: a followed redirect, a normalized answer (issue 11).
        ALTER TABLE traffic ADD COLUMN note TEXT;
        -- A party that left its platform's roles is kept (ClientInfo is never deleted) as SUSPENDED.
        ALTER TABLE parties ADD COLUMN left_at TEXT;
        """,
    )


@MIGRATIONS(name="0007_pull_only_partners")
def _m0007_pull_only_partners(db: Database) -> None:
    # A CPO that only offers its Sender interfaces is pulled every pull_interval seconds (NULL:
    # never); pulled_at is where the next incremental pull starts (date_from).
    _run_script(
        db,
        """
        ALTER TABLE platforms ADD COLUMN pull_interval REAL;
        ALTER TABLE platforms ADD COLUMN pulled_at TEXT;
        """,
    )


@MIGRATIONS(name="0008_outbox_request_id")
def _m0008_outbox_request_id(db: Database) -> None:
    # The delivery core keys its fast-path waiters and its attempt memory by X-Request-ID (unique,
    # unlike row ids, which SQLite reuses after deletes): a column, so nothing parses the headers.
    _run_script(
        db,
        """
        ALTER TABLE outbox ADD COLUMN request_id TEXT;
        UPDATE outbox SET request_id = json_extract(headers, '$."X-Request-ID"')
            WHERE request_id IS NULL AND json_valid(headers);
        """,
    )


@MIGRATIONS(name="0009_objects_owner_index")
def _m0009_objects_owner_index(db: Database) -> None:
    # The retention sweep finds the owners of stored locations and tariffs (kept while their
    # owner is connected) without scanning every object (routing/retention.py).
    _run_script(db, "CREATE INDEX objects_owner ON objects (module, country_code, party_id);")


@MIGRATIONS(name="0010_incremental_vacuum", transactional=False)
def _m0010_incremental_vacuum(db: Database) -> None:
    # Rows the retention sweep deletes leave free pages; with auto_vacuum=INCREMENTAL the sweep
    # hands them back to the file system. An existing database only switches with a VACUUM
    # (which rewrites the file once and cannot run inside a transaction). New databases are
    # created in this mode already (storage/files.py) and skip the VACUUM.
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")


@MIGRATIONS(name="0011_versions")
def _m0011_versions(db: Database) -> None:
    # OCPI 2.1.1 credentials carry no role: the operator names it when inviting or connecting.
    # Translations between versions record what they lose: a JSON list per traffic row.
    _run_script(
        db,
        """
        ALTER TABLE platforms ADD COLUMN role_hint TEXT;
        ALTER TABLE traffic ADD COLUMN losses TEXT;
        """,
    )
