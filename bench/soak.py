"""``python -m bench.soak``: mixed traffic for minutes at a steady rate; does the hub's memory level off?

The size bench measures memory at one moment; a hub runs for weeks. This keeps one hub busy with
what a network sends all day, at a rate it can sustain (open loop, not a saturation test):
directed session PUTs to two eMSPs (``--rate`` per second, a quarter of them to one that answers
503 to 30 % of its sessions, so retries run all the time), EVSE status PATCHes broadcast to all
three eMSPs (5/s), GET-all pages (2/s) and an operator's /status and /metrics poll (every 5 s).
Session ids cycle over a fixed set, so the stored objects level off and what keeps growing is
the process's own. Printed every 15 s: the hub's RSS and CPU; at the end the growth per minute
over the first and the last third of the run.

What levels it off (2026-12-06, 12 minutes at 200 pushes/s: 92 -> 128 MB): the traffic table
reaching ``traffic_log_rows`` (its pages in SQLite's caches) and the scheduler's memory of
attempts per X-Request-ID (100,000 ids, ~15 MB, routing/delivery/receiverqueue.py). To see what
grows, start the run with ``PYTHONTRACEMALLOC=6`` and compare two ``tracemalloc`` snapshots of
the hub (bench/RESULTS.md says how that run was made).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bench.load import RequestFn, RunStats, open_loop, scratch
from bench.peers import Peer, start_and_register, stop_all
from bench.procs import Child, cpu_seconds, proc_status_kb, start_hub
from bench.requests import location_put, session_push, status_patch
from bench.scenarios import FULL, Lab

SAMPLE_EVERY = 15.0  # seconds between RSS samples
FLAKY_SHARE = 0.3  # of the flaky eMSP's sessions answered 503 (retried by the hub)


@dataclass
class FlakyPeer(Peer):
    """An eMSP that answers 503 to a share of the session pushes it gets (the hub retries them)."""

    fail_share: float = FLAKY_SHARE

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if "/sessions/" in request.path and random.random() < self.fail_share:
            await request.read()
            return web.Response(status=503, text="busy")
        return await super()._dispatch(request)


def cycling(fn: RequestFn, ids: int) -> RequestFn:
    """``fn`` over ``ids`` distinct numbers again and again (a bounded set of session ids)."""

    async def call(n: int) -> bool:
        return await fn(n % ids)

    return call


def growth(samples: list[tuple[float, float]], part: slice) -> float:
    """MB per minute between the first and the last sample of ``part`` (0 with fewer than two)."""
    chosen = samples[part]
    if len(chosen) < 2 or chosen[-1][0] <= chosen[0][0]:
        return 0.0
    return round((chosen[-1][1] - chosen[0][1]) / ((chosen[-1][0] - chosen[0][0]) / 60), 2)


async def soak(lab: Lab, minutes: float, rate: float) -> dict[str, Any]:
    """Run the mix for ``minutes``; RSS samples, each load's outcome, growth per minute."""
    http = lab.http
    cpo = Peer("Soak CPO", "NL", "CPO", "CPO")
    steady, flaky, third = (
        Peer("Soak eMSP A", "DE", "EMA", "EMSP"),
        FlakyPeer("Soak eMSP B", "DE", "EMB", "EMSP"),
        Peer("Soak eMSP C", "FR", "EMC", "EMSP"),
    )
    peers = [cpo, steady, flaky, third]
    config = lab.hub_config("hub-soak", env={"HUB_DELIVERY__INITIAL_BACKOFF": "0.2", "HUB_DELIVERY__MAX_BACKOFF": "2"})
    hub: Child | None = None
    try:
        hub = await start_hub(config)
        await start_and_register(http, config.url, config.admin_token, peers)
        await location_put(http, config.url, cpo, "SOAK1", "soak-location")(0)
        admin = {"Authorization": f"Bearer {config.admin_token}"}
        pages = f"{config.url}/ocpi/2.2.1/sessions/sender"

        async def page(n: int) -> bool:
            async with http.get(f"{pages}?limit=200&offset={n * 200 % 3000}", headers=steady.auth()) as r:
                await r.read()
                return r.status == 200

        async def poll(_: int) -> bool:
            for path in ("/status", "/metrics"):
                async with http.get(config.url + path, headers=admin) as r:
                    await r.read()
            return r.status == 200

        seconds = minutes * 60
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        running = hub

        async def sample() -> None:
            while (elapsed := time.monotonic() - started) < seconds:
                rss = proc_status_kb(running.pid, "VmRSS") / 1024
                samples.append((round(elapsed, 1), round(rss, 1)))
                print(f"t={elapsed:5.0f}s rss={rss:6.1f} MB cpu={cpu_seconds(running.pid):7.1f} s", flush=True)
                await asyncio.sleep(min(SAMPLE_EVERY, max(seconds - elapsed, 0.01)))
            samples.append(
                (round(time.monotonic() - started, 1), round(proc_status_kb(running.pid, "VmRSS") / 1024, 1))
            )

        loads = {
            "sessions_steady": open_loop(
                cycling(session_push(http, config.url, cpo, steady, tag="SA"), 3000),
                rate=rate * 0.75,
                duration=seconds,
                max_in_flight=200,
            ),
            "sessions_flaky": open_loop(
                cycling(session_push(http, config.url, cpo, flaky, tag="SB"), 1000),
                rate=rate * 0.25,
                duration=seconds,
                max_in_flight=200,
            ),
            "status_broadcasts": open_loop(
                status_patch(http, config.url, cpo, ["SOAK1"], tag="SS", sent_at={}),
                rate=5,
                duration=seconds,
                max_in_flight=50,
            ),
            "getall_pages": open_loop(page, rate=2, duration=seconds, max_in_flight=10),
            "operator_polls": open_loop(poll, rate=0.2, duration=seconds, max_in_flight=2),
        }
        sampler = asyncio.ensure_future(sample())
        outcomes: list[RunStats] = await asyncio.gather(*loads.values())
        await sampler
        third_of = max(len(samples) // 3, 2)
        return {
            "minutes": minutes,
            "rate": rate,
            "loads": {name: {"ok": s.ok, "failed": s.failed} for name, s in zip(loads, outcomes, strict=True)},
            "rss_mb": {"start": samples[0][1], "end": samples[-1][1], "peak": max(r for _, r in samples)},
            "growth_mb_per_min": {
                "first_third": growth(samples, slice(0, third_of)),
                "last_third": growth(samples, slice(-third_of, None)),
            },
            "received": {"steady": steady.received, "flaky": flaky.received, "third": third.received},
            "samples": samples,
        }
    finally:
        if hub is not None:
            hub.stop()
        await stop_all(peers)


async def _main(minutes: float, rate: float) -> dict[str, Any]:
    async with scratch("ocpi-soak-") as (work, http):
        return await soak(Lab(FULL, work, http), minutes, rate)


def main() -> None:
    """``python -m bench.soak [--minutes 10] [--rate 200]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="directed session PUTs per second")
    args = parser.parse_args()
    out = asyncio.run(_main(args.minutes, args.rate))
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}, indent=1))


if __name__ == "__main__":
    main()
