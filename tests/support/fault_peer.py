"""A fault catalogue partner: a FakePlatform whose module endpoints misbehave on a script.

``FaultScript`` is a module_responder. Each request to a scripted module takes the next fault
from ``plan`` (or ``default`` when the plan is empty) and answers with it:

    ok          OCPI 1000 envelope
    429         HTTP 429 with Retry-After (``retry_after`` seconds) and a non-OCPI body
    5xx         HTTP 500/502/503 chosen by a seeded RNG, HTML or empty body
    slow        sleeps ``latency`` seconds (above the hub's request_timeout, bounded) then 1000
    reset       closes the TCP connection without an answer
    truncated   HTTP 200 application/json, JSON cut in the middle
    html        an HTML error page (HTTP 503)
    detail      a non-OCPI ``{"detail": ...}`` body (HTTP 500)
    401 / 403   the partner refuses our token (non-OCPI body)
    ctype       a valid 1000 envelope sent as text/plain (wrong content type)
    paged       GET lists: one item per page with a Link to the next page

``FaultPeer`` adds "staying down": ``go_down()`` closes the server (connections refused) and
``come_back()`` serves again on the same port. Every answer is recorded in ``served``.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from hub.keys import STORE
from tests.support.fakes import FakePlatform, envelope
from tests.support.hub import HubHandle
from tests.support.ports import free_port
from tests.support.waiting import settle

FAULTS = ("429", "5xx", "slow", "reset", "truncated", "html", "detail", "401", "403", "ctype", "paged")
PAGE_ITEMS = 5


@dataclass
class Served:
    """One scripted answer: which fault, to what request."""

    fault: str
    method: str
    path: str
    http: int | None
    request_id: str | None


@dataclass
class FaultScript:
    """Per-request faults for the modules named in ``modules`` (others always answer 1000)."""

    seed: int = 20261125
    modules: tuple[str, ...] = ("locations", "sessions", "cdrs", "tariffs", "tokens", "commands", "chargingprofiles")
    default: str = "ok"
    latency: float = 4.0  # seconds; the fault tests run the hub with request_timeout 2
    retry_after: int = 30
    plan: deque[str] = field(default_factory=deque)
    served: list[Served] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def then(self, *faults: str) -> FaultScript:
        """Queue faults for the next scripted requests, in order."""
        for fault in faults:
            assert fault in FAULTS or fault == "ok", fault
            self.plan.append(fault)
        return self

    def scripted(self, path: str) -> bool:
        """Whether a request path belongs to a scripted module."""
        return any(f"/ocpi/2.2.1/{m}/" in path + "/" for m in self.modules)

    def ok_requests(self, module: str) -> list[Served]:
        """Requests of one module that were answered 1000."""
        return [s for s in self.served if s.fault in ("ok", "ctype", "paged") and f"/{module}/" in s.path + "/"]

    async def __call__(self, request: web.Request, body: Any) -> web.StreamResponse:
        """Answer one request with the next fault."""
        if not self.scripted(request.path):
            return web.json_response(envelope())
        fault = self.plan.popleft() if self.plan else self.default
        # Recorded before answering: a slow answer may be abandoned by the hub mid-sleep.
        served = Served(fault, request.method, request.path, None, request.headers.get("X-Request-ID"))
        self.served.append(served)
        answer = await self._answer(fault, request)
        served.http = answer.status if answer is not None else None
        if answer is None:  # reset: no HTTP answer at all
            raise ConnectionResetError("fault peer reset the connection")
        return answer

    async def _answer(self, fault: str, request: web.Request) -> web.StreamResponse | None:
        if fault == "ok":
            return web.json_response(envelope())
        if fault == "429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": str(self.retry_after)})
        if fault == "5xx":
            status = self.rng.choice((500, 502, 503))
            text = self.rng.choice(("", "<html><body><h1>Bad Gateway</h1></body></html>", "upstream error"))
            return web.Response(status=status, text=text, content_type="text/html")
        if fault == "slow":
            await asyncio.sleep(self.latency)
            return web.json_response(envelope())
        if fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return None
        if fault == "truncated":
            return web.Response(
                status=200, body=b'{"status_code": 1000, "data": {"id": "LOC', content_type="application/json"
            )
        if fault == "html":
            page = "<!DOCTYPE html><html><head><title>503</title></head><body>Service Unavailable</body></html>"
            return web.Response(status=503, text=page, content_type="text/html")
        if fault == "detail":
            return web.json_response({"detail": "Internal Server Error"}, status=500)
        if fault in ("401", "403"):
            return web.json_response({"detail": "Not authenticated"}, status=int(fault))
        if fault == "ctype":
            import json

            return web.Response(status=200, text=json.dumps(envelope()), content_type="text/plain")
        if fault == "paged":
            return self._page(request)
        raise AssertionError(f"unknown fault {fault}")

    def _page(self, request: web.Request) -> web.StreamResponse:
        offset = int(request.query.get("offset", "0"))
        item = {"id": f"ITEM{offset}", "last_updated": "2026-11-25T12:00:00Z"}
        headers = {"X-Total-Count": str(PAGE_ITEMS), "X-Limit": "1"}
        if offset + 1 < PAGE_ITEMS:
            base = str(request.url.with_query(None))
            headers["Link"] = f'<{base}?offset={offset + 1}&limit=1>; rel="next"'
        return web.json_response(envelope([item]), headers=headers)


@dataclass
class FaultPeer(FakePlatform):
    """A FakePlatform on a fixed port whose module answers follow a FaultScript; it can go down."""

    script: FaultScript = field(default_factory=FaultScript)
    port: int = 0

    def __post_init__(self) -> None:
        self.module_responder = self.script
        if not self.port:
            self.port = free_port()

    async def start(self) -> FaultPeer:
        """Serve on the fixed port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._server = TestServer(app, host="127.0.0.1", port=self.port)
        await self._server.start_server()
        return self

    @property
    def base(self) -> str:
        """Base URL (stable across go_down/come_back)."""
        return f"http://127.0.0.1:{self.port}"

    async def go_down(self) -> None:
        """Close the server: every connection is refused until come_back()."""
        await self.close()
        self._server = None

    async def come_back(self) -> None:
        """Serve again on the same port."""
        await self.start()


# ---- driving the hub's worker with the fake clock ------------------------------------------------


async def outbox_drained(hub: HubHandle, module: str = "sessions") -> None:
    """Wait (bounded, real time) until no message of ``module`` is pending: answers were processed."""
    for _ in range(500):
        await settle(hub)
        row = await hub.app[STORE].fetchone(
            "SELECT count(*) AS n FROM outbox WHERE module=? AND state='pending'", (module,)
        )
        if row is not None and row["n"] == 0:
            return
    raise AssertionError("messages still pending")


def ids_of(served: Iterable[Served]) -> list[str]:
    """Object ids (last path segment) of served requests."""
    return [s.path.rstrip("/").rsplit("/", 1)[-1] for s in served]
