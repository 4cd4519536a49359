"""Traffic log: one redacted record per request in and per call out (docs/DESIGN-NOTES.md, Observability).

Each record becomes one structured log line (logger ``hub.traffic``) at once and a row in the
bounded ``traffic`` table later: records wait in a memory buffer that a background task writes
in batches (every ``FLUSH_INTERVAL`` seconds or ``BATCH_SIZE`` records), so no request ever
waits for SQLite. Never logged: Authorization headers, bodies, query values other than paging
and token type, token uids in paths (tokens module, authorize URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from config import Settings
from hub.envelope import json_response
from hub.keys import CALLER, CLIENT, CLOCK, CORRELATION_ID, DIRECTORY, LOSSES, REQUEST_ID, STORE
from hub.metrics import METRICS, RELAY_STATS, Metrics, RelayStats
from hub.modules.routed import DRAFT_ALIASES
from hub.traffic_query import TrafficSearch
from routing.client import Exchange
from routing.clock import Clock, iso
from routing.decide import MODULES
from routing.directory import Directory
from routing.errors import OcpiError
from storage import traffic as traffic_sql
from storage.db import Store
from storage.traffic import TrafficRecord

LOGGER = logging.getLogger("hub.traffic")

FLUSH_INTERVAL = 0.5
BATCH_SIZE = 200
MAX_BUFFER = 50 * BATCH_SIZE  # past this the oldest records are dropped (and counted), never the hub
REDACTED = "{redacted}"
_SAFE_QUERY = frozenset({"type", "offset", "limit", "date_from", "date_to"})
_HUB_MODULES = frozenset(MODULES) | {"credentials", "hubclientinfo", "versions"}
_ALIASES = {**DRAFT_ALIASES, "registrations": "credentials"}
_OPS_PATHS = {"admin", "status", "health", "metrics", "console"}
_UNLOGGED = frozenset({"metrics", "health", "status", "console"})


# ---- redaction and classification ----------------------------------------------------------


def _redact_token_tail(tail: list[str]) -> list[str]:
    # tokens RECEIVER: {cc}/{pid}/{uid}; tokens SENDER: {uid}/authorize (OCPI 2.2.1 mod_tokens).
    if len(tail) >= 2 and tail[-1].lower() == "authorize":
        return [REDACTED] * (len(tail) - 1) + [tail[-1]]
    if len(tail) == 3:
        return [tail[0], tail[1], REDACTED]
    return [REDACTED] * len(tail)


def redact_path(path: str, *, module: str | None = None, base_path: str | None = None) -> str:
    """The path with token uids replaced by ``{redacted}``.

    ``base_path`` is the endpoint's own path when known (calls out): everything after it is
    the module-specific tail. Without it the tail starts after a ``tokens`` segment (and its
    ``sender``/``receiver``); a tokens path of unknown shape is redacted whole.
    """
    segments = path.split("/")
    if base_path is not None and module == "tokens":
        start = len(base_path.rstrip("/").split("/"))
    else:
        lowered = [s.lower() for s in segments]
        if "tokens" not in lowered:
            if module == "tokens":
                return "/" + REDACTED
            return path
        start = len(lowered) - 1 - lowered[::-1].index("tokens") + 1
        if start < len(segments) and lowered[start] in ("sender", "receiver"):
            start += 1
    head, tail = segments[:start], segments[start:]
    trailing = bool(tail) and tail[-1] == ""
    tail = [s for s in tail if s]
    redacted = _redact_token_tail(tail)
    return "/".join([*head, *redacted]) + ("/" if trailing else "")


def safe_query(items: Iterable[tuple[str, str]]) -> str:
    """Only paging and token-type query parameters survive ('?...' or '')."""
    kept = [(k, v) for k, v in items if k in _SAFE_QUERY]
    return "?" + urlencode(kept) if kept else ""


def module_of(path: str) -> str:
    """The module a hub path belongs to (a bounded set of names: safe as a metric label)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "unknown"
    if parts[0] in _OPS_PATHS:
        return parts[0]
    if parts[0] != "ocpi" or len(parts) == 1:
        return "unknown"
    if parts[1] == "versions":
        return "versions"
    if parts[1] in _ALIASES:
        return _ALIASES[parts[1]]
    if parts[1] == "2.2.1":
        if len(parts) == 2:
            return "versions"
        if parts[2] in _HUB_MODULES:
            return parts[2]
        if parts[2] in ("callbacks", "proxy"):
            return parts[2]
    return "unknown"


def _party(headers: Mapping[str, str], side: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    cc, pid = lowered.get(f"ocpi-{side}-country-code"), lowered.get(f"ocpi-{side}-party-id")
    return f"{cc}*{pid}" if cc and pid else None


def ocpi_status_of(response: web.StreamResponse) -> int | None:
    """The envelope's status_code of a hub answer (None when it is not an OCPI envelope)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    body = response.body
    if not body.startswith(b"{") or len(body) > 1_000_000:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    code = parsed.get("status_code") if isinstance(parsed, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def delivered(exchange: Exchange) -> bool:
    """A call counts as delivered when the receiver gave an OCPI answer that is not a 'try again'."""
    status = exchange.status
    return status is not None and exchange.is_ocpi and status < 500 and status not in (408, 429)


# ---- the recorder ------------------------------------------------------------------------------


class TrafficRecorder:
    """Builds records, logs them, buffers them for the table and feeds metrics and relay figures."""

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics, stats: RelayStats) -> None:
        self._keep = settings.traffic_log_rows
        self._clock = clock
        self._metrics = metrics
        self._stats = stats
        self._buffer: deque[TrafficRecord] = deque()
        self._seen: dict[tuple[int, str], str] = {}
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.store: Store | None = None
        self.directory: Directory | None = None

    # -- records in ---------------------------------------------------------------------------

    def add(self, record: TrafficRecord) -> None:
        """Log the record now; queue it for the table (never blocks)."""
        LOGGER.info(
            "%s %s %s %s %s -> %s: HTTP %s OCPI %s attempt %s (%.1f ms) X-Request-ID %s X-Correlation-ID %s%s",
            record.direction,
            record.module,
            record.method,
            record.path,
            record.from_party or "-",
            record.to_party or "-",
            record.http_status if record.http_status is not None else record.error,
            record.ocpi_status if record.ocpi_status is not None else "-",
            record.attempt if record.attempt is not None else "-",
            record.latency_ms,
            record.request_id,
            record.correlation_id,
            f" ({record.note})" if record.note else "",
            extra={"traffic": dict(vars(record))},  # shallow: the fields are plain values
        )
        if self._keep <= 0:
            return
        if len(self._buffer) >= MAX_BUFFER:
            self._buffer.popleft()
            self._metrics.traffic_dropped.inc()
        self._buffer.append(record)
        if len(self._buffer) >= BATCH_SIZE:
            self._wake.set()

    def inbound(self, request: web.Request, http_status: int, ocpi_status: int | None, started: float) -> None:
        """Record one request to the hub."""
        latency = time.perf_counter() - started
        module = module_of(request.path)
        self._metrics.observe_request(module, request.method, http_status, ocpi_status)
        if module in ("metrics", "health", "status", "console") or (
            module == "admin" and request.path == "/admin/traffic"
        ):
            return  # polling noise: counted, not logged
        now = iso(self._clock.now())
        caller = request.get(CALLER)
        platform_id = caller.platform_id if caller is not None else None
        if platform_id is not None:
            self._stats.inbound(platform_id, now)
            self._seen[(platform_id, "in")] = now
        self.add(
            TrafficRecord(
                ts=now,
                direction="in",
                module=module,
                method=request.method,
                path=redact_path(request.path, module=module) + safe_query(request.query.items()),
                platform_id=platform_id,
                from_party=_party(request.headers, "from"),
                to_party=_party(request.headers, "to"),
                http_status=http_status,
                ocpi_status=ocpi_status,
                attempt=None,
                request_id=request.get(REQUEST_ID),
                correlation_id=request.get(CORRELATION_ID),
                latency_ms=round(latency * 1000, 3),
                losses=json.dumps(request[LOSSES]) if request.get(LOSSES) else None,
            )
        )

    def outbound(self, exchange: Exchange) -> None:
        """PeerClient observer: record one call to a platform."""
        context = exchange.context
        platform_id = context.get("platform_id")
        module = context.get("module")
        parts = urlsplit(exchange.url)
        base_path = None
        if platform_id is None or not module or module == "tokens":
            found = self._match_endpoint(exchange.url)
            if found is not None:
                platform_id = platform_id if platform_id is not None else found[0]
                module = module or found[1]
                base_path = found[2] if module == found[1] else None
        if not module and module_of(parts.path) in _HUB_MODULES:
            module = module_of(parts.path)  # e.g. the handshake's versions calls, before endpoints are known
        module = str(module or "unknown")
        attempt = int(context.get("attempt") or 1)
        ok = delivered(exchange)
        latency = exchange.latency if exchange.status is not None else None
        now = iso(self._clock.now())
        self._metrics.observe_forward(module, delivered=ok, latency=latency, attempt=attempt)
        if platform_id is not None:
            platform_id = int(platform_id)
            self._stats.outbound(platform_id, delivered=ok, latency=latency, at=now)
            if exchange.status is not None:
                self._seen[(platform_id, "out")] = now
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        path = redact_path(parts.path, module=module, base_path=base_path)
        self.add(
            TrafficRecord(
                ts=now,
                direction="out",
                module=module,
                method=exchange.method,
                path=f"{parts.scheme}://{host}{path}{safe_query(_query_items(parts.query))}",
                platform_id=platform_id,
                from_party=_party(exchange.headers, "from"),
                to_party=_party(exchange.headers, "to"),
                http_status=exchange.status,
                ocpi_status=exchange.ocpi_status,
                attempt=attempt,
                request_id=_header(exchange.headers, "x-request-id"),
                correlation_id=_header(exchange.headers, "x-correlation-id"),
                latency_ms=round(exchange.latency * 1000, 3),
                error=exchange.error,
                note=exchange.note,
            )
        )

    def _match_endpoint(self, url: str) -> tuple[int, str, str] | None:
        # Calls made without log_context: find the platform and module by the longest endpoint prefix.
        if self.directory is None:
            return None
        best: tuple[int, str, str] | None = None
        best_len = -1
        for platform in self.directory.platforms():
            candidates = [(e.module, e.url) for e in platform.endpoints]
            if platform.versions_url:
                candidates.append(("versions", platform.versions_url))
            for module, endpoint in candidates:
                prefix = endpoint.rstrip("/")
                matches = url == prefix or url.startswith((prefix + "/", prefix + "?"))
                if matches and len(prefix) > best_len:
                    best, best_len = (platform.id, module, urlsplit(prefix).path), len(prefix)
        return best

    # -- records out --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write every buffered record (and last-seen times) to SQLite now."""
        if self.store is None:
            return
        async with self._flush_lock:
            while self._buffer or self._seen:
                batch = [self._buffer.popleft() for _ in range(min(BATCH_SIZE, len(self._buffer)))]
                seen, self._seen = self._seen, {}
                try:
                    await traffic_sql.insert_batch(self.store, batch, keep=self._keep, seen=seen)
                except Exception:
                    LOGGER.exception("traffic log: writing %d records failed; they are dropped", len(batch))
                    self._metrics.traffic_dropped.inc(len(batch))
                    return

    async def run(self) -> None:
        """Background task: flush every FLUSH_INTERVAL seconds, or sooner when a batch is full."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL)
            self._wake.clear()
            await self.flush()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _query_items(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


# ---- HTTP: middleware, admin query, lifecycle ------------------------------------------------


@web.middleware
async def traffic_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every request after it is answered (placed after the context middleware)."""
    recorder = request.app[TRAFFIC]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except OcpiError as exc:
        recorder.inbound(request, exc.status, exc.status_code, started)
        raise
    except web.HTTPException as exc:
        ocpi = None if exc.status < 400 else (2000 if exc.status < 500 else 3000)
        recorder.inbound(request, exc.status, ocpi, started)
        raise
    except Exception:
        recorder.inbound(request, 500, 3000, started)
        raise
    recorder.inbound(request, response.status, ocpi_status_of(response), started)
    return response


async def search(app: web.Application, criteria: TrafficSearch) -> list[dict[str, object]]:
    """Matching traffic rows, oldest first; what was observed before the call is included."""
    await app[TRAFFIC].flush()
    return await traffic_sql.query(app[STORE], **vars(criteria))


async def list_traffic(request: web.Request) -> web.Response:
    """GET /admin/traffic?correlation_id=&request_id=&platform_id=&module=&http_status=&ocpi_status=&since=&until=."""
    return json_response(await search(request.app, TrafficSearch.from_query(request.query)))


async def _traffic_ctx(app: web.Application) -> AsyncIterator[None]:
    recorder = app[TRAFFIC]
    recorder.store = app[STORE]
    recorder.directory = app.get(DIRECTORY)
    app[CLIENT].observers.append(recorder.outbound)
    task = asyncio.create_task(recorder.run(), name="traffic-log-writer")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await recorder.flush()


TRAFFIC = web.AppKey("traffic", TrafficRecorder)


def setup(app: web.Application, settings: Settings) -> None:
    """Create the recorder, register /admin/traffic and the writer task (after store and client)."""
    app[TRAFFIC] = TrafficRecorder(settings, app[CLOCK], app[METRICS], app[RELAY_STATS])
    app.router.add_get("/admin/traffic", list_traffic)
    app.cleanup_ctx.append(_traffic_ctx)
