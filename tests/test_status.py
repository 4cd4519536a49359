"""GET /status: figures that match the traffic a test makes, degraded reasons, public switch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp import web

import storage.outbox as outbox_sql
from hub.keys import REGISTRY, STORE
from routing.clock import iso, iso_or_none
from routing.registry.identity import live_parties
from storage import outcomes as outcome_sql
from storage import platforms as platform_sql
from storage.outbox import NewMessage, QueueStats
from tests.support.ops import DIRECT, pair, platform_entry, push_session
from tests.support.waiting import until, wait_for

pytestmark = pytest.mark.both_backends


async def status(hub, token=None):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with hub.session.get(hub.base + "/status", headers=headers) as r:
        return r.status, await r.json()


async def test_status_needs_the_admin_token(hub):
    code, body = await status(hub)
    assert code == 401 and body["status_code"] == 2000
    code, body = await status(hub, "wrong")
    assert code == 401
    code, body = await hub.admin("GET", "/status")
    assert code == 200 and body["status"] == "ok" and body["platforms"] == []
    assert body["version"] and body["uptime_seconds"] >= 0


async def test_status_public_setting_serves_it_without_a_token(start_hub):
    hub = await start_hub(status_public=True)
    code, body = await status(hub)
    assert code == 200 and body["status"] == "ok"
    # Only /status: the admin API still wants the token.
    async with hub.session.get(hub.base + "/admin/platforms") as r:
        assert r.status == 401


async def test_figures_match_the_traffic_made(hub, make_peer):
    cpo, emsp = await pair(hub, make_peer)
    _, before = await hub.admin("GET", "/status")
    emsp0 = platform_entry(before, "EXA")
    received0 = len(emsp.received)

    for i in range(3):
        await push_session(hub, cpo, f"S{i}")
    await wait_for(lambda: len(emsp.received) >= received0 + 3)

    # A delivered message leaves the outbox in the group commit just after the receiver answered:
    # poll (bounded) until the status shows it gone.
    _, after = await until(
        lambda: hub.admin("GET", "/status"), lambda answer: platform_entry(answer[1], "EXA")["queue_depth"] == 0
    )
    assert after["status"] == "ok", after["reasons"]
    cpo_entry, emsp_entry = platform_entry(after, "BEC"), platform_entry(after, "EXA")
    assert emsp_entry["delivered"] - emsp0["delivered"] == len(emsp.received) - received0 == 3
    assert emsp_entry["failed"] == emsp0["failed"] == 0
    assert emsp_entry["latency_p50_ms"] > 0 and emsp_entry["latency_p99_ms"] >= emsp_entry["latency_p50_ms"]
    assert emsp_entry["last_seen_out"] and cpo_entry["last_seen_in"]
    assert cpo_entry["roles"] == [{"country_code": "BE", "party_id": "BEC", "role": "CPO"}]
    assert (cpo_entry["status"], cpo_entry["version"]) == ("CONNECTED", "2.2.1")
    assert emsp_entry["queue_depth"] == 0 and emsp_entry["dead_letters"] == 0
    assert emsp_entry["oldest_queued_age_seconds"] is None
    assert after["totals"]["platforms"] == 2

    # A pull the CPO answers with an HTML 500: one failed call to the CPO, relayed as an error.
    async def broken(request, body):
        return web.Response(status=500, text="<html>oops</html>", content_type="text/html")

    cpo.module_responder = broken
    failed0 = cpo_entry["failed"]
    headers = {
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "EXA",
        "OCPI-to-country-code": "BE",
        "OCPI-to-party-id": "BEC",
    }
    _code, body, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender/", token=emsp.hub_token, headers=headers)
    assert body["status_code"] >= 3000, body
    _, latest = await hub.admin("GET", "/status")
    assert platform_entry(latest, "BEC")["failed"] == failed0 + 1


async def test_last_seen_is_stored_on_the_platform(hub, make_peer):
    cpo, emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "SEEN")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/SEEN")))
    await hub.admin("GET", "/admin/traffic")  # flushes the traffic buffer (and last-seen times)
    _, platforms = await hub.admin("GET", "/admin/platforms")
    by_name = {p["name"]: p for p in platforms}
    assert by_name["BEC"]["last_seen_in"] and by_name["EXA"]["last_seen_out"]


async def test_offline_degrades_and_suspended_is_a_notice(hub, make_peer):
    _cpo, _emsp = await pair(hub, make_peer)
    ids = {p["name"]: p["id"] for p in (await hub.admin("GET", "/status"))[1]["platforms"]}

    await hub.app[REGISTRY].set_status(ids["EXA"], "OFFLINE")
    code, suspended = await hub.admin("POST", f"/admin/platforms/{ids['BEC']}/suspend")
    assert code == 200, suspended
    _, body = await hub.admin("GET", "/status")
    assert body["status"] == "degraded"
    assert body["reasons"] == [f"platform {ids['EXA']} (EXA) is OFFLINE"]
    assert body["notices"] == [f"platform {ids['BEC']} (BEC) is SUSPENDED"]
    assert platform_entry(body, "EXA")["status"] == "OFFLINE"

    await hub.app[REGISTRY].set_status(ids["EXA"], "CONNECTED")
    await hub.admin("POST", f"/admin/platforms/{ids['BEC']}/resume")
    _, body = await hub.admin("GET", "/status")
    assert (body["status"], body["reasons"], body["notices"]) == ("ok", [], [])


async def test_dead_letters_degrade(hub, make_peer, clock):
    _cpo, emsp = await pair(hub, make_peer)
    emsp_id = platform_entry((await hub.admin("GET", "/status"))[1], "EXA")["id"]
    now = iso(clock.now())

    def bury_one(tx):
        message_id, _ = outbox_sql.enqueue(
            tx,
            NewMessage(emsp_id, "sessions", "BE/BEC/X", "PUT", emsp.base + "/x", dict(DIRECT), b"{}", now, now),
        )
        outcome_sql.bury(tx, message_id, error="test", now=now)

    await hub.app[STORE].write(bury_one)
    _, body = await hub.admin("GET", "/status")
    assert body["status"] == "degraded"
    assert body["reasons"] == [f"platform {emsp_id} (EXA): 1 dead letter(s)"]
    assert platform_entry(body, "EXA")["dead_letters"] == 1 and body["totals"]["dead_letters"] == 1


async def test_old_queue_degrades_past_the_threshold(start_hub, make_peer, clock, monkeypatch):
    hub = await start_hub(status_queue_age_threshold=60)
    _cpo, _emsp = await pair(hub, make_peer)
    emsp_id = platform_entry((await hub.admin("GET", "/status"))[1], "EXA")["id"]
    created = iso(clock.now() - timedelta(seconds=30))

    async def queue_stats(store):
        return {emsp_id: QueueStats(depth=4, oldest_created_at=created, dead=0, retries=7)}

    # The worker would drain a real row at once; the figures are what /status must judge.
    monkeypatch.setattr(outbox_sql, "queue_stats", queue_stats)
    _, body = await hub.admin("GET", "/status")
    entry = platform_entry(body, "EXA")
    assert (entry["queue_depth"], entry["retries"], entry["oldest_queued_age_seconds"]) == (4, 7, 30.0)
    assert body["status"] == "ok" and body["totals"]["queue_depth"] == 4

    clock.advance(31)
    _, body = await hub.admin("GET", "/status")
    assert body["status"] == "degraded"
    assert body["reasons"] == [f"platform {emsp_id} (EXA): oldest queued message is 61 s old (threshold 60 s)"]

    # Suspended by the operator: its queue waits on purpose, so the age is a notice, not a fault.
    assert (await hub.admin("POST", f"/admin/platforms/{emsp_id}/suspend"))[0] == 200
    _, body = await hub.admin("GET", "/status")
    assert (body["status"], body["reasons"]) == ("ok", [])
    assert f"platform {emsp_id} (EXA): oldest queued message is 61 s old (threshold 60 s)" in body["notices"]


async def test_down_when_the_store_cannot_be_read(hub):
    await hub.app[STORE].close()
    code, body = await hub.admin("GET", "/status")
    assert code == 503 and body["status"] == "down" and body["reasons"] == ["store unreadable: StoreClosedError"]


async def test_the_overviews_brief_read_agrees_with_the_full_one(hub, make_peer):
    """storage.platforms.briefs (what /status, /metrics and the probes read) says what list_platforms says."""
    cpo, emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "SEEN")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/SEEN")))
    await hub.admin("GET", "/admin/traffic")  # flushes the traffic buffer (and last-seen times)
    await hub.invite("PLN")  # a PLANNED platform: not registered
    store = hub.app[STORE]
    full = await platform_sql.list_platforms(store)
    briefs = await platform_sql.briefs(store)
    assert [b.id for b in briefs] == [p.id for p in full] and len(full) == 3
    for p, b in zip(full, briefs, strict=True):
        assert (b.name, b.status, b.version, b.registered) == (p.name, p.status, p.version, p.registered)
        assert (b.last_seen_in, b.last_seen_out) == (iso_or_none(p.last_seen_in), iso_or_none(p.last_seen_out))
        assert b.updated_at == iso_or_none(p.updated_at)
        assert b.parties == tuple((r.country_code, r.party_id, r.role) for r in p.parties)
        assert b.active_keys == tuple(r.key for r in live_parties(p))
    assert any(b.last_seen_in for b in briefs) and not all(b.registered for b in briefs)


async def test_one_platforms_entry_is_its_entry_in_the_overview(hub, make_peer):
    """hub.observe.status.platform_entry (the console's platform page) says what /status says of it."""
    from hub.observe import status as status_module

    cpo, emsp = await pair(hub, make_peer)
    for i in range(3):
        await push_session(hub, cpo, f"ONE{i}")
    await wait_for(lambda: len(emsp.requests_to("/sessions/receiver/BE/BEC/ONE2")) == 1)
    await hub.admin("GET", "/admin/traffic")  # flushes the traffic buffer (and last-seen times)
    body, _ = await status_module.overview(hub.app)
    for entry in body["platforms"]:
        assert await status_module.platform_entry(hub.app, entry["id"]) == entry
    assert any(e["delivered"] for e in body["platforms"]) and len(body["platforms"]) == 2
    assert await status_module.platform_entry(hub.app, 10_000) is None
