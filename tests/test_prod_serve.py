"""`ocpi-hub serve` as a process: one hub per database, the banner only once the port is bound."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.support.ports import free_port
from tests.support.processes import wait_answering

ROOT = Path(__file__).resolve().parent.parent


def env_for(db: Path, port: int) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**clean, "HUB_DATABASE": str(db), "HUB_PORT": str(port), "HUB_LOG_LEVEL": "WARNING"}


def serve(db: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run serve to its (quick) refusal."""
    return subprocess.run(
        [sys.executable, "-m", "hub", "serve", *extra],
        cwd=ROOT,
        env=env_for(db, port),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start(env: dict[str, str], before_exec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """``serve --init`` as a process (``before_exec``: run in the child, e.g. to lower a limit)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--init"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=before_exec,  # the test process starts no threads that could race it
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    """A hub process on a fresh database; stopped with SIGTERM."""
    db, port = tmp_path / "hub.sqlite3", free_port()
    proc = start(env_for(db, port))
    try:
        async with aiohttp.ClientSession() as session:
            await wait_answering(session, f"http://127.0.0.1:{port}/health", proc)
        yield db, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # only the process this test started
            proc.communicate(timeout=10)
            raise AssertionError("serve did not stop on SIGTERM") from None
    assert proc.returncode == 0 and b"Traceback" not in err


async def test_a_second_hub_on_the_same_database_refuses_in_one_line(running):
    db, _ = running
    second = serve(db, free_port())
    assert second.returncode == 2 and second.stdout == ""  # no banner
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith(f"ocpi-hub: database {db} is in use by hub pid ")
    assert line.endswith(f"(lock {db}.lock); one hub per database")


async def test_a_taken_port_is_one_line_no_banner_and_leaves_no_database(running, tmp_path):
    _, port = running
    other = tmp_path / "fresh" / "other.sqlite3"
    taken = serve(other, port, "--init")
    assert taken.returncode == 2 and taken.stdout == ""
    assert taken.stderr.strip().splitlines() == [
        f"ocpi-hub: cannot listen on 127.0.0.1:{port}: address already in use"
        " (another hub or program has it; choose another HUB_PORT)"
    ]
    # Nothing of the failed start is left behind: no database, admin token file or lock.
    assert not other.parent.exists() or list(other.parent.iterdir()) == []


def _low_open_files() -> None:
    """In the child before exec: a service manager's usual soft limit, the hard one left as it is."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def _open_files_limits(pid: int) -> tuple[str, str]:
    """Soft and hard 'Max open files' of a running process, as /proc shows them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open files line")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc (Linux)")
async def test_serve_raises_its_soft_open_files_limit_to_the_hard_one(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard limit leaves nothing to raise")
    db, port = tmp_path / "hub.sqlite3", free_port()
    env = {**env_for(db, port), "HUB_LOG_LEVEL": "INFO", "HUB_LOG_JSON": "false"}
    proc = start(env, _low_open_files)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_answering(session, f"http://127.0.0.1:{port}/health", proc)
        soft, hard_seen = _open_files_limits(proc.pid)
        expected = str(min(hard, 1_048_576)) if hard != resource.RLIM_INFINITY else "1048576"
        assert (soft, hard_seen) == (expected, "unlimited" if hard == resource.RLIM_INFINITY else str(hard))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert f"open files: soft limit raised from 256 to {expected}" in err.decode()
