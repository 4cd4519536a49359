"""``python -m bench.hotpath``: CPU per routed push, and optionally a py-spy profile of the hub.

A quick instrument for the hot path (a full ``make bench`` takes minutes): one hub, one CPO,
one eMSP, closed-loop directed session PUTs for ``--seconds``; prints pushes/s and the hub
process's CPU time divided by the pushes the receiver got. With ``--profile NAME`` py-spy
samples the hub meanwhile and writes ``bench/NAME.txt`` (top
functions by own and inclusive share) and ``bench/NAME.collapsed.txt`` (the raw collapsed stacks,
which any flame graph tool renders, e.g. speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp

from bench.load import RunStats, closed_loop
from bench.peers import start_and_register, stop_all
from bench.procs import (
    Child,
    HubConfig,
    cpu_seconds,
    cpu_seconds_of,
    free_port,
    hub_cpu,
    start_baseline,
    start_hub,
)
from bench.profiling import pyspy_binary, summarize_collapsed
from bench.requests import session_push
from bench.scale import PG_DEFAULT, Postgres
from bench.scenarios import FULL, Lab, cpo_peer, emsp_peers

HERE = Path(__file__).resolve().parent


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name, from ``py-spy dump`` (empty without py-spy)."""
    binary = pyspy_binary()
    if binary is None:
        return {}
    try:
        text = subprocess.run([binary, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {
        int(tid): name for tid, name in re.findall(r'Thread (?:0x[0-9A-Fa-f]+ )?\(?(\d+)\)? \(\w+\): "([^"]+)"', text)
    }


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of a process (the event loop is the thread whose id is the pid)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        out[int(task.name)] = cpu_seconds_of(task / "stat")
    return out


async def measure(
    seconds: float,
    concurrency: int,
    profile: str | None,
    env: dict[str, str],
    cprofile: Path | None = None,
    slices: int = 1,
    postgres: str | None = None,
    workers: int = 1,
) -> dict[str, object]:
    """Start a hub, push for ``seconds``, return rps and CPU ms per push; the same through the bare proxy.

    ``slices`` > 1 alternates hub and proxy in that many parts of ``seconds / slices`` each, so a
    burst of other work on the shared machine hits both sides alike (their ratio is what is gated).
    ``postgres``: a fresh database URL the hub runs on, as ``workers`` processes (CPU summed over
    the supervisor and its workers; the PostgreSQL server's own is not counted).
    """
    if profile and slices > 1:
        raise ValueError("--profile samples one uninterrupted hub run: use slices=1")
    if (profile or cprofile) and workers > 1:
        raise ValueError("--profile and --cprofile follow one hub process: not with --workers")
    with tempfile.TemporaryDirectory(prefix="hotpath-") as tmp:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
            lab = Lab(FULL, Path(tmp), http)
            cpo, (emsp,) = cpo_peer(), emsp_peers(1)
            hub: Child | None = None
            baseline: Child | None = None
            spy: subprocess.Popen[bytes] | None = None
            config = lab.hub_config("hub-hotpath", env=env, cprofile=cprofile)
            if postgres is not None:
                config = HubConfig(
                    database=postgres, log_dir=Path(tmp), name="hub-hotpath-pg", env=env, cprofile_out=cprofile
                )
            try:
                hub = await start_hub(config)
                await start_and_register(http, config.url, config.admin_token, [cpo, emsp])
                if workers > 1:  # restart as N processes on the same database, each knowing both peers
                    hub.stop()
                    config = HubConfig(
                        database=config.database,
                        log_dir=Path(tmp),
                        name="hub-hotpath-workers",
                        workers=workers,
                        env=env,
                        port=config.port,
                        admin_token=config.admin_token,
                    )
                    hub = await start_hub(config)
                # The bare proxy, measured in the same minute, is the yardstick (the machine is
                # shared; absolute figures drift).
                base_port = free_port()
                baseline = await start_baseline(base_port, emsp.base, [], Path(tmp))
                base_url = f"http://127.0.0.1:{base_port}"
                counts: Counter[str] = Counter()
                fn = session_push(http, config.url, cpo, emsp, tag="W", counts=counts)
                await closed_loop(fn, concurrency=concurrency, duration=1.0, max_requests=2000)  # warm-up
                bfn = session_push(http, base_url, cpo, emsp, tag="BW")
                await closed_loop(bfn, concurrency=concurrency, duration=1.0, max_requests=2000)
                raw = Path(tmp) / "spy.txt"
                if profile:
                    binary = pyspy_binary()
                    assert binary is not None, "py-spy not installed (pip install py-spy)"
                    args = [binary, "record", "--pid", str(hub.pid), "--duration", str(int(seconds)), "--rate", "200"]
                    spy = subprocess.Popen(
                        [*args, "--format", "raw", "--output", str(raw)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    await asyncio.sleep(0.5)
                counts.clear()
                stats, bstats = RunStats(), RunStats()
                cpu = bcpu = 0.0
                thread_used: Counter[int] = Counter()
                for i in range(slices):
                    cpu0, threads0 = hub_cpu(hub), thread_cpu(hub.pid)
                    part = await closed_loop(
                        session_push(http, config.url, cpo, emsp, tag=f"M{i}", counts=counts),
                        concurrency=concurrency,
                        duration=seconds / slices,
                        max_requests=10_000_000,
                    )
                    cpu += hub_cpu(hub) - cpu0
                    for tid, t in thread_cpu(hub.pid).items():
                        thread_used[tid] += t - threads0.get(tid, 0.0)
                    bcpu0 = cpu_seconds(baseline.pid)
                    bpart = await closed_loop(
                        session_push(http, base_url, cpo, emsp, tag=f"BM{i}"),
                        concurrency=concurrency,
                        duration=seconds / slices,
                        max_requests=10_000_000,
                    )
                    bcpu += cpu_seconds(baseline.pid) - bcpu0
                    for total, one in ((stats, part), (bstats, bpart)):
                        total.requests += one.requests
                        total.ok += one.ok
                        total.failed += one.failed
                        total.elapsed += one.elapsed
                        total.latencies += one.latencies
                names = thread_names(hub.pid)
                per_thread = {
                    ("loop" if tid == hub.pid else names.get(tid, f"thread {tid}")): round(
                        1000 * t / max(stats.ok, 1), 3
                    )
                    for tid, t in thread_used.items()
                    if t > 0
                }
                out: dict[str, float | int | dict[str, int]] = {
                    "rps": round(stats.rps, 1),
                    "p50_ms": round(stats.p(50), 2),
                    "p99_ms": round(stats.p(99), 2),
                    "answers": dict(counts),
                    "hub_cpu_s": round(cpu, 2),
                    "cpu_ms_per_push": round(1000 * cpu / max(stats.ok, 1), 3),
                    # With workers the threads are the supervisor's (idle): only the sum means something.
                    "cpu_ms_per_push_by_thread": per_thread if workers == 1 else {},
                    "slices": slices,
                }
                out["baseline_rps"] = round(bstats.rps, 1)
                out["baseline_cpu_ms_per_request"] = round(1000 * bcpu / max(bstats.ok, 1), 3)
                out["cpu_ratio_hub_to_baseline"] = round(
                    out["cpu_ms_per_push"] / max(out["baseline_cpu_ms_per_request"], 1e-9),
                    2,  # type: ignore[operator]
                )
                if cprofile is not None:
                    out["pushes_measured"] = stats.ok  # cProfile covers the warm-up and start too
                if spy is not None:
                    spy.wait(seconds + 30)
                    if raw.exists():
                        summary = summarize_collapsed(raw, top=40)
                        lines = [f"samples {summary['samples']}", "", "own:"]
                        lines += [f"  {pct:5.1f}  {name}" for name, pct in summary["own_pct"]]
                        lines += ["", "inclusive (project code):"]
                        lines += [f"  {pct:5.1f}  {name}" for name, pct in summary["project_inclusive_pct"]]
                        lines += ["", "inclusive (all):"]
                        lines += [f"  {pct:5.1f}  {name}" for name, pct in summary["inclusive_pct"]]
                        (HERE / f"{profile}.txt").write_text(json.dumps(out) + "\n\n" + "\n".join(lines) + "\n")
                        # The collapsed stacks stay next to the summary: any flame graph tool reads them.
                        (HERE / f"{profile}.collapsed.txt").write_text(raw.read_text(errors="replace"))
                return out
            finally:
                if spy is not None and spy.poll() is None:
                    spy.kill()
                for child in (baseline, hub):
                    if child is not None:
                        child.stop()
                await stop_all([cpo, emsp])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", help="name of the profile files written in bench/")
    parser.add_argument("--env", default="", help="extra hub settings, A=1,B=2")
    parser.add_argument("--cprofile", type=Path, help="run the hub under cProfile, writing this file (call counts)")
    parser.add_argument(
        "--slices", type=int, default=1, help="alternate hub and proxy in N parts (--check: 5; not with --profile)"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=os.environ.get("HUB_BENCH_POSTGRES_URL") or PG_DEFAULT,
        help="run the hub on PostgreSQL (default HUB_BENCH_POSTGRES_URL, else the local test server)",
    )
    parser.add_argument("--workers", type=int, default=1, help="hub processes (serve --workers N; PostgreSQL)")
    args = parser.parse_args()
    if args.workers > 1 and not args.postgres:
        parser.error("--workers needs --postgres: a SQLite file serves one hub process")
    env = dict(kv.split("=", 1) for kv in args.env.split(",") if kv)
    pg = Postgres(args.postgres) if args.postgres else None
    try:
        url = pg.database("hotpath") if pg else None
        out = asyncio.run(
            measure(args.seconds, args.concurrency, args.profile, env, args.cprofile, args.slices, url, args.workers)
        )
    finally:
        if pg is not None:
            pg.drop_all()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
