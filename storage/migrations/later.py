"""Migrations 0013 on, in order: a new step is appended at the end of LATER."""

from __future__ import annotations

from storage.migrations.step import Step, postgres_ddl

_ORIGIN_DDL = """
ALTER TABLE objects ADD COLUMN origin_version TEXT;
ALTER TABLE objects ADD COLUMN origin_body TEXT;
ALTER TABLE objects ADD COLUMN alt_id TEXT;
CREATE INDEX objects_alt_id ON objects (module, alt_id);
"""

LATER: list[Step] = [
    Step(
        "0013_postgres_chain_head_index",
        # PostgreSQL only. Without fresh statistics (an outbox that filled within the last minute,
        # before autoanalyze) the planner checked each chain head through outbox_receiver, a scan
        # of the receiver's whole queue per candidate: 22 s per claim with 10,000 queued. Without
        # that index it takes outbox_chain whatever the statistics say (55 ms, 2 ms analyzed).
        # Per-receiver reads are served by outbox_chain's leading column. SQLite keeps it.
        sqlite="",
        postgres="DROP INDEX outbox_receiver;",
    ),
    Step(
        "0014_console_sessions",
        # Operator console logins in the database, not in one process's memory: behind
        # `serve --workers N` or a load balancer any process knows the session (and its flashes).
        # admin_fp: a fingerprint of the admin token the login used; a changed token refuses it.
        sqlite="""
        CREATE TABLE console_sessions (
            key TEXT PRIMARY KEY,              -- SHA-256 of the cookie value (never the value)
            csrf TEXT NOT NULL,
            admin_fp TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            flashes TEXT NOT NULL DEFAULT '[]' -- JSON: [[kind, text], ...] for the next page
        );
        CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
        """,
    ),
    Step(
        "0015_agreements",
        # Roaming agreements (issue 23): with `agreements = "required"` the hub routes only between
        # two parties holding an active agreement covering the module. Country codes and party ids
        # are kept upper case and the pair in one order (a before b), so one pair has one row.
        sqlite="""
        CREATE TABLE agreements (
            id INTEGER PRIMARY KEY,
            a_country_code TEXT NOT NULL,
            a_party_id TEXT NOT NULL,
            a_role TEXT NOT NULL,
            b_country_code TEXT NOT NULL,
            b_party_id TEXT NOT NULL,
            b_role TEXT NOT NULL,
            modules TEXT NOT NULL DEFAULT '*', -- '*': every module, else comma-separated module names
            state TEXT NOT NULL,               -- active, suspended
            valid_from TEXT,                   -- OCPI DateTime; NULL: since ever
            valid_to TEXT,                     -- exclusive; NULL: no end
            reference TEXT,                    -- the operator's contract reference (free text)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX agreements_pair
            ON agreements (a_country_code, a_party_id, a_role, b_country_code, b_party_id, b_role);
        """,
    ),
    Step(
        "0016_operators",
        # Named operator logins (console and admin API) with a role, and the audit log of every
        # change (who, what, when). password_hash: scrypt with a per-operator salt (hub/admin/accounts.py).
        # A console session remembers whose it is (actor, role); admin-token logins say 'admin-token'.
        sqlite="""
        CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,                -- 'admin' or 'read-only'
            password_hash TEXT NOT NULL,       -- scrypt$n$r$p$salt$hash (base64), never the password
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            disabled_at TEXT                   -- set: the operator can no longer log in
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,                  -- OCPI DateTime of the change
            actor TEXT NOT NULL,               -- operator name, or 'admin-token'
            role TEXT NOT NULL,
            via TEXT NOT NULL,                 -- 'console' or 'admin-api'
            action TEXT NOT NULL,              -- e.g. 'platform.suspend', 'POST /admin/invitations'
            target TEXT,                       -- e.g. 'platform 3'
            outcome TEXT NOT NULL,             -- 'ok', or why it failed
            address TEXT                       -- the client's address
        );
        CREATE INDEX audit_log_ts ON audit_log (ts);
        ALTER TABLE console_sessions ADD COLUMN actor TEXT NOT NULL DEFAULT 'admin-token';
        ALTER TABLE console_sessions ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
        """,
    ),
    Step(
        "0017_objects_origin",
        # Issue 21: the hub's copy is 2.2.1, but a reader on the sender's own version must get
        # exactly what was pushed (2.3.0 fields 2.2.1 has no place for, 2.1.1's own shape).
        # origin_version/origin_body: the sender's version and body when it is not 2.2.1 (NULL:
        # ``body`` is what was sent). alt_id: a second id the object is found by (a Token's
        # contract_id, which 2.1.1 Sessions and CDRs name as auth_id).
        # Tokens stored before it get their alt_id from their body (each backend's JSON function).
        sqlite=_ORIGIN_DDL
        + "UPDATE objects SET alt_id = upper(json_extract(body, '$.contract_id'))"
        + " WHERE module = 'tokens' AND json_valid(body);\n",
        postgres=postgres_ddl(_ORIGIN_DDL)
        + "UPDATE objects SET alt_id = upper(body::jsonb ->> 'contract_id') WHERE module = 'tokens';\n",
    ),
    Step(
        "0018_outbox_queue_indexes",
        # Issue 22. SQLite: the scheduler reads each receiver's queue on its own
        # (storage/claims.py): the receivers with pending rows by a skip scan, then per receiver
        # its due chain heads in acceptance order. A round then costs the same with 100,000
        # messages queued for a receiver it skips (OFFLINE) as with none; before, it walked
        # every due row of that receiver (15 ms per round at 100,000, one round per push).
        # PostgreSQL keeps its claim query (leases, SKIP LOCKED) and the indexes of 0013: its
        # planner took an index like these for the chain-head check before (see 0013).
        # Both backends: outbox_deadline, so the sweeper's expiry (every 10 s) reads only what
        # expires, not every pending row (16 ms at 20,000 queued, a stall of the one writer).
        sqlite="""
        CREATE INDEX outbox_queue_order ON outbox (state, receiver_platform_id, id);
        CREATE INDEX outbox_queue_due ON outbox (state, receiver_platform_id, next_attempt_at);
        CREATE INDEX outbox_deadline ON outbox (state, deadline_at);
        DROP INDEX outbox_due;
        DROP INDEX outbox_receiver;
        """,
        # SQLite drops the two indexes nothing reads there any more (claims, next_due_at, expiry,
        # reschedule_now and bury_queue use the three above): every push writes and deletes a row,
        # and each index costs both (directed pushes were 8% slower with all of them).
        postgres="CREATE INDEX outbox_deadline ON outbox (state, deadline_at);",
    ),
    Step(
        "0019_outbox_discard",
        # Closing out (issue 23): a dead letter the operator gave up on, or the queue of a platform
        # the operator unregistered, becomes state 'discarded' with the reason; the row stays for
        # the record but no longer counts as a fault in /status.
        sqlite="ALTER TABLE outbox ADD COLUMN discard_reason TEXT;",
    ),
    Step(
        "0020_broadcasts",
        # Issue 22, goal 2: a broadcast push commits its stored copy and ONE row here, and is
        # answered; the expander (routing/expander.py) turns the row into one outbox row per
        # receiver afterwards, in chunks. id is the acceptance order: records of one object are
        # expanded oldest first. done_through: the highest receiver platform id already in the
        # outbox (receivers are expanded in platform id order, each chunk committed with it), so
        # a crash mid-expansion neither repeats nor skips a receiver. leased_by/lease_until: the
        # process expanding it when several share a PostgreSQL database (as in the outbox).
        sqlite="""
        CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            module TEXT NOT NULL,
            object_key TEXT NOT NULL,
            method TEXT NOT NULL,
            segments TEXT NOT NULL,            -- JSON list: the path below the receiver's module URL
            query_string TEXT NOT NULL,
            sender_platform_id INTEGER NOT NULL,
            sender_country_code TEXT NOT NULL,
            sender_party_id TEXT NOT NULL,
            correlation_id TEXT NOT NULL,
            body BLOB,                         -- the 2.2.1 body
            origin TEXT NOT NULL,              -- JSON: what the sender sent, in its version (translation)
            created_at TEXT NOT NULL,          -- acceptance time: the legs' created_at and max_age
            done_through INTEGER NOT NULL DEFAULT 0,
            leased_by TEXT,
            lease_until TEXT
        );
        CREATE INDEX broadcasts_object ON broadcasts (module, object_key, id);
        """,
    ),
    Step(
        "0021_postgres_outbox_queue",
        # Issue 22, PostgreSQL: the claim of 0018 (storage/claims.py) there too, leases and SKIP
        # LOCKED kept. A skip scan of this index lists the receivers with pending rows (one probe
        # each), and each receiver not skipped (OFFLINE, at its in-flight cap) is read in
        # acceptance order: a round costs the same with 100,000 rows queued for an OFFLINE
        # receiver as with none. Partial: only pending rows, the ones a round ever reads.
        sqlite="",
        postgres="CREATE INDEX outbox_pending_queue ON outbox (receiver_platform_id, id) WHERE state = 'pending';",
    ),
    Step(
        "0022_clientinfo_due",
        # The HubClientInfo fan-out of a registration or status change (routing/registry/clientinfo.py)
        # is one row here, committed in the same transaction as the change that owes it, so a
        # kill -9 after the registry's answer loses no ClientInfo PUT. The pusher commits the PUTs
        # in chunks, each with the row's progress: phase 0 tells every other platform about the
        # changed one, phase 1 (a platform that has just registered) tells it about everyone;
        # done_through is the highest platform id of that phase already in the outbox. The last
        # chunk deletes the row. id is the order of the changes: rows are pushed oldest first.
        # leased_by/lease_until: the process pushing it when several share a PostgreSQL database.
        sqlite="""
        CREATE TABLE clientinfo_due (
            id INTEGER PRIMARY KEY,
            platform_id INTEGER NOT NULL,      -- the platform whose parties' ClientInfo changed
            status TEXT NOT NULL,              -- its status to announce (UNREGISTERED: as SUSPENDED)
            registered INTEGER NOT NULL,       -- 1: it has just registered and learns everyone's (phase 1)
            created_at TEXT NOT NULL,          -- the change's time: the PUTs' created_at and max_age
            phase INTEGER NOT NULL DEFAULT 0,
            done_through INTEGER NOT NULL DEFAULT 0,
            leased_by TEXT,
            lease_until TEXT
        );
        """,
    ),
    Step(
        "0023_outbox_finished",
        # The retention sweep (routing/jobs/retention.py) deletes dead, rejected and discarded
        # messages retention.dead_letters after they finished, a chunk at a time: this index
        # reads each chunk by (state, finished_at) instead of walking the outbox, and the
        # /status counts per state from it. Partial: a pending row (finished_at NULL, the only
        # kind every push writes and deletes) is not in it, so the push path pays nothing for it.
        sqlite="CREATE INDEX outbox_finished ON outbox (state, finished_at) WHERE finished_at IS NOT NULL;",
    ),
    Step(
        "0024_agreement_clientinfo_due",
        # A roaming agreement's change owes HubClientInfo PUTs (a party becoming visible or not to
        # another), committed like a registration's as a clientinfo_due row in the change's own
        # transaction: ``agreements`` holds that row's changes (JSON, routing/registry/clientinfo.py;
        # NULL on a platform's row, whose platform_id then is 0 on an agreement's).
        # agreements.announced: whether the partners were last told the agreement is in force (1)
        # or not (0); the validity-window watcher announces each row where that differs from the
        # hub's clock, flipping it with the due row, so a crash between the two repeats neither
        # and loses neither. NULL (rows older than this step): taken as told at the watcher's first look.
        sqlite="""
        ALTER TABLE clientinfo_due ADD COLUMN agreements TEXT;
        ALTER TABLE agreements ADD COLUMN announced INTEGER;
        """,
    ),
]
