"""``python -m bench --check``: the issue 22 figures against their recorded values (regression gate).

Runs, twice, scenario 1's hot path (bench/hotpath.py: 5 s of directed pushes through the hub,
then through the bare proxy), scenarios 10 (backlog) and 11 (broadcast at scale) at the CHECK
sizes (20,000 queued, 1,000 receivers) and scenario 12 (size) reduced to 2,000 platforms and
200,000 objects: about three minutes. It prints each figure (the better of the two runs: on a
shared machine one run is off by 30 % at times) next to its goal and its recorded value
(bench/recorded.json, written by ``--check --record`` with the commit), and exits 1 when a
figure is worse than 80 % of the recorded one (for "lower is better" figures: above recorded /
0.8); a figure not in recorded.json yet says "not recorded" and does not fail. Record on the
machine that checks: rates move with the machine's load, ratios taken within one run (live with
/ without backlog, hub / proxy) less.
"""

from __future__ import annotations

import json
import subprocess
import time
import traceback
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.load import scratch

RECORDED = Path(__file__).resolve().parent / "recorded.json"
TOLERANCE = 0.8
RUNS = 2  # each figure is the better of two runs: on a shared machine one run is off by 30% at times
HOTPATH_SECONDS = 5.0  # per side (hub and the bare proxy), after a 1 s warm-up each
HOTPATH_SLICES = 5  # hub and proxy alternate every second: a burst of other work hits both alike
CHECK_SIZE = (2_000, 200_000)  # scenario 12 reduced (platforms, objects): about 30 s instead of minutes

# Issue 22 goal 3 (directed push): scenario 1's rows in the main table and the gate's figures.
DIRECTED_RATIO_GOAL = 0.4
DIRECTED_GOAL = ">= 0.4x (stretch 0.5x)"
CPU_PER_PUSH_GOAL_MS = 0.5
CPU_GOAL = "<= 0.5 ms"

# name -> (section, path in it, higher is better, goal text, goal test)
FIGURES: dict[str, tuple[str, tuple[str, ...], bool, str, Any]] = {
    "directed push hub / proxy req/s": (
        "hotpath",
        ("ratio",),
        True,
        DIRECTED_GOAL,
        lambda v: v >= DIRECTED_RATIO_GOAL,
    ),
    "hub CPU ms per push": ("hotpath", ("cpu_ms_per_push",), False, CPU_GOAL, lambda v: v <= CPU_PER_PUSH_GOAL_MS),
    "hub / proxy CPU per push": ("hotpath", ("cpu_ratio_hub_to_baseline",), False, "", None),
    "live push with backlog / without": ("backlog", ("live_ratio",), True, ">= 0.9x", lambda v: v >= 0.9),
    "live p99 with backlog / without": ("backlog", ("p99_ratio",), False, "<= 1.5x", lambda v: v <= 1.5),
    "dead receiver pushes, last s / first s": (
        "backlog",
        ("dead_push", "last_vs_first"),
        True,
        ">= 0.8 (no decay)",
        lambda v: v >= 0.8,
    ),
    "dead receiver pushes req/s": ("backlog", ("dead_push", "rps"), True, "", None),
    "drain of the backlog msgs/s": ("backlog", ("drain", "messages_per_s"), True, ">= 3000/s", lambda v: v >= 3000),
    "broadcast ack p99 ms": ("fanout", ("ack_p99_ms",), False, "< 20 ms", lambda v: v < 20),
    "broadcast fan-out deliveries/s": ("fanout", ("deliveries_per_s",), True, ">= 5000/s", lambda v: v >= 5000),
    "broadcast to 1,000 lands everywhere s": ("fanout", ("location_put_seconds",), False, "< 1 s", lambda v: v < 1),
    "size: GET-all last page / first page": ("size", ("last_over_first",), False, "<= 2x", lambda v: v <= 2),
    "size: registration ms": ("size", ("registration_p50_ms",), False, "< 50 ms", lambda v: v < 50),
}


# Figures that move with the machine's speed, not only with the code (rates, CPU time, latencies):
# compared after scaling by the speed probe. Ratios taken within one run need no scaling.
ABSOLUTE = frozenset(
    {
        "hub CPU ms per push",
        "dead receiver pushes req/s",
        "drain of the backlog msgs/s",
        "broadcast ack p99 ms",
        "broadcast fan-out deliveries/s",
        "broadcast to 1,000 lands everywhere s",
        "size: registration ms",
    }
)


def speed_probe(runs: list[dict[str, Any]]) -> float | None:
    """The machine's speed now: the bare proxy's CPU ms per relayed request (fastest run), or None.

    The same code measured 0.64-0.78 and 0.95-1.23 ms of CPU per push within one hour on this
    2-core VM, the proxy moving with it (0.17 vs 0.25-0.29 ms): comparing absolute figures with
    ones recorded in another hour compared hours, not code.
    """
    values = [v for r in runs if isinstance(v := r.get("hotpath", {}).get("baseline_cpu_ms_per_request"), float)]
    return min(values) if values else None


def figure(results: dict[str, Any], name: str) -> float | None:
    """One figure of FIGURES out of a results dict (None when its scenario did not run)."""
    section, path, _, _, _ = FIGURES[name]
    value: Any = results.get(section)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if not isinstance(value, int | float):
        return None
    # "No decay" is met at 1.0: a faster last second (a slow first one) is no better.
    return min(float(value), 1.0) if path == ("dead_push", "last_vs_first") else float(value)


def issue22_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Rows of the main table (scenario, hub, baseline, vs baseline, goal, met) for scenarios 10 and 11."""
    rows: list[tuple[str, str, str, str, str, bool | None]] = []
    b = results.get("backlog", {})
    if "live_ratio" in b:
        n = b["backlog_messages"]
        rows.append(
            (
                f"10 live push req/s, {n:,} queued for a dead eMSP",
                f"{b['live_with_backlog']['rps']:,.1f}",
                f"no backlog: {b['live_no_backlog']['rps']:,.1f}",
                f"{b['live_ratio']:.2f}x",
                ">= 0.9x",
                b["live_ratio"] >= 0.9,
            )
        )
        rows.append(
            (
                "10 live push p99 with / without backlog",
                f"{b['live_with_backlog']['p99_ms']:.1f} ms",
                f"{b['live_no_backlog']['p99_ms']:.1f} ms",
                f"{b['p99_ratio']:.2f}x",
                "<= 1.5x",
                b["p99_ratio"] <= 1.5,
            )
        )
        d = b["dead_push"]
        decay = d.get("last_vs_first") or 0.0
        rows.append(
            (
                "10 pushes to the dead eMSP req/s",
                f"{d['rps']:,.1f}",
                f"1st s {d['first_second']}, last {d['last_second']}",
                f"{decay:.2f}x",
                "no decay (>= 0.8x)",
                decay >= 0.8,
            )
        )
        dr = b["drain"]
        rows.append(
            (
                f"10 drain of {dr['messages']:,} msgs/s",
                f"{dr['messages_per_s']:,.1f}",
                "n/a",
                "",
                ">= 3000/s",
                dr["complete"] and dr["messages_per_s"] >= 3000,
            )
        )
    f = results.get("fanout", {})
    if "ack_p99_ms" in f:
        n = f["receivers"]
        rows.append(
            (
                f"11 broadcast to {n:,}: ack p50 / p99",
                f"{f['ack_p50_ms']:.1f} / {f['ack_p99_ms']:.1f} ms",
                "n/a",
                "",
                "p99 < 20 ms",
                f["ack_p99_ms"] < 20,
            )
        )
        rows.append(
            (
                f"11 broadcast to {n:,}: deliveries/s",
                f"{f['deliveries_per_s']:,.1f}",
                "n/a",
                "",
                ">= 5000/s",
                f["complete"] and f["deliveries_per_s"] >= 5000,
            )
        )
        put_s = f.get("location_put_seconds")
        if put_s is not None:
            rows.append(
                (
                    f"11 broadcast to {n:,} lands everywhere",
                    f"{put_s:.2f} s",
                    "n/a",
                    f"{f['location_put_deliveries_per_s']:,.1f} deliveries/s",
                    "< 1 s",
                    f.get("location_put_complete", True) and put_s < 1,
                )
            )
    pg = results.get("fanout_pg", {})
    if "skipped" in pg:
        rows.append(("11 fan-out, 2 processes on PostgreSQL", "skipped", "n/a", pg["skipped"], ">= 8000/s", None))
    elif "deliveries_per_s" in pg:
        rows.append(
            (
                f"11 fan-out, 2 processes on PostgreSQL ({pg['receivers']:,})",
                f"{pg['deliveries_per_s']:,.1f}",
                "n/a",
                f"ack p99 {pg['ack_p99_ms']:.1f} ms",
                ">= 8000/s",
                pg["complete"] and pg["deliveries_per_s"] >= 8000,
            )
        )
    return rows


def scenario1_goals(results: dict[str, Any]) -> None:
    """Set scenario 1's goal texts and met flags (in place) to issue 22's goal 3."""
    d = results.get("directed_push", {})
    if "ratio" in d:
        d["goal"] = DIRECTED_GOAL
        d["met"] = d["ratio"] is not None and d["ratio"] >= DIRECTED_RATIO_GOAL
        d["stretch_met"] = d["ratio"] is not None and d["ratio"] >= 0.5
    c = results.get("cpu_per_push", {})
    if "hub_ms" in c:
        c["goal"] = CPU_GOAL
        c["met"] = 0 < c["hub_ms"] <= CPU_PER_PUSH_GOAL_MS


def _git() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def best(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per figure, the better value of the runs (a regression shows in every run, noise in one)."""
    out: dict[str, float] = {}
    for name, (_, _, higher, _, _) in FIGURES.items():
        values = [v for r in runs if (v := figure(r, name)) is not None]
        if values:
            out[name] = max(values) if higher else min(values)
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def compare(
    runs: list[dict[str, Any]], recorded: dict[str, float], recorded_probe: float | None = None
) -> tuple[list[str], bool]:
    """Lines of the check table and whether every recorded figure holds (>= 80 % of it).

    With a speed probe recorded and measured now, an ABSOLUTE figure is compared as it would read
    at the recorded speed (a machine 1.3x slower now: rates x1.3, times / 1.3).
    """
    figures = best(runs)
    probe = speed_probe(runs)
    slower = probe / recorded_probe if probe and recorded_probe else None
    head = f"{'figure':40} | {'runs':>19} | {'best':>9} | {'recorded':>9} | {'goal':22} | goal met | vs recorded"
    lines = [head]
    if slower is not None:
        lines.insert(
            0,
            f"machine speed: the bare proxy took {probe:.3f} ms of CPU per request (recorded {recorded_probe:.3f}):"
            f" {slower:.2f}x as slow; rates, CPU times and latencies are compared at the recorded speed",
        )
    ok = True
    for name, (_, _, higher, goal, test) in FIGURES.items():
        now, was = figures.get(name), recorded.get(name)
        if now is not None and slower is not None and name in ABSOLUTE:
            now = now * slower if higher else now / slower
        each = " / ".join(_num(figure(r, name)) for r in runs)
        met = "-" if now is None or test is None else ("yes" if test(now) else "NO")
        if now is None:
            verdict = "MISSING"
            ok = False
        elif was is None:
            verdict = "not recorded"
        else:
            holds = now >= TOLERANCE * was if higher else now <= was / TOLERANCE
            verdict = "ok" if holds else "REGRESSED (< 80%)"
            ok = ok and holds
        shown, before = _num(now) + ("*" if slower is not None and name in ABSOLUTE else ""), _num(was)
        lines.append(f"{name:40} | {each:>19} | {shown:>9} | {before:>9} | {goal:22} | {met:8} | {verdict}")
    return lines, ok


@contextmanager
def _reduced_size(platforms: int, objects: int) -> Iterator[None]:
    """Scenario 12's ``quick`` run at ``platforms`` / ``objects`` (bench/size.py reads QUICK_SIZE per call)."""
    import bench.size

    saved = bench.size.QUICK_SIZE
    bench.size.QUICK_SIZE = (platforms, objects)
    try:
        yield
    finally:
        bench.size.QUICK_SIZE = saved


async def _hotpath() -> dict[str, Any]:
    """Scenario 1's figures by bench/hotpath.py: hub and bare proxy, HOTPATH_SECONDS each, alternating."""
    from bench.hotpath import measure

    out = await measure(HOTPATH_SECONDS, 32, None, {}, slices=HOTPATH_SLICES)
    hub, base = out.get("rps"), out.get("baseline_rps")
    ratio = round(hub / base, 3) if isinstance(hub, float) and isinstance(base, float) and base else None
    return {"hotpath": {**out, "ratio": ratio}}


async def _size(lab: Any) -> dict[str, Any]:
    """Scenario 12 at CHECK_SIZE."""
    from bench.size import run_size

    with _reduced_size(*CHECK_SIZE):
        return await run_size(lab, True)


async def _part(results: dict[str, Any], name: str, run: Awaitable[dict[str, Any]]) -> None:
    """One scenario into ``results``; a failure is printed and its figures stay missing (the check fails)."""
    t = time.perf_counter()
    try:
        results.update(await run)
    except Exception:  # the other scenarios still run; compare() says MISSING
        traceback.print_exc()
    print(f"   {name}: {time.perf_counter() - t:.0f} s", flush=True)


async def run_check(*, record: bool = False) -> int:
    """Run scenarios 1, 10, 11 and 12 (reduced) twice; compare with (or, with ``record``, write) bench/recorded.json."""
    from bench.backlog import run_backlog
    from bench.fanout import run_fanout
    from bench.scenarios import CHECK, Lab

    runs: list[dict[str, Any]] = []
    async with scratch("ocpi-check-") as (work, http):
        s = CHECK
        for n in range(RUNS):
            print(f"-- check run {n + 1} of {RUNS}", flush=True)
            lab = Lab(CHECK, work / f"run{n}", http)
            lab.work.mkdir()
            results: dict[str, Any] = {}
            await _part(results, "hot path", _hotpath())
            await _part(results, "backlog", run_backlog(lab, s.backlog_messages, s.backlog_seconds, s.concurrency))
            await _part(results, "fan-out", run_fanout(lab, s.fanout_receivers, s.fanout_rate, s.fanout_seconds))
            await _part(results, "size", _size(lab))
            runs.append(results)
    figures = best(runs)
    missing = [name for name in FIGURES if name not in figures]
    if record and missing:
        print(f"not recorded: no figure for {', '.join(missing)}")
    elif record:
        RECORDED.write_text(
            json.dumps(
                {
                    "commit": _git(),
                    "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "speed_probe_ms": speed_probe(runs),
                    "figures": figures,
                },
                indent=1,
            )
            + "\n"
        )
        print(f"recorded in {RECORDED}")
    stored = json.loads(RECORDED.read_text()) if RECORDED.exists() else {"figures": {}, "commit": "none"}
    lines, ok = compare(runs, stored.get("figures", {}), stored.get("speed_probe_ms"))
    platforms, objects = CHECK_SIZE
    print(
        f"bench --check (scenarios 1, 10, 11, and 12 at {platforms:,} platforms / {objects:,} objects;"
        f" recorded at commit {stored.get('commit')})"
    )
    print("\n".join(lines))
    if stored.get("speed_probe_ms"):
        print("* at the recorded machine speed (see the first line)")
    print("check: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
