"""Load generation and statistics: closed-loop (fixed concurrency) and open-loop (fixed rate) runs.

Every run is bounded twice: by a duration and by a maximum request count, so it always stops by
itself. A request is a coroutine factory ``(n) -> awaitable[(ok, seconds)]``; the runners only
schedule, time and count.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# One request: n is its sequence number; returns whether the answer was the expected one.
RequestFn = Callable[[int], Awaitable[bool]]


@asynccontextmanager
async def scratch(prefix: str) -> AsyncIterator[tuple[Path, aiohttp.ClientSession]]:
    """A scratch directory and the load generator's client (1000 connections, any host), closed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
            yield Path(tmp), http


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 < pct <= 100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class RunStats:
    """What one load run measured."""

    requests: int = 0
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def p(self, pct: float) -> float:
        """Latency percentile in milliseconds."""
        return percentile(self.latencies, pct) * 1000.0

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latencies")
        data.update(
            rps=round(self.rps, 1),
            p50_ms=round(self.p(50), 3),
            p90_ms=round(self.p(90), 3),
            p99_ms=round(self.p(99), 3),
            max_ms=round(self.p(100), 3),
            elapsed=round(self.elapsed, 3),
        )
        return data


async def _timed(fn: RequestFn, n: int, stats: RunStats) -> None:
    start = time.perf_counter()
    try:
        ok = await fn(n)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        ok = False
    stats.latencies.append(time.perf_counter() - start)
    stats.requests += 1
    if ok:
        stats.ok += 1
    else:
        stats.failed += 1


async def closed_loop(fn: RequestFn, *, concurrency: int, duration: float, max_requests: int) -> RunStats:
    """``concurrency`` workers send back to back until ``duration`` or ``max_requests`` is reached."""
    stats = RunStats()
    counter = iter(range(max_requests))
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        for n in counter:
            if time.perf_counter() >= deadline:
                return
            await _timed(fn, n, stats)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed = time.perf_counter() - start
    return stats


async def open_loop(fn: RequestFn, *, rate: float, duration: float, max_in_flight: int) -> RunStats:
    """Start requests at a fixed ``rate`` per second for ``duration``; latency includes no queueing here.

    When ``max_in_flight`` requests are outstanding a scheduled request is skipped and counted as
    failed (the target cannot sustain the rate), so the run never grows without bound.
    """
    stats = RunStats()
    total = max(1, int(rate * duration))
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for n in range(total):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            stats.requests += 1
            stats.failed += 1
            continue
        task = asyncio.create_task(_timed(fn, n, stats))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30.0)
    for task in tasks:
        task.cancel()
    stats.elapsed = time.perf_counter() - start
    return stats


async def wait_until(predicate: Callable[[], bool], *, timeout: float, step: float = 0.005) -> bool:
    """Poll ``predicate`` every ``step`` seconds; False if it is still false after ``timeout``."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
