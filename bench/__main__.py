"""``python -m bench [--quick]``: run the six scenarios, print a table, write bench/results/latest.json.

Process layout on this 2-core machine: the hub and the baseline proxy each run as their own
process (they are what is compared); the load generator and every fake peer share this one
process and event loop, so send and arrival times of a broadcast are read from one clock and
nothing needs inter-process counting. The cost is that this process competes for the second
core: its CPU share is reported with the throughput figures (``loadgen_and_peers_cpu_pct``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.backlog import run_backlog
from bench.check import issue22_rows, run_check, scenario1_goals
from bench.fanout import run_fanout_group
from bench.load import scratch
from bench.profiling import run_profile
from bench.scale import run_scale, scale_table
from bench.scenarios import FULL, QUICK, Lab, run_core, run_drain, run_store, sizes_dict
from bench.size import run_size, size_rows

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = (
    "directed_push",
    "cpu_per_push",
    "added_latency",
    "broadcast",
    "overload",
    "get_all",
    "drain",
    "peak_rss",
    "scale",
    "pg_drain",
    "backlog",
    "fanout",
    "fanout_pg",
    "size",
)


def _git() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "hub", "routing", "storage", "config"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + (
            " + uncommitted changes in hub/routing/storage/config" if dirty.stdout.strip() else ""
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if not isinstance(value, float):
        return f"{value}{unit}"
    return (f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}") + unit


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str, str]] = []
    scenario1_goals(results)  # issue 22's goal 3 (older results files carry older goal texts)

    def add(name: str, hub: Any, base: Any, ratio: Any, goal: str, met: Any) -> None:
        rows.append((name, hub, base, ratio, goal, "yes" if met is True else "NO" if met is False else "-"))

    d = results.get("directed_push", {})
    if "hub" in d:
        add(
            "1 directed push req/s",
            _fmt(d["hub"]["rps"]),
            _fmt(d["baseline"]["rps"]),
            _fmt(d["ratio"], "x"),
            d["goal"],
            d["met"],
        )
    c = results.get("cpu_per_push", {})
    if "hub_ms" in c:
        add(
            "1 CPU per routed push",
            _fmt(c["hub_ms"], " ms"),
            _fmt(c["baseline_ms"], " ms"),
            _fmt(c["ratio"], "x"),
            c["goal"],
            c["met"],
        )
    lat = results.get("added_latency", {})
    if "hub" in lat:
        add(
            f"2 latency p50 @ {lat['rate_rps']:g} req/s",
            _fmt(lat["hub"]["p50_ms"], " ms"),
            _fmt(lat["baseline"]["p50_ms"], " ms"),
            f"+{_fmt(lat['added_p50_ms'], ' ms')}",
            "",
            None,
        )
        add(
            "2 latency p99",
            _fmt(lat["hub"]["p99_ms"], " ms"),
            _fmt(lat["baseline"]["p99_ms"], " ms"),
            f"+{_fmt(lat['added_p99_ms'], ' ms')}",
            lat["goal"],
            lat["met"],
        )
    b = results.get("broadcast", {})
    if "hub" in b:
        n = b["hub"]["receivers"]
        add(
            f"3 broadcast to {n}, p50",
            _fmt(b["hub"]["fanout_p50_ms"], " ms"),
            _fmt(b["baseline"]["fanout_p50_ms"], " ms"),
            _fmt(b["ratio_p50"], "x"),
            "",
            None,
        )
        add(
            f"3 broadcast to {n}, p99",
            _fmt(b["hub"]["fanout_p99_ms"], " ms"),
            _fmt(b["baseline"]["fanout_p99_ms"], " ms"),
            _fmt(b["ratio_p99"], "x"),
            b["goal"],
            b["met"],
        )
    o = results.get("overload", {})
    if "requests" in o:
        add(
            f"7 overload @ {o['offered_rps']:g} req/s: 1000 / 503 / 429",
            f"{o['accepted_1000']} / {o['refused_503']} / {o.get('refused_429', 0)}",
            "n/a",
            f"other: {o['other']}",
            "",
            None,
        )
        add(
            "7 overload answer p99",
            _fmt(o["p99_ms"], " ms"),
            "n/a",
            f"max {_fmt(o['max_ms'], ' ms')}",
            o["goal"],
            o["met"],
        )
    g = results.get("get_all", {})
    if "objects_per_s" in g:
        add(f"4 GET-all {g['objects']:,} objects/s", _fmt(g["objects_per_s"]), "n/a", "", g["goal"], g["met"])
        add(
            "4 GET-all first page",
            _fmt(g["first_page_ms"], " ms"),
            "n/a",
            f"p50 of 10: {_fmt(g['first_page_p50_ms_of_10'], ' ms')}",
            "",
            None,
        )
    dr = results.get("drain", {})
    if "messages_per_s" in dr:
        add(f"5 drain {dr['messages']:,} msgs/s", _fmt(dr["messages_per_s"]), "n/a", "", dr["goal"], dr["met"])
    r = results.get("peak_rss", {})
    if "vmhwm_mb" in r:
        base_rss = results.get("meta", {}).get("baseline_vmhwm_mb")
        add(
            f"6 peak RSS ({r['platforms']} platf., {r['stored_objects']:,} obj.)",
            _fmt(r["vmhwm_mb"], " MB"),
            _fmt(base_rss, " MB"),
            "",
            r["goal"],
            r["met"],
        )
    for row in issue22_rows(results):
        add(*row)
    for row in size_rows(results):
        add(*row)
    for name in SECTIONS:
        if "error" in results.get(name, {}):
            add(f"{name}", "ERROR", "", "", results[name]["error"][:60], False)
    head = ("scenario", "hub", "baseline", "vs baseline", "goal", "met")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(6)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def _section(
    results: dict[str, Any], names: tuple[str, ...], run: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    t = time.perf_counter()
    print(f"-- running {', '.join(names)} ...", flush=True)
    try:
        out = await asyncio.wait_for(run(), timeout=900)
        results.update(out)
    except Exception as exc:  # one scenario failing must not lose the others
        traceback.print_exc()
        for name in names:
            results.setdefault(name, {"error": f"{type(exc).__name__}: {exc}"})
    print(f"   done in {time.perf_counter() - t:.1f}s", flush=True)


GROUPS = ("core", "drain", "scale", "store", "profile", "backlog", "fanout", "size")


async def main_async(quick: bool, out: Path | None = None, only: set[str] | None = None) -> int:
    sizes = QUICK if quick else FULL
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "quick": quick,
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "git": _git(),
            "loadavg_at_start": os.getloadavg(),
            "platform": platform.platform(),
            "sizes": sizes_dict(sizes),
            "hub_log_level": os.environ.get("BENCH_HUB_LOG_LEVEL", "INFO"),
            "layout": "hub and baseline proxy: one process each; load generator + all fake peers: this process",
        }
    }
    async with scratch("ocpi-bench-") as (work, http):
        lab = Lab(sizes=sizes, work=work, http=http)
        groups = only or set(GROUPS)
        if "core" in groups:
            await _section(
                results,
                ("directed_push", "cpu_per_push", "added_latency", "broadcast", "overload"),
                lambda: run_core(lab),
            )
            rss = results.pop("_rss", {})
            results["meta"].update(rss)
            scenario1_goals(results)
        if "drain" in groups:
            await _section(results, ("drain",), lambda: run_drain(lab))
        if "scale" in groups and os.environ.get("BENCH_SCALE", "on") != "off":
            await _section(results, ("scale", "pg_drain"), lambda: run_scale(lab))
        if "store" in groups:
            await _section(results, ("get_all", "peak_rss"), lambda: run_store(lab))
        if "backlog" in groups:
            await _section(
                results,
                ("backlog",),
                lambda: run_backlog(lab, sizes.backlog_messages, sizes.backlog_seconds, sizes.concurrency),
            )
        if "fanout" in groups:
            await _section(
                results,
                ("fanout", "fanout_pg"),
                lambda: run_fanout_group(lab, sizes.fanout_receivers, sizes.fanout_rate, sizes.fanout_seconds),
            )
        if "size" in groups:
            await _section(results, ("size",), lambda: run_size(lab, quick))
        if "profile" in groups and (not quick or os.environ.get("BENCH_PROFILE")):
            await _section(results, ("profile",), lambda: run_profile(lab, RESULTS))
    results["meta"]["seconds"] = round(time.time() - started, 1)
    out = out or RESULTS / ("quick.json" if quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(f"OCPI hub benchmark ({'quick' if quick else 'full'}), {os.cpu_count()} cores, {results['meta']['seconds']}s")
    print(table(results))
    if "scale" in results:
        print("\nscale-out: directed pushes, SQLite and PostgreSQL, side by side (see bench/README.md)")
        print(scale_table(results))
    prof = results.get("profile", {})
    if prof.get("areas_pct"):
        print("\nprofile (py-spy, share of hub samples by code area):")
        for name, pct in prof["areas_pct"]:
            print(f"  {pct:5.1f}%  {name}")
    print(f"\nwritten: {out}")
    return 1 if any("error" in results.get(name, {}) for name in SECTIONS) else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="OCPI hub benchmark against a pass-through baseline"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every scenario")
    parser.add_argument("--out", type=Path, help="JSON file to write (default bench/results/latest.json, quick.json)")
    parser.add_argument(
        "--only",
        help=f"comma-separated scenario groups to run (default all): {', '.join(GROUPS)}",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="scenarios 1, 10, 11 and 12 (reduced) twice at check sizes (about three minutes); exit 1 if a figure"
        " is below 80%% of bench/recorded.json",
    )
    parser.add_argument("--record", action="store_true", help="with --check: write its figures to bench/recorded.json")
    args = parser.parse_args()
    if args.check:
        sys.exit(asyncio.run(run_check(record=args.record)))
    only = set(args.only.split(",")) if args.only else None
    if only and not only <= set(GROUPS):
        parser.error(f"--only takes {', '.join(GROUPS)}")
    sys.exit(asyncio.run(main_async(args.quick, args.out, only)))


if __name__ == "__main__":
    main()
