"""Smoke test of the benchmark harness: ``python -m bench --quick`` runs every scenario end to end.

Only the shape of the results is checked, never a time or a rate (docs/DESIGN-NOTES.md, Benchmark).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.backends import postgres_url

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "directed_push",
    "cpu_per_push",
    "added_latency",
    "broadcast",
    "overload",
    "get_all",
    "drain",
    "peak_rss",
    "backlog",
    "fanout",
    "size",
)


def _bench(*args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` from the project root, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _clean_env() -> dict[str, str]:
    """The environment without HUB_ and BENCH_ settings (a developer's own would change the runs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "BENCH_"))}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bench_quick_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    env = _clean_env()
    env["BENCH_PROFILE"] = "off"
    env["BENCH_SCALE"] = "off"  # the scale-out scenarios have their own smoke test below
    proc = _bench("bench", "--quick", "--out", str(out), env=env, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for name in SECTIONS:
        assert isinstance(results.get(name), dict), name
        assert "error" not in results[name], results[name]
    assert results["meta"]["quick"] is True
    assert results["fanout"]["location_put_seconds"] > 0  # issue 22: a broadcast lands everywhere in < 1 s
    assert results["fanout_pg"] == {"skipped": "skipped: BENCH_SCALE=off"}  # 11 on PostgreSQL, 2 processes
    assert results["directed_push"]["goal"] == ">= 0.4x (stretch 0.5x)"  # issue 22, goal 3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_quick_scale_runs_sqlite_and_postgres_side_by_side(tmp_path: Path) -> None:
    """`--quick --only scale`: SQLite x1 and PostgreSQL x1 (or rows saying PostgreSQL was skipped)."""
    out = tmp_path / "quick.json"
    env = _clean_env()
    if postgres_url():
        env["HUB_BENCH_POSTGRES_URL"] = postgres_url()
    proc = _bench("bench", "--quick", "--only", "scale", "--out", str(out), env=env, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    variants = results["scale"]["variants"]
    assert set(variants) == {"sqlite_x1", "pg_x1"}
    assert variants["sqlite_x1"]["throughput"]["ok"] > 0
    assert variants["sqlite_x1"]["all_delivered"] is True
    pg = variants["pg_x1"]
    if "skipped" in pg:
        assert pg["skipped"].startswith("skipped: no PostgreSQL at ")
        assert results["pg_drain"]["skipped"] == pg["skipped"]
    else:
        assert pg["throughput"]["ok"] > 0 and pg["all_delivered"] is True
        assert pg["cpu_pct"]["postgres"] is not None
        assert results["pg_drain"]["complete"] is True
    assert "scale-out" in proc.stdout


@pytest.mark.timeout(60)
def test_versions_overhead_bench_runs_both_cases() -> None:
    """It never awaited wire.inbound and built its platforms with '' timestamps: it had stopped running."""
    proc = _bench("bench.versions_overhead", timeout=50)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2.2.1 -> 2.2.1 (no translation):" in proc.stdout
    assert "2.2.1 -> 2.3.0 (translated):" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr  # a coroutine never awaited


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hotpath_runs_on_postgres_with_two_processes() -> None:
    """`bench.hotpath --postgres --workers 2`: pushes delivered, CPU summed over the supervisor's workers."""
    url = postgres_url()
    if not url:
        pytest.skip("no PostgreSQL (HUB_TEST_POSTGRES_URL)")
    args = ("--seconds", "1", "--concurrency", "4", "--postgres", url, "--workers", "2")
    proc = _bench("bench.hotpath", *args, env=_clean_env(), timeout=100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["answers"] == {"ok": out["answers"]["ok"]} and out["answers"]["ok"] > 0
    # The supervisor itself does nothing per push: a CPU figure this size is its workers'.
    assert out["cpu_ms_per_push"] > 0.05 and out["cpu_ms_per_push_by_thread"] == {}
    assert out["baseline_rps"] > 0


def test_hotpath_refuses_workers_on_sqlite() -> None:
    proc = _bench("bench.hotpath", "--workers", "2", timeout=30)
    assert proc.returncode == 2 and "--workers needs --postgres" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_soak_runs_every_load_and_reports_memory() -> None:
    proc = _bench("bench.soak", "--minutes", "0.1", "--rate", "20", env=_clean_env(), timeout=80)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert set(out["loads"]) == {
        "sessions_steady",
        "sessions_flaky",
        "status_broadcasts",
        "getall_pages",
        "operator_polls",
    }
    assert all(load["ok"] > 0 and load["failed"] == 0 for load in out["loads"].values()), out["loads"]
    assert 0 < out["rss_mb"]["start"] <= out["rss_mb"]["peak"]
    assert out["received"]["flaky"] > 0  # its 503s were retried until it took them
    assert "t=" in proc.stdout and "rss=" in proc.stdout
