"""Shared fixtures: the real hub on a real port, fake platforms, an injected clock, the database backend.

A module marked ``pytestmark = pytest.mark.both_backends`` runs every test that uses the database
twice, ``[sqlite]`` and ``[postgres]``; other modules run on SQLite only, and so does a test
marked ``@pytest.mark.sqlite_only("why")`` (its PostgreSQL run is skipped with that reason).
The PostgreSQL runs use the server in HUB_TEST_POSTGRES_URL (skipped when unset), each test in
schemas of its own (``databases.new()`` for a second hub), dropped after it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from config import Settings
from hub.app import create_app
from routing.clock import FakeClock
from tests.support.backends import POSTGRES_HINT, Databases, SchemaSpares, postgres_schema, postgres_url
from tests.support.fakes import FakePlatform
from tests.support.hub import ADMIN, HubHandle
from tests.support.ports import free_port

BACKENDS = ["sqlite", "postgres"]


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
        if not postgres_url():
            pytest.skip(POSTGRES_HINT)
    return backend


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A fresh PostgreSQL schema that several hubs share (ask for it before start_hub, so that the
    hubs stop before the schema is dropped)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="session")
def schema_spares() -> Iterator[SchemaSpares | None]:
    """Ready PostgreSQL schemas for the whole run (None without a server)."""
    server = postgres_url()
    if not server:
        yield None
        return
    spares = SchemaSpares(server)
    yield spares
    spares.close()


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
            # /status must not say "degraded" because the machine running the tests is short of
            # disk (seen: 287 MB free); the reason itself is tested in tests/test_status.py.
            "status_disk_free_min_mb": 0,
        }
        values.update(overrides)
        # Tests move the fake clock by hours; the still-alive GET that silence would trigger is
        # off unless a test asks for it (tests/test_delivery_health.py does).
        delivery = dict(values.get("delivery") or {})
        delivery.setdefault("silence_check", 0)
        # The fake clock stands still while a test's deliveries fail: OFFLINE by the count alone,
        # unless a test asks for the time span (tests/test_delivery_health.py does).
        delivery.setdefault("offline_after_seconds", 0)
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
