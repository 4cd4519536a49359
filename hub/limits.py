"""Per-platform rate limit: a token bucket per calling platform (docs/SECURITY.md).

Checked by the pipeline right after auth, so it knows the caller: every OCPI request of one platform
takes a token from that platform's bucket, which refills at ``rate_limit_per_second`` up to
``rate_limit_burst``. An empty bucket answers HTTP 429 with ``Retry-After`` and an OCPI
envelope (RateLimited). ``rate_limit_per_second = 0`` disables the limit. Unauthenticated
requests never reach a bucket (auth refuses them first), and the admin API is not limited.
The number of buckets is bounded by the number of platforms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from hub.keys import SETTINGS
from routing.errors import Overloaded, RateLimited

__all__ = ["ADMISSION", "LIMITER", "Admission", "RateLimiter", "check_rate"]


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
    """At most ``limit`` OCPI requests in progress: past it the hub answers 503 at once (overload)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0
        self.refused = 0

    def enter(self) -> None:
        """Count a request in; Overloaded (503 + Retry-After) when the hub is full."""
        if self.in_progress >= self.limit:
            self.refused += 1
            raise Overloaded("the hub is at capacity; retry later", headers={"Retry-After": "1"})
        self.in_progress += 1

    def leave(self) -> None:
        """A request counted in by ``enter`` is answered."""
        self.in_progress -= 1


LIMITER = web.AppKey("rate_limiter", RateLimiter)
ADMISSION = web.AppKey("admission", Admission)


def setup(app: web.Application) -> None:
    """Create the app's limiter from its settings (call before the app starts)."""
    settings = app[SETTINGS]
    app[LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[ADMISSION] = Admission(settings.max_requests_in_progress)


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
