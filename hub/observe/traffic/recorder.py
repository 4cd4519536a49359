"""Traffic log: one redacted record per request in and per call out (docs/DESIGN-NOTES.md, Observability).

Each record becomes one structured log line (logger ``hub.observe.traffic.recorder``) and a row in the bounded
``traffic`` table: records wait in a memory buffer that a background task renders (redaction
and log lines on a worker thread, off the event loop) and writes in batches (every
``FLUSH_INTERVAL`` seconds or ``BATCH_SIZE`` records), so no request ever waits for either.
Redaction rules and record building: hub/observe/traffic/records.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from config import Settings
from hub.keys import CALLER, CLIENT, CLOCK, CORRELATION_ID, DIRECTORY, LOSSES, REQUEST_ID, STORE
from hub.observe.metrics import LOSS_STATS, METRICS, RELAY_STATS, Metrics, RelayStats
from hub.observe.traffic.query import TrafficSearch
from hub.observe.traffic.records import (
    HUB_MODULES,
    UNLOGGED,
    delivered,
    inbound_record,
    module_of,
    ocpi_status_of,
    outbound_record,
    pair,
    redact_path,
    render,
    safe_query,
    same,
)
from hub.ocpi.envelope import json_response
from routing.clock import Clock, iso
from routing.messages import FROM_CC, FROM_PID, TO_CC, TO_PID
from routing.peers.exchange import Exchange
from routing.protocol.errors import InvalidParameters
from routing.protocol.vocab import ModuleID
from routing.registry.directory import Directory
from routing.tasks import cancel_and_wait, report_round_failure
from routing.versions import Loss
from storage import traffic as traffic_sql
from storage.broadcasts import Broadcast
from storage.db import Store
from storage.errors import OUTAGES, StorageFull
from storage.models import Platform
from storage.traffic import TrafficRecord

__all__ = [
    "TRAFFIC",
    "TrafficRecorder",
    "module_of",
    "ocpi_status_of",
    "redact_path",
    "report_expansion",
    "safe_query",
    "setup",
]

LOGGER = logging.getLogger("hub.observe.traffic.recorder")

FLUSH_INTERVAL = 0.5
BATCH_SIZE = 200
TRIM_ROLE = "traffic-trim"  # the process of a cluster that trims the table (store.try_lead)
TRIM_INTERVAL = 5.0  # seconds between the trimming process's own trims when it has no traffic
SEEN_RESOLUTION = 10.0  # clock seconds between writes of one platform's last-seen time
DROPS_LOG_INTERVAL = 60.0  # seconds between two lines about records dropped for a full/unreachable database
MAX_BUFFER = 50 * BATCH_SIZE  # past this the oldest records are dropped (and counted), never the hub


# ---- the recorder ------------------------------------------------------------------------------


class TrafficRecorder:
    """Builds records, logs them, buffers them for the table and feeds metrics and relay figures."""

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics, stats: RelayStats) -> None:
        self._keep = settings.traffic_log_rows
        self._clock = clock
        self._metrics = metrics
        self._stats = stats
        self._buffer: deque[Callable[[], TrafficRecord]] = deque()
        # Last heard from / reached, as clock datetimes: the flush writes a few, formatted then.
        self._seen: dict[tuple[int, str], datetime] = {}
        self._seen_written: dict[tuple[int, str], float] = {}  # clock timestamps of the last write
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._trimmed_at = float("-inf")  # time.monotonic() of this process's last trim
        self._drops_logged_at = float("-inf")  # time.monotonic() of the last "records are dropped" line
        self.stopping = False
        self.store: Store | None = None
        self.directory: Directory | None = None
        self._prefix_index: dict[str, int] = {}
        self._prefix_generation = -1
        self._prefixes_of: dict[int, list[str]] = {}  # what _index_platform put in, per platform

    # -- records in ---------------------------------------------------------------------------
    # What must be current (metrics, relay figures, last-seen) is updated at once; building the
    # redacted record and its log line waits for the batch, off the event loop (``_render``).

    def add(self, record: TrafficRecord) -> None:
        """Queue a finished record for its log line and the table (never blocks)."""
        self._queue(functools.partial(same, record))

    def _queue(self, build: Callable[[], TrafficRecord]) -> None:
        if len(self._buffer) >= MAX_BUFFER:
            self._buffer.popleft()
            self._metrics.traffic_dropped.inc()
        self._buffer.append(build)
        if len(self._buffer) >= BATCH_SIZE:
            self._wake.set()

    def inbound(self, request: web.Request, http_status: int, ocpi_status: int | None, started: float) -> None:
        """Record one request to the hub."""
        latency = time.perf_counter() - started
        path = request.path
        module = module_of(path)
        self._metrics.observe_request(module, request.method, http_status, ocpi_status)
        if module in UNLOGGED or (module == "admin" and path == "/admin/traffic"):
            return  # polling noise: counted, not logged
        at = self._clock.now()
        now = iso(at)
        caller = request.get(CALLER)
        platform_id = caller.platform_id if caller is not None else None
        if platform_id is not None:
            self._stats.inbound(platform_id, now)
            self._seen[(platform_id, "in")] = at
        headers = request.headers
        self._queue(
            functools.partial(
                inbound_record,
                now,
                module,
                request.method,
                path,
                request.query_string,
                platform_id,
                pair(headers.get(FROM_CC), headers.get(FROM_PID)),
                pair(headers.get(TO_CC), headers.get(TO_PID)),
                http_status,
                ocpi_status,
                request.get(REQUEST_ID),
                request.get(CORRELATION_ID),
                round(latency * 1000, 3),
                json.dumps(request[LOSSES]) if request.get(LOSSES) else None,
            )
        )

    def outbound(self, exchange: Exchange) -> None:
        """PeerClient observer: record one call to a platform."""
        context = exchange.context
        platform_id = context.get("platform_id")
        module = context.get("module")
        base_path = None
        if platform_id is None or not module or module == ModuleID.TOKENS:
            found = self._match_endpoint(exchange.url)
            if found is not None:
                platform_id = platform_id if platform_id is not None else found[0]
                module = module or found[1]
                base_path = found[2] if module == found[1] else None
        if not module:
            hub_module = module_of(urlsplit(exchange.url).path)
            if hub_module in HUB_MODULES:
                module = hub_module  # e.g. the handshake's versions calls, before endpoints are known
        module = str(module or "unknown")
        attempt = int(context.get("attempt") or 1)
        ok = delivered(exchange)
        latency = exchange.latency if exchange.status is not None else None
        at = self._clock.now()
        now = iso(at)
        self._metrics.observe_forward(module, delivered=ok, latency=latency, attempt=attempt)
        if platform_id is not None:
            platform_id = int(platform_id)
            self._stats.outbound(platform_id, delivered=ok, latency=latency, at=now)
            if exchange.status is not None:
                self._seen[(platform_id, "out")] = at
        self._queue(functools.partial(outbound_record, now, exchange, platform_id, module, base_path, attempt))

    def _match_endpoint(self, url: str) -> tuple[int, str, str] | None:
        # Calls made without log_context: find the platform and module by the longest endpoint prefix.
        if self.directory is None:
            return None
        prefixes = self._prefixes(self.directory)
        # The endpoint prefixes this URL could have, longest first: the URL, then cut at each '/' or '?'.
        cuts = [len(url), *(i for i in range(len(url) - 1, 0, -1) if url[i] in "/?")]
        for cut in cuts:
            prefix = url[:cut]
            platform_id = prefixes.get(prefix)
            if platform_id is None:
                continue
            platform = self.directory.platform(platform_id)
            if platform is None:
                continue
            for module, endpoint in _candidates(platform):
                if endpoint.rstrip("/") == prefix:
                    return platform.id, module, urlsplit(prefix).path
        return None

    def warm_up(self) -> None:
        """Build the endpoint prefix index (at start: ~60 ms at 10,000 platforms)."""
        if self.directory is not None:
            self._prefixes(self.directory)

    def _index_platform(self, platform: Platform | None, platform_id: int) -> None:
        """Replace one platform's prefixes in the index (a prefix another platform holds first stays)."""
        for prefix in self._prefixes_of.pop(platform_id, ()):
            if self._prefix_index.get(prefix) == platform_id:
                del self._prefix_index[prefix]
        if platform is None:
            return
        mine = []
        for _, endpoint in _candidates(platform):
            prefix = endpoint.rstrip("/")
            if self._prefix_index.setdefault(prefix, platform_id) == platform_id:
                mine.append(prefix)
        self._prefixes_of[platform_id] = mine

    def _prefixes(self, directory: Directory) -> dict[str, int]:
        """Endpoint prefix -> the first platform (directory order) with it, kept up with the directory.

        A full rebuild after a reload; after single-platform changes only those platforms are
        re-indexed (directory change_log). A shared prefix whose first holder changes is then
        lost to the others until the next reload: two platforms with one endpoint URL.

        A scan of every platform's endpoints per call cost ~50 ms at 10,000 platforms (each
        handshake's discovery calls, every tokens leg; issue 22, bench scenario 12).
        """
        if self._prefix_generation == directory.generation:
            return self._prefix_index
        log = directory.change_log
        catch_up = self._prefix_generation >= directory.reloaded_at and (
            bool(log) and log[0][0] <= self._prefix_generation + 1
        )
        if catch_up:  # only the platforms changed since: drop their old prefixes, add the new ones
            for generation, platform_id in log:
                if generation > self._prefix_generation:
                    self._index_platform(directory.platform(platform_id), platform_id)
        else:
            self._prefix_index, self._prefixes_of = {}, {}
            for platform in directory.platforms():
                self._index_platform(platform, platform.id)
        self._prefix_generation = directory.generation
        return self._prefix_index

    # -- records out --------------------------------------------------------------------------

    def _due_seen(self, seen: dict[tuple[int, str], datetime]) -> dict[tuple[int, str], str]:
        """The last-seen times worth a write: each platform's at most every SEEN_RESOLUTION seconds.

        /status merges them with the live figures, and the still-alive check counts in minutes; a
        row update per flush would take the platform's row lock in every process's commits (two
        hub processes' batches then deadlock on it).
        """
        due = {}
        for key, at in seen.items():  # a fan-out to 1,000 receivers: 1,000 keys a flush, few due
            stamp = at.timestamp()
            if stamp - self._seen_written.get(key, float("-inf")) >= SEEN_RESOLUTION:
                self._seen_written[key] = stamp
                due[key] = iso(at)
        return due

    async def flush(self) -> None:
        """Render every buffered record (log lines, on a thread) and write it to SQLite now."""
        if self.store is None:
            return
        async with self._flush_lock:
            while self._buffer or self._seen:
                batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
                seen, self._seen = self._due_seen(self._seen), {}
                records = await asyncio.to_thread(render, batch) if batch else []
                if self._keep <= 0:
                    records = []
                try:
                    # One process of a cluster trims (always true on SQLite): see storage/traffic.py.
                    trim = bool(records) and await self.store.try_lead(TRIM_ROLE)
                    await traffic_sql.insert_batch(self.store, records, keep=self._keep, seen=seen, trim=trim)
                    if trim:
                        self._trimmed_at = time.monotonic()
                except OUTAGES as exc:  # the store logs the state itself
                    now = time.monotonic()
                    if now - self._drops_logged_at >= DROPS_LOG_INTERVAL:  # not a line per flush
                        self._drops_logged_at = now
                        LOGGER.warning(
                            "traffic log: records are dropped while the database is %s"
                            " (counted in ocpi_hub_traffic_log_dropped_total)",
                            "full" if isinstance(exc, StorageFull) else "unreachable",
                        )
                    self._metrics.traffic_dropped.inc(len(batch))
                    return
                except Exception:
                    LOGGER.exception("traffic log: writing %d records failed; they are dropped", len(batch))
                    self._metrics.traffic_dropped.inc(len(batch))
                    return

    async def trim_if_leading(self) -> bool:
        """Trim the table now if this process is the cluster's trimming one; say whether it did.

        Other processes' rows arrive untrimmed: the trimming process trims every TRIM_INTERVAL
        even when it has no traffic of its own.
        """
        if self.store is None or self._keep <= 0 or not await self.store.try_lead(TRIM_ROLE):
            return False
        await traffic_sql.trim(self.store, self._keep)
        self._trimmed_at = time.monotonic()
        return True

    async def run(self) -> None:
        """Background task: flush every FLUSH_INTERVAL seconds, or sooner when a batch is full."""
        # Ended by the flag, not only by a cancel (one that lands in wait_for or a driver call can be
        # lost on Python 3.11, and this loop would go on for good): see _traffic_ctx.
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            self._wake.clear()
            await self.flush()
            if self.store is not None and self.store.shared and time.monotonic() - self._trimmed_at >= TRIM_INTERVAL:
                try:
                    await self.trim_if_leading()
                except Exception as exc:  # the next round tries again; the table only grows meanwhile
                    report_round_failure(LOGGER, "traffic log: trimming the table", TRIM_INTERVAL, exc)


async def search(app: web.Application, criteria: TrafficSearch) -> list[dict[str, object]]:
    """Matching traffic rows, oldest first; what was observed before the call is included."""
    await app[TRAFFIC].flush()
    return await traffic_sql.query(app[STORE], **vars(criteria))


async def list_traffic(request: web.Request) -> web.Response:
    """GET /admin/traffic?correlation_id=&request_id=&platform_id=&module=&http_status=&since=&until=&kind=..."""
    # A parameter given twice is ambiguous (which one filters?): refused rather than guessed.
    repeated = sorted(k for k in set(request.query) if len(request.query.getall(k)) > 1)
    if repeated:
        raise InvalidParameters(f"'{repeated[0][:40]}' is given more than once")
    return json_response(await search(request.app, TrafficSearch.from_query(request.query)))


async def _traffic_ctx(app: web.Application) -> AsyncIterator[None]:
    recorder = app[TRAFFIC]
    recorder.store = app[STORE]
    recorder.directory = app.get(DIRECTORY)
    if recorder.directory is not None:  # the prefix index now, not in the first handshake's answer
        recorder.warm_up()
    app[CLIENT].observers.append(recorder.outbound)
    task = asyncio.create_task(recorder.run(), name="traffic-log-writer")
    yield
    recorder.stopping = True
    await cancel_and_wait(task)
    await recorder.flush()


TRAFFIC = web.AppKey("traffic", TrafficRecorder)


def setup(app: web.Application, settings: Settings) -> None:
    """Create the recorder, register /admin/traffic and the writer task (after store and client)."""
    app[TRAFFIC] = TrafficRecorder(settings, app[CLOCK], app[METRICS], app[RELAY_STATS])
    app.router.add_get("/admin/traffic", list_traffic)
    app.cleanup_ctx.append(_traffic_ctx)


def _candidates(platform: Platform) -> list[tuple[str, str]]:
    """(module, URL) of the platform's endpoints and its versions URL, in the order a match prefers them."""
    found = [(e.module, e.url) for e in platform.endpoints]
    if platform.versions_url:
        found.append(("versions", platform.versions_url))
    return found


def report_expansion(app: web.Application, record: Broadcast, losses: list[tuple[int | None, Loss]]) -> None:
    """A broadcast's Loss records found after its answer (routing/expander.py): metric, /status, traffic.

    The sender's request record is already written; its legs' losses get a record of their own
    under the message's correlation id (direction 'out', no platform: one for all its receivers).
    """
    counter = app[METRICS].translation_losses
    stats = app[LOSS_STATS]
    for to, loss in losses:
        counter.labels(loss.module, loss.path, loss.kind).inc()
        stats.add(record.sender_platform_id, to, loss.module, loss.path, loss.kind)
    app[TRAFFIC].add(
        TrafficRecord(
            ts=iso(app[CLOCK].now()),
            direction="out",
            module=record.module,
            method=record.method,
            path=redact_path("/" + "/".join([record.module, *record.segments]), module=record.module),
            platform_id=None,
            from_party=None,
            to_party=None,
            http_status=None,
            ocpi_status=None,
            attempt=None,
            request_id=None,
            correlation_id=record.correlation_id,
            latency_ms=0.0,
            note="broadcast legs translated for their receivers",
            losses=json.dumps([loss.as_dict() | {"to_platform_id": to} for to, loss in losses]),
        )
    )
