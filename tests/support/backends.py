"""The test database backends: PostgreSQL from HUB_TEST_POSTGRES_URL (one schema per test), SQLite files.

The one place the suite reads HUB_TEST_POSTGRES_URL: ``postgres_url()`` (empty without a server),
``needs_postgres`` (skip marker), ``postgres_schema()`` (a fresh schema, dropped after),
``Databases`` (fresh databases on either backend, tests/conftest.py's ``databases`` fixture).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from storage.migrate_postgres import apply_migrations

POSTGRES_ENV = "HUB_TEST_POSTGRES_URL"
POSTGRES_HINT = f"PostgreSQL runs need a server: set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The test server's URL, or "" when none is set (the PostgreSQL tests then skip)."""
    return os.environ.get(POSTGRES_ENV, "")


needs_postgres = pytest.mark.skipif(not postgres_url(), reason=POSTGRES_HINT)


def require_postgres() -> str:
    """The test server's URL; skip the calling test without one."""
    url = postgres_url()
    if not url:
        pytest.skip(POSTGRES_HINT)
    return url


def schema_url(url: str, schema: str) -> str:
    """The server URL with the schema as the search path (every unqualified name lands there)."""
    joiner = "&" if "?" in url else "?"
    # synchronous_commit=off: a test never outlives the server, and a COMMIT that waits for no
    # flush keeps the PostgreSQL runs from being bound by this machine's fsync.
    return f"{url}{joiner}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"


def _create_schema(server: str, *, migrated: bool) -> str:
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    if migrated:
        apply_migrations(schema_url(server, schema))
    return schema


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh, empty schema on the test server as a database URL, dropped afterwards (skip without a server).

    For tests that run several hubs or processes on one database (the hubs migrate it themselves).
    """
    server = require_postgres()
    schema = _create_schema(server, migrated=False)
    try:
        yield schema_url(server, schema)
    finally:
        _drop_schemas(server, [schema])


class SchemaSpares:
    """Migrated, empty schemas made one ahead on a thread while a test runs.

    Migrating a schema takes ~0.4 s, as long as many a test; a hub opening one finds nothing
    pending, exactly as on a database it migrated itself.
    """

    def __init__(self, server: str) -> None:
        self.server = server
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-schemas")
        self._next: Future[str] | None = None

    def take(self) -> str:
        """A migrated schema nobody else has; the next one starts migrating."""
        ready = self._next or self._thread.submit(_create_schema, self.server, migrated=True)
        self._next = self._thread.submit(_create_schema, self.server, migrated=True)
        return ready.result()

    def discard(self, schemas: list[str]) -> None:
        """Drop a finished test's schemas on the thread (the next test need not wait for it)."""
        self._thread.submit(_drop_schemas, self.server, list(schemas))

    def close(self) -> None:
        """Drop the spare made for a test that never came."""
        if self._next is not None:
            with contextlib.suppress(Exception):
                _drop_schemas(self.server, [self._next.result()])
        self._thread.shutdown(wait=True)


def _drop_schemas(server: str, schemas: list[str]) -> None:
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        # A connection a test leaked must fail the drop loudly, not hang the run.
        conn.execute("SET lock_timeout = '10s'")
        for schema in schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class Databases:
    """Fresh, empty databases on one backend: SQLite files under tmp_path, or PostgreSQL schemas."""

    def __init__(self, backend: str, tmp_path: Path, spares: SchemaSpares | None = None) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.spares = spares
        self.schemas: list[str] = []

    def new(self, name: str = "hub", *, migrated: bool = True) -> str | Path:
        """A database setting (file path or URL) nobody else uses; ``name`` names the SQLite file.

        ``migrated=False``: a PostgreSQL schema with no tables yet (a SQLite file is always new).
        """
        if self.backend == "sqlite":
            return self.tmp_path / f"{name}.sqlite3"
        server = postgres_url()
        if migrated and self.spares is not None:
            schema = self.spares.take()
        else:
            schema = _create_schema(server, migrated=migrated)
        self.schemas.append(schema)
        return schema_url(server, schema)

    def drop(self) -> None:
        """Drop the schemas this test made (its hubs are closed by now)."""
        if self.schemas and self.spares is not None:
            self.spares.discard(self.schemas)
        elif self.schemas:
            _drop_schemas(postgres_url(), self.schemas)
        self.schemas.clear()
