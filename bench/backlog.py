"""Scenario 10, backlog independence (issue 22): the cost of a push must not grow with the queue.

One hub (SQLite), a CPO, a healthy eMSP and an eMSP that goes down; a second hub (no backlog)
for reference. In one run:

1. the dead eMSP goes OFFLINE (a few pushes fail) and ``backlog`` messages are queued for it
   (copies of one of its real outbox rows, written straight into the hub's SQLite file: pushing
   100,000 through the API would measure the set-up);
2. live directed pushes to the healthy eMSP (closed loop), and the same to a second hub without
   a backlog, in alternating slices: req/s and p99 with / without, goal >= 0.9x, p99 <= 1.5x;
3. pushes to the dead eMSP (each answered "queued"), per-second rate: the last second against
   the first (no decay: goal >= 0.8);
4. the dead eMSP comes back and calls the hub: messages/s until it has the whole backlog
   (goal >= 3,000/s).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import RunStats, closed_loop, wait_until
from bench.peers import Peer, start_and_register, stop_all
from bench.procs import Child, cpu_seconds, start_hub
from bench.profiling import pyspy_binary
from bench.requests import session_push

BACKLOG_ENV = {
    "HUB_DELIVERY__RELAY_WAIT": "0.05",  # a push to the dead eMSP is answered "queued" quickly
    "HUB_DELIVERY__OFFLINE_AFTER_FAILURES": "3",  # then its pushes queue without an attempt
    "HUB_DELIVERY__INITIAL_BACKOFF": "0.05",
    "HUB_DELIVERY__MAX_BACKOFF": "0.5",
    "HUB_DELIVERY__PROBE_MAX_BACKOFF": "0.25",
    "HUB_DELIVERY__MAX_ATTEMPTS": "1000",
}
TAG = "bk"  # correlation ids t-bk-{n} of the seeded backlog


def seed_backlog(db: Path, platform_id: int, count: int) -> int:
    """Copy one pending outbox row of ``platform_id`` ``count`` times (own object, request and correlation id)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute(
            "SELECT * FROM outbox WHERE receiver_platform_id=? AND state='pending' ORDER BY id LIMIT 1",
            (platform_id,),
        ).fetchone()
        assert row is not None, "no pending row to copy"
        headers = json.loads(row["headers"])

        def rows() -> Any:
            for n in range(count):
                rid = f"bench-backlog-{n}"
                h = {**headers, "X-Request-ID": rid, "X-Correlation-ID": f"t-{TAG}-{n}"}
                yield (
                    platform_id,
                    row["module"],
                    f"BKLOG{n:08d}",
                    row["method"],
                    row["url"],
                    rid,
                    json.dumps(h),
                    row["body"],
                    row["created_at"],
                    row["created_at"],
                    row["deadline_at"],
                )

        with conn:
            conn.executemany(
                "INSERT INTO outbox (receiver_platform_id, module, object_key, method, url, request_id, headers,"
                " body, state, created_at, next_attempt_at, deadline_at) VALUES (?,?,?,?,?,?,?,?,'pending',?,?,?)",
                rows(),
            )
        # The hub's next commits must not pay for checkpointing the seeded rows out of the WAL.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return int(
            conn.execute(
                "SELECT count(*) FROM outbox WHERE receiver_platform_id=? AND state='pending'", (platform_id,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


async def _per_second(fn: Any, *, concurrency: int, seconds: float) -> tuple[RunStats, list[int]]:
    """A closed loop that also counts completions per wall-clock second."""
    buckets: list[int] = [0] * max(1, int(seconds + 0.999))
    t0 = time.perf_counter()

    async def counted(n: int) -> bool:
        ok: bool = await fn(n)
        i = int(time.perf_counter() - t0)
        if ok and i < len(buckets):
            buckets[i] += 1
        return ok

    stats = await closed_loop(counted, concurrency=concurrency, duration=seconds, max_requests=10_000_000)
    return stats, buckets


def _merge(runs: list[RunStats]) -> RunStats:
    """Several slices of one load as one run."""
    out = RunStats()
    for r in runs:
        out.requests += r.requests
        out.ok += r.ok
        out.failed += r.failed
        out.elapsed += r.elapsed
        out.latencies.extend(r.latencies)
    return out


def _push_summary(stats: RunStats, cpu_s: float) -> dict[str, Any]:
    return {
        "rps": round(stats.rps, 1),
        "p50_ms": round(stats.p(50), 2),
        "p99_ms": round(stats.p(99), 2),
        "ok": stats.ok,
        "failed": stats.failed,
        "hub_cpu_ms_per_push": round(1000 * cpu_s / max(stats.ok, 1), 3),
    }


def _spy(pid: int, seconds: float, phase: str) -> subprocess.Popen[bytes] | None:
    """BENCH_BACKLOG_SPY=FILE: py-spy samples the hub in phase BENCH_BACKLOG_SPY_PHASE (dead, drain)."""
    out, binary = os.environ.get("BENCH_BACKLOG_SPY"), pyspy_binary()
    if not out or binary is None or os.environ.get("BENCH_BACKLOG_SPY_PHASE", "dead") != phase:
        return None
    args = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200", "--format", "raw"]
    return subprocess.Popen([*args, "--output", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run_backlog(lab: Any, backlog: int, seconds: float, concurrency: int) -> dict[str, Any]:
    """Live throughput and p99 with and without a backlog for a dead receiver; its push rate; its drain.

    "Without" is a second hub (same settings, same peers' kind, no backlog) measured in the same
    minute: the two are loaded in alternating slices (A B B A ...), so what the rest of a shared
    machine does falls on both alike.
    """
    cpo = Peer("Bench CPO", "NL", "CPO", "CPO")
    healthy = Peer("Bench live eMSP", "DE", "LIV", "EMSP")
    dead = Peer("Bench dead eMSP", "DE", "DED", "EMSP")
    ref_cpo, ref_healthy = Peer("Bench CPO", "NL", "CPO", "CPO"), Peer("Bench live eMSP", "DE", "LIV", "EMSP")
    hub: Child | None = None
    ref: Child | None = None
    config = lab.hub_config("hub-backlog", BACKLOG_ENV)
    ref_config = lab.hub_config("hub-backlog-ref", BACKLOG_ENV)
    try:
        hub = await start_hub(config)
        ref = await start_hub(ref_config)
        await start_and_register(lab.http, config.url, config.admin_token, [cpo, healthy, dead])
        await start_and_register(lab.http, ref_config.url, ref_config.admin_token, [ref_cpo, ref_healthy])
        port = dead.port
        await dead.stop()
        counts: Counter[str] = Counter()
        down = session_push(lab.http, config.url, cpo, dead, tag="dw", track=True, counts=counts)
        await closed_loop(down, concurrency=4, duration=5.0, max_requests=20)  # 3 failures: OFFLINE
        assert dead.platform_id is not None
        t = time.perf_counter()
        queued = await asyncio.to_thread(seed_backlog, config.database, dead.platform_id, backlog)
        seed_seconds = time.perf_counter() - t
        with_fn = session_push(lab.http, config.url, cpo, healthy, tag="L1")
        without_fn = session_push(lab.http, ref_config.url, ref_cpo, ref_healthy, tag="L0")
        for fn in (with_fn, without_fn):  # warm-up
            await closed_loop(fn, concurrency=concurrency, duration=0.5, max_requests=500)
        runs: dict[str, list[RunStats]] = {"with": [], "without": []}
        cpu = {"with": 0.0, "without": 0.0}
        slices = max(1, round(seconds))
        order = ["without", "with", "with", "without"] * slices
        for n, which in enumerate(order[: 2 * slices]):
            fn, child = (with_fn, hub) if which == "with" else (without_fn, ref)
            cpu0 = cpu_seconds(child.pid)
            stats = await closed_loop(
                lambda i, fn=fn, n=n: fn(n * 1_000_000 + i),  # type: ignore[misc]
                concurrency=concurrency,
                duration=seconds / slices,
                max_requests=1_000_000,
            )
            cpu[which] += cpu_seconds(child.pid) - cpu0
            runs[which].append(stats)
        before = _push_summary(_merge(runs["without"]), cpu["without"])
        after = _push_summary(_merge(runs["with"]), cpu["with"])
        ref.stop()
        ref = None
        to_dead = session_push(lab.http, config.url, cpo, dead, tag="dp", track=True, counts=counts)
        await closed_loop(to_dead, concurrency=concurrency, duration=0.5, max_requests=500)  # warm-up
        spy = _spy(hub.pid, seconds, "dead")
        cpu0 = cpu_seconds(hub.pid)
        dead_stats, buckets = await _per_second(
            lambda n: to_dead(n + 1000),
            concurrency=concurrency,
            seconds=seconds,
        )
        dead_push = _push_summary(dead_stats, cpu_seconds(hub.pid) - cpu0)
        if spy is not None:
            spy.wait(seconds + 30)
        full = [b for b in buckets if b] or [0]
        dead_push.update(per_second=buckets, first_second=full[0], last_second=full[-1])
        dead_push["last_vs_first"] = round(full[-1] / full[0], 3) if full[0] else None
        total = queued + dead_stats.ok
        spy = _spy(hub.pid, seconds, "drain")
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(hub.pid)
        await dead.start(port)
        try:  # like a platform after a restart: it calls the hub, which resumes its queue at once
            async with lab.http.get(
                f"{config.url}/ocpi/2.2.1/locations/sender/?limit=1", headers={**dead.auth(), **dead.routing(None)}
            ) as r:
                await r.read()
        except Exception:  # the drain below is what is measured
            pass

        def arrived() -> int:
            return dead.tracked(f"t-{TAG}-") + dead.tracked("t-dp-") + dead.tracked("t-dw-")

        expected = backlog + counts["ok"]  # seeded + every push to it that was accepted
        done = await wait_until(lambda: arrived() >= expected, timeout=max(60.0, backlog / 500), step=0.02)
        elapsed = time.perf_counter() - t0
        drain_cpu = cpu_seconds(hub.pid) - cpu0
        if spy is not None:
            spy.wait(seconds + 30)
        live_ratio = after["rps"] / before["rps"] if before["rps"] else 0.0
        p99_ratio = after["p99_ms"] / before["p99_ms"] if before["p99_ms"] else 0.0
        drain_rate = arrived() / elapsed if elapsed > 0 else 0.0
        return {
            "backlog": {
                "backlog_messages": backlog,
                "pending_after_seed": queued,
                "seed_seconds": round(seed_seconds, 2),
                "seconds_per_run": seconds,
                "concurrency": concurrency,
                "live_no_backlog": before,
                "live_with_backlog": after,
                "live_ratio": round(live_ratio, 3),
                "p99_ratio": round(p99_ratio, 3),
                "dead_push": dead_push,
                "drain": {
                    "messages": arrived(),
                    "expected": expected,
                    "pending_total": total,
                    "complete": done,
                    "seconds": round(elapsed, 3),
                    "messages_per_s": round(drain_rate, 1),
                    "hub_cpu_ms_per_message": round(1000 * drain_cpu / max(arrived(), 1), 3),
                    "duplicates": dead.duplicates,
                },
                "goal": "live >= 0.9x, p99 <= 1.5x, dead push no decay (last/first >= 0.8), drain >= 3000/s",
                "met": live_ratio >= 0.9
                and p99_ratio <= 1.5
                and (dead_push["last_vs_first"] or 0) >= 0.8
                and done
                and drain_rate >= 3000,
            }
        }
    finally:
        for child in (hub, ref):
            if child is not None:
                child.stop()
        await stop_all([cpo, healthy, dead, ref_cpo, ref_healthy])


def main() -> None:
    """``python -m bench.backlog [--backlog N] [--seconds S] [--concurrency C]``: scenario 10 alone."""
    from bench.scenarios import run_alone

    run_alone(
        __doc__ or "",
        "ocpi-backlog-",
        run_backlog,
        {"backlog": (int, 100_000), "seconds": (float, 5.0), "concurrency": (int, 32)},
    )


if __name__ == "__main__":
    main()
