"""Durable delivery on the wire (docs/DESIGN-NOTES.md, Delivery): queued pushes survive a long outage, arrive in order,
exactly as sent; Retry-After is honoured; final OCPI answers are relayed, never retried; CDRs are
idempotent; per-object order holds under concurrency; a slow receiver never holds up a fast one.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

import storage.outbox
from tests.support.delivery import (
    Script,
    a_cdr,
    delivery_net,
    is_queued,
    outbox_rows,
    post_cdr,
    put_session,
    restart_peer,
    sessions_to,
    stop_peer,
)
from tests.support.fakes import envelope
from tests.support.routing import CPO1, EMSP1, EMSP2, answers, module_requests, rh, session_for
from tests.support.waiting import advance_until, settle, wait_for

pytestmark = pytest.mark.both_backends


@pytest.mark.parametrize("outage", ["http-503", "server-closed"])
async def test_receiver_down_for_hours_then_back_gets_every_message_in_order(
    start_hub, make_peer, clock, outage
) -> None:
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    port = 0
    if outage == "server-closed":
        port = await stop_peer(net.emsp1)
    else:  # its versions endpoint is down too, so the health probe keeps failing
        net.emsp1.versions_override = answers(status_code=3000, http=503)

    sent: list[tuple[str, bytes]] = []
    for version in range(1, 5):
        for sid in ("s1", "s2", "s3"):
            status, body, raw = await put_session(net, sid, version)
            assert is_queued(status, body), body
            sent.append((sid, raw))

    # A long outage: two hours of fake time.
    for _ in range(60):
        clock.advance(120)
        await settle(net.hub)
    assert len(await outbox_rows(net.hub, "state='pending'")) == 12  # nothing lost, nothing dead

    if outage == "server-closed":
        await restart_peer(net.emsp1, port)
    else:
        net.emsp1.versions_override = None
    script.mode = "ok"
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 12)

    for sid in ("s1", "s2", "s3"):
        got = [r.raw for r in script.accepted if r.path.endswith("/" + sid)]
        assert got == [raw for s, raw in sent if s == sid]  # acceptance order, byte-identical
    # Each message kept its X-Request-ID over every attempt; no message arrived twice.
    ids: dict[bytes, set[str]] = defaultdict(set)
    for r in sessions_to(net.emsp1):
        ids[r.raw].add(r.headers["X-Request-ID"])
    assert len(ids) == 12 and all(len(v) == 1 for v in ids.values())
    assert len({r.headers["X-Request-ID"] for r in script.accepted}) == 12
    assert await outbox_rows(net.hub) == []


def _retry_after_seconds(clock: Any) -> str:
    return "120"


def _retry_after_date(clock: Any) -> str:
    return format_datetime(clock.now() + timedelta(seconds=120), usegmt=True)


@pytest.mark.parametrize("header", [_retry_after_seconds, _retry_after_date], ids=["seconds", "http-date"])
async def test_429_retry_after_is_honoured(start_hub, make_peer, clock, header) -> None:
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down", http=429, headers={"Retry-After": header(clock)})
    net.emsp1.module_responder = script
    status, body, raw = await put_session(net, "101", 1)
    assert is_queued(status, body), body
    assert script.failed == 1
    script.mode = "ok"
    for _ in range(119):  # every second up to 119 s: no new attempt
        clock.advance(1)
        await asyncio.sleep(0)
    await settle(net.hub)
    assert len(sessions_to(net.emsp1)) == 1
    clock.advance(1)
    await wait_for(lambda: len(script.accepted) == 1)
    assert script.accepted[0].raw == raw
    first, second = sessions_to(net.emsp1)
    assert first.headers["X-Request-ID"] == second.headers["X-Request-ID"]


@pytest.mark.parametrize(("http", "code"), [(400, 2001), (404, 2003), (200, 2001), (500, 3001), (200, 3000)])
async def test_final_ocpi_answer_is_relayed_and_never_retried(start_hub, make_peer, clock, http, code) -> None:
    net = await delivery_net(start_hub, make_peer)
    net.emsp1.module_responder = answers({"why": "no"}, status_code=code, http=http, message="refused")
    status, body, _ = await put_session(net, "101", 1)
    assert status == http
    assert body == {"data": {"why": "no"}, "status_code": code, "status_message": "refused",
                    "timestamp": "2026-11-25T12:00:00Z"}  # fmt: skip
    for _ in range(20):
        clock.advance(600)
        await settle(net.hub)
    assert len(sessions_to(net.emsp1)) == 1
    assert await outbox_rows(net.hub, "state='pending'") == []


async def test_cdr_posted_twice_is_delivered_once(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer)
    cdr = a_cdr("CDR-1")
    assert (await post_cdr(net, cdr))[1]["status_code"] == 1000
    status, body = await post_cdr(net, cdr)
    assert status == 200 and body["status_code"] == 1000, body
    changed = {**cdr, "total_cost": {"excl_vat": 999.0}}
    status, body = await post_cdr(net, changed)
    assert body["status_code"] == 2001, body
    await settle(net.hub)
    assert len(module_requests(net.emsp1, "cdrs")) == 1


async def test_queued_cdr_posted_again_is_delivered_once_when_the_receiver_is_back(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    cdr = a_cdr("CDR-2")
    status, body = await post_cdr(net, cdr)
    assert is_queued(status, body), body
    status, body = await post_cdr(net, cdr)  # the CPO retries because it was unsure
    assert status == 200 and body["status_code"] == 1000, body
    script.mode = "ok"
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 1)
    for _ in range(10):
        clock.advance(300)
        await settle(net.hub)
    assert len(script.accepted) == 1
    assert json.loads(script.accepted[0].raw)["id"] == "CDR-2"


def _record_enqueues(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """Acceptance order as the hub commits it: (object_key, body) per enqueued message."""
    order: list[tuple[str, bytes]] = []
    real = storage.outbox.enqueue

    def recording(tx: Any, message: storage.outbox.NewMessage, *, coalesce: bool = False) -> tuple[int, bool]:
        # Runs on the writer thread inside the commit's transaction: the order of these calls is
        # the order of acceptance.
        result = real(tx, message, coalesce=coalesce)
        order.append((message.object_key, message.body or b""))
        return result

    monkeypatch.setattr(storage.outbox, "enqueue", recording)
    return order


async def test_concurrent_pushes_keep_per_object_order(start_hub, make_peer, clock, monkeypatch) -> None:
    net = await delivery_net(start_hub, make_peer, concurrency_per_receiver=4, offline_after_failures=1000)
    order = _record_enqueues(monkeypatch)
    in_flight: dict[str, int] = defaultdict(int)
    overlap = {"same_object": 0, "max_parallel": 0}
    calls = {"n": 0}
    script = Script()

    async def flaky(request: web.Request, body: Any) -> web.StreamResponse | None:
        key = request.path
        in_flight[key] += 1
        overlap["same_object"] = max(overlap["same_object"], in_flight[key])
        overlap["max_parallel"] = max(overlap["max_parallel"], sum(in_flight.values()))
        try:
            calls["n"] += 1
            ticket = calls["n"]
            await asyncio.sleep(0.02)  # slow receiver
            if ticket % 3 == 0:  # and an intermittent failure
                return web.json_response(envelope(status_code=3000), status=503)
            return None
        finally:
            in_flight[key] -= 1

    script.custom = flaky
    net.emsp1.module_responder = script
    pushes = [put_session(net, sid, v) for v in range(1, 9) for sid in ("sa", "sb", "sc")]
    results = await asyncio.gather(*pushes)
    assert all(status == 200 and body["status_code"] == 1000 for status, body, _ in results)
    await advance_until(net.hub, clock, lambda: len(script.accepted) >= 24, step=5)

    assert len(script.accepted) == 24
    for sid in ("sa", "sb", "sc"):
        expected = [body for key, body in order if key == "BE/BEC/" + sid.upper()]
        assert len(expected) == 8
        assert [r.raw for r in script.accepted if r.path.endswith("/" + sid)] == expected
    assert overlap["same_object"] == 1  # never two messages of one object at once
    assert overlap["max_parallel"] >= 2  # different objects proceed in parallel


async def test_repeated_evse_status_patches_may_coalesce_but_never_reorder(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    url = "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1/3256"
    statuses = ["CHARGING", "CHARGING", "CHARGING", "AVAILABLE", "AVAILABLE", "CHARGING", "BLOCKED", "BLOCKED"]
    sent = []
    for n, st in enumerate(statuses):  # one by one: this is the acceptance order
        raw = json.dumps({"status": st, "last_updated": f"2026-11-25T12:00:0{n // 3}Z"}).encode()
        status, body, _ = await net.call("PATCH", url, net.cpo1, data=raw, headers=rh(CPO1, EMSP1))
        assert status == 200 and body["status_code"] == 1000, body
        sent.append(raw)
    script.mode = "ok"
    clock.advance(1)  # the status_max_age default (600 s) is far away
    for _ in range(30):
        clock.advance(5)
        await settle(net.hub)
    got = [r.raw for r in script.accepted]
    assert 1 <= len(got) <= len(sent)
    # A subsequence of what was sent, in order, that keeps every change of value.
    it = iter(sent)
    assert all(any(g == s for s in it) for g in got)
    collapse = [s for i, s in enumerate(sent) if i == 0 or s != sent[i - 1]]
    assert [g for i, g in enumerate(got) if i == 0 or g != got[i - 1]] == collapse


async def test_slow_receiver_does_not_delay_a_fast_one(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, concurrency_per_receiver=2)
    slow = Script(gate=asyncio.Event(), gate_timeout=10.0)
    net.emsp1.module_responder = slow
    slow_pushes = [asyncio.create_task(put_session(net, f"slow{n}", 1)) for n in range(4)]
    await wait_for(lambda: slow.in_handler == 2)  # its concurrency is used up, requests hanging
    fast = Script()
    net.emsp2.module_responder = fast
    for n in range(6):
        status, body, _ = await net.call(
            "PUT",
            f"/ocpi/2.2.1/sessions/receiver/BE/BEC/fast{n}",
            net.cpo1,
            json=session_for(CPO1, EMSP2, f"fast{n}"),
            headers=rh(CPO1, EMSP2),
        )
        assert (status, body["status_code"]) == (200, 1000)
        assert "queued" not in str(body.get("status_message", ""))  # the fast eMSP's own answer
    assert len(fast.accepted) == 6
    assert slow.accepted == [] and slow.in_handler == 2  # all of that while the slow one was busy
    for task in slow_pushes:
        status, body, _ = await task
        assert is_queued(status, body), body  # relay_wait ran out: queued, not lost
    slow.gate.set()  # type: ignore[union-attr]
    await advance_until(net.hub, clock, lambda: len(slow.accepted) == 4, step=1)
    assert sorted(r.path.rsplit("/", 1)[1] for r in slow.accepted) == [f"slow{n}" for n in range(4)]
    assert not any("slow" in r.path for r in module_requests(net.emsp2, "sessions"))
