"""Liveness (/health, no auth) and the operator's overview (/status, admin token unless public).

``/status`` says ``ok``, ``degraded`` (with reasons) or ``down`` (HTTP 503: the store cannot be
read). Degraded means someone should look: a platform is OFFLINE, a receiver's oldest queued
message is older than ``status_queue_age_threshold``, dead letters exist, the database refuses
writes because it is full, or the SQLite file's file system has less than
``status_disk_free_min_mb`` free. What the operator
already handled never keeps it degraded: a SUSPENDED platform (and its waiting queue) is listed
under ``notices`` only; an UNREGISTERED one is listed with its status, and when the operator
unregistered it its undelivered messages were closed out; discarded dead letters no longer count.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from config import Settings
from hub import __version__, build
from hub.keys import AGREEMENTS, CLOCK, CLUSTER, SETTINGS, STARTED_AT, STORE
from hub.observe.metrics import LOSS_STATS, RELAY_STATS
from hub.ocpi.envelope import json_response
from routing.clock import iso, parse_iso
from routing.jobs.cluster import cluster_by_platform
from storage import outbox as outbox_sql
from storage import platforms as platform_sql
from storage import retention as retention_sql
from storage.db import Store
from storage.errors import is_storage_outage
from storage.models import PlatformBrief
from storage.outbox import QueueStats
from storage.sqlite import SqliteStore

LOGGER = logging.getLogger(__name__)

_NO_QUEUE = QueueStats(depth=0, oldest_created_at=None, dead=0, retries=0)


async def health(request: web.Request) -> web.Response:
    """GET /health: the process answers and the store is readable."""
    await request.app[STORE].fetchone("SELECT 1")
    return json_response({"status": "ok"})


def _latest(*values: str | None) -> str | None:
    # Both sources hold OCPI DateTimes written by the hub (same format), so text order is time order.
    present = [v for v in values if v]
    return max(present) if present else None


def platform_status(
    app: web.Application, platform: PlatformBrief, queue: QueueStats, counts: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One platform's entry in /status; ``counts``: (delivered, failed) of the whole cluster."""
    stats = app[RELAY_STATS]
    figures = stats.figures(platform.id)
    delivered, failed = counts if counts is not None else (figures.delivered, figures.failed)
    p50, p99 = stats.latency_ms(platform.id)
    oldest_age = None
    if queue.oldest_created_at:
        now = app[CLOCK].now()
        oldest_age = round(max(0.0, (now - parse_iso(queue.oldest_created_at)).total_seconds()), 3)
    return {
        "id": platform.id,
        "name": platform.name,
        "status": platform.status,
        "version": platform.version,
        "roles": [{"country_code": cc, "party_id": pid, "role": role} for cc, pid, role in platform.parties],
        "last_seen_in": _latest(platform.last_seen_in, figures.last_in),
        "last_seen_out": _latest(platform.last_seen_out, figures.last_out),
        "queue_depth": queue.depth,
        "oldest_queued_age_seconds": oldest_age,
        "retries": queue.retries,
        "dead_letters": queue.dead,
        "delivered": delivered,
        "failed": failed,
        # Latency percentiles come from this process's recent window (a cluster's are not merged).
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
    }


def assess(entries: list[dict[str, Any]], *, age_threshold: float) -> tuple[list[str], list[str]]:
    """Reasons for 'degraded' and plain notices, from the platform entries."""
    reasons: list[str] = []
    notices: list[str] = []
    for p in entries:
        who = f"platform {p['id']} ({p['name']})"
        if p["status"] == "OFFLINE":
            reasons.append(f"{who} is OFFLINE")
        elif p["status"] == "SUSPENDED":
            notices.append(f"{who} is SUSPENDED")
        # UNREGISTERED: the registration ended on purpose; listed with its status, never a warning.
        age = p["oldest_queued_age_seconds"]
        if age is not None and age > age_threshold:
            line = f"{who}: oldest queued message is {age:.0f} s old (threshold {age_threshold:g} s)"
            # A suspended receiver's queue waits by the operator's decision: not a fault to report.
            (notices if p["status"] == "SUSPENDED" else reasons).append(line)
        if p["dead_letters"]:
            reasons.append(f"{who}: {p['dead_letters']} dead letter(s)")
    return reasons, notices


async def overview(app: web.Application) -> tuple[dict[str, Any], int]:
    """The /status body and its HTTP status (503 when down); the console's overview shows the same."""
    settings = app[SETTINGS]
    base: dict[str, Any] = {
        "version": __version__,
        "build": {"schema": build.schema(), "commit": build.commit()},
        "uptime_seconds": round(time.monotonic() - app[STARTED_AT], 3),
    }
    try:
        store = app[STORE]
        platforms = await platform_sql.briefs(store)
        queues = await outbox_sql.queue_stats(store)
        storage = await storage_figures(store)
        views = await app[CLUSTER].processes()
        processes = [p.as_json() for p in views]
    except Exception as exc:  # the overview must answer even when the store cannot
        if is_storage_outage(exc):  # the store logs that state: one line here
            LOGGER.warning("/status: the store cannot be read: %s", exc)
        else:
            LOGGER.exception("/status: the store cannot be read")
        reason = f"store unreadable: {type(exc).__name__}"
        # status_message: what the CLI prints for an HTTP error answer.
        body = {"status": "down", "reasons": [reason], "notices": [], "status_message": f"down, {reason}", **base}
        return {**body, "platforms": []}, 503
    # Counts summed over every process's heartbeat: one process alone saw only its share.
    split = cluster_by_platform(views)
    entries = [platform_status(app, p, queues.get(p.id, _NO_QUEUE), split.get(p.id)) for p in platforms]
    reasons, notices = assess(entries, age_threshold=settings.status_queue_age_threshold)
    reasons.extend(database_reasons(storage["database"], settings))
    agreements, unpartnered = app[AGREEMENTS].summary(platforms)
    notices.extend(unpartnered)  # an operator's decision (or one still to make), not a fault
    # Messages for platforms that no longer exist still count (their figures have no entry).
    orphans = {platform_id: q for platform_id, q in queues.items() if platform_id not in {p.id for p in platforms}}
    for platform_id, q in sorted(orphans.items()):
        if q.dead:
            reasons.append(f"deleted platform {platform_id}: {q.dead} dead letter(s)")
    totals = {
        "platforms": len(entries),
        "queue_depth": sum(q.depth for q in queues.values()),
        "dead_letters": sum(q.dead for q in queues.values()),
        "delivered": sum(e["delivered"] for e in entries),
        "failed": sum(e["failed"] for e in entries),
    }
    # Several processes: each one's own figures come with its heartbeat; the cluster's are their sum.
    cluster = {
        "processes_alive": sum(1 for p in processes if p["state"] == "alive"),
        "processes_gone": sum(1 for p in processes if p["state"] == "gone"),
        # Last known counts of every process seen in the last day (since each one started).
        "delivered": sum(int(p.get("delivered", 0)) for p in processes),
        "failed": sum(int(p.get("failed", 0)) for p in processes),
        "in_flight": sum(int(p.get("in_flight", 0)) for p in processes if p["state"] == "alive"),
    }
    body = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "notices": notices,
        **base,
        "totals": totals,
        "agreements": agreements,
        "cluster": cluster,
        "processes": processes,
        **storage,
        "platforms": entries,
        # What translation between OCPI versions could not carry, per platform pair.
        "top_losses": app[LOSS_STATS].top(),
    }
    return body, 200


async def platform_entries(app: web.Application, platforms: list[PlatformBrief]) -> list[dict[str, Any]]:
    """The /status entries of these platforms (a console page of them), not of every platform."""
    # One platform (its console page): its own queue figures, not every receiver's.
    one = platforms[0].id if len(platforms) == 1 else None
    queues = await outbox_sql.queue_stats(app[STORE], one)
    split = cluster_by_platform(await app[CLUSTER].processes())
    return [platform_status(app, p, queues.get(p.id, _NO_QUEUE), split.get(p.id)) for p in platforms]


async def platform_entry(app: web.Application, platform_id: int) -> dict[str, Any] | None:
    """One platform's /status entry (None if it does not exist), without making the whole overview."""
    found = await platform_sql.briefs(app[STORE], platform_id)
    return (await platform_entries(app, found))[0] if found else None


async def status(request: web.Request) -> web.Response:
    """GET /status: ok/degraded/down with reasons, version, uptime and every platform's figures."""
    body, http_status = await overview(request.app)
    return json_response(body, status=http_status)


async def storage_figures(store: Store) -> dict[str, Any]:
    """Database size (SQLite: file + WAL on disk), what each retention window holds and the oldest of it.

    Per module the stored copies; per outbox state the finished messages (``retention.dead_letters``
    counts from ``oldest_finished_at``); the audit log's entries (``retention.audit_log``).
    """
    figures = await retention_sql.database_figures(store)
    on_disk = figures.page_count * figures.page_size
    if isinstance(store, SqliteStore):
        on_disk = 0
        for name in (store.path, Path(str(store.path) + "-wal")):
            try:
                on_disk += name.stat().st_size
            except FileNotFoundError:
                continue
    full = store.full
    return {
        "database": {
            "backend": store.dialect.name,
            "path": store.describe(),
            "size_bytes": on_disk,
            "free_bytes": figures.freelist_count * figures.page_size,  # reusable pages inside the file
            "disk_free_bytes": store.disk_free_bytes(),  # None on PostgreSQL: the server's disk
            "full": None
            if full is None
            else {
                "since": iso(datetime.fromtimestamp(full.since, UTC)),
                "last": iso(datetime.fromtimestamp(full.last, UTC)),
                "refused_writes": full.refused,
            },
        },
        "stored_objects": [
            {"module": m.module, "count": m.count, "oldest_last_updated": m.oldest_last_updated}
            for m in await retention_sql.module_figures(store)
        ],
        **_kept(await retention_sql.kept_figures(store)),
    }


def database_reasons(database: dict[str, Any], settings: Settings) -> list[str]:
    """Reasons for 'degraded' in the database figures: writes refused for space, or space running out."""
    reasons = []
    if database["full"] is not None:
        full = database["full"]
        reasons.append(
            f"database full: {full['refused_writes']} write(s) refused from {full['since']} to {full['last']}"
            " (partners get 503, nothing is stored); free space and writes resume by themselves"
        )
    free, floor = database["disk_free_bytes"], settings.status_disk_free_min_mb * 1_000_000
    if free is not None and free < floor:
        reasons.append(
            f"database disk: {free / 1_000_000:.0f} MB free, below status_disk_free_min_mb"
            f" ({settings.status_disk_free_min_mb:g} MB)"
        )
    return reasons


def _kept(figures: list[retention_sql.KeptFigures]) -> dict[str, Any]:
    audit = next(f for f in figures if f.kind == "audit_log")
    return {
        "finished_messages": [
            {"state": f.kind, "count": f.count, "oldest_finished_at": f.oldest} for f in figures if f is not audit
        ],
        "audit_log": {"count": audit.count, "oldest_ts": audit.oldest},
    }


def setup(app: web.Application) -> None:
    """Register /health and /status."""
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
