"""Console pages without a browser: what an operator's searches, exports, charts and re-drives do."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

from aiohttp import web

from hub.console import pages
from hub.console.charts import charts
from hub.console.pages import live_interval_ms
from hub.keys import REGISTRY, STORE
from storage.traffic import MinuteFigures
from tests.support.console import Console
from tests.support.fakes import envelope
from tests.support.hub import ADMIN
from tests.support.ops import pair, push_session
from tests.support.waiting import settle


async def _logged_in(hub: Any) -> Console:
    c = Console(hub.base)
    assert await c.login() == 303
    return c


async def _down(request: web.Request, body: Any) -> web.StreamResponse:
    return web.json_response(envelope(status_code=3000, message="down"), status=503)


async def _ok(request: web.Request, body: Any) -> web.StreamResponse:
    return web.json_response(envelope())


async def test_traffic_search_filters_and_csv(hub: Any, make_peer: Any) -> None:
    cpo, _emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "S-1", correlation_id="=cmd|' /C calc'!A0")
    await push_session(hub, cpo, "S-2", correlation_id="corr-two")
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/traffic?correlation_id=corr-two")
        assert status == 200 and text.count('class="leg dir-') == 2 and "S-2" in text and "S-1" not in text
        status, text, _ = await c.get("/console/traffic?module=sessions&http_status=200")
        assert status == 200 and "S-1" in text and "S-2" in text and "hubclientinfo" not in text
        status, text, _ = await c.get("/console/traffic?module=sessions&since=2100-01-01T00:00:00Z")
        assert status == 200 and "0 row(s)" in text
        status, text, _ = await c.get("/console/traffic?since=yesterday")
        assert status == 400 and "since" in text
        status, text, headers = await c.get("/console/traffic.csv?module=sessions")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 4 and {r["direction"] for r in rows} == {"in", "out"}
        # A partner-chosen id that a spreadsheet would run as a formula is exported inert.
        assert {r["correlation_id"] for r in rows} == {"'=cmd|' /C calc'!A0", "corr-two"}
        # The CPO's page lists its recent traffic (its pushes) and the overview draws real figures.
        status, text, _ = await c.get("/console/platforms/1")
        assert status == 200 and "S-2" in text and "Token in Authorization" in text
        status, text, _ = await c.get("/console/")
        assert status == 200 and text.count('class="bar"') >= 3
    finally:
        await c.close()


def _rows(text: str) -> list[str]:
    return re.findall(r'<tr class="leg dir-\w+" data-id="(\d+)"', text)


async def test_traffic_shows_partner_traffic_in_one_paged_table(hub: Any, make_peer: Any) -> None:
    cpo, _emsp = await pair(hub, make_peer)
    for n in range(5):
        await push_session(hub, cpo, f"P-{n}", correlation_id=f"page-{n}")
    async with hub.session.get(hub.base + "/favicon.ico") as r:
        assert r.status == 404
    await hub.admin("GET", "/admin/platforms")
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/traffic")
        assert status == 200 and text.count("<table") == 1 and "partner traffic only" in text
        assert "/admin/platforms" not in text and "favicon" not in text and "P-4" in text
        status, text, _ = await c.get("/console/traffic?kind=admin")
        assert "/admin/platforms" in text and "P-4" not in text and "favicon" not in text
        status, text, _ = await c.get("/console/traffic?kind=other")
        assert "/favicon.ico" in text and "/admin/platforms" not in text
        status, text, _ = await c.get("/console/traffic?kind=all")
        assert "/favicon.ico" in text and "/admin/platforms" in text and "P-4" in text
        status, text, _ = await c.get("/console/traffic?module=sessions&direction=in")
        assert len(_rows(text)) == 5 and 'class="leg dir-out"' not in text
        status, text, _ = await c.get("/console/traffic?kind=all&failed=1")
        assert "/favicon.ico" in text and "P-4" not in text
        # One message's id finds it whatever its kind; the form then says "everything".
        async with hub.session.get(
            hub.base + "/admin/platforms", headers={"Authorization": f"Bearer {ADMIN}", "X-Correlation-ID": "adm-1"}
        ) as r:
            assert r.status == 200
        status, text, _ = await c.get("/console/traffic?correlation_id=adm-1")
        assert len(_rows(text)) == 1 and "/admin/platforms" in text and "every kind of traffic" in text
        status, text, _ = await c.get("/console/traffic?correlation_id=adm-1&kind=partner")
        assert _rows(text) == []
        status, text, _ = await c.get("/console/traffic?kind=nonsense")
        assert status == 400 and "kind" in text
        # Pages of 4 rows, newest first, by row id: 10 session rows are 4 + 4 + 2, no overlap.
        status, text, _ = await c.get("/console/traffic?module=sessions&limit=4")
        first = _rows(text)
        assert len(first) == 4 and first == sorted(first, key=int, reverse=True)
        assert 'id="page-newer"' not in text
        older = html.unescape(re.search(r'href="([^"]+)" id="page-older"', text).group(1))
        status, text, _ = await c.get(older)
        second = _rows(text)
        assert len(second) == 4 and int(second[0]) < int(first[-1]) and 'id="page-newest"' in text
        older = html.unescape(re.search(r'href="([^"]+)" id="page-older"', text).group(1))
        status, text, _ = await c.get(older)
        third = _rows(text)
        assert len(third) == 2 and 'id="page-older"' not in text
        newer = html.unescape(re.search(r'href="([^"]+)" id="page-newer"', text).group(1))
        status, text, _ = await c.get(newer)
        assert _rows(text) == second
        # The correlation id links to every leg of its message, whatever its kind.
        assert "/console/traffic?kind=all&amp;correlation_id=page-" in text
    finally:
        await c.close()


async def test_redrive_selected_and_a_platforms_dead_letters(start_hub: Any, make_peer: Any, clock: Any) -> None:
    hub = await start_hub(delivery={"max_attempts": 1, "offline_after_failures": 1000})
    cpo, emsp = await pair(hub, make_peer)
    emsp.module_responder = _down
    for n in range(3):
        await push_session(hub, cpo, f"D-{n}", correlation_id=f"dead-{n}")
    letters: list[Any] = []
    for _ in range(100):  # the worker marks a letter dead after the push was answered, on its clock
        await settle(hub)
        _, letters = await hub.admin("GET", "/admin/deadletters")
        if len(letters) == 3:
            break
        clock.advance(1)
    assert len(letters) == 3
    emsp.module_responder = _ok
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/deadletters")
        assert status == 200 and text.count('class="letter"') == 3 and "HTTP 503" in text
        first = letters[0]["id"]
        status, _, _ = await c.post("/console/deadletters/redrive", {"csrf": c.csrf, "scope": "selected", "ids": first})
        assert status == 303
        status, text, _ = await c.get("/console/deadletters")
        assert "1 dead letter(s) back in the queue." in text and text.count('class="letter"') == 2
        form = {"csrf": c.csrf, "scope": "platform", "platform_id": str(letters[0]["platform_id"])}
        status, _, _ = await c.post("/console/deadletters/redrive", form)
        status, text, _ = await c.get("/console/deadletters")
        assert "2 dead letter(s) back in the queue." in text and 'class="letter"' not in text
        status, _, _ = await c.post("/console/deadletters/redrive", {"csrf": c.csrf, "scope": "selected"})
        status, text, _ = await c.get("/console/deadletters")
        assert "Nothing chosen" in text
    finally:
        await c.close()


async def test_invitation_page_shows_token_a_once_and_refuses_a_blank_name(hub: Any) -> None:
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.post("/console/invitations", {"csrf": c.csrf, "name": "  "})
        assert status == 400 and "A name is required." in text
        status, text, _ = await c.post("/console/invitations", {"csrf": c.csrf, "name": "New CPO"})
        assert status == 200 and 'id="token-a"' in text and hub.versions_url in text
        status, text, _ = await c.get("/console/invitations")
        assert 'id="token-a"' not in text and "New CPO" in text  # listed as unused, token not shown again
    finally:
        await c.close()


async def test_invitations_lists_open_ones_with_expiry_and_revokes(hub: Any, make_peer: Any, clock: Any) -> None:
    await pair(hub, make_peer)
    status, _ = await hub.admin("DELETE", "/admin/platforms/2")  # the eMSP: UNREGISTERED, no invitation
    assert status == 200
    await hub.invite("Open One")
    _, listed = await hub.admin("GET", "/admin/invitations")
    [open_one] = listed
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/invitations")
        assert status == 200 and "Not used yet (1)" in text
        rows = text.split('class="invitation"')[1:]
        assert len(rows) == 1 and "Open One" in rows[0] and open_one["expires_at"] in rows[0]
        assert "Revoke" in rows[0]
        clock.advance(10 * 86400)  # past its expiry: still listed (it holds a row), marked expired
        assert await c.login() == 303  # (the console session expired too)
        status, text, _ = await c.get("/console/invitations")
        assert "(expired)" in text
        revoke = f"/console/invitations/{open_one['platform_id']}/revoke"
        status, _, headers = await c.post(revoke, {"csrf": c.csrf})
        assert status == 303 and headers["Location"] == "/console/invitations"
        status, text, _ = await c.get("/console/invitations")
        assert "revoked" in text and "Not used yet (0)" in text
        _, listed = await hub.admin("GET", "/admin/invitations")
        assert listed == []
        status, text, _ = await c.post(revoke, {"csrf": c.csrf})  # twice: a clear 404 page
        assert status == 404 and "no open invitation" in text
    finally:
        await c.close()


def _action_links(text: str) -> list[str]:
    section = text.split('<section class="actions">')[1].split("</section>")[0]
    return re.findall(r'href="/console/platforms/\d+/(\w+)"', section)


async def test_platform_page_offers_only_the_actions_its_state_allows(hub: Any, make_peer: Any) -> None:
    await pair(hub, make_peer)
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/platforms/1")
        assert status == 200 and _action_links(text) == ["suspend", "rotate", "unregister"]
        assert "Unregister…" in text and "Disconnect" not in text
        await hub.app[REGISTRY].set_status(1, "OFFLINE")  # what failed deliveries do
        status, text, _ = await c.get("/console/platforms/1")
        assert _action_links(text) == ["resume", "rotate", "unregister"]  # not Suspend and Resume both
        status, _, _ = await c.post("/console/platforms/2/unregister", {"csrf": c.csrf})
        assert status == 303
        status, text, _ = await c.get("/console/platforms/2")
        assert "Platform 2 unregistered" in text and _action_links(text) == [] and 'id="no-actions"' in text
        # Nor are they accepted by a hand-made request: a clear refusal, nothing changes.
        for action in ("suspend", "resume", "rotate", "unregister"):
            status, text, _ = await c.get(f"/console/platforms/2/{action}")
            assert status == 409 and "UNREGISTERED" in text, action
            status, text, _ = await c.post(f"/console/platforms/2/{action}", {"csrf": c.csrf})
            assert status == 409 and "not possible" in text, action
        status, _, _ = await c.post("/console/platforms/1/suspend", {"csrf": c.csrf})
        assert status == 409  # OFFLINE: suspend is not offered, not accepted
        _, body = await hub.admin("GET", "/admin/platforms/2")
        assert body["status"] == "UNREGISTERED"
        status, _, _ = await c.get("/console/platforms/1/disconnect")
        assert status == 404  # one word for it: unregister
        invited = await hub.invite("Later")
        assert invited
        _, listed = await hub.admin("GET", "/admin/invitations")
        status, text, _ = await c.get(f"/console/platforms/{listed[0]['platform_id']}")
        assert _action_links(text) == [] and "revoke its invitation" in text
    finally:
        await c.close()


def test_charts_place_each_minute_of_the_last_hour() -> None:
    from datetime import UTC, datetime

    from hub.console import charts as geometry

    now = datetime(2026, 11, 25, 12, 30, 20, tzinfo=UTC)
    figures = [
        MinuteFigures("2026-11-25T11:00", 99, 99, 50.0, 60.0),  # over an hour ago: not drawn
        MinuteFigures("2026-11-25T12:00", 4, 2, 10.0, 12.0),
        MinuteFigures("2026-11-25T12:30", 7, 3, 20.25, 30.0),
    ]
    requests, calls, latency = charts(now, figures)
    # Counts are integers (no "7.0 requests"); latency keeps its decimal; a sum of latencies means nothing.
    assert requests.total == 11 and requests.peak == 7 and isinstance(requests.peak, int)
    assert calls.total == 5 and latency.peak == 20.2 and latency.total is None
    drawn = [b for b in requests.bars if b.height]
    assert [b.label for b in drawn] == ["2026-11-25T12:00Z: 4 requests", "2026-11-25T12:30Z: 7 requests"]
    # The value axis ends at a round 10 (peak 7): bars are scaled to it, ticks 0, 5, 10 requests/min.
    assert [t.label for t in requests.value_ticks] == ["0", "5", "10"] and requests.axis == "requests / min"
    assert drawn[-1].x == geometry.LEFT + 59 * geometry.BAR + 1
    plot = geometry.PLOT_HEIGHT
    assert drawn[-1].height == round(0.7 * plot) and drawn[0].height == round(0.4 * plot)
    assert drawn[-1].y + drawn[-1].height == requests.baseline
    # The time axis: a label every ten minutes of the clock, 11:40 .. 12:30, under its minute's bar.
    assert [t.label for t in requests.time_ticks] == ["11:40", "11:50", "12:00", "12:10", "12:20", "12:30"]
    assert requests.time_ticks[-1].at == geometry.LEFT + 59 * geometry.BAR + geometry.BAR // 2
    assert [t.label for t in latency.value_ticks] == ["0", "25", "50"] and latency.unit == "ms"
    # Chart height is readable (the old one was 64 px) and a single request still draws a bar.
    assert requests.height >= 150
    one = charts(now, [MinuteFigures("2026-11-25T12:30", 1, 0, None, None)])[0]
    assert [t.label for t in one.value_ticks] == ["0", "1"] and [b.height for b in one.bars if b.height] == [120]


async def test_overview_counts_are_the_clusters_not_this_processes(hub: Any, make_peer: Any, clock: Any) -> None:
    from routing.clock import iso
    from storage import processes as process_sql

    cpo, _emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "C-1", correlation_id="cluster-1")
    await settle(hub)
    _, before = await hub.admin("GET", "/status")
    # Another hub process on the same database reports its share with its heartbeat.
    other = {"delivered": 40, "failed": 2, "in_flight": 0, "platforms": {"2": [40, 2]}}
    now = iso(clock.now())
    await hub.app[STORE].write(
        lambda tx: process_sql.beat(
            tx, process_id="other", host="h2", os_pid=2, started_at=now, now=now, figures=json.dumps(other)
        )
    )
    _, after = await hub.admin("GET", "/status")
    emsp0 = next(p for p in before["platforms"] if p["id"] == 2)
    emsp1 = next(p for p in after["platforms"] if p["id"] == 2)
    assert emsp1["delivered"] == emsp0["delivered"] + 40 and emsp1["failed"] == emsp0["failed"] + 2
    assert all("platforms" not in p for p in after["processes"])  # the split stays out of the list
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/")
        assert status == 200
        assert f'id="delivered-total">{before["cluster"]["delivered"] + 40}<' in text
        assert 'id="processes-alive">2<' in text
        status, text, _ = await c.get("/console/platforms")
        row = text.split('data-platform-id="2"')[1].split("</tr>")[0]
        assert f"<td>{emsp1['delivered']} / {emsp1['failed']}</td>" in row
    finally:
        await c.close()


def test_an_open_overview_is_polled_less_often_the_more_it_costs() -> None:
    """At most 1/40 of the hub's time: 2 s for a cheap overview, 4 s for one of 0.1 s, never past 60 s."""
    assert [live_interval_ms(cost) for cost in (0.0, 0.01, 0.05, 0.1, 1.0, 10.0)] == [
        2000,
        2000,
        2000,
        4000,
        40000,
        60000,
    ]


async def test_the_overview_tells_its_poller_when_to_come_back(hub: Any) -> None:
    """The page's first pause and each live answer's X-Console-Poll-Ms (read by console.js)."""
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/")
        found = re.search(r'data-live="[^"]*/overview/live" data-interval="(\d+)"', text)
        assert status == 200 and found is not None and 2000 <= int(found.group(1)) <= 60000
        status, text, headers = await c.get("/console/overview/live", headers={"X-Console-Live": "1"})
        assert status == 200 and 2000 <= int(headers["X-Console-Poll-Ms"]) <= 60000
    finally:
        await c.close()


async def test_platforms_page_searches_and_comes_a_page_at_a_time(hub: Any, make_peer: Any, monkeypatch: Any) -> None:
    """?q= words in the id, name or parties; PLATFORM_ROWS a page with Previous/Next; figures of that page only."""
    await pair(hub, make_peer)  # BE*BEC CPO and the eMSP EXA (ids 1, 2)
    for name in ("Alpha Charge", "Beta Roam", "alpha two"):
        await hub.admin("POST", "/admin/invitations", {"name": name})
    monkeypatch.setattr(pages, "PLATFORM_ROWS", 2)

    def rows(text: str) -> list[int]:
        return [int(n) for n in re.findall(r'class="platform-row" data-platform-id="(\d+)"', text)]

    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/platforms")
        assert status == 200 and rows(text) == [1, 2] and "5 platform(s), page 1 of 3" in text
        assert 'href="/console/platforms?page=2" id="platforms-later"' in text and "platforms-earlier" not in text
        status, text, _ = await c.get("/console/platforms?page=3")
        assert rows(text) == [5] and 'href="/console/platforms?page=2" id="platforms-earlier"' in text
        status, text, _ = await c.get("/console/platforms?q=ALPHA")
        assert rows(text) == [3, 5] and "2 platform(s) matching" in text and "platforms-later" not in text
        status, text, _ = await c.get("/console/platforms?q=be*bec+cpo")
        assert rows(text) == [1]
        status, text, _ = await c.get("/console/platforms?page=99&q=alpha")
        assert rows(text) == [3, 5]  # past the end: the last page
        status, text, _ = await c.get("/console/platforms?page=x")
        assert status == 200 and rows(text) == [1, 2]
        status, text, _ = await c.get("/console/platforms?q=%3Cscript%3Ealert(1)%3C/script%3E")
        assert status == 200 and rows(text) == [] and "<script>alert" not in text and "No platform matches." in text
    finally:
        await c.close()


async def test_past_select_max_platforms_the_filters_ask_for_an_id(hub: Any, make_peer: Any, monkeypatch: Any) -> None:
    """Traffic and dead letters list every platform in a <select> up to SELECT_MAX, then take an id."""
    from hub.console import ops

    await pair(hub, make_peer)
    c = await _logged_in(hub)
    try:
        for path in ("/console/traffic", "/console/deadletters"):
            _, text, _ = await c.get(path)
            assert '<select name="platform_id">' in text and '<input name="platform_id"' not in text, path
        for path in ("/console/traffic", "/console/deadletters", "/console/agreements"):  # one filter macro
            status, text, _ = await c.get(path + "?platform_id=2")
            assert status == 200 and '<option value="2" selected>' in text, path
            assert '<option value="1" selected>' not in text, path
        monkeypatch.setattr(ops, "SELECT_MAX", 1)
        for path in ("/console/traffic?platform_id=2", "/console/deadletters?platform_id=2"):
            status, text, _ = await c.get(path)
            assert status == 200 and '<select name="platform_id">' not in text, path
            assert '<input name="platform_id" value="2"' in text, path
    finally:
        await c.close()
