"""The hub as a real process (`python -m hub serve`) for crash and cluster drills: started, killed, restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]


async def wait_answering(
    session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes] | None = None, *, timeout: float = 30.0
) -> None:
    """Poll ``url`` (a starting hub's /health) until it answers 200; fail when ``proc`` exits or time runs out."""
    for _ in range(int(timeout / 0.1)):
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass  # not listening yet
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"hub exited with {proc.returncode}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"hub did not start: {url} did not answer in {timeout:g} s")


class HubProcess:
    """One hub on a fixed port and database; only the process this test started is ever signalled."""

    def __init__(self, database: str, port: int, *, admin_token: str, init: bool = False, **env: str) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        self.env = {
            **clean,
            "HUB_DATABASE": database,
            "HUB_PORT": str(port),
            "HUB_ADMIN_TOKEN": admin_token,
            "HUB_ALLOW_PRIVATE_URLS": "true",  # the fakes live on 127.0.0.1
            "HUB_LOG_JSON": "false",
            "HUB_LOG_LEVEL": "WARNING",
            **env,
        }
        self.admin_token = admin_token
        self.argv = [sys.executable, "-m", "hub", "serve", *(["--init"] if init else [])]
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start it and wait (bounded) until /health answers."""
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await wait_answering(session, self.base + "/health", self.proc, timeout=20.0)

    async def admin(self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
        """An admin API call that must succeed; its JSON answer."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with session.request(method, self.base + path, json=body, headers=headers) as r:
            assert r.status < 300, await r.text()
            return await r.json()

    @property
    def alive(self) -> bool:
        """Started and not ended."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        """The process id (started processes only)."""
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL if it does not end within 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
