"""Interop fixtures: the hub (tests/conftest.py's real app factory) against extrawest-ocpi peers.

The peers are separate processes under the interop venv's python (tests/interop/venv.py), on
free 127.0.0.1 ports. One process per (role, party) serves all interop tests (starting one costs
~1 s of CPU) and is reset before each test, which gets its own hub; all are killed when the
interop tests are done, and a process that died is started again. The venv is built once per
run right after collection, outside any test's timeout; if it cannot be built every interop test
fails with the reason (HUB_INTEROP=skip skips them instead, on a machine without the registry;
ignored in CI).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.interop import payloads as P
from tests.interop.venv import HERE, InteropEnvError, ensure_interop_python
from tests.support.hub import HubHandle
from tests.support.ports import free_port

PEERS = HERE / "peers"
START_TIMEOUT = 20.0  # a peer imports FastAPI + pydantic 1 + py_ocpi: ~1 s; bounded generously
_ENV: dict[str, Any] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find) the interop venv once, before any test's timeout starts."""
    if not any(item.path.is_relative_to(HERE) for item in session.items):
        return
    if os.environ.get("HUB_INTEROP") == "skip" and os.environ.get("CI") != "true":
        _ENV["skip"] = "HUB_INTEROP=skip"
        return
    try:
        _ENV["python"] = ensure_interop_python()
    except InteropEnvError as exc:
        _ENV["error"] = str(exc)


@pytest.fixture(scope="session")
def interop_python() -> Path:
    """The interop venv's interpreter; fails (never skips in CI) when it could not be built."""
    if "skip" in _ENV:
        pytest.skip(_ENV["skip"])
    if "error" in _ENV:
        pytest.fail(_ENV["error"], pytrace=False)
    if "python" not in _ENV:  # collected without the hook (e.g. a plugin reordered things)
        try:
            _ENV["python"] = ensure_interop_python()
        except InteropEnvError as exc:
            pytest.fail(str(exc), pytrace=False)
    return Path(_ENV["python"])


def b64(token: str) -> str:
    """2.2.1 Authorization token encoding."""
    return base64.b64encode(token.encode()).decode()


class Peer:
    """One extrawest-ocpi process (CPO or eMSP, OCPI 2.2.1 or 2.1.1) and the calls the tests make to it."""

    def __init__(self, role: str, country: str, party: str, log: Path, version: str = "2.2.1") -> None:
        self.role = role
        self.version = version
        self.country = country
        self.party = party
        self.port = free_port()
        self.token_a = "peerA-" + secrets.token_hex(8)
        self.push_token = "push-" + secrets.token_hex(8)
        self.log = log
        self.session: aiohttp.ClientSession  # the current test's, set by start_peer
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """The peer's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        """The library's versions endpoint (what the peer hands out with its token A)."""
        return f"{self.base}/ocpi/versions"

    @property
    def module_prefix(self) -> str:
        """Where the library mounts this role's modules."""
        return f"/ocpi/{self.role.lower()}/{self.version}"

    def start(self, python: Path) -> None:
        """Launch the peer script under the interop venv's python."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OCPI_HOST": f"127.0.0.1:{self.port}",
            "PROTOCOL": "http",
            "COUNTRY_CODE": self.country,
            "PARTY_ID": self.party,
            "ENVIRONMENT": "testing",
            "PEER_ROLE": self.role,
            "PEER_PORT": str(self.port),
            "PEER_TOKEN_A": self.token_a,
            "PEER_PUSH_TOKEN": self.push_token,
            "PEER_VERSION": self.version,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        script = PEERS / ("cpo.py" if self.role == "CPO" else "emsp.py")
        if self.version == "2.1.1":
            assert self.role == "CPO", "only the library's 2.1.1 CPO is run (peers/cpo211.py)"
            script = PEERS / "cpo211.py"
        with self.log.open("wb") as out:
            # cwd: an empty directory, so py_ocpi's settings find no stray .env file.
            self.proc = subprocess.Popen(
                [str(python), str(script)], env=env, cwd=self.log.parent, stdout=out, stderr=subprocess.STDOUT
            )

    async def wait_ready(self) -> None:
        """Poll the peer until it answers (bounded); fail with its log if it exited."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.role} peer exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                async with self.session.get(self.base + "/debug/state") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # polling a starting process, bounded by START_TIMEOUT
        raise AssertionError(f"{self.role} peer not up after {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the process; kill it after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the peer's log, for failure messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- what the tests ask the peer --------------------------------------------------------

    async def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        async with self.session.post(self.base + path, json=body, headers=headers) as r:
            assert r.status == 200, f"{path}: {r.status} {await r.text()}\n{self.log_tail()}"
            return await r.json()

    async def state(self) -> dict[str, Any]:
        """Everything the peer recorded (peers/state.py)."""
        async with self.session.get(self.base + "/debug/state") as r:
            assert r.status == 200
            result: dict[str, Any] = await r.json()
            return result

    async def register(self, hub: HubHandle) -> dict[str, Any]:
        """Party-initiated registration with a fresh invitation's token A; returns the hub's answer."""
        token_a = await hub.invite(f"{self.role} {self.party}")
        result: dict[str, Any] = await self._post(
            "/debug/register", {"versions_url": hub.versions_url, "token_a": token_a}
        )
        return result

    async def seed(self, module: str, object_id: str, body: dict[str, Any]) -> None:
        """Put an object in the peer's own store (validated by the library's model)."""
        async with self.session.put(f"{self.base}/debug/objects/{module}/{object_id}", json=body) as r:
            assert r.status == 200, await r.text()

    async def push(self, module: str, object_id: str, hub: HubHandle) -> dict[str, Any]:
        """The library's own push facility: POST /push/{version} with the hub as the one receiver."""
        state = await self.state()
        body = {
            "module_id": module,
            "object_id": object_id,
            "receivers": [{"endpoints_url": f"{hub.base}/ocpi/{self.version}", "auth_token": state["hub_token"]}],
        }
        # The library reads the push operator's token as its version does: base64 in 2.2 only.
        auth = f"Token {self.push_token}" if self.version == "2.1.1" else f"Token {b64(self.push_token)}"
        result: dict[str, Any] = await self._post(f"/push/{self.version}", body, headers={"Authorization": auth})
        return result

    async def send(self, **spec: Any) -> dict[str, Any]:
        """One OCPI call to the hub from this peer (see peers/common.py ``_send``)."""
        result: dict[str, Any] = await self._post("/debug/send", spec)
        return result

    async def wait_for(self, predicate: Callable[[dict[str, Any]], Any], timeout: float = 5.0) -> dict[str, Any]:
        """Poll /debug/state until predicate(state) is truthy; the last state otherwise."""
        deadline = time.monotonic() + timeout
        state = await self.state()
        while not predicate(state) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the peer works in its own process: poll, bounded
            state = await self.state()
        return state

    async def received(
        self, path_part: str, method: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Inbound requests whose path contains path_part, once ``count`` of them have been answered.

        Deliveries the hub makes after answering the sender (broadcast legs, retries) reach the peer
        a little later: wait (bounded) rather than read a half-finished exchange.
        """

        def matching(state: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                r for r in state["requests"] if path_part in r["path"] and (method is None or r["method"] == method)
            ]

        state = await self.wait_for(lambda s: sum(1 for r in matching(s) if "response" in r) >= count, timeout)
        return matching(state)


class PeerPool:
    """The session's peer processes, one per (role, country, party, version)."""

    def __init__(self, python: Path, directory: Path) -> None:
        self.python = python
        self.directory = directory
        self.peers: dict[tuple[str, str, str, str], Peer] = {}
        self.started = 0

    def get(self, role: str, country: str, party: str, version: str = "2.2.1") -> Peer:
        """The running peer for this party and version, (re)started if needed."""
        key = (role, country, party, version)
        peer = self.peers.get(key)
        if peer is None or peer.proc is None or peer.proc.poll() is not None:
            self.started += 1
            log = self.directory / f"{role.lower()}-{party.lower()}-{version}-{self.started}.log"
            peer = self.peers[key] = Peer(role, country, party, log, version)
            peer.start(self.python)
        return peer

    def stop_all(self) -> None:
        """Terminate every process (kill after 5 s)."""
        for peer in self.peers.values():
            peer.stop()


@pytest.fixture(scope="package")
def peer_pool(interop_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerPool]:
    """Peer processes shared by the interop tests; stopped when they are done (not idling on)."""
    pool = PeerPool(interop_python, tmp_path_factory.mktemp("interop-peers"))
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
async def start_peer(peer_pool: PeerPool) -> AsyncIterator[Callable[..., Awaitable[Peer]]]:
    """A ready, freshly reset extrawest-ocpi peer (role, country, party[, version]) for this test."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))

    async def start(role: str, country: str, party: str, version: str = "2.2.1") -> Peer:
        peer = peer_pool.get(role, country, party, version)
        peer.session = session
        await peer.wait_ready()
        await peer._post("/debug/reset", {})
        return peer

    try:
        yield start
    finally:
        await session.close()


@pytest.fixture
async def pair(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> tuple[HubHandle, Peer, Peer]:
    """The hub with a library CPO (NL*XCP) and a library eMSP (NL*XMS), both registered party-initiated."""
    hub = await start_hub()
    cpo, emsp = await asyncio.gather(start_peer("CPO", *P.CPO), start_peer("EMSP", *P.EMSP))
    for peer in (cpo, emsp):
        answer = await peer.register(hub)
        assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
    return hub, cpo, emsp
