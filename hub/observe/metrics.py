"""Prometheus ``/metrics`` on a per-app registry, and the in-memory relay figures ``/status`` shows.

Counters and the latency histogram are updated on the hot path (a few dict lookups). Queue
figures and platform counts are read from the store only when Prometheus scrapes: the handler
takes a snapshot and renders it with a custom collector on a worker thread (under a lock, so
two scrapes never mix their snapshots). Per-platform latency windows: hub/observe/latency.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from hub.admin.accounts import check_admin_request
from hub.keys import CLOCK, CLUSTER, SETTINGS, STORE
from hub.observe.latency import LatencyWindow
from routing.clock import parse_iso
from routing.jobs.cluster import ProcessView
from storage import outbox as outbox_sql
from storage import platforms as platform_sql
from storage.outbox import QueueStats

# Seconds; relays to partners are dominated by their answer time, 5 ms .. the 15 s request timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
PLATFORM_STATUSES = ("PLANNED", "CONNECTED", "OFFLINE", "SUSPENDED", "UNREGISTERED")
_EMPTY_QUEUE = QueueStats(depth=0, oldest_created_at=None, dead=0, retries=0)


@dataclass
class PlatformFigures:
    """What the hub saw of one platform since it started."""

    delivered: int = 0
    failed: int = 0
    last_in: str | None = None
    last_out: str | None = None
    latencies: LatencyWindow = field(default_factory=LatencyWindow)


_NEVER_SEEN = PlatformFigures()


class RelayStats:
    """Per-platform delivered/failed counts, last seen and a window of recent relay latencies."""

    def __init__(self, window: int = 1000) -> None:
        self._window = window
        self._platforms: dict[int, PlatformFigures] = {}

    def _get(self, platform_id: int) -> PlatformFigures:
        figures = self._platforms.get(platform_id)
        if figures is None:
            figures = self._platforms[platform_id] = PlatformFigures(latencies=LatencyWindow(self._window))
        return figures

    def inbound(self, platform_id: int, at: str) -> None:
        """The platform called the hub."""
        self._get(platform_id).last_in = at

    def outbound(self, platform_id: int, *, delivered: bool, latency: float | None, at: str) -> None:
        """The hub called the platform; latency is None when no answer came."""
        figures = self._get(platform_id)
        if delivered:
            figures.delivered += 1
        else:
            figures.failed += 1
        if latency is not None:
            figures.latencies.add(latency)
            figures.last_out = at

    def totals(self) -> dict[str, int]:
        """Delivered and failed calls over every platform (this process's share of the cluster)."""
        return {
            "delivered": sum(f.delivered for f in self._platforms.values()),
            "failed": sum(f.failed for f in self._platforms.values()),
        }

    def by_platform(self) -> dict[str, list[int]]:
        """[delivered, failed] per platform id (text keys: the heartbeat stores this as JSON)."""
        return {
            str(platform_id): [f.delivered, f.failed]
            for platform_id, f in self._platforms.items()
            if f.delivered or f.failed
        }

    def figures(self, platform_id: int) -> PlatformFigures:
        """The figures of one platform (zeros when never seen); read them, never change them."""
        # One shared zero for every platform never seen: /status asks for all 10,000 of them.
        return self._platforms.get(platform_id) or _NEVER_SEEN

    def latency_ms(self, platform_id: int) -> tuple[float | None, float | None]:
        """p50 and p99 relay latency in milliseconds over the recent window (hub/observe/latency.py)."""
        p50, p99 = self.figures(platform_id).latencies.percentiles(0.5, 0.99)
        return (
            round(p50 * 1000, 2) if p50 is not None else None,
            round(p99 * 1000, 2) if p99 is not None else None,
        )


@dataclass(frozen=True)
class Snapshot:
    """Figures read from the store for one scrape."""

    queues: Mapping[int, QueueStats]
    oldest_age: Mapping[int, float]
    platform_statuses: Mapping[str, int]
    names: Mapping[int, str]
    processes: Sequence[ProcessView] = ()
    now: float = 0.0  # clock timestamp of the scrape
    database_full: bool = False  # writes refused for lack of space (storage.db.Store.full)
    disk_free_bytes: int | None = None  # the SQLite file's file system; None on PostgreSQL


class _StoreCollector(Collector):
    """Exposes the latest Snapshot as gauges (set by the handler right before rendering)."""

    def __init__(self) -> None:
        self.snapshot = Snapshot({}, {}, {}, {})

    def _processes(self) -> Iterator[Metric]:
        snap = self.snapshot
        states = GaugeMetricFamily("ocpi_hub_processes", "Hub processes on this database by state.", labels=["state"])
        for state in ("alive", "gone", "stopped"):
            states.add_metric([state], sum(1 for p in snap.processes if p.state == state))
        labels = ["process", "host"]
        age = GaugeMetricFamily(
            "ocpi_hub_process_heartbeat_age_seconds", "Seconds since each process's last heartbeat.", labels=labels
        )
        per_process = {
            name: GaugeMetricFamily(f"ocpi_hub_process_{name}", text, labels=labels)
            for name, text in (
                ("delivered", "Calls to receivers answered with success, per process since it started."),
                ("failed", "Calls to receivers that failed, per process since it started."),
                ("in_flight", "Deliveries in progress per process."),
            )
        }
        for p in snap.processes:
            values = [p.id, p.host]
            age.add_metric(values, max(0.0, snap.now - parse_iso(p.last_heartbeat).timestamp()))
            for name, family in per_process.items():
                family.add_metric(values, float(p.figures.get(name, 0)))
        yield from (states, age, *per_process.values())

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        labels = ["platform_id", "platform"]
        depth = GaugeMetricFamily(
            "ocpi_hub_outbox_depth", "Messages waiting in the outbox per receiver.", labels=labels
        )
        age = GaugeMetricFamily(
            "ocpi_hub_outbox_oldest_age_seconds", "Age of the oldest waiting message per receiver.", labels=labels
        )
        retries = GaugeMetricFamily(
            "ocpi_hub_outbox_retries", "Attempts already spent on waiting messages per receiver.", labels=labels
        )
        dead = GaugeMetricFamily("ocpi_hub_dead_letters", "Dead letters per receiver.", labels=labels)
        # Every platform gets a series (zeros when nothing is queued), so alerts see it from the start.
        for platform_id in sorted(set(snap.queues) | set(snap.names)):
            stats = snap.queues.get(platform_id, _EMPTY_QUEUE)
            values = [str(platform_id), snap.names.get(platform_id, "")]
            depth.add_metric(values, stats.depth)
            age.add_metric(values, snap.oldest_age.get(platform_id, 0.0))
            retries.add_metric(values, stats.retries)
            dead.add_metric(values, stats.dead)
        platforms = GaugeMetricFamily("ocpi_hub_platforms", "Registered platforms by status.", labels=["status"])
        for status in sorted(set(PLATFORM_STATUSES) | set(snap.platform_statuses)):
            platforms.add_metric([status], snap.platform_statuses.get(status, 0))
        yield from (depth, age, retries, dead, platforms)
        yield from self._processes()
        yield GaugeMetricFamily(
            "ocpi_hub_database_full",
            "1 while the database refuses writes for lack of space (partners get 503), else 0.",
            value=1.0 if snap.database_full else 0.0,
        )
        if snap.disk_free_bytes is not None:
            yield GaugeMetricFamily(
                "ocpi_hub_database_disk_free_bytes",
                "Free bytes on the SQLite database's file system.",
                value=float(snap.disk_free_bytes),
            )


class Metrics:
    """Every metric of one hub app, on its own CollectorRegistry (several apps never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ocpi_hub_requests",
            "Requests to the hub by module, method, HTTP status and OCPI status_code.",
            ["module", "method", "http_status", "ocpi_status"],
            registry=self.registry,
        )
        self.forwards = Counter(
            "ocpi_hub_forwards",
            "Calls from the hub to platforms by module and outcome (delivered / failed).",
            ["module", "outcome"],
            registry=self.registry,
        )
        self.forward_latency = Histogram(
            "ocpi_hub_forward_latency_seconds",
            "Time from sending a call to a platform until its whole answer was read.",
            ["module"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.forward_retries = Counter(
            "ocpi_hub_forward_retries",
            "Calls to platforms that were a retry (attempt > 1).",
            ["module"],
            registry=self.registry,
        )
        self.traffic_dropped = Counter(
            "ocpi_hub_traffic_log_dropped",
            "Traffic-log records dropped (buffer full or write failed).",
            registry=self.registry,
        )
        self.translation_losses = Counter(
            "ocpi_hub_translation_losses",
            "Fields dropped or approximated translating between OCPI versions, by module and field.",
            ["module", "field", "kind"],
            registry=self.registry,
        )
        self._store_collector = _StoreCollector()
        self._render_lock = threading.Lock()
        self.registry.register(self._store_collector)
        self._request_children: dict[tuple[str, str, int, int | None], Counter] = {}
        self._forward_children: dict[tuple[str, bool], tuple[Counter, Histogram]] = {}

    def observe_request(self, module: str, method: str, http_status: int, ocpi_status: int | None) -> None:
        """Count one request to the hub."""
        key = (module, method, http_status, ocpi_status)
        child = self._request_children.get(key)
        if child is None:  # labels() validates and locks on every call: once per label set
            ocpi = str(ocpi_status) if ocpi_status is not None else ""
            child = self._request_children[key] = self.requests.labels(module, method, str(http_status), ocpi)
        child.inc()

    def observe_forward(self, module: str, *, delivered: bool, latency: float | None, attempt: int) -> None:
        """Count one call to a platform and its latency (when an answer came)."""
        children = self._forward_children.get((module, delivered))
        if children is None:
            children = self._forward_children[(module, delivered)] = (
                self.forwards.labels(module, "delivered" if delivered else "failed"),
                self.forward_latency.labels(module),
            )
        children[0].inc()
        if latency is not None:
            children[1].observe(latency)
        if attempt > 1:
            self.forward_retries.labels(module).inc()

    def render(self, snapshot: Snapshot) -> bytes:
        """The exposition text with this scrape's store figures (safe to call from a worker thread)."""
        with self._render_lock:  # two scrapes at once: each renders its own snapshot
            self._store_collector.snapshot = snapshot
            return generate_latest(self.registry)


MAX_LOSS_PAIRS = 1000  # platform pairs whose translation losses are kept
TOP_PAIRS = 20  # the pairs /status shows: those with the most losses


class LossStats:
    """Translation losses per platform pair (sender id, receiver id or None for the hub), for /status.

    Bounded: a broadcast from each of 100 CPOs to 2,000 partners on another version can make
    200,000 pairs, and /status listed every one of them. At most ``max_pairs`` are kept (the
    least recently added to go first) and /status shows the ``TOP_PAIRS`` with the most losses.
    """

    def __init__(self, max_pairs: int = MAX_LOSS_PAIRS) -> None:
        self._max_pairs = max_pairs
        self._counts: OrderedDict[tuple[int | None, int | None], dict[tuple[str, str, str], int]] = OrderedDict()
        self._totals: dict[tuple[int | None, int | None], int] = {}

    def add(self, sender: int | None, receiver: int | None, module: str, path: str, kind: str) -> None:
        """Count one loss."""
        key = (sender, receiver)
        pair = self._counts.get(key)
        if pair is None:
            if len(self._counts) >= self._max_pairs:
                dropped, _ = self._counts.popitem(last=False)
                del self._totals[dropped]
            pair = self._counts[key] = {}
        else:
            self._counts.move_to_end(key)
        pair[(module, path, kind)] = pair.get((module, path, kind), 0) + 1
        self._totals[key] = self._totals.get(key, 0) + 1

    def top(self, limit: int = 5, pairs: int = TOP_PAIRS) -> list[dict[str, object]]:
        """The ``pairs`` pairs with the most losses, each with its ``limit`` most frequent ones."""
        chosen = sorted(self._counts, key=lambda k: (-self._totals[k], str(k)))[:pairs]
        out: list[dict[str, object]] = []
        for sender, receiver in chosen:
            ranked = sorted(self._counts[(sender, receiver)].items(), key=lambda kv: -kv[1])[:limit]
            out.append(
                {
                    "from_platform_id": sender,
                    "to_platform_id": receiver,  # None: the hub's own 2.2.1 (the way in)
                    "losses": [{"module": m, "field": f, "kind": k, "count": n} for (m, f, k), n in ranked],
                }
            )
        return out


METRICS = web.AppKey("metrics", Metrics)
LOSS_STATS = web.AppKey("loss_stats", LossStats)
RELAY_STATS = web.AppKey("relay_stats", RelayStats)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition (admin token or operator login unless ``metrics_public``)."""
    if not request.app[SETTINGS].metrics_public:
        # As /status: a read-only operator may scrape, so Prometheus never holds the admin token
        # (the break-glass credential that may change everything).
        await check_admin_request(request)
    store = request.app[STORE]
    queues = await outbox_sql.queue_stats(store)
    platforms = await platform_sql.briefs(store)
    now = request.app[CLOCK].now()
    statuses: dict[str, int] = {}
    for p in platforms:
        statuses[p.status] = statuses.get(p.status, 0) + 1
    snapshot = Snapshot(
        queues=queues,
        oldest_age={
            platform_id: max(0.0, (now - parse_iso(q.oldest_created_at)).total_seconds())
            for platform_id, q in queues.items()
            if q.oldest_created_at
        },
        platform_statuses=statuses,
        names={p.id: p.name for p in platforms},
        processes=await request.app[CLUSTER].processes(),
        now=now.timestamp(),
        database_full=store.full is not None,
        disk_free_bytes=store.disk_free_bytes(),
    )
    # Rendered on a worker thread: at 10,000 platforms the exposition is ~40,000 samples, ~0.15 s
    # of prometheus_client's Python that held the event loop (every partner's request) per scrape.
    # The GIL still makes it share the CPU, but the loop gets it back every switch interval.
    body = await asyncio.to_thread(request.app[METRICS].render, snapshot)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    """Create the app's metrics and relay figures and register /metrics."""
    app[METRICS] = Metrics()
    app[RELAY_STATS] = RelayStats()
    app[LOSS_STATS] = LossStats()
    app.router.add_get("/metrics", metrics)
