"""Shared fixtures: the real hub on a real port, fake platforms, an injected clock, the database backend.

A module marked ``pytestmark = pytest.mark.both_backends`` runs every test that uses the database
twice, ``[sqlite]`` and ``[postgres]``; other modules run on SQLite only, and so does a test
marked ``@pytest.mark.sqlite_only("why")`` (its PostgreSQL run is skipped with that reason).
The PostgreSQL runs use the server in HUB_TEST_POSTGRES_URL (skipped when unset), each test in
schemas of its own (``databases.new()`` for a second hub), dropped after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config import Settings
from hub.app import create_app
from hub.cli import main as cli_main
from routing.clock import FakeClock
from storage.migrate_postgres import apply_migrations
from tests.support.fakes import FakePlatform, b64
from tests.support.ports import free_port

ADMIN = "admin-secret-token"
BACKENDS = ["sqlite", "postgres"]
POSTGRES_ENV = "HUB_TEST_POSTGRES_URL"
POSTGRES_HINT = f"PostgreSQL runs need a server: set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say why tests were skipped, one line per reason with its count (``make test`` ends with it)."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if reasons:
        terminalreporter.section("why tests were skipped")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:5d}  {reason}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Marked modules: every test that uses the database runs on both backends (ids [sqlite], [postgres])."""
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """A CLI command run in-process (``migrate``, ``backup``...) sets up the hub's logging on the
    root logger; put the root logger back after each test so later tests' captured stderr holds
    only what they printed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The backend this test runs on: its parameter in a both_backends module, else SQLite."""
    backend: str = getattr(request, "param", "sqlite")
    if backend == "postgres":
        only = request.node.get_closest_marker("sqlite_only")
        if only is not None:  # e.g. it looks at the SQLite file's pages
            pytest.skip(f"SQLite only: {only.args[0]}")
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(POSTGRES_HINT)
    return backend


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
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(POSTGRES_HINT)
    schema = _create_schema(server, migrated=False)
    try:
        yield schema_url(server, schema)
    finally:
        _drop_schemas(server, [schema])


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A fresh PostgreSQL schema that several hubs share (ask for it before start_hub, so that the
    hubs stop before the schema is dropped)."""
    with postgres_schema() as url:
        yield url


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


@pytest.fixture(scope="session")
def schema_spares() -> Iterator[SchemaSpares | None]:
    """Ready PostgreSQL schemas for the whole run (None without a server)."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        yield None
        return
    spares = SchemaSpares(server)
    yield spares
    spares.close()


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
        server = os.environ[POSTGRES_ENV]
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
            _drop_schemas(os.environ[POSTGRES_ENV], self.schemas)
        self.schemas.clear()


@pytest.fixture
def databases(db_backend: str, tmp_path: Path, schema_spares: SchemaSpares | None) -> Iterator[Databases]:
    """Make more databases on this test's backend: ``databases.new("other")`` (a second hub, say)."""
    made = Databases(db_backend, tmp_path, schema_spares if db_backend == "postgres" else None)
    yield made
    made.drop()


@pytest.fixture
def database(databases: Databases) -> str | Path:
    """The database setting the test's hub uses by default."""
    return databases.new("hub")


class HubHandle:
    """The running hub and helpers to talk to it the way partners and operators do."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.server = server
        self.session = session
        self.settings = settings
        self.app = server.app

    @property
    def base(self) -> str:
        return self.settings.public_url

    @property
    def versions_url(self) -> str:
        return self.settings.versions_url

    async def admin(self, method: str, path: str, json: Any = None, token: str = ADMIN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.base + path, json=json, headers=headers) as r:
            return r.status, await r.json()

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        raw_token: bool = False,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Token " + (token if raw_token else b64(token))
        url = path if path.startswith("http") else self.base + path
        async with self.session.request(method, url, json=json, data=data, headers=hdrs) as r:
            text = await r.text()
            import json as _json

            try:
                body = _json.loads(text)
            except ValueError:
                body = text
            return r.status, body, r.headers

    async def invite(self, name: str = "party", role: str | None = None) -> str:
        request: dict[str, Any] = {"name": name} | ({"role": role} if role else {})
        status, body = await self.admin("POST", "/admin/invitations", request)
        assert status == 201, body
        return str(body["token_a"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_factory(database: str | Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        port = overrides.pop("port", None) or free_port()
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "database": database,
            "admin_token": ADMIN,
            # Generous: a registration's GETs to a fake peer share this loop with everything
            # else (3 s ran out once in CI on a loaded machine). Timeout tests set their own.
            "request_timeout": 10.0,
            "connect_timeout": 1.0,
            "log_json": False,
            "allow_private_urls": True,  # every fake peer lives on 127.0.0.1 (SSRF guard: tests/test_ssrf.py)
            # Every test client is 127.0.0.1 and many tests try wrong admin tokens on purpose; the
            # per-address limit is tested in tests/test_admin_guard.py.
            "admin_auth_max_failures": 1_000_000,
        }
        values.update(overrides)
        # Tests move the fake clock by hours; the still-alive GET that silence would trigger is
        # off unless a test asks for it (tests/test_delivery_health.py does).
        delivery = dict(values.get("delivery") or {})
        delivery.setdefault("silence_check", 0)
        values["delivery"] = delivery
        # Tests move the clock by hours over example objects dated 2015-2019: the retention sweep
        # would remove them. It runs only when a test asks for it (tests/test_retention.py).
        retention = dict(values.get("retention") or {})
        retention.setdefault("sweep_interval", 10**9)
        values["retention"] = retention
        return Settings(**values)

    return make


@pytest.fixture
async def start_hub(
    settings_factory: Callable[..., Settings], clock: FakeClock
) -> AsyncIterator[Callable[..., Awaitable[HubHandle]]]:
    servers: list[TestServer] = []
    session = aiohttp.ClientSession()

    async def start(*, app_hook: Callable[[web.Application], None] | None = None, **overrides: Any) -> HubHandle:
        settings = settings_factory(**overrides)
        app = create_app(settings, clock=clock)
        if app_hook is not None:  # e.g. add a test-only route before the router freezes
            app_hook(app)
        server = TestServer(app, host="127.0.0.1", port=settings.port)
        await server.start_server()
        servers.append(server)
        return HubHandle(server, session, settings)

    yield start
    for server in servers:
        await _close_reporting_hangs(server)
    await session.close()


async def _close_reporting_hangs(server: TestServer, bound: float = 20.0) -> None:
    """Stop a hub; if that hangs, print every task's stack (pytest-timeout shows only threads)."""
    try:
        await asyncio.wait_for(asyncio.shield(server.close()), bound)
    except TimeoutError:
        for task in asyncio.all_tasks():
            print(f"--- task {task.get_name()} ({task.get_coro()!r})", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        raise AssertionError(f"the hub did not stop within {bound:g} s (task stacks above)") from None


@pytest.fixture
async def hub(start_hub: Callable[..., Awaitable[HubHandle]]) -> HubHandle:
    return await start_hub()


@pytest.fixture
async def make_peer() -> AsyncIterator[Callable[..., Awaitable[FakePlatform]]]:
    peers: list[FakePlatform] = []

    async def make(*roles: tuple[str, str, str], **kwargs: Any) -> FakePlatform:
        peer = FakePlatform(roles=list(roles), **kwargs)
        await peer.start()
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.close()


@pytest.fixture
def cli_env(hub: HubHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubHandle:
    """Environment for running the CLI (``hub.cli.main``) against the test hub; no stray HUB_* settings."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_HOST", "127.0.0.1")
    monkeypatch.setenv("HUB_PORT", str(hub.settings.port))
    monkeypatch.setenv("HUB_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("HUB_DATABASE", str(tmp_path / "cli.sqlite3"))
    return hub


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in a thread (it runs its own event loop); return exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err
