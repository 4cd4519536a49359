"""``python -m bench.bigpage``: GET-all over large stored objects, what a page weighs and costs the hub.

Seeds ``--count`` Locations of ``--evses`` EVSEs each (the official example's EVSE repeated; 100
EVSEs make ~54 KB) into a fresh SQLite file before the hub starts (bench/seed.py), then an eMSP
asks ``/locations/sender?limit=1000`` three times alone and ``--readers`` times at once. Printed:
the answer's bytes and items, whether it has a Link, the time, and the hub's peak RSS (VmHWM)
after each step. Before ``page_max_bytes`` (2026-12-06, c071517) one page was 54 MB and four
readers took the hub from 90 to 818 MB; the setting (``--env HUB_PAGE_MAX_BYTES=N``) bounds it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import seed
from bench.peers import Peer, stop_all
from bench.procs import proc_status_kb, start_hub
from bench.scenarios import FULL, Lab


def big_location(evses: int) -> dict[str, Any]:
    """The example Location with its first EVSE repeated ``evses`` times (distinct uids and ids)."""
    location = seed.location_example()
    first = location["evses"][0]
    location["evses"] = [{**copy.deepcopy(first), "uid": f"E{n}", "evse_id": f"BE*BEC*E{n:08d}"} for n in range(evses)]
    return location


async def measure(evses: int, count: int, readers: int, env: dict[str, str]) -> dict[str, Any]:
    """Seed, start a hub, read the first page alone and with ``readers`` at once; figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="bigpage-") as tmp:
        async with aiohttp.ClientSession() as http:
            lab = Lab(FULL, Path(tmp), http)
            sink = Peer("Bench bigpage sink", "DE", "SNK", "EMSP")
            await sink.start()
            config = lab.hub_config("hub-bigpage", env=env)
            template = big_location(evses)
            original, seed.location_example = seed.location_example, lambda: copy.deepcopy(template)
            try:
                seeded = seed.seed_platforms(config.database, 1, receiver_base=sink.base)
                seed.seed_locations(config.database, count, country_code="NL", party_id="SEE", receiver_base=sink.base)
            finally:
                seed.location_example = original
            hub = await start_hub(config)
            try:
                reader = Peer("Seeded eMSP 0", seeded[0][0], seeded[0][1], "EMSP", hub_token=seeded[0][2])
                headers = {**reader.auth(), **reader.routing(None)}
                url = f"{config.url}/ocpi/2.2.1/locations/sender/?offset=0&limit=1000"
                out: dict[str, Any] = {
                    "object_bytes": len(json.dumps(template, separators=(",", ":"))),
                    "objects": count,
                    "rss_after_start_mb": proc_status_kb(hub.pid, "VmRSS") // 1024,
                    "alone": [],
                }
                for _ in range(3):
                    t = time.perf_counter()
                    async with http.get(url, headers=headers) as r:
                        body = await r.read()
                        out["alone"].append(
                            {
                                "bytes": len(body),
                                "items": len(json.loads(body)["data"]),
                                "link": "Link" in r.headers,
                                "seconds": round(time.perf_counter() - t, 3),
                                "peak_rss_mb": proc_status_kb(hub.pid, "VmHWM") // 1024,
                            }
                        )

                async def one() -> None:
                    async with http.get(url, headers=headers) as r:
                        await r.read()

                t = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(readers)))
                out["together"] = {
                    "readers": readers,
                    "seconds": round(time.perf_counter() - t, 3),
                    "peak_rss_mb": proc_status_kb(hub.pid, "VmHWM") // 1024,
                }
                return out
            finally:
                hub.stop()
                await stop_all([sink])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evses", type=int, default=100, help="EVSEs per Location (100: ~54 KB)")
    parser.add_argument("--count", type=int, default=1000, help="Locations stored")
    parser.add_argument("--readers", type=int, default=4, help="readers of the first page at once")
    parser.add_argument("--env", default="", help="extra hub settings, A=1,B=2")
    args = parser.parse_args()
    env = dict(kv.split("=", 1) for kv in args.env.split(",") if kv)
    print(json.dumps(asyncio.run(measure(args.evses, args.count, args.readers, env)), indent=1))


if __name__ == "__main__":
    main()
