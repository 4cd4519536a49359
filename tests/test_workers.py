"""`ocpi-hub serve --workers N`: N hub processes on one port and one PostgreSQL database.

The PostgreSQL drills start the real command as a subprocess on 127.0.0.1, each on a fresh schema
of the server in HUB_TEST_POSTGRES_URL; without it they skip. Which process served a request is
read from the log lines, which name their process (``pid``) in this mode. The supervisor's
restart and stop rules are also checked with tiny stand-in children (no PostgreSQL needed).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hub.cli.common import EXIT_ERROR, CliError
from hub.cli.supervisor import Supervisor
from tests.support.backends import postgres_schema
from tests.support.ports import free_port


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the test server, dropped after the test."""
    with postgres_schema() as url:
        yield url


def hub_env(database: str, port: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {
        **clean,
        "HUB_DATABASE": database,
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
        "HUB_LOG_JSON": "true",
        "HUB_LOG_LEVEL": "INFO",
        "HUB_ADMIN_TOKEN": "workers-test-admin",  # no token file written in the working directory
    }


@dataclass
class Cluster:
    """A running `serve --workers N`: the supervisor process and where its output goes."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> list[dict[str, object]]:
        lines = []
        for line in self.err.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    async def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first log message matching ``pattern`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log():
                found = re.search(pattern, str(line.get("msg", "")))
                if found:
                    return found
            assert self.proc.poll() is None, self.err.read_text()[-2000:]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.err.read_text()[-2000:]}")

    def started(self, slot: int) -> list[int]:
        """The pids the supervisor started for ``slot``, in order."""
        pattern = re.compile(rf"worker {slot} started \(pid (\d+)\)")
        return [int(m[1]) for line in self.log() if (m := pattern.search(str(line.get("msg", ""))))]

    def stop(self, timeout: float) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
async def cluster(pg_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    """`ocpi-hub serve --workers 2` on a fresh schema; returns once the banner is printed."""
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--workers", "2"],
            cwd=tmp_path,
            env=hub_env(pg_url, port),
            stdout=stdout,
            stderr=stderr,
        )
    running = Cluster(proc, out, err, port)
    try:
        deadline = time.monotonic() + 60
        while "workers      :" not in out.read_text():
            assert proc.poll() is None, err.read_text()[-2000:]
            assert time.monotonic() < deadline, "no banner within 60 s:\n" + err.read_text()[-2000:]
            await asyncio.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()  # the children follow their parent (SIGTERM on its death)
            proc.wait(10)


def banner_pids(cluster: Cluster) -> list[int]:
    found = re.search(r"workers +: 2 processes on one port \(pids (\d+), (\d+)\)", cluster.out.read_text())
    assert found, cluster.out.read_text()
    return [int(found[1]), int(found[2])]


async def get_versions(url: str, correlation_id: str) -> int:
    # A new connection per request: SO_REUSEPORT spreads connections, not requests.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{url}/ocpi/versions", headers={"X-Correlation-ID": correlation_id}) as r:
            await r.read()
            return r.status


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_two_processes_share_the_port_and_stop_on_sigterm(cluster: Cluster) -> None:
    pids = banner_pids(cluster)
    assert len(set(pids)) == 2
    out = cluster.out.read_text()
    assert out.count("versions URL : ") == 1, out  # one banner for the whole hub
    assert "password" not in out

    statuses = [await get_versions(cluster.url, f"spread-{i}") for i in range(40)]
    assert set(statuses) == {401}  # answered (no token: the OCPI envelope's 401), by a hub
    served_by: dict[str, object] = {}
    deadline = time.monotonic() + 15
    while len(served_by) < 40 and time.monotonic() < deadline:
        for line in cluster.log():
            found = re.search(r"X-Correlation-ID (spread-\d+)$", str(line.get("msg", "")))
            if found:
                served_by[found[1]] = line.get("pid")
        await asyncio.sleep(0.1)
    assert len(served_by) == 40
    assert set(served_by.values()) == set(pids)  # both processes served (chance of one alone: 2**-39)
    # Every line names its process: the supervisor's own and the children's.
    assert all(isinstance(line.get("pid"), int) for line in cluster.log())

    assert cluster.stop(timeout=45) == 0
    assert all(gone(pid) for pid in pids)
    assert "every worker stopped" in cluster.err.read_text()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_killed_worker_is_restarted(cluster: Cluster) -> None:
    first, second = banner_pids(cluster)
    os.kill(first, signal.SIGKILL)
    await cluster.wait_log(rf"worker 1 \(pid {first}\) was killed by SIGKILL unexpectedly; restarting it in")
    deadline = time.monotonic() + 30
    while len(started := cluster.started(1)) < 2:
        assert time.monotonic() < deadline, cluster.err.read_text()[-2000:]
        await asyncio.sleep(0.1)
    assert started[0] == first
    fresh = started[1]
    assert fresh not in (first, second)
    await cluster.wait_log(rf"worker 1 listening \(pid {fresh}\)")
    assert await get_versions(cluster.url, "after-restart") == 401
    assert cluster.stop(timeout=45) == 0
    assert gone(fresh) and gone(second)


def run_serve(database: str, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", "serve", *extra],
        cwd=cwd,
        env=hub_env(database, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    done = run_serve(str(tmp_path / "hub.sqlite3"), "--workers", "2", "--init", cwd=tmp_path)
    assert done.returncode == EXIT_ERROR
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "--workers 2 needs PostgreSQL" in done.stderr
    assert "postgresql://" in done.stderr
    assert not (tmp_path / "hub.sqlite3").exists()  # refused before anything was created


def test_a_taken_port_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = hub_env("postgresql://postgres@127.0.0.1:1/never-contacted", port)
        done = subprocess.run(
            [sys.executable, "-m", "hub", "serve", "--workers", "2"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == EXIT_ERROR
    assert done.stderr.strip().splitlines() == [
        f"ocpi-hub: cannot listen on 127.0.0.1:{port}: address already in use"
        " (another hub or program has it; choose another HUB_PORT)"
    ]


# ---- the supervisor's rules, with stand-in children ------------------------------------------


def stand_in(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def ready_then(body: str, *, before: str = "") -> Callable[[int], list[str]]:
    """A child command: run ``before``, say ready on the pipe, then run ``body``."""

    def command(fd: int) -> list[str]:
        return stand_in(f"import os, signal, sys, time\n{before}\nos.write({fd}, b'ready\\n')\n{body}")

    return command


def test_a_worker_that_keeps_dying_makes_the_supervisor_give_up(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(
        1, command=ready_then("sys.exit(3)"), first_backoff=0.01, give_up_after=3, give_up_window=60
    )
    supervisor.start_all()  # said ready, so started, even if it has exited already
    assert supervisor.watch() == EXIT_ERROR
    assert "3 unexpected exits within 60 s: giving up, stopping the hub" in caplog.text
    assert caplog.text.count("exited with code 3 unexpectedly; restarting it") == 2
    assert supervisor.children == {}


def test_a_worker_that_exits_before_listening_fails_the_start() -> None:
    supervisor = Supervisor(2, command=lambda fd: stand_in("import sys; sys.exit(2)"))
    with pytest.raises(CliError, match=r"exited with code 2 before it was listening"):
        supervisor.start_all()
    assert supervisor.children == {}


def test_a_worker_ignoring_sigterm_is_killed_after_the_stop_timeout(caplog: pytest.LogCaptureFixture) -> None:
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    supervisor = Supervisor(1, command=ready_then("time.sleep(60)", before=ignore), stop_timeout=0.5)
    supervisor.start_all()
    child = supervisor.children[1]
    started = time.monotonic()
    supervisor.stop_all()
    assert time.monotonic() - started < 10
    assert child.proc.returncode == -signal.SIGKILL
    assert "still running 0.5 s after SIGTERM: SIGKILL" in caplog.text
