"""Receiver health (docs/DESIGN-NOTES.md, Delivery): OFFLINE after consecutive failures with HubClientInfo to everyone,
probing with backoff instead of hammering, recovery by probe or call-in; SUSPENDED keeps the queue;
on_receiver_down = "fail"; graceful shutdown leaves undelivered rows pending.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiohttp import web

from hub.keys import WORKER
from tests.support.delivery import (
    Script,
    clientinfo_puts,
    delivery_net,
    is_queued,
    outbox_rows,
    platform_status,
    put_session,
    restart_peer,
    rows_after_stop,
    sessions_to,
    stop_peer,
    tick,
    wait_status,
)
from tests.support.fakes import envelope
from tests.support.routing import CPO2, EMSP1, Net, example, rh
from tests.support.waiting import advance_until, settle, wait_for

pytestmark = pytest.mark.both_backends


def _probe_recorder(clock: Any, times: list[float], state: dict[str, bool]) -> Any:
    """A versions_override that records probe times (fake clock) and fails while state['down']."""

    async def versions(request: web.Request, body: Any) -> web.StreamResponse:
        times.append(clock.now().timestamp())
        if state["down"]:
            return web.Response(status=503, text="<html>down</html>", content_type="text/html")
        peer_base = f"http://{request.host}"
        return web.json_response(envelope([{"version": "2.2.1", "url": f"{peer_base}/ocpi/2.2.1"}]))

    return versions


async def _others_told(net: Net, status: str) -> None:
    others = [net.cpo1, net.cpo2, net.emsp2]
    await wait_for(lambda: all(status in clientinfo_puts(p, EMSP1) for p in others))


async def test_offline_after_failures_probes_with_backoff_then_recovers(start_hub, make_peer, clock) -> None:
    net = await delivery_net(
        start_hub, make_peer, offline_after_failures=3, concurrency_per_receiver=1, probe_max_backoff=30.0
    )
    script = Script(mode="down")
    net.emsp1.module_responder = script
    probes: list[float] = []
    state = {"down": True}
    net.emsp1.versions_override = _probe_recorder(clock, probes, state)

    sent = []
    for n in range(1, 4):
        status, body, raw = await put_session(net, f"x{n}", 1)
        assert is_queued(status, body), body
        sent.append(raw)
    await wait_for(lambda: script.failed == 3)
    await wait_status(net, net.emsp1, "OFFLINE")
    await _others_told(net, "OFFLINE")
    for n in range(4, 6):  # accepted while OFFLINE: queued at once
        status, body, raw = await put_session(net, f"x{n}", 1)
        assert is_queued(status, body) and "unavailable" in body["status_message"], body
        sent.append(raw)

    await tick(net.hub, clock, 1, 20)
    await tick(net.hub, clock, 10, 60)  # ~10 minutes of outage
    assert len(sessions_to(net.emsp1)) == 3  # no hammering: not one delivery attempt while OFFLINE
    assert 5 <= len(probes) <= 4 + 600 // 30 + 2, probes
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert gaps[0] < gaps[2] < gaps[-1] <= 30 + 10, gaps  # backoff, capped by probe_max_backoff
    assert await platform_status(net, net.emsp1) == "OFFLINE"

    state["down"] = False
    script.mode = "ok"
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 5, step=10)
    assert await platform_status(net, net.emsp1) == "CONNECTED"
    await _others_told(net, "CONNECTED")
    assert clientinfo_puts(net.cpo1, EMSP1)[-2:] == ["OFFLINE", "CONNECTED"]
    assert [r.raw for r in script.accepted] == sent  # the queue drains in acceptance order
    assert await outbox_rows(net.hub, "module='sessions'") == []


async def test_offline_platform_that_calls_in_is_resumed_at_once(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, offline_after_failures=2)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    net.emsp1.versions_override = _probe_recorder(clock, [], {"down": True})
    for n in range(2):
        assert is_queued(*(await put_session(net, f"c{n}", 1))[:2])
    await wait_for(lambda: script.failed == 2)
    await wait_status(net, net.emsp1, "OFFLINE")

    script.mode = "ok"
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678?type=RFID",
        net.emsp1,
        json=example("token_put_example.json"),
        headers=rh(EMSP1, CPO2),
    )
    assert status == 200 and body["status_code"] == 1000, body
    # No clock advance: its call proves it is alive; the queue drains without waiting out backoff.
    await wait_for(lambda: len(script.accepted) == 2)
    assert await platform_status(net, net.emsp1) == "CONNECTED"
    await _others_told(net, "CONNECTED")


async def test_suspended_platform_keeps_its_queue_until_resumed(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    sent = []
    for n in range(3):
        status, body, raw = await put_session(net, "sus", n)
        assert is_queued(status, body), body
        sent.append(raw)
    pid = await net.platform_id(net.emsp1)
    status, body = await net.hub.admin("POST", f"/admin/platforms/{pid}/suspend")
    assert status == 200 and body["status"] == "SUSPENDED", body
    script.mode = "ok"
    failed_before = script.failed
    await tick(net.hub, clock, 60, 30)
    assert script.accepted == [] and script.failed == failed_before  # nothing goes to a suspended platform
    assert len(await outbox_rows(net.hub, "module='sessions' AND state='pending'")) == 3

    status, body = await net.hub.admin("POST", f"/admin/platforms/{pid}/resume")
    assert status == 200 and body["status"] == "CONNECTED", body
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 3, step=10)
    assert [r.raw for r in script.accepted] == sent


async def test_a_resumed_platform_gets_its_queue_at_once_without_a_timed_round(start_hub, make_peer, clock) -> None:
    """The operator's resume wakes the scheduler: nothing waits for its next timed look (60 s).

    Also what a registration needs: ClientInfo legs committed while the new platform was not yet
    routable in this process's directory wait in the outbox until its change is told.
    """
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    status, body, raw = await put_session(net, "res", 1)
    assert is_queued(status, body), body  # its first attempt failed: a retry after a backoff
    pid = await net.platform_id(net.emsp1)
    status, body = await net.hub.admin("POST", f"/admin/platforms/{pid}/suspend")
    assert status == 200 and body["status"] == "SUSPENDED", body
    script.mode = "ok"
    await tick(net.hub, clock, 30, 2)  # the retry is due, but the receiver is suspended
    assert script.accepted == []
    status, body = await net.hub.admin("POST", f"/admin/platforms/{pid}/resume")
    assert status == 200 and body["status"] == "CONNECTED", body
    await wait_for(lambda: len(script.accepted) == 1)  # the clock is not moved
    assert [r.raw for r in script.accepted] == [raw]


async def test_fail_mode_receiver_down_is_4003_and_never_delivered_later(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, on_receiver_down="fail", offline_after_failures=2)
    script = Script()
    net.emsp1.module_responder = script
    port = await stop_peer(net.emsp1)
    for n in range(4):  # the last ones find it OFFLINE: still 4003, nothing queued
        _status, body, _ = await put_session(net, f"f{n}", 1)
        assert body["status_code"] == 4003, body
    assert await outbox_rows(net.hub, "module='sessions'") == []
    await restart_peer(net.emsp1, port)
    await advance_until(net.hub, clock, lambda: net.emsp1.requests_to("/ocpi/versions") != [], step=10)
    await tick(net.hub, clock, 60, 30)
    assert sessions_to(net.emsp1) == []
    assert await platform_status(net, net.emsp1) == "CONNECTED"


async def test_fail_mode_timeout_is_4002_and_never_delivered_later(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, on_receiver_down="fail", relay_wait=0.3)
    script = Script(gate=asyncio.Event(), gate_timeout=1.0)  # hangs, then fails (HTTP 500, not OCPI)
    net.emsp1.module_responder = script
    _status, body, _ = await put_session(net, "slow", 1)
    assert body["status_code"] == 4002, body
    await wait_for(lambda: script.in_handler == 0)
    await settle(net.hub)
    script.gate = None
    await tick(net.hub, clock, 60, 30)
    assert len(sessions_to(net.emsp1)) == 1 and script.accepted == []
    assert await outbox_rows(net.hub, "module='sessions'") == []


async def test_graceful_shutdown_leaves_undelivered_rows_pending(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, concurrency_per_receiver=2, shutdown_grace=0.3)
    slow = Script(gate=asyncio.Event(), gate_timeout=10.0)
    net.emsp1.module_responder = slow
    pushes = [asyncio.create_task(put_session(net, f"g{n}", 1)) for n in range(4)]
    await wait_for(lambda: slow.in_handler == 2)
    for task in pushes:
        status, body, _ = await task
        assert is_queued(status, body), body
    await net.hub.server.close()  # in-flight deliveries get shutdown_grace, then are cancelled
    assert slow.accepted == []
    slow.gate.set()  # type: ignore[union-attr]
    rows = await rows_after_stop(net.hub, "SELECT state, object_key FROM outbox WHERE module='sessions' ORDER BY id")
    # Four concurrent pushes: their acceptance order (row ids) is whichever request got in first.
    assert sorted(rows, key=lambda row: row[1]) == [("pending", f"BE/BEC/G{n}") for n in range(4)]


async def test_silent_platform_gets_a_still_alive_check_and_goes_offline_when_it_fails(
    start_hub, make_peer, clock
) -> None:
    # mod_hub_client_info: no traffic from a party for a while -> GET its versions endpoint.
    net = await delivery_net(start_hub, make_peer, silence_check=300.0)
    probes: list[float] = []
    state = {"down": False}
    net.emsp1.versions_override = _probe_recorder(clock, probes, state)
    await settle(net.hub)
    clock.advance(200)
    net.hub.app[WORKER].wake()
    await settle(net.hub)
    assert probes == []  # not silent long enough yet

    clock.advance(400)  # now 600 s of silence: answered, so it stays CONNECTED
    net.hub.app[WORKER].wake()
    await wait_for(lambda: len(probes) >= 1)
    await settle(net.hub)
    assert await platform_status(net, net.emsp1) == "CONNECTED"

    state["down"] = True
    clock.advance(3600)
    net.hub.app[WORKER].wake()
    await wait_status(net, net.emsp1, "OFFLINE")
    await _others_told(net, "OFFLINE")


async def test_a_short_failure_streak_keeps_the_receiver_connected_until_it_spans_offline_after_seconds(
    start_hub, make_peer, clock
) -> None:
    """A receiver failing now and then is retried, not announced OFFLINE to every partner and back."""
    net = await delivery_net(
        start_hub, make_peer, offline_after_failures=2, offline_after_seconds=30.0, concurrency_per_receiver=1
    )
    script = Script(mode="down")
    net.emsp1.module_responder = script
    net.emsp1.versions_override = _probe_recorder(clock, [], {"down": True})
    started = clock.now().timestamp()
    for n in range(3):
        assert is_queued(*(await put_session(net, f"h{n}", 1))[:2])
    await wait_for(lambda: script.failed >= 3)  # three failures in a row, no time passed
    await settle(net.hub)
    assert await platform_status(net, net.emsp1) == "CONNECTED"
    assert "OFFLINE" not in clientinfo_puts(net.cpo1, EMSP1) + clientinfo_puts(net.emsp2, EMSP1)

    # The retries (backoff 1, 2, 4, 8, 16 s) keep failing; the first failure 30 s after the
    # streak began marks the receiver OFFLINE.
    emsp1_id = await net.platform_id(net.emsp1)
    await advance_until(net.hub, clock, lambda: net.hub.app[WORKER].health.is_offline(emsp1_id), step=5)
    assert clock.now().timestamp() - started >= 30
    await wait_status(net, net.emsp1, "OFFLINE")
    await _others_told(net, "OFFLINE")


async def test_a_delivery_answered_ends_the_streak_and_its_time() -> None:
    """failed()/succeeded() on the class: the span counts from the first failure after the last success."""
    from datetime import UTC, datetime

    from config import DeliverySettings
    from routing.clock import FakeClock
    from routing.delivery.health import ReceiverHealth

    class _Connected:
        status = "CONNECTED"

    class _Directory:
        def platform(self, platform_id: int) -> _Connected:
            return _Connected()

    marked: list[tuple[int, str]] = []

    async def set_status(platform_id: int, status: str) -> None:
        marked.append((platform_id, status))

    async def resumed(platform_id: int) -> None:
        return None

    clock = FakeClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    health = ReceiverHealth(
        client=None,  # type: ignore[arg-type]  # no probe runs here
        directory=_Directory(),  # type: ignore[arg-type]
        settings=DeliverySettings(offline_after_failures=2, offline_after_seconds=10.0),
        clock=clock,
        set_status=set_status,
        request_timeout=1.0,
        on_resume=resumed,
    )
    await health.failed(7)
    clock.advance(8)
    health.succeeded(7)  # answered: the streak and its start are gone
    clock.advance(4)
    await health.failed(7)
    await health.failed(7)  # 2 failures, but within 0 s of the new streak's start (12 s after the first)
    assert marked == [] and not health.is_offline(7)
    clock.advance(10)
    await health.failed(7)
    assert marked == [(7, "OFFLINE")] and health.is_offline(7)
