"""Child processes of the benchmark (hub, baseline proxy, py-spy) and what /proc says about them.

Every process is started with its output going to a log file (never an unread pipe) and is
stopped in a ``finally``: SIGINT first (the hub shuts down cleanly, cProfile writes its file),
then SIGKILL after a bounded wait. Only processes started here are ever signalled, by pid.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` figure from /proc/<pid>/status (VmHWM = peak RSS, VmRSS = current); 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    """User + system CPU time in a /proc stat file (a process's or one thread's)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass
class Child:
    """One started process; ``stop()`` is idempotent and always reaps it."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, args: list[str], *, env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    return Child(name, proc, log_path)


async def wait_http(url: str, child: Child, *, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout}s:\n{child.log_tail()}")


@dataclass
class HubConfig:
    """How to start one hub process."""

    database: Path | str  # a SQLite file, or a postgresql:// URL
    log_dir: Path
    name: str = "hub"
    workers: int = 1  # > 1: `serve --workers N` (PostgreSQL only)
    env: dict[str, str] = field(default_factory=dict)  # extra HUB_* settings
    cprofile_out: Path | None = None
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: "bench-admin-" + secrets.token_hex(8))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


BASE_HUB_ENV = {
    "HUB_HOST": "127.0.0.1",
    "HUB_LOG_JSON": "true",
    # Capacity is measured, not the per-platform rate limit; fake peers live on 127.0.0.1.
    "HUB_RATE_LIMIT_PER_SECOND": "0",
    "HUB_ALLOW_PRIVATE_URLS": "true",
}


async def start_hub(config: HubConfig) -> Child:
    """``python -m hub serve`` on a fresh port; returns once /health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(BASE_HUB_ENV)
    env["HUB_LOG_LEVEL"] = os.environ.get("BENCH_HUB_LOG_LEVEL", "INFO")
    env.update(
        HUB_PORT=str(config.port),
        HUB_DATABASE=str(config.database),
        HUB_ADMIN_TOKEN=config.admin_token,
        HUB_BASE_URL=config.url,
    )
    env.update(config.env)
    # Diagnostics only: BENCH_HUB_ENV="HUB_X=1,HUB_Y=2" overrides hub settings for every instance.
    for item in filter(None, os.environ.get("BENCH_HUB_ENV", "").split(",")):
        key, _, value = item.partition("=")
        env[key.strip()] = value.strip()
    args = [sys.executable]
    if config.cprofile_out is not None:
        args += ["-m", "cProfile", "-o", str(config.cprofile_out)]
    args += ["-m", "hub", "serve", "--init"]  # a fresh database per run
    if config.workers > 1:
        args += ["--workers", str(config.workers)]
    child = spawn(config.name, args, env=env, log_dir=config.log_dir)
    try:
        await wait_http(config.url + "/health", child)
        if config.workers > 1:  # one child answering is not all: the banner comes once every one listens
            await wait_log(child, "  workers      :")
    except BaseException:
        child.stop()
        raise
    return child


async def wait_log(child: Child, text: str, *, timeout: float = 60.0) -> None:
    """Poll the child's log until ``text`` appears; fail early if the process died."""
    deadline = time.perf_counter() + timeout
    while text not in child.log_tail(200):
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{child.name}: no {text!r} within {timeout}s:\n{child.log_tail()}")
        await asyncio.sleep(0.1)


def hub_cpu(hub: Child) -> float:
    """CPU seconds of a hub: its one process, or the supervisor and its workers (serve --workers N)."""
    return sum(cpu_seconds(pid) for pid in [hub.pid, *children_of(hub.pid)])


def children_of(pid: int) -> list[int]:
    """The direct children of a process (Linux /proc); [] if unreadable."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


async def start_baseline(port: int, target: str, fanout: list[str], log_dir: Path) -> Child:
    """The pass-through proxy (bench.baseline) in its own process."""
    args = [sys.executable, "-m", "bench.baseline", "--port", str(port), "--target", target]
    if fanout:
        args += ["--fanout", *fanout]
    child = spawn("baseline", args, env=dict(os.environ), log_dir=log_dir)
    try:
        await wait_http(f"http://127.0.0.1:{port}/health", child)
    except BaseException:
        child.stop()
        raise
    return child
