"""Scale-out scenarios: directed pushes on SQLite x1, PostgreSQL x1 and x2 processes, drain on PostgreSQL.

All three variants run in one benchmark run, one after the other, with the same load: a closed
loop (32 clients) for throughput, then an open loop at one common rate (half of what SQLite x1
sustained) for p50/p99. The load generator runs in its own process (bench/loadproc.py), the fake
CPO and eMSP in this one, so /proc splits the CPU four ways: hub processes, PostgreSQL server
processes (this run's backends, found by application_name, plus the server's background
processes), load generator, fake receiver. Everything shares this machine's cores, which is why
each part's share is reported with every figure.

PostgreSQL: HUB_BENCH_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test; a fresh
schema per variant, all dropped at the end. Without a server the PostgreSQL rows say why they
were skipped and the rest runs. The x2 hub is `serve --workers 2`; its peers are registered
through a one-process hub on the same schema first, so both processes start knowing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.load import wait_until
from bench.peers import Peer, start_and_register, stop_all
from bench.procs import CLK_TCK, ROOT, Child, HubConfig, children_of, cpu_seconds, start_hub
from bench.scenarios import DRAIN_ENV, QUICK, Lab, cpo_peer, run_drain
from storage.postgres_dialect import redact

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
VARIANTS = (("sqlite_x1", "SQLite", 1), ("pg_x1", "PostgreSQL", 1), ("pg_x2", "PostgreSQL", 2))


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy so far (/proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


@dataclass
class Postgres:
    """The server the PostgreSQL variants use, and the schemas this run created on it."""

    base: str
    run: str = field(default_factory=lambda: secrets.token_hex(3))
    schemas: list[str] = field(default_factory=list)

    @property
    def application_name(self) -> str:
        return f"ocpi-bench-{self.run}"

    def unreachable(self) -> str | None:
        """None when the server answers, else the reason for the skipped rows."""
        try:
            with psycopg.connect(self.base, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return f"skipped: no PostgreSQL at {redact(self.base)}"
        return None

    def database(self, name: str) -> str:
        """A fresh schema; the URL a hub uses for it (search_path and application_name set)."""
        schema = f"bench_{self.run}_{name}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        sep = "&" if "?" in self.base else "?"
        return f"{self.base}{sep}options=-csearch_path%3D{schema}&application_name={self.application_name}"

    def server_pids(self) -> list[int]:
        """This run's backends and the server's own background processes (WAL writer, checkpointer...)."""
        with psycopg.connect(self.base, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s OR backend_type <> 'client backend'",
                (self.application_name,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def drop_all(self) -> None:
        """Drop every schema this run created."""
        with psycopg.connect(self.base, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.clear()


def pg_pending(database: Path | str, platform_id: int) -> int:
    """Pending outbox rows for one receiver in a PostgreSQL hub's schema."""
    with psycopg.connect(str(database)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE receiver_platform_id=%s AND state='pending'", (platform_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def hub_pids(hub: Child) -> list[int]:
    """The hub's processes: the one process, or the supervisor and its workers."""
    return [hub.pid, *children_of(hub.pid)]


class Parts:
    """CPU used by each part over one measurement, in % of one core (the machine has os.cpu_count())."""

    def __init__(self, hub: Child, pg: Postgres | None, loadgen_pid: int | None = None) -> None:
        self.hub, self.pg, self.loadgen_pid = hub, pg, loadgen_pid
        self.hub_pids = hub_pids(hub)
        self.pg_pids = pg.server_pids() if pg else []
        self.start = {pid: cpu_seconds(pid) for pid in {*self.hub_pids, *self.pg_pids, loadgen_pid or 0}}
        self.self0 = time.process_time()
        self.busy0 = machine_busy_s()
        self.wall0 = time.perf_counter()

    def _used(self, pids: list[int]) -> float:
        # A process that started during the measurement counts from 0 (a pool's new connection).
        return sum(cpu_seconds(pid) - self.start.get(pid, 0.0) for pid in pids)

    def done(self) -> dict[str, Any]:
        """Each part's CPU share since the start, and the machine's total busy share."""
        wall = max(time.perf_counter() - self.wall0, 1e-9)
        pg_pids = sorted({*self.pg_pids, *(self.pg.server_pids() if self.pg else [])})

        def pct(seconds: float) -> float:
            return round(100 * seconds / wall, 1)

        hub_s = self._used(self.hub_pids)
        parts = {
            "hub": pct(hub_s),
            "hub_by_process": [pct(self._used([pid])) for pid in self.hub_pids],
            "postgres": pct(self._used(pg_pids)) if self.pg else None,  # the server's, all of it (see run_scale)
            "loadgen": pct(self._used([self.loadgen_pid])) if self.loadgen_pid else None,
            "receiver": pct(time.process_time() - self.self0),
            "machine_busy": pct(machine_busy_s() - self.busy0),
            "machine_capacity": 100 * (os.cpu_count() or 1),
        }
        pg_s = self._used(pg_pids) if self.pg else 0.0
        return {"cpu_pct": parts, "hub_cpu_s": round(hub_s, 3), "pg_cpu_s": round(pg_s, 3), "seconds": round(wall, 3)}


async def _load(spec: dict[str, Any], hub: Child, pg: Postgres | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run bench.loadproc with ``spec``; its summary and the CPU split over the measured part."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadproc", json.dumps(spec), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"measuring":
            raise RuntimeError(f"load generator: {line!r}")
        parts = await asyncio.to_thread(Parts, hub, pg, proc.pid)
        line = await asyncio.wait_for(proc.stdout.readline(), spec["duration"] + 90)
        split = await asyncio.to_thread(parts.done)
        await asyncio.wait_for(proc.wait(), 30)
        return json.loads(line), split
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _spec(url: str, cpo: Peer, receiver: Peer, tag: str, **run: Any) -> dict[str, Any]:
    return {
        "url": url,
        "sender": {"country_code": cpo.country_code, "party_id": cpo.party_id, "hub_token": cpo.hub_token},
        "receiver": {"country_code": receiver.country_code, "party_id": receiver.party_id},
        "tag": tag,
        **run,
    }


async def _variant(
    lab: Lab, name: str, workers: int, database: Path | str, pg: Postgres | None, rate: float | None
) -> dict[str, Any]:
    """Start the hub, register a CPO and an eMSP, push (closed loop, then open loop at ``rate``)."""
    s = lab.sizes
    cpo, emsp = cpo_peer(), Peer("Bench scale eMSP", "DE", "SCL", "EMSP")
    hub: Child | None = None
    config = HubConfig(database=database, log_dir=lab.work, name=f"scale-{name}")
    try:
        hub = await start_hub(config)
        await start_and_register(lab.http, config.url, config.admin_token, [cpo, emsp])
        if workers > 1:  # restart as N processes on the same database: each starts knowing the peers
            hub.stop()
            config = HubConfig(
                database=database,
                log_dir=lab.work,
                name=f"scale-{name}-workers",
                workers=workers,
                port=config.port,
                admin_token=config.admin_token,
            )
            hub = await start_hub(config)
        tag = f"{name}-tp"
        run, split = await _load(
            _spec(config.url, cpo, emsp, tag, mode="closed", concurrency=s.concurrency, duration=s.push_seconds),
            hub,
            pg,
        )
        delivered = await wait_until(lambda: emsp.tracked(f"t-{tag}-") >= run["ok"], timeout=60.0, step=0.05)
        out: dict[str, Any] = {
            "database": "PostgreSQL" if pg else "SQLite",
            "processes": workers,
            "throughput": run,
            **split,
            "hub_cpu_ms_per_push": round(1000 * split["hub_cpu_s"] / max(run["ok"], 1), 3),
            "pg_cpu_ms_per_push": round(1000 * split["pg_cpu_s"] / max(run["ok"], 1), 3) if pg else None,
            "all_delivered": delivered,
            "duplicates": emsp.duplicates,
        }
        rate = rate or max(1.0, round(run["rps"] / 2))
        lat, lat_split = await _load(
            _spec(
                config.url,
                cpo,
                emsp,
                f"{name}-lat",
                mode="open",
                rate=rate,
                duration=s.latency_seconds,
                concurrency=s.concurrency,
            ),
            hub,
            pg,
        )
        out["latency_at_rate"] = {"rate_rps": rate, **lat, "cpu_pct": lat_split["cpu_pct"]}
        return out
    finally:
        if hub is not None:
            hub.stop()
        await stop_all([cpo, emsp])


def _goals(variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def rps(name: str) -> float | None:
        v = variants.get(name, {})
        return v["throughput"]["rps"] if "throughput" in v else None

    sqlite, x1, x2 = rps("sqlite_x1"), rps("pg_x1"), rps("pg_x2")
    pg_vs_sqlite = round(x1 / sqlite, 3) if x1 and sqlite else None
    x2_vs_x1 = round(x2 / x1, 3) if x2 and x1 else None
    return {
        "pg_x1_vs_sqlite_x1": pg_vs_sqlite,
        "pg_x1_goal": ">= 0.7x SQLite x1",
        "pg_x1_met": pg_vs_sqlite >= 0.7 if pg_vs_sqlite is not None else None,
        "pg_x2_vs_pg_x1": x2_vs_x1,
        "pg_x2_goal": "> 1.0x PostgreSQL x1",
        "pg_x2_met": x2_vs_x1 > 1.0 if x2_vs_x1 is not None else None,
    }


async def run_scale(lab: Lab) -> dict[str, Any]:
    """The three variants side by side, then the drain on PostgreSQL; schemas dropped at the end."""
    pg = Postgres(os.environ.get("HUB_BENCH_POSTGRES_URL") or PG_DEFAULT)
    skipped = await asyncio.to_thread(pg.unreachable)
    variants: dict[str, dict[str, Any]] = {}
    rate: float | None = None
    try:
        # --quick (the smoke test) leaves out x2: a second start of two processes costs most of its time.
        for name, kind, workers in VARIANTS if lab.sizes != QUICK else VARIANTS[:2]:
            if kind == "PostgreSQL" and skipped:
                variants[name] = {"skipped": skipped}
                continue
            try:
                if kind == "SQLite":
                    database: Path | str = lab.hub_config(f"scale-{name}").database
                    result = await _variant(lab, name, workers, database, None, rate)
                else:
                    database = await asyncio.to_thread(pg.database, name)
                    result = await _variant(lab, name, workers, database, pg, rate)
            except Exception as exc:  # one variant failing must not lose the others
                variants[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            variants[name] = result
            rate = rate or result["latency_at_rate"]["rate_rps"]  # the same offered rate for every variant
        drain: dict[str, Any]
        if skipped:
            drain = {"skipped": skipped}
        else:
            database = await asyncio.to_thread(pg.database, "drain")
            config = HubConfig(database=database, log_dir=lab.work, name="hub-pg-drain", env=DRAIN_ENV)
            meter: Callable[[Child], Callable[[], dict[str, Any]]] = lambda hub: Parts(hub, pg).done  # noqa: E731
            drain = (await run_drain(lab, config, pending=pg_pending, meter=meter))["drain"]
    finally:
        if not skipped:
            await asyncio.to_thread(pg.drop_all)
    return {"scale": {"variants": variants, "latency_rate_rps": rate, **_goals(variants)}, "pg_drain": drain}


def _f(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}") + unit
    return f"{value}{unit}"


def scale_table(results: dict[str, Any]) -> str:
    """The scale-out rows: one per variant, then the drain, then the goals."""
    scale = results.get("scale", {})
    variants = scale.get("variants", {})
    rate = scale.get("latency_rate_rps")
    head = (
        "variant",
        "push req/s",
        "p99 closed",
        f"p50 @ {_f(rate)}/s",
        f"p99 @ {_f(rate)}/s",
        "CPU ms/push hub+PG",
        "CPU % hub",
        "PG",
        "loadgen",
        "receiver",
        "machine",
    )
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for name, label, workers in VARIANTS:
        if name not in variants:
            continue
        v = variants[name]
        title = f"{label} x{workers}"
        if "throughput" not in v:
            rows.append((title, "skipped" if "skipped" in v else "ERROR", *[""] * 9))
            notes.append(f"{title}: {v.get('skipped') or v.get('error')}")
            continue
        cpu, lat = v["cpu_pct"], v["latency_at_rate"]
        rows.append(
            (
                title,
                _f(v["throughput"]["rps"]),
                _f(v["throughput"]["p99_ms"], " ms"),
                _f(lat["p50_ms"], " ms"),
                _f(lat["p99_ms"], " ms"),
                _f(v["hub_cpu_ms_per_push"]) + " + " + _f(v.get("pg_cpu_ms_per_push")),
                _f(cpu["hub"]) + (f" ({' + '.join(_f(c) for c in cpu['hub_by_process'][1:])})" if workers > 1 else ""),
                _f(cpu["postgres"]),
                _f(cpu["loadgen"]),
                _f(cpu["receiver"]),
                f"{_f(cpu['machine_busy'])} of {cpu['machine_capacity']}",
            )
        )
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines += notes
    drain = results.get("pg_drain", {})
    if "messages_per_s" in drain:
        cpu = drain.get("cpu", {}).get("cpu_pct", {})
        lines.append(
            f"drain on PostgreSQL x1: {drain['messages']:,} queued messages, {_f(drain['messages_per_s'])} msgs/s"
            f" (complete: {drain['complete']}; CPU % hub {_f(cpu.get('hub'))}, PG {_f(cpu.get('postgres'))},"
            f" receiver {_f(cpu.get('receiver'))})"
        )
    elif drain:
        lines.append(f"drain on PostgreSQL: {drain.get('skipped') or drain.get('error')}")
    for key, goal in (("pg_x1", "pg_x1_vs_sqlite_x1"), ("pg_x2", "pg_x2_vs_pg_x1")):
        met = scale.get(f"{key}_met")
        lines.append(
            f"{goal}: {_f(scale.get(goal), 'x')}  goal {scale.get(f'{key}_goal')}"
            f"  met: {'yes' if met else 'NO' if met is False else '-'}"
        )
    lines.append("CPU % = share of one core over the measured run (hub x2: supervisor + each worker in brackets)")
    return "\n".join(lines)
