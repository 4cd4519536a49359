"""Per-platform rate limit: a token bucket per calling platform (docs/SECURITY.md).

Runs after the auth middleware, so it knows the caller: every OCPI request of one platform
takes a token from that platform's bucket, which refills at ``rate_limit_per_second`` up to
``rate_limit_burst``. An empty bucket answers HTTP 429 with ``Retry-After`` and an OCPI
envelope (RateLimited). ``rate_limit_per_second = 0`` disables the limit. Unauthenticated
requests never reach a bucket (auth refuses them first), and the admin API is not limited.
The number of buckets is bounded by the number of platforms.

``body_guard_middleware`` turns a body that cannot be decoded (a bogus ``Content-Encoding``, a
broken chunked stream), which aiohttp reports from ``request.read()`` inside a handler, into a
400 envelope instead of a 500; the size cap
(``client_max_size`` = ``max_body_bytes``) answers 413 through the envelope middleware.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from hub.keys import CALLER, SETTINGS
from routing.errors import ClientError, RateLimited

__all__ = ["LIMITER", "RateLimiter", "body_guard_middleware", "rate_limit_middleware"]


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


LIMITER = web.AppKey("rate_limiter", RateLimiter)


def setup(app: web.Application) -> None:
    """Create the app's limiter from its settings (call before the app starts)."""
    settings = app[SETTINGS]
    app[LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 + Retry-After when the calling platform's bucket is empty; innermost, after auth."""
    caller = request.get(CALLER)
    limiter = request.app.get(LIMITER)
    if caller is not None and limiter is not None and limiter.enabled:
        wait = limiter.take(caller.platform_id)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"rate limit of {limiter.rate:g} requests/s exceeded; retry in {seconds}s",
                headers={"Retry-After": str(seconds)},
            )
    return await handler(request)


@web.middleware
async def body_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An undecodable body is a 400 envelope, never a 500 (handlers read the body before acting)."""
    # Not read up front: that would leave request.can_read_body False for the handlers.
    try:
        return await handler(request)
    except RequestPayloadError as exc:
        raise ClientError(f"request body could not be read: {str(exc).splitlines()[-1].strip()[:120]}") from exc
