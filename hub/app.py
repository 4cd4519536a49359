"""The app factory: ``create_app(settings)`` wires store, client session, registry and routes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from config import Settings
from hub import admin, status
from hub.keys import CLIENT, CLOCK, REGISTRY, SESSION, SETTINGS, STARTED_AT, STORE, TOKEN_A_ROUTES
from hub.middlewares import auth_middleware, context_middleware, envelope_middleware, stamp_ids
from hub.modules import credentials, versions
from hub.modules.router import OcpiRouter
from routing.client import PeerClient
from routing.clock import Clock, SystemClock
from routing.registry import Registry
from storage.db import Store

LOGGER = logging.getLogger(__name__)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = Store(app[SETTINGS].database)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # One shared session, bounded pool; never a session per request.
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=32, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout, connect=settings.connect_timeout),
    )
    app[SESSION] = session
    app[CLIENT] = PeerClient(
        session, connect_timeout=settings.connect_timeout, request_timeout=settings.request_timeout
    )
    app[REGISTRY] = Registry(app[STORE], app[CLIENT], settings, app[CLOCK])
    yield
    await session.close()


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the hub application; the store opens and migrates in its cleanup context."""
    app = web.Application(
        middlewares=[envelope_middleware, context_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[STARTED_AT] = time.monotonic()
    app[TOKEN_A_ROUTES] = set()
    app.on_response_prepare.append(stamp_ids)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_session_ctx)

    router = OcpiRouter(app)
    versions.setup(router)
    credentials.setup(router)
    admin.setup(app)
    status.setup(app)
    return app
