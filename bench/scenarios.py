"""The six benchmark scenarios (docs/DESIGN-NOTES.md, Benchmark), each against a real hub process.

Hub instances, each on a fresh SQLite file:

* core: 1 CPO + N eMSPs registered through the real handshake; directed pushes, added latency
  and broadcast fan-out, each also run through the baseline proxy to the same receivers.
* drain: 1 CPO + 1 eMSP that goes down and comes back (small relay_wait and backoffs).
* store: 999 eMSP platforms and 100,000 locations seeded in SQLite before start, + 1 CPO
  registered live; GET-all walk, then mixed load, then peak RSS (VmHWM).

Everything listens on 127.0.0.1; every child process is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import RunStats, closed_loop, open_loop, percentile, scratch, wait_until
from bench.peers import Peer, start_and_register, stop_all
from bench.procs import Child, HubConfig, cpu_seconds, free_port, proc_status_kb, start_baseline, start_hub
from bench.requests import location_put, session_push, status_patch
from bench.seed import outbox_pending, seed_locations, seed_platforms


@dataclass(frozen=True)
class Sizes:
    """Every size and duration of one run (full or --quick)."""

    push_seconds: float
    concurrency: int
    latency_seconds: float
    receivers: int
    broadcast_updates: int
    broadcast_rate: float
    locations: int
    drain_messages: int
    platforms: int
    rss_push_seconds: float
    rss_broadcasts: int
    profile_seconds: float
    overload_seconds: float
    backlog_messages: int = 100_000  # scenario 10 (bench/backlog.py)
    backlog_seconds: float = 4.0
    fanout_receivers: int = 1000  # scenario 11 (bench/fanout.py)
    # PATCHes/s: x receivers is the deliveries/s offered, twice the goal, so the figure is the
    # hub's capacity (at 2/s it could never read above 2,000/s; see bench/fanout.py).
    fanout_rate: float = 10.0
    fanout_seconds: float = 3.0


FULL = Sizes(10.0, 32, 10.0, 50, 100, 10.0, 100_000, 10_000, 1000, 5.0, 3, 12.0, 5.0)
QUICK = Sizes(1.5, 8, 1.5, 5, 10, 10.0, 2_000, 200, 20, 1.0, 1, 2.0, 1.0, 2_000, 1.0, 20, 2.0, 1.0)
# `--check` (bench/check.py): scenarios 1 (hot path), 10, 11 and a reduced 12, twice (about three minutes),
# against bench/recorded.json.
CHECK = Sizes(1.5, 32, 1.5, 5, 10, 10.0, 2_000, 200, 20, 1.0, 1, 2.0, 1.0, 20_000, 3.0, 1000, 10.0, 3.0)


@dataclass
class Lab:
    """Shared state of one benchmark run."""

    sizes: Sizes
    work: Path  # scratch directory: databases, logs
    http: aiohttp.ClientSession  # the load generator's client

    def hub_config(self, name: str, env: dict[str, str] | None = None, cprofile: Path | None = None) -> HubConfig:
        # BENCH_DB_DIR (e.g. /dev/shm) moves the hub databases off the disk: a diagnostic for
        # how much of a figure is fsync (the hub commits with synchronous=FULL).
        db_dir = Path(os.environ.get("BENCH_DB_DIR") or self.work)
        return HubConfig(
            database=db_dir / f"{self.work.name}-{name}.sqlite3",
            log_dir=self.work,
            name=name,
            env=env or {},
            cprofile_out=cprofile,
        )


def run_alone(
    doc: str, prefix: str, run: Callable[..., Awaitable[dict[str, Any]]], options: dict[str, tuple[type, Any]]
) -> None:
    """``python -m bench.X --name VALUE ...``: one scenario alone at FULL sizes in a scratch Lab; prints its JSON.

    ``options`` maps each keyword of ``run`` (after the lab) to its type and default.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc)
    for name, (kind, default) in options.items():
        parser.add_argument(f"--{name}", type=kind, default=default)
    given = vars(parser.parse_args())

    async def alone() -> dict[str, Any]:
        async with scratch(prefix) as (work, http):
            return await run(Lab(FULL, work, http), **given)

    print(json.dumps(asyncio.run(alone()), indent=1))


def cpo_peer() -> Peer:
    return Peer("Bench CPO", "NL", "CPO", "CPO")


def emsp_peers(count: int) -> list[Peer]:
    return [Peer(f"Bench eMSP {i}", "DE", f"E{i:02d}", "EMSP") for i in range(count)]


def _ratio(hub: float, base: float) -> float | None:
    return round(hub / base, 3) if base else None


class CpuMeter:
    """CPU seconds used by the hub, the baseline and this process over one measurement."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.self_start = time.process_time()
        self.wall = time.perf_counter()

    def done(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            used = cpu_seconds(pid) - self.start[name]
            out[f"{name}_cpu_pct"] = round(100 * used / wall, 1)
            out[f"{name}_cpu_s"] = round(used, 3)
        out["loadgen_and_peers_cpu_pct"] = round(100 * (time.process_time() - self.self_start) / wall, 1)
        return out


# ---- core instance: scenarios 1, 2, 3 -------------------------------------------------------


async def _broadcast_run(
    lab: Lab, base: str, cpo: Peer, receivers: list[Peer], location_ids: list[str], tag: str
) -> dict[str, Any]:
    """Send status PATCHes at a fixed rate; per update, the time until every receiver has it."""
    s = lab.sizes
    sent_at: dict[int, float] = {}
    fn = status_patch(lab.http, base, cpo, location_ids, tag=tag, sent_at=sent_at)
    answers = await open_loop(
        fn, rate=s.broadcast_rate, duration=s.broadcast_updates / s.broadcast_rate, max_in_flight=50
    )
    prefix = f"t-{tag}-"
    expected = len(sent_at)
    complete = await wait_until(
        lambda: all(p.tracked(prefix) >= expected for p in receivers), timeout=max(30.0, expected * 0.5)
    )
    fanout: list[float] = []
    missing = 0
    for n, t0 in sent_at.items():
        arrivals = [p.arrivals.get(f"{prefix}{n}") for p in receivers]
        if any(a is None for a in arrivals):
            missing += 1
            continue
        fanout.append(max(a for a in arrivals if a is not None) - t0)
    return {
        "updates": expected,
        "receivers": len(receivers),
        "all_delivered": complete and missing == 0,
        "incomplete_updates": missing,
        "fanout_p50_ms": round(percentile(fanout, 50) * 1000, 2),
        "fanout_p99_ms": round(percentile(fanout, 99) * 1000, 2),
        "fanout_max_ms": round(percentile(fanout, 100) * 1000, 2),
        "answer_p50_ms": round(answers.p(50), 2),
        "answer_p99_ms": round(answers.p(99), 2),
    }


async def _overload_run(lab: Lab, config: HubConfig, cpo: Peer, target: Peer, offered: float) -> dict[str, Any]:
    """Twice the measured peak, open loop: every push answered at once, 1000 or 503/429, none lost."""
    s = lab.sizes
    counts: Counter[str] = Counter()
    fn = session_push(lab.http, config.url, cpo, target, tag="OV", track=True, counts=counts)
    stats = await open_loop(fn, rate=offered, duration=s.overload_seconds, max_in_flight=5000)
    accepted = counts["ok"]
    # 503 (the hub's cap) and 429 (the CPO's share of it) both say "later", with Retry-After.
    busy = sum(n for key, n in counts.items() if key.startswith("http503"))
    limited = sum(n for key, n in counts.items() if key.startswith("http429"))
    refused = busy + limited
    other = stats.requests - accepted - refused
    # Every accepted push must reach the receiver (committed = delivered, queued or not).
    complete = await wait_until(lambda: target.tracked("t-OV-") >= accepted, timeout=60.0, step=0.01)
    return {
        "offered_rps": offered,
        "seconds": s.overload_seconds,
        "requests": stats.requests,
        "accepted_1000": accepted,
        "queued": counts["queued"],
        "refused_503": busy,
        "refused_429": limited,
        "other": other,
        "answers": dict(counts),
        "p50_ms": round(stats.p(50), 2),
        "p99_ms": round(stats.p(99), 2),
        "max_ms": round(stats.p(100), 2),
        "accepted_all_delivered": complete,
        "goal": "all answered (1000 or 503/429), p99 < 1000 ms, accepted all delivered",
        "met": other == 0 and stats.p(99) < 1000 and complete,
    }


async def run_core(lab: Lab) -> dict[str, Any]:
    """Directed push throughput, added latency at half load, broadcast fan-out: hub and baseline."""
    s = lab.sizes
    cpo, emsps = cpo_peer(), emsp_peers(s.receivers)
    hub: Child | None = None
    baseline: Child | None = None
    config = lab.hub_config("hub-core")
    try:
        hub = await start_hub(config)
        await start_and_register(lab.http, config.url, config.admin_token, [cpo, *emsps])
        target = emsps[0]
        base_port = free_port()
        baseline = await start_baseline(base_port, target.base, [p.base for p in emsps], lab.work)
        base_url = f"http://127.0.0.1:{base_port}"

        async def push_run(url: str, tag: str, counts: Counter[str]) -> tuple[RunStats, dict[str, float]]:
            fn = session_push(lab.http, url, cpo, target, tag=tag, counts=counts)
            await closed_loop(fn, concurrency=s.concurrency, duration=0.5, max_requests=200)  # warm-up
            counts.clear()
            meter = CpuMeter(hub=hub.pid, baseline=baseline.pid) if hub and baseline else None
            stats = await closed_loop(fn, concurrency=s.concurrency, duration=s.push_seconds, max_requests=10_000_000)
            return stats, meter.done() if meter else {}

        hub_counts: Counter[str] = Counter()
        base_counts: Counter[str] = Counter()
        hub_push, hub_cpu = await push_run(config.url, "H", hub_counts)
        base_push, base_cpu = await push_run(base_url, "B", base_counts)
        directed = {
            "concurrency": s.concurrency,
            "hub": {**hub_push.summary(), "answers": dict(hub_counts), **hub_cpu},
            "baseline": {**base_push.summary(), "answers": dict(base_counts), **base_cpu},
            "ratio": _ratio(hub_push.rps, base_push.rps),
            "goal": ">= 0.5x baseline (stretch 0.6x)",
        }
        directed["met"] = directed["ratio"] is not None and directed["ratio"] >= 0.5
        # CPU per routed push: the hub process's CPU time over the pushes the receiver answered
        # (same for the proxy per relayed request), both measured in the runs above.
        hub_ms = 1000 * hub_cpu.get("hub_cpu_s", 0.0) / max(hub_push.ok, 1)
        base_ms = 1000 * base_cpu.get("baseline_cpu_s", 0.0) / max(base_push.ok, 1)
        cpu_per_push = {
            "hub_ms": round(hub_ms, 3),
            "baseline_ms": round(base_ms, 3),
            "ratio": _ratio(hub_ms, base_ms),
            "goal": "<= 0.35 ms",
            "met": 0 < hub_ms <= 0.35,
        }

        rate = max(1.0, round(hub_push.rps / 2))
        lat_hub = await open_loop(
            session_push(lab.http, config.url, cpo, target, tag="LH"),
            rate=rate,
            duration=s.latency_seconds,
            max_in_flight=500,
        )
        lat_base = await open_loop(
            session_push(lab.http, base_url, cpo, target, tag="LB"),
            rate=rate,
            duration=s.latency_seconds,
            max_in_flight=500,
        )
        added_p50, added_p99 = lat_hub.p(50) - lat_base.p(50), lat_hub.p(99) - lat_base.p(99)
        latency = {
            "rate_rps": rate,
            "hub": lat_hub.summary(),
            "baseline": lat_base.summary(),
            "added_p50_ms": round(added_p50, 3),
            "added_p99_ms": round(added_p99, 3),
            "ratio_p50": _ratio(lat_hub.p(50), lat_base.p(50)),
            "ratio_p99": _ratio(lat_hub.p(99), lat_base.p(99)),
            "goal": "p99 < 5 ms, p50 < 1 ms over baseline",
            "met": added_p99 < 5.0 and added_p50 < 1.0 and lat_hub.failed == 0,
        }

        location_ids = [f"LOCB{i}" for i in range(10)]
        for i, loc in enumerate(location_ids):  # the hub needs the Locations stored before EVSE PATCHes
            await location_put(lab.http, config.url, cpo, loc, f"t-seedloc-{i}")(0)
        await wait_until(lambda: all(p.tracked("t-seedloc-") >= len(location_ids) for p in emsps), timeout=30.0)
        bc_hub = await _broadcast_run(lab, config.url, cpo, emsps, location_ids, "bch")
        bc_base = await _broadcast_run(lab, base_url, cpo, emsps, location_ids, "bcb")
        broadcast = {
            "rate_per_s": s.broadcast_rate,
            "hub": bc_hub,
            "baseline": bc_base,
            "ratio_p50": _ratio(bc_hub["fanout_p50_ms"], bc_base["fanout_p50_ms"]),
            "ratio_p99": _ratio(bc_hub["fanout_p99_ms"], bc_base["fanout_p99_ms"]),
            "goal": "p99 < 500 ms",
            "met": bc_hub["all_delivered"] and bc_hub["fanout_p99_ms"] < 500,
        }
        overload = await _overload_run(lab, config, cpo, target, offered=max(2.0, round(hub_push.rps * 2)))
        base_rss = proc_status_kb(baseline.pid, "VmHWM")
        core_rss = proc_status_kb(hub.pid, "VmHWM")
        return {
            "directed_push": directed,
            "cpu_per_push": cpu_per_push,
            "added_latency": latency,
            "broadcast": broadcast,
            "overload": overload,
            "_rss": {"baseline_vmhwm_mb": round(base_rss / 1024, 1), "core_hub_vmhwm_mb": round(core_rss / 1024, 1)},
        }
    finally:
        for child in (baseline, hub):
            if child is not None:
                child.stop()
        await stop_all([cpo, *emsps])


# ---- drain instance: scenario 5 --------------------------------------------------------------

DRAIN_ENV = {
    "HUB_DELIVERY__RELAY_WAIT": "0.05",  # answer "queued" quickly while the receiver is down
    "HUB_DELIVERY__OFFLINE_AFTER_FAILURES": "3",  # then pushes queue without a delivery attempt
    "HUB_DELIVERY__INITIAL_BACKOFF": "0.05",
    "HUB_DELIVERY__MAX_BACKOFF": "0.5",
    "HUB_DELIVERY__PROBE_MAX_BACKOFF": "0.25",  # an OFFLINE receiver is probed at least every 0.25 s
    "HUB_DELIVERY__MAX_ATTEMPTS": "1000",
}


# How many outbox rows wait for a receiver: (database, receiver platform id) -> count.
PendingFn = Callable[[Path | str, int], int]
# Starts measuring CPU of the parts; calling what it returns ends the measurement.
MeterFn = Callable[[Child], Callable[[], dict[str, Any]]]


def sqlite_pending(database: Path | str, platform_id: int) -> int:
    """Pending outbox rows in a SQLite hub's file."""
    return outbox_pending(Path(database), platform_id)


async def run_drain(
    lab: Lab, config: HubConfig | None = None, pending: PendingFn = sqlite_pending, meter: MeterFn | None = None
) -> dict[str, Any]:
    """Queue N messages for a receiver that is down, bring it back, time until it has all of them."""
    s = lab.sizes
    cpo, receiver = cpo_peer(), Peer("Bench drain eMSP", "DE", "DRN", "EMSP")
    hub: Child | None = None
    config = config or lab.hub_config("hub-drain", DRAIN_ENV)
    try:
        hub = await start_hub(config)
        await start_and_register(lab.http, config.url, config.admin_token, [cpo, receiver])
        port = receiver.port
        await receiver.stop()
        counts: Counter[str] = Counter()
        fn = session_push(lab.http, config.url, cpo, receiver, tag="dr", track=True, counts=counts)
        queueing = await closed_loop(fn, concurrency=s.concurrency, duration=300.0, max_requests=s.drain_messages)
        assert receiver.platform_id is not None
        waiting = await asyncio.to_thread(pending, config.database, receiver.platform_id)
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(hub.pid)
        metered = meter(hub) if meter is not None else None
        await receiver.start(port)
        try:  # like a real platform after a restart: it calls the hub, which resumes its queue
            async with lab.http.get(
                f"{config.url}/ocpi/2.2.1/locations/sender/?limit=1",
                headers={**receiver.auth(), **receiver.routing(None)},
            ) as r:
                await r.read()
        except aiohttp.ClientError:
            pass
        done = await wait_until(
            lambda: receiver.tracked("t-dr-") >= s.drain_messages, timeout=max(60.0, s.drain_messages / 100), step=0.01
        )
        elapsed = time.perf_counter() - t0
        drain_cpu = cpu_seconds(hub.pid) - cpu0
        parts = metered() if metered is not None else None
        got = receiver.tracked("t-dr-")
        rate = got / elapsed if elapsed > 0 else 0.0
        drain = {
            "messages": s.drain_messages,
            "queue_rps": round(queueing.rps, 1),
            "queue_answers": dict(counts),
            "pending_in_outbox_before_restart": waiting,
            "received": got,
            "complete": done,
            "seconds": round(elapsed, 3),
            "messages_per_s": round(rate, 1),
            "hub_cpu_pct": round(100 * drain_cpu / elapsed, 1) if elapsed > 0 else None,
            "hub_cpu_ms_per_message": round(1000 * drain_cpu / max(got, 1), 3),
            "duplicates": receiver.duplicates,
            **({"cpu": parts} if parts is not None else {}),
            "settings": DRAIN_ENV,
            "goal": ">= 2000 messages/s",
            "met": done and rate >= 2000,
        }
        return {"drain": drain}
    finally:
        if hub is not None:
            hub.stop()
        await stop_all([cpo, receiver])


# ---- store instance: scenarios 4 and 6 -------------------------------------------------------


async def _walk(lab: Lab, url: str, headers: dict[str, str], max_pages: int) -> dict[str, Any]:
    """Follow Link rel=next from the first page; time only the requests (not the client's JSON parse)."""
    objects = pages = 0
    request_time = 0.0
    first_ms = 0.0
    wall = time.perf_counter()
    next_url: str | None = url
    total = None
    while next_url and pages < max_pages:
        t = time.perf_counter()
        async with lab.http.get(next_url, headers=headers) as r:
            payload = await r.read()
            link = r.links.get("next")
            total = r.headers.get("X-Total-Count", total)
            limit = r.headers.get("X-Limit")
        spent = time.perf_counter() - t
        if pages == 0:
            first_ms = spent * 1000
        request_time += spent
        objects += len(json.loads(payload)["data"])
        pages += 1
        next_url = str(link["url"]) if link else None
    return {
        "objects": objects,
        "pages": pages,
        "x_total_count": int(total) if total else None,
        "x_limit": int(limit) if limit else None,
        "request_seconds": round(request_time, 3),
        "wall_seconds": round(time.perf_counter() - wall, 3),
        "objects_per_s": round(objects / request_time, 1) if request_time else 0.0,
        "first_page_ms": round(first_ms, 2),
    }


async def run_store(lab: Lab) -> dict[str, Any]:
    """GET-all over the seeded store (scenario 4), then peak RSS under mixed load (scenario 6)."""
    s = lab.sizes
    cpo, sink = cpo_peer(), Peer("Bench sink", "DE", "SNK", "EMSP")
    hub: Child | None = None
    config = lab.hub_config("hub-store")
    try:
        await sink.start()
        t = time.perf_counter()
        seeded = await asyncio.to_thread(seed_platforms, config.database, s.platforms - 1, receiver_base=sink.base)
        # Seeded before the hub starts (no 200 MB WAL to read through), owned by a seeded CONNECTED
        # CPO: the hub keeps locations only while their owner is connected (routing/jobs/retention.py).
        await asyncio.to_thread(
            seed_locations, config.database, s.locations, country_code="NL", party_id="SEE", receiver_base=sink.base
        )
        seed_seconds = time.perf_counter() - t
        hub = await start_hub(config)
        rss_idle = proc_status_kb(hub.pid, "VmRSS")
        await start_and_register(lab.http, config.url, config.admin_token, [cpo])
        reader = Peer("Seeded eMSP 0", seeded[0][0], seeded[0][1], "EMSP", hub_token=seeded[0][2])
        headers = {**reader.auth(), **reader.routing(None)}
        page_url = f"{config.url}/ocpi/2.2.1/locations/sender/?offset=0&limit=1000"
        walk = await _walk(lab, page_url, headers, max_pages=s.locations // 1000 + 10)
        firsts = []
        for _ in range(10):
            t = time.perf_counter()
            async with lab.http.get(page_url, headers=headers) as r:
                await r.read()
            firsts.append(time.perf_counter() - t)
        get_all = {
            **walk,
            "stored_locations": s.locations,
            "first_page_p50_ms_of_10": round(percentile(firsts, 50) * 1000, 2),
            "goal": ">= 20000 objects/s",
            "met": walk["objects"] == s.locations and walk["objects_per_s"] >= 20_000,
        }
        # Mixed load on the big registry: directed pushes to random seeded eMSPs, then broadcasts to all.
        receivers = [Peer(f"seeded {pid}", cc, pid, "EMSP") for cc, pid, _ in seeded]
        random.Random(7).shuffle(receivers)
        push = await closed_loop(
            session_push(lab.http, config.url, cpo, receivers, tag="R"),
            concurrency=s.concurrency,
            duration=s.rss_push_seconds,
            max_requests=10_000_000,
        )
        before = sink.received
        for i in range(s.rss_broadcasts):
            await location_put(lab.http, config.url, cpo, f"LOCRSS{i}", f"t-rssbc-{i}")(0)
        expected = before + s.rss_broadcasts * len(seeded)
        fanned = await wait_until(lambda: sink.received >= expected, timeout=120.0, step=0.05)
        hwm = proc_status_kb(hub.pid, "VmHWM")
        peak = {
            "platforms": s.platforms,
            "platforms_seeded_in_sqlite": len(seeded),
            "stored_objects": s.locations,
            "seed_seconds": round(seed_seconds, 2),
            "note": "eMSP platforms, parties, endpoints and token hashes seeded in SQLite before start; the CPO "
            "registered through the real handshake; load: GET-all walk + 10 first pages, directed pushes to "
            "random eMSPs, broadcasts to every eMSP",
            "rss_after_start_mb": round(rss_idle / 1024, 1),
            "push_rps_during": round(push.rps, 1),
            "broadcast_legs_delivered": fanned,
            "vmhwm_mb": round(hwm / 1024, 1),
            "goal": "< 200 MB",
            "met": 0 < hwm / 1024 < 200,
        }
        return {"get_all": get_all, "peak_rss": peak}
    finally:
        if hub is not None:
            hub.stop()
        await stop_all([cpo, sink])


def sizes_dict(sizes: Sizes) -> dict[str, Any]:
    return asdict(sizes)
