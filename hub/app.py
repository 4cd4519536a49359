"""The app factory: ``create_app(settings)`` wires store, partner transport, registry and routes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from config import Settings
from hub import console
from hub.admin import agreements as admin_agreements
from hub.admin import deadletters, invitations
from hub.admin import guard as adminguard
from hub.admin import operators as admin_operators
from hub.admin import platforms as admin
from hub.admin.openapi import document as openapi
from hub.keys import (
    AGREEMENT_WATCH,
    AGREEMENTS,
    CLIENT,
    CLIENT_INFO,
    CLOCK,
    CLUSTER,
    DELIVERY,
    DIRECTORY,
    PROXIES,
    PULLER,
    REGISTRY,
    RETENTION,
    ROUTING,
    SETTINGS,
    STARTED_AT,
    STORE,
    TOKEN_A_ROUTES,
    TRANSPORT,
    WORKER,
)
from hub.observe import metrics, status
from hub.observe.metrics import RELAY_STATS
from hub.observe.traffic import recorder as traffic
from hub.ocpi import credentials, hubclientinfo, limits, proxied, routed, versions
from hub.ocpi.middlewares import stamp_ids
from hub.ocpi.pipeline import pipeline
from hub.ocpi.router import OcpiRouter
from routing.agreements.book import NOTIFY_PAYLOAD
from routing.agreements.changes import CHECK_INTERVAL, WATCHER, Agreements
from routing.clock import Clock, SystemClock
from routing.delivery.intake import Delivery
from routing.delivery.scheduler import DeliveryWorker
from routing.expander import BROADCAST_CHANNEL, BroadcastExpander
from routing.getall import StoreReader
from routing.jobs.cluster import CACHE_CHANNEL, OUTBOX_CHANNEL, PER_PLATFORM, Cluster
from routing.jobs.periodic import Periodic
from routing.jobs.pull import Puller
from routing.jobs.retention import RetentionSweeper
from routing.messages import PartyRef
from routing.peers.client import PeerClient
from routing.peers.ssrf import GuardedResolver, HubOrigins
from routing.peers.transport import Transport
from routing.proxies import Proxies
from routing.registry.clientinfo import ClientInfoList, ClientInfoPusher
from routing.registry.directory import Directory, noted_platform
from routing.registry.registration import Registry
from routing.service import RoutingService
from storage.backends import open_store
from storage.db import RESYNC

LOGGER = logging.getLogger(__name__)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[SETTINGS].database)
    await store.open()
    app[STORE] = store
    yield
    await store.close()


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # One shared transport, bounded pool; never a connection per request.
    # SSRF guard: every resolved address is checked at connect time (only the hub's own when
    # private URLs are allowed: a DNS alias of the hub must not make it call itself).
    own = HubOrigins.from_settings(settings)
    resolver = GuardedResolver(aiohttp.DefaultResolver(), allow_private=settings.allow_private_urls, own=own)
    # The hub's own HTTP/1.1 transport (routing/peers/transport.py): no cookie jar (a cookie one
    # partner sets must never go to another on that host name), no proxy from the environment.
    transport = Transport(resolver, limit=256, limit_per_host=32, dns_ttl=300)
    app[TRANSPORT] = transport
    app[CLIENT] = PeerClient(
        transport,
        connect_timeout=settings.connect_timeout,
        request_timeout=settings.request_timeout,
        allow_private_urls=settings.allow_private_urls,
        own=own,
        max_answer_bytes=settings.max_answer_bytes,
    )
    app[REGISTRY] = Registry(app[STORE], app[CLIENT], settings, app[CLOCK])
    yield
    await transport.close()


async def _routing_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, clock, store, client = app[SETTINGS], app[CLOCK], app[STORE], app[CLIENT]
    directory = Directory(store)
    await directory.reload()
    agreements = Agreements(
        store, clock, required=settings.agreements == "required", lease_seconds=settings.cluster.lease_seconds
    )
    await agreements.reload()
    app[AGREEMENTS] = agreements
    registry = app[REGISTRY]
    worker = DeliveryWorker(
        store=store,
        client=client,
        directory=directory,
        settings=settings.delivery,
        clock=clock,
        set_status=registry.set_status,
        request_timeout=settings.request_timeout,
        lease_seconds=settings.cluster.lease_seconds,
    )
    delivery = Delivery(store, worker, settings.delivery, clock, lease_seconds=settings.cluster.lease_seconds)
    proxies = Proxies(
        store=store, client=client, directory=directory, delivery=delivery, settings=settings, clock=clock
    )
    expander = BroadcastExpander(
        store=store,
        delivery=delivery,
        directory=directory,
        agreements=agreements,
        clock=clock,
        hub=PartyRef(settings.country_code, settings.party_id),
        lease_seconds=settings.cluster.lease_seconds,
        on_losses=functools.partial(traffic.report_expansion, app),
    )
    app[DIRECTORY] = directory
    app[CLIENT_INFO] = ClientInfoList(directory, agreements)
    app[DELIVERY] = delivery
    app[WORKER] = worker
    app[PROXIES] = proxies
    app[ROUTING] = RoutingService(
        store=store,
        client=client,
        directory=directory,
        delivery=delivery,
        proxies=proxies,
        reader=StoreReader(store, settings, clock),
        settings=settings,
        clock=clock,
        agreements=agreements,
        expander=expander,
    )
    # Order matters: the directory must know the change before ClientInfo is pushed from it, and
    # before the scheduler looks whether the platform can take messages now.
    registry.listeners.append(directory.changed)
    registry.listeners.append(worker.platform_changed)
    pusher = ClientInfoPusher(directory, delivery, clock, agreements)
    registry.listeners.append(pusher)
    worker.upstream.append(pusher.idle)
    agreements.listeners.append(pusher.wake)  # an agreement change committed its fan-out row
    # Agreements whose validity window opens or closes: HubClientInfo told once per cluster
    # (the round itself runs in every process: it also re-reads the book there; the flip of
    # agreements.announced, committed with the fan-out row, makes each crossing pushed once).
    app[AGREEMENT_WATCH] = watch = Periodic(WATCHER, agreements.tick, lambda: CHECK_INTERVAL, clock)
    app[PULLER] = puller = Puller(store=store, client=client, directory=directory, clock=clock)
    relay_stats = app[RELAY_STATS]
    app[CLUSTER] = cluster = Cluster(
        store,
        settings.cluster,
        clock,
        lambda: {
            **relay_stats.totals(),
            "in_flight": worker.in_flight,
            PER_PLATFORM: relay_stats.by_platform(),
        },
    )

    async def changed_elsewhere(payload: str) -> None:
        # Another process changed platforms or tokens (docs/OPERATIONS.md, Several processes).
        if payload in (NOTIFY_PAYLOAD, RESYNC):  # only agreements (the rest of the caches stay), or all
            await agreements.reload()
            if payload == NOTIFY_PAYLOAD:
                return
        registry.forget_callers()
        platform_id = noted_platform(payload)
        if platform_id is None:
            await directory.reload()
        else:  # one platform changed: re-read it alone (a reload of 10,000 is ~1.3 s of CPU)
            await directory.refresh(platform_id)
        if worker.health.sync(platform_id):
            worker.wake()

    store.subscribe(OUTBOX_CHANNEL, lambda _: worker.wake())
    store.subscribe(BROADCAST_CHANNEL, lambda _: expander.wake())
    store.subscribe(CACHE_CHANNEL, changed_elsewhere)
    await cluster.beat()  # in /status from the start
    worker.start()
    expander.start()  # its first round expands the broadcasts a crash left unexpanded
    pusher.start()  # its first round pushes the ClientInfo fan-outs a crash left unfinished
    puller.task.start()
    cluster.task.start()
    watch.start()
    yield
    await pusher.stop()  # between chunks: a fan-out half done goes on at the next start
    await watch.stop()
    await puller.task.stop()
    await expander.stop()
    await worker.stop()
    await cluster.stop()


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    # Its own task, apart from the delivery worker: retention has nothing to do with delivery.
    sweeper = RetentionSweeper(app[STORE], app[SETTINGS].retention, app[CLOCK])
    app[RETENTION] = sweeper
    sweeper.task.start()
    yield
    await sweeper.task.stop()


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the hub application; the store opens and migrates in its cleanup context."""
    app = web.Application(
        middlewares=[pipeline],  # ids, auth, rate limit, errors as envelopes, traffic record
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[STARTED_AT] = time.monotonic()
    app[TOKEN_A_ROUTES] = set()
    limits.setup(app)
    adminguard.setup(app)
    app.on_response_prepare.append(stamp_ids)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_session_ctx)
    app.cleanup_ctx.append(_routing_ctx)
    app.cleanup_ctx.append(_retention_ctx)

    router = OcpiRouter(app)
    versions.setup(router)
    credentials.setup(router)
    hubclientinfo.setup(router)
    routed.setup(router)
    proxied.setup(router)
    admin.setup(app)
    admin_agreements.setup(app)
    openapi.setup(app)
    invitations.setup(app)
    admin_operators.setup(app)
    deadletters.setup(app)
    status.setup(app)
    metrics.setup(app)
    traffic.setup(app, settings)  # after every other cleanup_ctx: it needs the store and client
    console.setup(app)  # the operator console at /console (a sub-app with its own sessions and errors)
    return app
