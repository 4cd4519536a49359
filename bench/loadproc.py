"""``python -m bench.loadproc SPEC``: the load generator as its own process (scale-out scenarios).

The scale-out runs (bench/scale.py) count CPU per part: hub processes, PostgreSQL, load generator
and fake receiver. The receiver stays in the benchmark's process; the pushes are sent from this
one, so /proc tells the two apart. SPEC is JSON: the hub URL, the sender's party and hub token,
the receiver's party, a tag, and the run (closed loop: concurrency and duration; open loop: rate
and duration). It sends a short warm-up, prints ``measuring`` (the parent reads CPU counters
then), runs, and prints one JSON line: the run's summary and this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.load import closed_loop, open_loop
from bench.peers import Peer
from bench.requests import session_push


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, say ``measuring``, run the measured load; the summary."""
    sender = Peer("sender", spec["sender"]["country_code"], spec["sender"]["party_id"], "CPO")
    sender.hub_token = spec["sender"]["hub_token"]
    receiver = Peer("receiver", spec["receiver"]["country_code"], spec["receiver"]["party_id"], "EMSP")
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        warm = session_push(http, spec["url"], sender, receiver, tag=f"w{spec['tag']}")
        await closed_loop(warm, concurrency=spec["concurrency"], duration=spec.get("warmup", 0.5), max_requests=400)
        counts: Counter[str] = Counter()
        fn = session_push(http, spec["url"], sender, receiver, tag=spec["tag"], track=True, counts=counts)
        print("measuring", flush=True)
        cpu0 = time.process_time()
        if spec["mode"] == "open":
            stats = await open_loop(fn, rate=spec["rate"], duration=spec["duration"], max_in_flight=2000)
        else:
            stats = await closed_loop(
                fn, concurrency=spec["concurrency"], duration=spec["duration"], max_requests=10_000_000
            )
        cpu = time.process_time() - cpu0
    return {**stats.summary(), "answers": dict(counts), "loadgen_cpu_s": round(cpu, 3)}


def main() -> None:
    """Entry point: one JSON argument in, ``measuring`` then one JSON line out."""
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(spec))), flush=True)


if __name__ == "__main__":
    main()
