"""Migrations 0001-0012, in order (shipped: never edit one, add the next number in later.py)."""

from __future__ import annotations

from typing import Any

from storage.migrations.step import Step


def _incremental_vacuum(db: Any) -> None:
    # Rows the retention sweep deletes leave free pages; with auto_vacuum=INCREMENTAL the sweep
    # hands them back to the file system. An existing database only switches with a VACUUM
    # (which rewrites the file once and cannot run inside a transaction). New databases are
    # created in this mode already (storage/files.py) and skip the VACUUM.
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")


EARLY: list[Step] = [
    Step(
        "0001_initial",
        sqlite="""
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
    ),
    Step(
        "0002_routing",
        sqlite="""
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
    ),
    Step(
        "0003_outbox",
        sqlite="""
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
    ),
    Step(
        "0004_traffic",
        sqlite="""
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
    ),
    Step(
        "0005_outbox_order_index",
        # due_heads walks pending rows in acceptance order and stops at its LIMIT; without this index
        # SQLite sorted every due row first (11 ms with 10,000 queued, once per worker round).
        sqlite="CREATE INDEX outbox_state_order ON outbox (state, id);",
    ),
    Step(
        "0006_recipients_and_stable_order",
        # Stored copies are kept per recipient ('' = broadcast): a directed push is confidential to
        # its recipient, and copies sent to different parties no longer overwrite each other. seq is
        # the creation order that an update keeps (stable pagination); pages are read by keyset.
        sqlite="""
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
        # The rows copied with their seq must not be handed out again by the identity sequence.
        postgres_after="""
        SELECT setval(pg_get_serial_sequence('objects', 'seq'), coalesce(max(seq), 0) + 1, false) FROM objects;
        """,
    ),
    Step(
        "0007_pull_only_partners",
        # A CPO that only offers its Sender interfaces is pulled every pull_interval seconds (NULL:
        # never); pulled_at is where the next incremental pull starts (date_from).
        sqlite="""
        ALTER TABLE platforms ADD COLUMN pull_interval REAL;
        ALTER TABLE platforms ADD COLUMN pulled_at TEXT;
        """,
    ),
    Step(
        "0008_outbox_request_id",
        # The delivery core keys its fast-path waiters and its attempt memory by X-Request-ID (unique,
        # unlike row ids, which SQLite reuses after deletes): a column, so nothing parses the headers.
        sqlite="""
        ALTER TABLE outbox ADD COLUMN request_id TEXT;
        UPDATE outbox SET request_id = json_extract(headers, '$."X-Request-ID"')
            WHERE request_id IS NULL AND json_valid(headers);
        """,
        postgres="""
        ALTER TABLE outbox ADD COLUMN request_id TEXT COLLATE "C";
        UPDATE outbox SET request_id = headers::jsonb ->> 'X-Request-ID' WHERE request_id IS NULL;
        """,
    ),
    Step(
        "0009_objects_owner_index",
        # The retention sweep finds the owners of stored locations and tariffs (kept while their
        # owner is connected) without scanning every object (routing/jobs/retention.py).
        sqlite="CREATE INDEX objects_owner ON objects (module, country_code, party_id);",
    ),
    Step(
        "0010_incremental_vacuum",
        # Rows the retention sweep deletes leave free pages; with auto_vacuum=INCREMENTAL the sweep
        # hands them back to the file system. An existing database only switches with a VACUUM
        # (which rewrites the file once and cannot run inside a transaction). New databases are
        # created in this mode already (storage/files.py) and skip the VACUUM.
        sqlite=_incremental_vacuum,
        transactional=False,
        postgres="",  # PostgreSQL: autovacuum gives space back (or Store.maintain, where it is off)
    ),
    Step(
        "0011_versions",
        # OCPI 2.1.1 credentials carry no role: the operator names it when inviting or connecting.
        # Translations between versions record what they lose: a JSON list per traffic row.
        sqlite="""
        ALTER TABLE platforms ADD COLUMN role_hint TEXT;
        ALTER TABLE traffic ADD COLUMN losses TEXT;
        """,
    ),
    Step(
        "0012_cluster",
        # Several hub processes on one PostgreSQL database (issue 14): a message being sent is
        # leased to one process until lease_until; a process that dies loses its leases when they
        # expire. hub_processes is each process's heartbeat, for /status and /metrics.
        sqlite="""
        ALTER TABLE outbox ADD COLUMN leased_by TEXT;
        ALTER TABLE outbox ADD COLUMN lease_until TEXT;
        CREATE TABLE hub_processes (
            id TEXT PRIMARY KEY,               -- host:pid:start, unique per process start
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            stopped_at TEXT,                   -- set on a clean shutdown
            figures TEXT NOT NULL DEFAULT '{}' -- JSON: this process's counters, summed for the cluster
        );
        """,
    ),
]
