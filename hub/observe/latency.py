"""One platform's recent relay latencies as bucket counts: small, and quick to read percentiles from.

/status shows each platform's p50 and p99 over its last ~1,000 calls. Kept as the calls
themselves (a deque of 1,000 floats per platform) that was ~35 KB a platform, 10,000 platforms
that each had 1,000 calls took ~390 MB more, and /status sorted every window: 1.3 s of the
event loop per poll. Here a window is bucket counts (``BOUNDS``: 0.1 ms to ~2 min, each bucket
10 % wider than the last) in two halves that take turns: the current half fills up to
``size / 2`` calls, then becomes the previous one and a new one starts empty, so the figures
cover the last ``size / 2`` to ``size`` calls. A percentile is the upper bound of the bucket its
rank falls in: at most 10 % above the exact nearest-rank value, never below it (up to ~2 min).
Same 10,000 platforms: ~11 MB, and 42 ms for every platform's p50 and p99.
"""

from __future__ import annotations

import bisect
import math
from array import array
from itertools import accumulate

FACTOR = 1.1
BOUNDS: tuple[float, ...] = tuple(0.0001 * FACTOR**i for i in range(148))  # seconds; the last ~124 s
_EMPTY = bytes(2 * (len(BOUNDS) + 1))  # one more bucket: past the last bound


class LatencyWindow:
    """The last ``size / 2`` to ``size`` latencies of one platform, as bucket counts (~1 KB)."""

    __slots__ = ("_all", "_half", "_in_now", "_now", "_rotated")

    def __init__(self, size: int = 1000) -> None:
        self._half = min(max(1, size // 2), 32767)  # counts are 16-bit, and _all holds two halves
        self._now = array("H", _EMPTY)  # the current half
        self._all = array("H", _EMPTY)  # the previous half and the current one, summed as they come
        self._in_now = 0
        self._rotated = False

    def __len__(self) -> int:
        """How many calls the figures cover."""
        return self._in_now + (self._half if self._rotated else 0)

    def add(self, seconds: float) -> None:
        """Count one call's latency."""
        if self._in_now == self._half:  # the current half is full: it becomes the previous one
            self._all, self._now, self._in_now, self._rotated = array("H", self._now), array("H", _EMPTY), 0, True
        bucket = bisect.bisect_left(BOUNDS, seconds)
        self._now[bucket] += 1
        self._all[bucket] += 1
        self._in_now += 1

    def percentiles(self, *fractions: float) -> list[float | None]:
        """Nearest-rank percentiles in seconds (each the upper bound of its bucket); None when empty."""
        total = len(self)
        if not total:
            return [None for _ in fractions]
        running = list(accumulate(self._all))  # calls at or below each bucket
        out: list[float | None] = []
        for fraction in fractions:
            rank = max(1, math.ceil(fraction * total))
            out.append(BOUNDS[min(bisect.bisect_left(running, rank), len(BOUNDS) - 1)])
        return out
