"""Profile the hub under load: py-spy (sampling, attached by pid) or cProfile (env switch).

``BENCH_PROFILE`` picks the tool: ``py-spy`` (default when the py-spy binary is found),
``cprofile`` (the hub runs under ``python -m cProfile``; the file is written on its clean
SIGINT shutdown) or ``off``. The profiled hub is its own instance, so profiling never
perturbs the measured figures. The load is directed session pushes plus a broadcast stream.
Summaries (top functions by own and inclusive time, and time per code area) are written
next to the raw output in bench/results/.
"""

from __future__ import annotations

import asyncio
import os
import pstats
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.load import closed_loop, open_loop
from bench.peers import start_and_register, stop_all
from bench.procs import Child, start_hub
from bench.requests import location_put, session_push, status_patch
from bench.scenarios import Lab, cpo_peer, emsp_peers

# Where a sample's time goes: first by the innermost frame (library work), else by the innermost
# frame of the hub's own packages that led there.
WAIT_AREAS = (  # native frames (py-spy --native) that mean a thread is waiting, not working
    ("waiting: aiosqlite thread idle (queue get)", "SimpleQueue_get"),
    ("waiting: event loop in epoll", "epoll_wait"),
    ("waiting: GIL hand-off between threads", "take_gil"),
    ("fsync of a COMMIT", "fdatasync"),
    ("fsync of a COMMIT", "fsync"),
    ("sqlite C code (queries)", "sqlite3"),
)
LEAF_AREAS = (
    ("sqlite via aiosqlite (thread + hand-off)", "(aiosqlite/"),
    ("event loop: epoll wait", "(selectors.py)"),
    ("json encode/decode", "(json/"),
    ("logging", "(logging/"),
)
CODE_AREAS = (
    ("routing/delivery/scheduler.py (outbox worker)", "(routing/delivery/scheduler.py)"),
    ("storage/", "(storage/"),
    ("routing/ (other)", "(routing/"),
    ("hub/ (HTTP handlers, middlewares)", "(hub/"),
    ("aiohttp server/client", "(aiohttp/"),
    ("asyncio loop overhead", "(asyncio/"),
    ("other Python", ".py)"),
)
PROJECT = ("(hub/", "(routing/", "(storage/", "(config/")


def profile_mode() -> str:
    mode = os.environ.get("BENCH_PROFILE", "").strip().lower()
    if mode in ("off", "cprofile", "py-spy"):
        return mode
    return "py-spy" if pyspy_binary() else "cprofile"


def pyspy_binary() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def area_of(frames: list[str]) -> str:
    for name, needle in WAIT_AREAS:
        if any(needle in frame for frame in frames[-8:]):
            return name
    for name, needle in LEAF_AREAS:
        if needle in frames[-1]:
            return name
    for frame in reversed(frames):
        for name, needle in CODE_AREAS:
            if needle in frame:
                return name
    return "other"


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Own and inclusive sample counts per function from py-spy's raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_strip_line(f) for f in stack.split(";")]
        total += count
        python_frames = [f for f in frames if ".py)" in f or "(<frozen" in f] or frames
        own[python_frames[-1]] += count
        areas[area_of(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count
            if frame.endswith(")") and any(p in frame for p in PROJECT):
                project[frame] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100.0 * n / total, 1)) for name, n in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "areas_pct": pct(areas),
        "own_pct": pct(own),
        "project_inclusive_pct": pct(project),
        "inclusive_pct": pct(inclusive),
    }


def _strip_line(frame: str) -> str:
    # "func (path/file.py:123)" -> "func (file.py, under its package dir)"
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = file.split("/")
    short = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{name} ({short})" if where else name


def summarize_cprofile(path: Path, out_txt: Path, top: int = 30) -> dict[str, Any]:
    with out_txt.open("w") as out:
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return {
        "own_pct": [(f"{fn[2]} ({Path(fn[0]).name}:{fn[1]})", round(100 * v[2] / total, 1)) for fn, v in rows],
        "text": str(out_txt),
    }


async def run_profile(lab: Lab, results: Path) -> dict[str, Any]:
    """Start a hub for profiling, load it for ``profile_seconds`` and summarize where its time goes."""
    mode = profile_mode()
    if mode == "off":
        return {"profile": {"mode": "off"}}
    s = lab.sizes
    cpo, emsps = cpo_peer(), emsp_peers(10)
    cprofile_out = lab.work / "hub.cprofile" if mode == "cprofile" else None
    config = lab.hub_config("hub-profile", cprofile=cprofile_out)
    hub: Child | None = None
    spy: subprocess.Popen[bytes] | None = None
    raw_out = results / "profile-pyspy.txt"
    try:
        hub = await start_hub(config)
        await start_and_register(lab.http, config.url, config.admin_token, [cpo, *emsps])
        locations = ["LOCP0", "LOCP1"]
        for i, loc in enumerate(locations):
            await location_put(lab.http, config.url, cpo, loc, f"t-ploc-{i}")(0)
        if mode == "py-spy":
            binary = pyspy_binary()
            assert binary is not None
            args = [binary, "record", "--pid", str(hub.pid), "--duration", str(int(s.profile_seconds))]
            # --native shows sqlite/fsync/GIL frames (it pauses the hub per sample: this instance is not measured)
            args += ["--rate", "100", "--format", "raw", "--native", "--output", str(raw_out)]
            log = (lab.work / "py-spy.log").open("wb")
            spy = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            await asyncio.sleep(0.5)
        pushes = closed_loop(
            session_push(lab.http, config.url, cpo, emsps, tag="P"),
            concurrency=s.concurrency,
            duration=s.profile_seconds,
            max_requests=10_000_000,
        )
        sent: dict[int, float] = {}
        patches = open_loop(
            status_patch(lab.http, config.url, cpo, locations, tag="pbc", sent_at=sent),
            rate=5.0,
            duration=s.profile_seconds,
            max_in_flight=20,
        )
        push_stats, _ = await asyncio.gather(pushes, patches)
        summary: dict[str, Any] = {"mode": mode, "push_rps_while_profiling": round(push_stats.rps, 1)}
        if spy is not None:
            try:
                await asyncio.to_thread(spy.wait, s.profile_seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
            if raw_out.exists():
                summary.update(summarize_collapsed(raw_out), raw=str(raw_out))
            else:
                summary["error"] = (lab.work / "py-spy.log").read_text(errors="replace")[-500:]
        if cprofile_out is not None:
            hub.stop(timeout=20)  # SIGINT: clean shutdown writes the cProfile file
            hub = None
            if cprofile_out.exists():
                summary.update(summarize_cprofile(cprofile_out, results / "profile-cprofile.txt"))
            else:
                summary["error"] = "the hub wrote no cProfile file"
        return {"profile": summary}
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait(5)
        if hub is not None:
            hub.stop(timeout=20)
        await stop_all([cpo, *emsps])
