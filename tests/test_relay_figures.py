"""In-memory figures per platform, bounded as the network grows (hub/observe/latency.py, metrics.py).

Latency windows: close to the exact percentiles, small, forgetful. They replaced a deque of the
last 1,000 latencies per platform: ~390 MB at 10,000 platforms that each had 1,000 calls, and
1.3 s of sorting for every /status. Translation losses: a bounded number of platform pairs.
"""

from __future__ import annotations

import bisect
import math
import random
import tracemalloc

from hub.observe.latency import BOUNDS, FACTOR, LatencyWindow
from hub.observe.metrics import LossStats, RelayStats


def exact(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def test_percentiles_are_at_most_ten_percent_above_the_exact_ones() -> None:
    rng = random.Random(7)
    for size, draw in ((1000, lambda: rng.lognormvariate(-4, 1)), (10, lambda: rng.uniform(0.001, 2.0))):
        window = LatencyWindow(size)
        values = [draw() for _ in range(size)]
        for v in values:
            window.add(v)
        for fraction in (0.5, 0.9, 0.99, 1.0):
            got = window.percentiles(fraction)[0]
            want = exact(values, fraction)
            assert got is not None and want <= got <= want * FACTOR * 1.000001, (size, fraction, got, want)


def test_an_empty_window_has_no_percentiles_and_tiny_values_land_in_the_first_bucket() -> None:
    window = LatencyWindow()
    assert window.percentiles(0.5, 0.99) == [None, None] and len(window) == 0
    window.add(0.0)
    window.add(0.00005)
    assert window.percentiles(0.5, 1.0) == [BOUNDS[0], BOUNDS[0]] and len(window) == 2


def test_it_covers_the_last_half_to_whole_window_and_forgets_the_rest() -> None:
    window = LatencyWindow(1000)
    for _ in range(1000):
        window.add(1.0)  # a slow hour
    assert window.percentiles(0.5)[0] == BOUNDS[bisect_index(1.0)] and len(window) == 1000
    for _ in range(500):
        window.add(0.010)  # then fast: half the window
    slowish, fastish = window.percentiles(0.6, 0.4)
    assert len(window) == 1000 and slowish is not None and slowish >= 1.0 and fastish is not None and fastish < 0.011
    for _ in range(500):
        window.add(0.010)
    p50, p99 = window.percentiles(0.5, 0.99)
    assert p50 is not None and p99 is not None and 0.010 <= p50 <= p99 <= 0.011  # the slow calls are gone


def bisect_index(seconds: float) -> int:
    """The bucket a latency is counted in."""
    return bisect.bisect_left(BOUNDS, seconds)


def test_a_thousand_busy_platforms_take_little_memory_and_relay_stats_reads_them() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        stats = RelayStats()
        for platform_id in range(1000):
            for n in range(1000):
                stats.outbound(platform_id, delivered=True, latency=0.001 * (1 + n % 50), at="2026-12-06T10:00:00.000Z")
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert used < 2_000_000, used  # ~1 KB a platform (a deque of 1,000 floats was ~35 KB)
    p50, p99 = stats.latency_ms(3)
    assert p50 is not None and p99 is not None and 25.0 <= p50 <= 27.5 and 49.0 <= p99 <= 55.0
    assert stats.latency_ms(5000) == (None, None)


def test_translation_losses_keep_a_bounded_number_of_pairs_and_status_shows_the_worst() -> None:
    """100 CPOs broadcasting to 2,000 partners on another version: 200,000 pairs were all kept and all listed."""
    stats = LossStats(max_pairs=1000)
    for sender in range(100):
        for receiver in range(2000):
            stats.add(sender, receiver, "locations", "evses.status_schedule", "dropped")
    for _ in range(7):
        stats.add(5, 99_999, "sessions", "cdr_token.uid", "dropped")  # the worst pair, just added
    stats.add(99, 1999, "locations", "evses.status_schedule", "dropped")  # the last pair again: 2 losses
    assert len(stats._counts) == 1000  # the least recently added went
    top = stats.top()
    assert len(top) == 20
    assert (top[0]["from_platform_id"], top[0]["to_platform_id"]) == (5, 99_999)
    assert top[0]["losses"] == [{"module": "sessions", "field": "cdr_token.uid", "kind": "dropped", "count": 7}]
    assert (top[1]["from_platform_id"], top[1]["to_platform_id"]) == (99, 1999)
