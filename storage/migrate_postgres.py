"""The PostgreSQL applier of storage/migrations/.

Each migration runs in one transaction with its record in ``_hub_migrations``. Every process of
a cluster migrates on start; an advisory lock makes the first one do the work and the others
wait for it, then find nothing pending.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from typing import Any

import psycopg

from storage.errors import SchemaTooNew
from storage.migrations import STEPS

CONNECT_TIMEOUT = 10


def lock_key(schema: str, name: str) -> int:
    """The advisory-lock key of ``name`` in one schema.

    Advisory locks are per database, but one schema is one hub cluster: two clusters (or two test
    runs) in different schemas of one database must not share a migration lock or a leader.
    """
    digest = hashlib.blake2b(f"ocpi-hub:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def current_schema(conn: psycopg.Connection[Any]) -> str:
    """The schema unqualified names land in (the first of the search path)."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row else ""


def statements(script: str) -> list[str]:
    """Split a script into statements (comments and quoted semicolons handled as SQLite does)."""
    out, statement = [], ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            out.append(statement.strip())
            statement = ""
    if statement.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in statement.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")
    return out


def _applied(conn: psycopg.Connection[Any]) -> dict[str, str]:
    conn.execute(
        'CREATE TABLE IF NOT EXISTS _hub_migrations (name TEXT COLLATE "C" PRIMARY KEY, applied_at TEXT NOT NULL)'
    )
    return {name: at for name, at in conn.execute("SELECT name, applied_at FROM _hub_migrations").fetchall()}


def _check(applied: dict[str, str], url: str) -> None:
    known = {step.name for step in STEPS}
    unknown = sorted(name for name in applied if name not in known)
    if unknown:
        raise SchemaTooNew(
            f"database has schema {unknown[-1]}, newer than this ocpi-hub knows (latest {STEPS[-1].name}):"
            " run the newer version, or restore the dump taken before the upgrade"
        )


def apply_migrations(url: str, *, stop_before: str | None = None) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    done: list[str] = []
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        key = lock_key(current_schema(conn), "migrate")
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            applied = _applied(conn)
            _check(applied, url)
            for step in STEPS:
                if step.name == stop_before:
                    break
                if step.name in applied:
                    continue
                with conn.transaction():
                    for statement in statements(step.postgres_script()):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO _hub_migrations (name, applied_at) VALUES (%s, %s)",
                        (step.name, datetime.now(UTC).isoformat()),
                    )
                done.append(step.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return done


def list_migrations(url: str) -> list[tuple[str, str | None]]:
    """Every known migration with its applied-at time (None when pending)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
        applied = _applied(conn)
    _check(applied, url)
    return [(step.name, applied.get(step.name)) for step in STEPS]


def dry_run(url: str) -> list[tuple[str, list[str]]]:
    """What ``migrate`` would do: each pending migration with its statements' first lines."""
    plan = []
    for name, at in list_migrations(url):
        if at is None:
            step = next(s for s in STEPS if s.name == name)
            lines = [_first_line(s) for s in statements(step.postgres_script())]
            plan.append((name, lines or ["(nothing to do on PostgreSQL)"]))
    return plan


def _first_line(statement: str) -> str:
    code = [line.strip() for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")]
    return "+ " + (code[0] if code else statement)
