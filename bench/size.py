"""Scenario 12, size (issue 22 goal 4): 10,000 platforms and 1,000,000 stored objects.

Seeded directly into SQLite before start (bench/seed.py: platforms with parties, endpoints and
token hashes; locations as broadcast copies owned by a seeded CONNECTED CPO), then the real hub
starts on the file. Measured:

* **startup**: spawn of ``python -m hub serve`` until /health answers;
* **RSS** (VmRSS) after start and after the GET-all runs and registrations (and VmHWM);
* **GET-all first vs last page**: an eMSP's ``GET /locations/sender/`` at the default page size,
  p50 of 5. The last page two ways: by the hub's own keyset cursor (what following
  ``Link rel=next`` reaches; the cursor of the last page is built from the seq the walk would
  have handed out) and by a partner's own ``offset`` (OCPI lets a partner compute it);
  goal: last within 2x of first;
* **registration**: a new platform's credentials handshake (versions, details, POST credentials
  with token A; the hub calls the peer back for its versions and details) with the admin's
  invitation timed apart; p50 of 3; goal < 50 ms.
* **polls**: the hub's CPU per ``/status``, ``/metrics`` and HubClientInfo page (limit 10), five
  of each, and the slowest ``/health`` answer meanwhile: what an operator's monitoring and one
  partner's crawl cost everyone else at this size (at 10,000 platforms /status held the event
  loop 0.5 s, /metrics 0.65 s, a HubClientInfo page 5.7 ms, before 2026-12-06).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.load import percentile
from bench.peers import Peer, b64, invite, stop_all
from bench.procs import Child, cpu_seconds, proc_status_kb, start_hub
from bench.seed import seed_locations, seed_platforms

FULL_SIZE = (10_000, 1_000_000)
QUICK_SIZE = (200, 20_000)


def _last_page_seq(db: Path, total: int, limit: int) -> int:
    """The seq a keyset walk hands out just before the last page (read before the hub starts)."""
    conn = sqlite3.connect(db)
    try:
        skip = max(0, (total - 1) // limit * limit - 1)
        row = conn.execute(
            "SELECT seq FROM objects WHERE module='locations' ORDER BY seq LIMIT 1 OFFSET ?", (skip,)
        ).fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


async def _timed_get(lab: Any, url: str, headers: dict[str, str], repeats: int) -> tuple[float, int, Any]:
    """p50 ms of ``repeats`` GETs, the objects on the last answer and its Link rel=next."""
    times, count, link = [], 0, None
    for _ in range(repeats):
        t = time.perf_counter()
        async with lab.http.get(url, headers=headers) as r:
            payload = await r.json()
            link = r.links.get("next")
        times.append(time.perf_counter() - t)
        count = len(payload.get("data") or [])
    return round(percentile(times, 50) * 1000, 2), count, link


async def _register(lab: Any, peer: Peer, versions_url: str, token_a: str) -> float:
    """The handshake of Peer.register_with; the seconds of its credentials POST alone."""
    auth = {"Authorization": "Token " + b64(token_a)}
    async with lab.http.get(versions_url, headers=auth) as r:
        versions = await r.json()
    details_url = next(v["url"] for v in versions["data"] if v["version"] == "2.2.1")
    async with lab.http.get(details_url, headers=auth) as r:
        details = await r.json()
    creds_url = next(e["url"] for e in details["data"]["endpoints"] if e["identifier"] == "credentials")
    t = time.perf_counter()
    async with lab.http.post(creds_url, json=peer.credentials(), headers=auth) as r:
        answer = await r.json()
    spent = time.perf_counter() - t
    if r.status != 200 or answer.get("status_code") != 1000:
        raise RuntimeError(f"registration of {peer.name} failed: {r.status} {answer}")
    peer.hub_token = answer["data"]["token"]
    return spent


async def _settled(peers: list[Peer], expected: int, *, timeout: float) -> float:
    """Wait until the peers received ``expected`` calls and then nothing for 1 s (bounded); seconds waited."""
    t = time.perf_counter()
    seen, quiet_since = -1, t
    while time.perf_counter() - t < timeout:
        now_seen = sum(p.received for p in peers)
        if now_seen < expected:
            pass
        elif now_seen != seen:
            seen, quiet_since = now_seen, time.perf_counter()
        elif time.perf_counter() - quiet_since >= 1.0:
            break
        await asyncio.sleep(0.1)
    return round(time.perf_counter() - t, 1)


async def _polls(lab: Any, hub: Child, url: str, admin: dict[str, str], partner: dict[str, str]) -> dict[str, Any]:
    """CPU ms of the hub per poll of each path (5 each) and the slowest /health answer meanwhile."""
    health: list[float] = []
    done = asyncio.Event()

    async def ping() -> None:
        while not done.is_set():
            t = time.perf_counter()
            async with lab.http.get(url + "/health") as r:
                await r.read()
            health.append(time.perf_counter() - t)
            await asyncio.sleep(0.002)

    pinger = asyncio.create_task(ping())
    out: dict[str, Any] = {}
    try:
        for name, path, headers in (
            ("status", "/status", admin),
            ("metrics", "/metrics", admin),
            ("hubclientinfo_page", "/ocpi/2.2.1/hubclientinfo?limit=10", partner),
        ):
            async with lab.http.get(url + path, headers=headers) as r:  # once untimed: a cache built on first use
                await r.read()
            cpu0 = cpu_seconds(hub.pid)
            for _ in range(5):
                async with lab.http.get(url + path, headers=headers) as r:
                    size = len(await r.read())
                    assert r.status == 200, (path, r.status)
            out[f"{name}_cpu_ms"] = round((cpu_seconds(hub.pid) - cpu0) / 5 * 1000, 1)
            out[f"{name}_bytes"] = size
    finally:
        done.set()
        await pinger
    out["health_worst_ms"] = round(max(health, default=0.0) * 1000, 1)
    return out


async def run_size(lab: Any, quick: bool) -> dict[str, Any]:
    """Seed platforms and objects, start the hub, measure startup, RSS, first/last page, registration."""
    platforms, objects = QUICK_SIZE if quick else FULL_SIZE
    sink = Peer("Bench size sink", "DE", "SNK", "EMSP")
    newcomers = [Peer(f"Bench newcomer {i}", "NL", f"N{i:02d}", "EMSP") for i in range(3)]
    hub: Child | None = None
    config = lab.hub_config("hub-size")
    try:
        await sink.start()
        t = time.perf_counter()
        seeded = await asyncio.to_thread(seed_platforms, config.database, platforms - 1, receiver_base=sink.base)
        await asyncio.to_thread(
            seed_locations, config.database, objects, country_code="NL", party_id="SEE", receiver_base=sink.base
        )
        seed_seconds = time.perf_counter() - t
        db_mb = config.database.stat().st_size / 2**20
        t = time.perf_counter()
        hub = await start_hub(config)
        startup_s = time.perf_counter() - t
        rss_start = proc_status_kb(hub.pid, "VmRSS") / 1024
        reader = Peer("Seeded eMSP 0", seeded[0][0], seeded[0][1], "EMSP", hub_token=seeded[0][2])
        headers = {**reader.auth(), **reader.routing(None)}
        first_url = f"{config.url}/ocpi/2.2.1/locations/sender/"
        first_cold_ms, _, _ = await _timed_get(lab, first_url, headers, 1)
        first_ms, first_count, link = await _timed_get(lab, first_url, headers, 5)
        limit = first_count or 1
        cursor_seq = await asyncio.to_thread(_last_page_seq, config.database, objects, limit)
        last_offset = (objects - 1) // limit * limit
        last_cursor_url = f"{first_url}?offset={last_offset}&limit={limit}&cursor={cursor_seq}.{objects}"
        last_cursor_ms, last_cursor_count, _ = await _timed_get(lab, last_cursor_url, headers, 5)
        last_offset_url = f"{first_url}?offset={last_offset}&limit={limit}"
        last_offset_ms, last_offset_count, _ = await _timed_get(lab, last_offset_url, headers, 5)
        rss_getall = proc_status_kb(hub.pid, "VmRSS") / 1024

        invite_ms, handshake_ms, settled, post_ms = [], [], [], []
        expected = 0  # ClientInfo PUTs so far: each registration's to every seeded platform
        for peer in newcomers:
            await peer.start()
            # Each registration fans ClientInfo out to every platform (and back to the newcomer):
            # time the next one on a settled hub, not against the previous one's 20,000 PUTs.
            settled.append(await _settled([sink, *newcomers], expected, timeout=120.0))
            t = time.perf_counter()
            token_a, versions_url, peer.platform_id = await invite(lab.http, config.url, config.admin_token, peer.name)
            t2 = time.perf_counter()
            post_ms.append(await _register(lab, peer, versions_url, token_a))
            handshake_ms.append(time.perf_counter() - t2)
            invite_ms.append(t2 - t)
            expected = sum(p.received for p in [sink, *newcomers]) + len(seeded)
        reg_ms = round(percentile(handshake_ms, 50) * 1000, 2)
        await _settled([sink, *newcomers], expected, timeout=120.0)
        polls = await _polls(lab, hub, config.url, {"Authorization": f"Bearer {config.admin_token}"}, {**reader.auth()})
        rss_end = proc_status_kb(hub.pid, "VmRSS") / 1024
        hwm = proc_status_kb(hub.pid, "VmHWM") / 1024
        worst_last = max(last_cursor_ms, last_offset_ms)
        return {
            "size": {
                "platforms": platforms,
                "stored_objects": objects,
                "database_mb": round(db_mb, 1),
                "seed_seconds": round(seed_seconds, 1),
                "startup_s": round(startup_s, 2),
                "rss_after_start_mb": round(rss_start, 1),
                "rss_after_getall_mb": round(rss_getall, 1),
                "rss_after_registrations_mb": round(rss_end, 1),
                "vmhwm_mb": round(hwm, 1),
                "rss_goal": "< 300 MB",
                "rss_met": 0 < hwm < 300,
                "page_limit": limit,
                "first_page_cold_ms": first_cold_ms,
                "first_page_p50_ms": first_ms,
                "first_page_has_next": link is not None,
                "last_page_cursor_p50_ms": last_cursor_ms,
                "last_page_cursor_objects": last_cursor_count,
                "last_page_offset_p50_ms": last_offset_ms,
                "last_page_offset_objects": last_offset_count,
                "last_over_first": round(worst_last / first_ms, 2) if first_ms else None,
                "paging_goal": "last page within 2x of first",
                "paging_met": bool(first_ms) and worst_last <= 2 * first_ms,
                "invite_p50_ms": round(percentile(invite_ms, 50) * 1000, 2),
                "registration_p50_ms": reg_ms,
                "registration_max_ms": round(max(handshake_ms) * 1000, 2),
                "registration_each_ms": [round(x * 1000, 1) for x in handshake_ms],
                "credentials_post_each_ms": [round(x * 1000, 1) for x in post_ms],
                "settle_waits_s": settled,
                "registration_goal": "< 50 ms",
                "registration_met": reg_ms < 50,
                "polls": polls,
            }
        }
    finally:
        if hub is not None:
            hub.stop()
        await stop_all([sink, *newcomers])


def size_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows of scenario 12 (name, hub, baseline, vs baseline, goal, met)."""
    z = results.get("size", {})
    if "startup_s" not in z:
        return []
    at = f"{z['platforms']:,} platf., {z['stored_objects']:,} obj."
    return [
        (f"12 startup ({at})", f"{z['startup_s']:.2f} s", "n/a", "", "", None),
        (
            "12 RSS after start / GET-all / peak",
            f"{z['rss_after_start_mb']:.0f} / {z['rss_after_getall_mb']:.0f} / {z['vmhwm_mb']:.0f} MB",
            "n/a",
            "",
            z["rss_goal"],
            z["rss_met"],
        ),
        (
            f"12 GET-all first / last page (limit {z['page_limit']})",
            f"{z['first_page_p50_ms']:.1f} / {z['last_page_cursor_p50_ms']:.1f} ms",
            "n/a",
            f"own offset: {z['last_page_offset_p50_ms']:.1f} ms",
            z["paging_goal"],
            z["paging_met"],
        ),
        (
            "12 registration (handshake) p50",
            f"{z['registration_p50_ms']:.1f} ms",
            "n/a",
            f"invite {z['invite_p50_ms']:.1f} ms",
            z["registration_goal"],
            z["registration_met"],
        ),
    ] + _poll_rows(z.get("polls"))


def _poll_rows(polls: dict[str, Any] | None) -> list[tuple[str, str, str, str, str, bool | None]]:
    if not polls:
        return []
    return [
        (
            "12 CPU per /status / /metrics poll",
            f"{polls['status_cpu_ms']:.0f} / {polls['metrics_cpu_ms']:.0f} ms",
            "n/a",
            f"worst /health meanwhile {polls['health_worst_ms']:.0f} ms",
            "",
            None,
        ),
        (
            "12 CPU per HubClientInfo page (limit 10)",
            f"{polls['hubclientinfo_page_cpu_ms']:.1f} ms",
            "n/a",
            "",
            "",
            None,
        ),
    ]
