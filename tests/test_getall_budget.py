"""GET-all pages bounded in bytes (``page_max_bytes``): large objects come fewer to a page, none lost.

A page of 1,000 stored objects of 50 KB each was a 54 MB answer that took the hub from 90 to
351 MB (818 MB with four readers at once). Now a page carries stored JSON up to the budget, at
least one object whatever its size, and its ``Link`` goes on from the last object served: the
server "might decide to return fewer objects [...] to prevent [...] overloading the system"
(transport_and_format, Pagination, ``limit``), and ``X-Limit`` still shows the upper limit.

On the wire against the real app, both backends: a 2.2.1 reader crawling with ``limit=1000``
gets every Location once, in order, pages as full as the budget allows; an object larger than
the budget comes alone; a 2.1.1 reader (bridged pages: some Locations withheld from it) too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.keys import STORE
from storage import objects as object_sql
from tests.support.bridge import join, location
from tests.support.crawl import crawl
from tests.support.fakes import FakePlatform
from tests.support.hub import HubHandle

pytestmark = pytest.mark.both_backends

CPO = ("BE", "BEC", "CPO")
EMSP = ("DE", "E22", "EMSP")
EMSP11 = ("NL", "E11", "EMSP")
BUDGET = 4096


def stored_size(item: dict[str, Any]) -> int:
    """Bytes of an object as the hub stores it (compact JSON, UTF-8)."""
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())


def big_location(location_id: str, evses: int) -> dict[str, Any]:
    """The example Location with ``evses`` EVSEs (about 400 bytes each)."""
    body = location("2.2.1", location_id)
    first = body["evses"][0]
    body["evses"] = [
        {**first, "uid": f"{location_id}-E{n}", "evse_id": f"BE*BEC*E{location_id}{n:04d}"} for n in range(evses)
    ]
    return body


async def put_locations(hub: HubHandle, cpo: FakePlatform, bodies: list[dict[str, Any]]) -> None:
    """The CPO pushes each Location (a broadcast: stored for every reader)."""
    for body in bodies:
        path = f"/ocpi/2.2.1/locations/receiver/BE/BEC/{body['id']}"
        status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=body)
        assert (status, answer["status_code"]) == (200, 1000), answer


async def test_large_locations_come_fewer_to_a_page_and_every_one_once(start_hub, make_peer) -> None:
    """limit=1000 over 12 Locations of ~1.7 KB with a 4 KB budget: pages of two, all 12 once, in order."""
    hub = await start_hub(page_max_bytes=BUDGET)
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp = await join(hub, make_peer, EMSP, "2.2.1")
    bodies = [big_location(f"L{n:02d}", 3) for n in range(12)]
    await put_locations(hub, cpo, bodies)
    size = stored_size(bodies[0])
    assert BUDGET // 3 < size <= BUDGET // 2  # two to a page
    seen = await crawl(hub, emsp, "/ocpi/2.2.1/locations/sender?limit=1000")
    ids = [item["id"] for item in seen.items]
    assert ids == [b["id"] for b in bodies]  # each once, in creation order
    assert [len(items) for items in seen.pages] == [2] * 6
    for items in seen.pages:
        assert sum(stored_size(i) for i in items) <= BUDGET
    assert set(seen.totals) == {12} and set(seen.limits) == {"1000"}  # X-Limit: the upper limit still
    assert seen.offsets == [2, 4, 6, 8, 10]
    # A partner's own offset (no cursor) lands on the same objects.
    status, body, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender?offset=5&limit=1000", token=emsp.hub_token)
    assert status == 200 and [i["id"] for i in body["data"]] == ["L05", "L06"]


async def test_an_object_larger_than_the_budget_comes_alone_and_the_crawl_goes_on(start_hub, make_peer) -> None:
    """A 20 KB Location between small ones: its own page, never an empty one, nothing skipped."""
    hub = await start_hub(page_max_bytes=BUDGET)
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp = await join(hub, make_peer, EMSP, "2.2.1")
    bodies = [big_location("A", 1), big_location("B", 1), big_location("HUGE", 50), big_location("C", 1)]
    assert stored_size(bodies[2]) > 4 * BUDGET
    await put_locations(hub, cpo, bodies)
    seen = await crawl(hub, emsp, "/ocpi/2.2.1/locations/sender?limit=1000")
    assert [[item["id"] for item in items] for items in seen.pages] == [["A", "B"], ["HUGE"], ["C"]]
    assert seen.sizes[1] > 4 * BUDGET  # the whole object, not a truncated one


async def test_bridged_211_pages_keep_the_budget_and_the_contract(start_hub, make_peer) -> None:
    """A 2.1.1 reader (unpublished Locations withheld from it): pages within the budget, each visible one once."""
    hub = await start_hub(page_max_bytes=BUDGET)
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    bodies = [big_location(f"L{n}", 3) for n in range(9)]
    for body in bodies[::3]:  # L0, L3, L6: not for 2.1.1 readers (2.1.1 has no publish field)
        body.update(publish=False, publish_allowed_to=[{"uid": "SOMEONE", "type": "RFID"}])
    await put_locations(hub, cpo, bodies)
    seen = await crawl(hub, emsp11, "/ocpi/2.1.1/locations?limit=1000")
    ids = [item["id"] for item in seen.items]
    assert ids == ["L1", "L2", "L4", "L5", "L7", "L8"]
    assert all(seen.pages)  # no empty page behind a Link
    assert all(sum(stored_size(i) for i in items) <= BUDGET for items in seen.pages)
    assert len(seen.pages) == 3  # two to a page: as full as the budget allows
    assert seen.totals[-1] == 6  # the crawl's end: exactly what it collected


async def test_the_store_leaves_the_bodies_past_the_budget_unread(start_hub, make_peer) -> None:
    """storage.objects.page with a budget: the rows past it come back without their bodies."""
    hub = await start_hub(page_max_bytes=BUDGET)
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    bodies = [big_location(f"L{n}", 3) for n in range(5)]
    await put_locations(hub, cpo, bodies)
    store = hub.app[STORE]
    size = stored_size(bodies[0])
    seen: list[Any] = []
    fetchall = store.fetchall

    async def spy(sql: str, params: Any = ()) -> Any:
        rows = await fetchall(sql, params)
        if sql.startswith("WITH page"):  # the page's own query (not has_directed's probe)
            seen.extend(rows)
        return rows

    store.fetchall = spy  # type: ignore[method-assign]
    try:
        found = await object_sql.page(store, "locations", viewers=["DE*E22"], limit=1000, max_bytes=2 * size)
    finally:
        del store.fetchall
    assert len(found.bodies) == 2 and found.more and found.cut and found.sizes == [size, size]
    assert [r["body"] is None for r in seen] == [False, False, True, True, True]
    nothing = await object_sql.page(store, "locations", viewers=["DE*E22"], limit=1000, max_bytes=0, first_always=False)
    assert nothing.bodies == [] and nothing.more and nothing.cut
    one = await object_sql.page(store, "locations", viewers=["DE*E22"], limit=1000, max_bytes=0)
    assert len(one.bodies) == 1 and one.cut
    plain = await object_sql.page(store, "locations", viewers=["DE*E22"], limit=3)
    assert len(plain.bodies) == 3 and plain.more and not plain.cut
