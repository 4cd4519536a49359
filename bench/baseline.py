"""The baseline: a bare aiohttp pass-through proxy, run as its own process like the hub.

No auth, no storage, no routing decision: a request is forwarded to ``--target`` with the same
path, query, body and the OCPI routing/id headers, and the receiver's status and body are
relayed back. A PATCH on locations (the broadcast case) is answered 1000 at once and fanned
out to every ``--fanout`` URL, like the hub answers before its deliveries. Its client session
uses the same pool limits as the hub's (256 total, 32 per host), so the comparison is of the
work done per request, not of connection pooling.

Run: ``python -m bench.baseline --port 9000 --target http://127.0.0.1:9001 [--fanout URL ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

OK_BODY = b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00.000Z"}'
FORWARDED = ("Content-Type", "X-Request-ID", "X-Correlation-ID")
SESSION = web.AppKey("session", aiohttp.ClientSession)
TARGET = web.AppKey("target", str)
FANOUT = web.AppKey("fanout", list)
TASKS = web.AppKey("tasks", set)


def _headers(request: web.Request) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    for name, value in request.headers.items():
        if name.lower().startswith("ocpi-"):
            headers[name] = value
    return headers


async def _forward(session: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
    try:
        async with session.request(method, url, headers=headers, data=body or None) as r:
            await r.read()
    except (aiohttp.ClientError, TimeoutError):
        pass


async def proxy(request: web.Request) -> web.StreamResponse:
    if request.path == "/health":
        return web.Response(text="ok")
    body = await request.read()
    headers = _headers(request)
    session = request.app[SESSION]
    fanout: list[str] = request.app[FANOUT]
    if request.method == "PATCH" and "/locations/" in request.path and fanout:
        tasks = request.app[TASKS]
        for base in fanout:
            task = asyncio.create_task(_forward(session, "PATCH", base + str(request.rel_url), headers, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.Response(body=OK_BODY, content_type="application/json")
    async with session.request(
        request.method, request.app[TARGET] + str(request.rel_url), headers=headers, data=body or None
    ) as r:
        payload = await r.read()
        return web.Response(body=payload, status=r.status, content_type="application/json")


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=32)
    app[SESSION] = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=15))
    app[TASKS] = set()
    yield
    await app[SESSION].close()


def make_app(target: str, fanout: list[str]) -> web.Application:
    app = web.Application()
    app[TARGET] = target.rstrip("/")
    app[FANOUT] = [u.rstrip("/") for u in fanout]
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--fanout", nargs="*", default=[])
    args = parser.parse_args()
    web.run_app(make_app(args.target, args.fanout), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
