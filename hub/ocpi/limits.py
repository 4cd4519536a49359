"""Per-platform rate limit and the in-progress bounds (docs/SECURITY.md, Rate limiting).

Checked by the pipeline right after auth, so it knows the caller: every OCPI request of one platform
takes a token from that platform's bucket, which refills at ``rate_limit_per_second`` up to
``rate_limit_burst``. An empty bucket answers HTTP 429 with ``Retry-After`` and an OCPI
envelope (RateLimited). ``rate_limit_per_second = 0`` disables the limit. Unauthenticated
requests never reach a bucket (auth refuses them first), and the admin API is not limited.
The number of buckets is bounded by the number of platforms.

``Admission`` bounds the OCPI requests in progress: hub-wide (``max_requests_in_progress``, 503:
the hub is full) and per calling platform (``max_requests_in_progress_per_platform``, 429: this
caller is over its share), so one partner's slow bodies or GETs to its own silent receiver
cannot take every slot (issue 20). A request body is read, within ``body_read_timeout``, while
the request holds only its platform's slot (``read_body``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from hub.keys import CLOCK, SETTINGS
from hub.observe.logs import LogAllowance, MalformedRequests
from routing.protocol.errors import BodyTimeout, Overloaded, RateLimited

__all__ = ["ADMISSION", "ERROR_LOG", "LIMITER", "LOG_BURST", "Admission", "RateLimiter", "check_rate", "read_body"]

# Unexpected errors a partner's requests cause: WARNING lines per platform (or address) per window.
LOG_BURST = 5
LOG_WINDOW = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by platform id; ``take`` says how long to wait when a bucket is empty."""

    def __init__(self, rate: float, burst: int, *, now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._now = now
        self._buckets: dict[int, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        """False when the rate is 0 (no limit)."""
        return self.rate > 0

    def take(self, key: int) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class Admission:
    """OCPI requests in progress: at most ``limit`` in the hub, at most ``per_platform`` per calling platform.

    Past the hub-wide bound the hub answers 503 at once (overload); past a platform's own, 429
    (that caller is over its share; the others are not held up by it).
    """

    def __init__(self, limit: int, per_platform: int | None = None) -> None:
        self.limit = limit
        self.per_platform = per_platform or max(1, limit // 4)
        self.in_progress = 0
        self.by_platform: dict[int, int] = {}
        self.refused = 0
        self.refused_platform = 0

    def enter(self) -> None:
        """Count a request in; Overloaded (503 + Retry-After) when the hub is full."""
        if self.in_progress >= self.limit:
            self.refused += 1
            raise Overloaded("the hub is at capacity; retry later", headers={"Retry-After": "1"})
        self.in_progress += 1

    def leave(self) -> None:
        """A request counted in by ``enter`` is answered (or waits for its body)."""
        self.in_progress -= 1

    def enter_platform(self, platform_id: int) -> None:
        """Count a request of one platform in; RateLimited (429 + Retry-After) past its share."""
        busy = self.by_platform.get(platform_id, 0)
        if busy >= self.per_platform:
            self.refused_platform += 1
            raise RateLimited(
                f"{busy} requests of this platform are in progress (at most {self.per_platform}); retry later",
                headers={"Retry-After": "1"},
            )
        self.by_platform[platform_id] = busy + 1

    def leave_platform(self, platform_id: int) -> None:
        """A request counted in by ``enter_platform`` is answered; the map keeps only busy platforms."""
        left = self.by_platform.get(platform_id, 0) - 1
        if left > 0:
            self.by_platform[platform_id] = left
        else:
            self.by_platform.pop(platform_id, None)


async def read_body(request: web.Request, timeout: float) -> None:
    """Read the whole request body (aiohttp keeps it for the handler); BodyTimeout (408) past ``timeout``."""
    if request.content.is_eof():  # all of it arrived with the headers (most pushes): no timer needed
        await request.read()
        return
    try:
        async with asyncio.timeout(timeout):
            await request.read()
    except TimeoutError as exc:
        raise BodyTimeout(f"the request body did not arrive within {timeout:g} s") from exc


LIMITER = web.AppKey("rate_limiter", RateLimiter)
ADMISSION = web.AppKey("admission", Admission)
ERROR_LOG = web.AppKey("error_log", LogAllowance)


def setup(app: web.Application) -> None:
    """Create the app's limiter from its settings (call before the app starts)."""
    settings = app[SETTINGS]
    app[LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[ADMISSION] = Admission(settings.max_requests_in_progress, settings.max_requests_in_progress_per_platform)
    app[ERROR_LOG] = LogAllowance(burst=LOG_BURST, window=LOG_WINDOW)
    app.cleanup_ctx.append(_parser_errors_ctx)


async def _parser_errors_ctx(app: web.Application) -> AsyncIterator[None]:
    """While the app runs, aiohttp's parser refusals are rate-limited WARNING lines (hub/observe/logs.py)."""
    server_logger = logging.getLogger("aiohttp.server")
    refusals = MalformedRequests(app[ERROR_LOG], app[CLOCK].now)
    server_logger.addFilter(refusals)
    try:
        yield
    finally:
        server_logger.removeFilter(refusals)


def check_rate(limiter: RateLimiter, platform_id: int) -> None:
    """Take a token from the platform's bucket; RateLimited (429 + Retry-After) when it is empty."""
    if not limiter.enabled:
        return
    wait = limiter.take(platform_id)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"rate limit of {limiter.rate:g} requests/s exceeded; retry in {seconds}s",
            headers={"Retry-After": str(seconds)},
        )
