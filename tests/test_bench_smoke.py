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
)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bench_quick_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "BENCH_"))}
    env["BENCH_PROFILE"] = "off"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for name in SECTIONS:
        assert isinstance(results.get(name), dict), name
        assert "error" not in results[name], results[name]
    assert results["meta"]["quick"] is True
