"""Retention: stored copies expire after their last update (sessions, CDRs, tokens) or with their owner
(locations, tariffs), in small batches, and /status shows what is kept and how big the database is."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from hub.keys import RETENTION
from routing.clock import iso
from tests.support.routing import CPO1, CPO2, EMSP1, cdr_for, example, network, session_for
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

DAY = 86400.0


def stored(status_body: dict, module: str) -> tuple[int, str | None]:
    entry = next((m for m in status_body["stored_objects"] if m["module"] == module), None)
    return (entry["count"], entry["oldest_last_updated"]) if entry else (0, None)


async def test_sweep_removes_what_is_past_retention_and_keeps_the_rest(start_hub, make_peer, clock):
    hub = await start_hub(retention={"sweep_interval": 3600, "sessions": 30 * DAY, "cdrs": 60 * DAY, "batch_size": 2})
    sweeper = hub.app[RETENTION]
    await wait_for(lambda: sweeper.sweeps == 1)  # the sweep at start found nothing
    net = await network(hub, make_peer)
    old, recent = iso(clock.now() - timedelta(days=40)), iso(clock.now() - timedelta(days=1))
    for n, last_updated in enumerate([old] * 5 + [recent]):  # five old ones: three batches of two
        body = {**session_for(CPO1, EMSP1, f"S{n}"), "last_updated": last_updated}
        status, answer, _ = await net.call("PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/S{n}", net.cpo1, json=body)
        assert (status, answer["status_code"]) == (200, 1000), answer
    cdr = {**cdr_for(CPO1, EMSP1, "C1"), "last_updated": old}  # 40 days: inside the 60 days for CDRs
    assert (await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr))[1]["status_code"] == 1000
    for cpo, owner in ((net.cpo1, CPO1), (net.cpo2, CPO2)):
        location = {**example("location_example.json"), "country_code": owner[0], "party_id": owner[1]}
        url = f"/ocpi/2.2.1/locations/receiver/{owner[0]}/{owner[1]}/{location['id']}"
        assert (await net.call("PUT", url, cpo, json=location))[1]["status_code"] == 1000

    _, before = await hub.admin("GET", "/status")
    assert stored(before, "sessions") == (6, old) and stored(before, "locations")[0] == 2
    assert before["database"]["path"] == str(hub.settings.database) and before["database"]["size_bytes"] > 0

    # CPO two leaves: its locations go with it at the next sweep; CPO one's stay.
    assert (await hub.admin("DELETE", f"/admin/platforms/{await net.platform_id(net.cpo2)}"))[0] == 200
    clock.advance(3600)
    await wait_for(lambda: sweeper.sweeps == 2)
    assert sweeper.last is not None and sweeper.last.removed == {"sessions": 5, "cdrs": 0, "tokens": 0, "locations": 1}

    _, after = await hub.admin("GET", "/status")
    assert stored(after, "sessions") == (1, recent) and stored(after, "cdrs") == (1, old)
    assert stored(after, "locations")[0] == 1
    # What a partner sees: GET-all from the hub's store returns only what is kept.
    _, page, headers = await net.call("GET", "/ocpi/2.2.1/sessions/sender/?date_from=2000-01-01T00:00:00Z", net.emsp1)
    assert [s["id"] for s in page["data"]] == ["S5"] and headers["X-Total-Count"] == "1"
    _, page, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender", net.emsp1)
    assert [(loc["country_code"], loc["party_id"]) for loc in page["data"]] == [("BE", "BEC")]


@pytest.mark.sqlite_only("SQLite's free pages and incremental_vacuum; PostgreSQL's autovacuum reclaims space itself")
async def test_freed_pages_go_back_to_the_file_system(start_hub, make_peer, clock):
    hub = await start_hub(retention={"sweep_interval": 3600, "sessions": DAY, "batch_size": 50})
    sweeper = hub.app[RETENTION]
    net = await network(hub, make_peer)
    old = iso(clock.now() - timedelta(days=2))
    padding = "x" * 3000  # bodies are stored as received: unknown fields survive, and take pages
    for n in range(60):
        body = {**session_for(CPO1, EMSP1, f"S{n}"), "last_updated": old, "padding": padding}
        await net.call("PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/S{n}", net.cpo1, json=body)
    store = hub.app[RETENTION].store
    pages_before = (await store.fetchone("PRAGMA page_count"))[0]
    clock.advance(3600)
    await wait_for(lambda: sweeper.sweeps >= 2)
    assert sweeper.last is not None and sweeper.last.removed["sessions"] == 60
    pages_after = (await store.fetchone("PRAGMA page_count"))[0]
    assert sweeper.last.pages_freed >= 40 and pages_after <= pages_before - 40
    assert (await store.fetchone("PRAGMA freelist_count"))[0] == 0


async def test_a_slow_oldest_figure_is_kept_a_while_and_the_counts_stay_exact(start_hub, make_peer, clock, monkeypatch):
    """The oldest last_updated reads every stored object: kept OLDEST_KEPT s once it is slow; counts never."""
    from hub.keys import STORE
    from storage import retention as retention_sql

    hub = await start_hub()
    net = await network(hub, make_peer)
    store = hub.app[STORE]

    async def put(n: int, days: int) -> None:
        body = {**session_for(CPO1, EMSP1, f"K{n}"), "last_updated": iso(clock.now() - timedelta(days=days))}
        status, answer, _ = await net.call("PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/K{n}", net.cpo1, json=body)
        assert (status, answer["status_code"]) == (200, 1000), answer

    def sessions(figures: list) -> tuple[int, str | None]:
        return next((f.count, f.oldest_last_updated) for f in figures if f.module == "sessions")

    await put(1, 5)
    # A small store: read every time.
    assert sessions(await retention_sql.module_figures(store)) == (1, iso(clock.now() - timedelta(days=5)))
    await put(2, 9)
    assert sessions(await retention_sql.module_figures(store)) == (2, iso(clock.now() - timedelta(days=9)))
    # As slow as a million objects: the oldest figure is kept, the count is not.
    monkeypatch.setattr(retention_sql, "OLDEST_SLOW", 0.0)
    assert sessions(await retention_sql.module_figures(store)) == (2, iso(clock.now() - timedelta(days=9)))
    await put(3, 20)
    assert sessions(await retention_sql.module_figures(store)) == (3, iso(clock.now() - timedelta(days=9)))
    later = time.monotonic() + retention_sql.OLDEST_KEPT + 1
    monkeypatch.setattr(retention_sql, "_monotonic", lambda: later)  # the kept figure's time is over
    assert sessions(await retention_sql.module_figures(store)) == (3, iso(clock.now() - timedelta(days=20)))
