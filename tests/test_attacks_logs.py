"""What partners' requests put in the hub's log (issue 20, low items): no token uid, no flood.

docs/SECURITY.md promises the log never holds a token or a token uid; a broadcast of a token
logged its object key (``NL/TNM/<uid>/RFID``). And every request that broke something logged an
ERROR with a traceback, so a partner sending the same bad request could flood the log: it is one
WARNING line now, at most a few per minute per platform, with a count of what was left out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from hub.observe.traffic.recorder import TRAFFIC
from hub.ocpi.limits import LOG_BURST
from routing.clock import FakeClock
from tests.support.delivery import FAST, Script
from tests.support.routing import CPO1, EMSP1, HUB, answers, example, network, rh
from tests.support.waiting import advance_until

pytestmark = pytest.mark.both_backends

UID = "UIDSECRET7"
# The levels hub/observe/logs.py setup_logging gives the libraries that log raw paths or SQL parameters.
PRODUCTION_FLOOR = {"aiosqlite": logging.INFO, "aiohttp.access": logging.WARNING}


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record's message, its extra fields and its traceback, as one text."""
    skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    parts: list[str] = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(json.dumps({k: v for k, v in record.__dict__.items() if k not in skip}, default=str))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_token_uids_never_reach_the_log(start_hub, make_peer, caplog, clock: FakeClock) -> None:
    hub = await start_hub(delivery={**FAST, "max_attempts": 2})
    net = await network(hub, make_peer)
    net.cpo1.module_responder = Script(mode="down")  # retried, then buried: its log lines too
    net.cpo2.module_responder = answers(status_code=2001, message="refused")  # a rejection
    token = {**example("token_put_example.json"), "uid": UID}
    with caplog.at_level(logging.DEBUG):
        # A broadcast (no TO, and TO = the hub), a direct push, a PATCH, a real-time authorization.
        for headers in (rh(), rh(EMSP1, HUB)):
            status, body, _ = await net.call(
                "PUT", f"/ocpi/2.2.1/tokens/receiver/NL/TNM/{UID}", net.emsp1, json=token, headers=headers
            )
            assert status == 200 and body["status_code"] == 1000, body
        status, body, _ = await net.call(
            "PUT", f"/ocpi/2.2.1/tokens/receiver/NL/TNM/{UID}?type=RFID", net.emsp1, json=token, headers=rh(EMSP1, CPO1)
        )
        assert status == 200, body
        patch = {"valid": False, "last_updated": "2026-11-25T12:00:00Z"}
        await net.call(
            "PATCH", f"/ocpi/2.2.1/tokens/receiver/NL/TNM/{UID}", net.emsp1, json=patch, headers=rh(EMSP1, CPO1)
        )
        await net.call("POST", f"/ocpi/2.2.1/tokens/sender/{UID}/authorize", net.cpo1, headers=rh(CPO1, EMSP1))
        await advance_until(net.hub, clock, lambda: not net.cpo1.module_responder.in_handler, step=60, rounds=3)
        await net.hub.app[TRAFFIC].flush()  # the traffic log lines are written in batches
    logged = everything_logged([r for r in caplog.records if r.levelno >= PRODUCTION_FLOOR.get(r.name, 0)])
    assert "tokens" in logged  # the traffic lines were captured at all
    assert UID.lower() not in logged.lower(), [
        r.getMessage() for r in caplog.records if UID.lower() in everything_logged([r]).lower()
    ]


def _crash_route(app: web.Application) -> None:
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("a bug only this request shape reaches")

    app.router.add_route("GET", "/ocpi/2.2.1/test-crash", crash)


async def test_malformed_requests_log_one_rate_limited_warning(start_hub, make_peer, caplog, clock) -> None:
    hub = await start_hub(app_hook=_crash_route)
    net = await network(hub, make_peer)
    with caplog.at_level(logging.DEBUG, logger="hub.ocpi.pipeline"):
        for _ in range(30):
            status, body, _ = await net.call("GET", "/ocpi/2.2.1/test-crash", net.emsp1)
            assert status == 500 and body["status_code"] == 3000 and "Traceback" not in json.dumps(body), body
        lines = [r for r in caplog.records if r.name == "hub.ocpi.pipeline" and r.levelno >= logging.INFO]
        assert len(lines) == LOG_BURST, [r.getMessage() for r in lines]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
        assert all("RuntimeError" in r.getMessage() and "platform" in r.getMessage() for r in lines)
        # Another platform has its own allowance: one partner's flood does not hide another's errors.
        await net.call("GET", "/ocpi/2.2.1/test-crash", net.cpo1)
        assert (
            len([r for r in caplog.records if r.name == "hub.ocpi.pipeline" and r.levelno >= logging.INFO])
            == LOG_BURST + 1
        )
        # A minute later the next line says how many were left out.
        caplog.clear()
        clock.advance(61)
        await net.call("GET", "/ocpi/2.2.1/test-crash", net.emsp1)
        (line,) = [r for r in caplog.records if r.name == "hub.ocpi.pipeline" and r.levelno >= logging.INFO]
        assert f"{30 - LOG_BURST} similar" in line.getMessage(), line.getMessage()


async def test_a_log_line_never_carries_a_traceback_above_debug(start_hub, make_peer, caplog) -> None:
    hub = await start_hub(app_hook=_crash_route)
    net = await network(hub, make_peer)
    with caplog.at_level(logging.INFO):
        await net.call("GET", "/ocpi/2.2.1/test-crash", net.emsp1)
    noisy: list[Any] = [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]
    assert noisy == [], [r.getMessage() for r in noisy]


async def _malformed(port: int) -> bytes:
    """A request aiohttp's parser refuses (a header line without a colon); what the hub answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ocpi/versions HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n")
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_a_flood_of_malformed_http_is_a_few_warnings_not_tracebacks(start_hub, caplog, clock) -> None:
    # Anyone who reaches the port can send bytes aiohttp's parser refuses; aiohttp logs each one
    # at ERROR with a traceback.
    hub = await start_hub()
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        for _ in range(30):
            assert (await _malformed(hub.settings.port)).startswith(b"HTTP/1.0 400")
        lines = [r for r in caplog.records if r.name == "aiohttp.server" and r.levelno >= logging.INFO]
        assert len(lines) == LOG_BURST, [(r.levelname, r.getMessage()) for r in lines]
        assert all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
        assert all("127.0.0.1" in r.getMessage() and "BadHttpMessage" in r.getMessage() for r in lines)
        caplog.clear()
        clock.advance(61)
        await _malformed(hub.settings.port)
        (line,) = [r for r in caplog.records if r.name == "aiohttp.server" and r.levelno >= logging.INFO]
        assert f"{30 - LOG_BURST} similar" in line.getMessage(), line.getMessage()
