"""GET-all pages for readers on another OCPI version: what they are served is what they are counted.

Some stored 2.2.1 objects never reach a reader on another version (an unpublished Location
toward 2.1.1, a CDR whose embedded Location the hub cannot complete: routing/versions/
answers.py). A 2.1.1 eMSP crawls ``/ocpi/2.1.1/{module}`` on the wire, against the real app
on both backends, following ``Link rel=next`` (transport_and_format, Pagination): every page
but the last is full, nothing is served twice or skipped, the last page's ``X-Total-Count`` is
exactly what the crawl collected and no page's is below what it will collect. Clients that
stop on a short page, or loop until they hold ``X-Total-Count`` items, get everything.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.keys import STORE
from routing import getall
from storage import objects as object_sql
from tests.support.bridge import hub_path, join, location, recorded_losses, validate
from tests.support.crawl import LINK, Crawl, crawl
from tests.support.fakes import FakePlatform
from tests.support.hub import HubHandle, MakePeer
from tests.support.routing import cdr_for, example, rh
from tests.support.waiting import settle, wait_for

pytestmark = pytest.mark.both_backends

CPO = ("BE", "BEC", "CPO")
EMSP11 = ("NL", "E11", "EMSP")
EMSP22 = ("DE", "E22", "EMSP")
HUB = ("NL", "HUB")
# Ten Locations; L0, L3, L4 and L9 unpublished (withheld from 2.1.1: the first, a run, the
# last), L6 unpublished but naming the 2.1.1 eMSP's own Token (it gets it).
UNPUBLISHED = {"L0", "L3", "L4", "L9"}
NAMES_ITS_TOKEN = "L6"
VISIBLE_211 = ["L1", "L2", "L5", "L6", "L7", "L8"]
TOKEN_211 = {
    "uid": "E11TOK",
    "type": "RFID",
    "auth_id": "NL-E11-C00000001-X",
    "issuer": "E11",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2026-12-01T10:00:00Z",
}


def assert_consistent(seen: Crawl, expected: list[str], limit: int) -> None:
    """The pagination contract, as a strict client relies on it."""
    ids = [item["id"] for item in seen.items]
    assert ids == expected  # each once, in creation order, none skipped
    assert all(len(page) == limit for page in seen.pages[:-1]), [len(p) for p in seen.pages]
    assert seen.pages[-1] or len(seen.pages) == 1  # no empty page behind a Link
    assert seen.totals[-1] == len(expected)  # the last page: exactly what the crawl collected
    assert seen.totals == sorted(seen.totals, reverse=True)  # never rises while crawling
    served = 0
    for page, total in zip(seen.pages, seen.totals, strict=True):
        served += len(page)
        assert total >= served  # never below what the reader holds
    assert seen.offsets == [sum(len(p) for p in seen.pages[: n + 1]) for n in range(len(seen.offsets))]


async def unpublished_network(hub: HubHandle, make_peer: MakePeer) -> tuple[FakePlatform, FakePlatform, FakePlatform]:
    """A 2.2.1 CPO with ten Locations (four withheld from 2.1.1), a 2.1.1 and a 2.2.1 eMSP."""
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    emsp22 = await join(hub, make_peer, EMSP22, "2.2.1")
    status, answer, _ = await hub.call(
        "PUT", "/ocpi/2.1.1/tokens/NL/E11/E11TOK", token=emsp11.hub_token, json=TOKEN_211
    )
    assert (status, answer["status_code"]) == (200, 1000), answer
    for n in range(10):
        body = location("2.2.1", f"L{n}")
        if body["id"] in UNPUBLISHED:
            body.update(publish=False, publish_allowed_to=[{"uid": "SOMEONE", "type": "RFID"}])
        elif body["id"] == NAMES_ITS_TOKEN:
            body.update(publish=False, publish_allowed_to=[{"uid": "E11TOK", "type": "RFID"}])
        path = hub_path("2.2.1", "locations", "RECEIVER", f"BE/BEC/L{n}")
        status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=body, headers=rh(CPO, HUB))
        assert (status, answer["status_code"]) == (200, 1000), answer
    return cpo, emsp11, emsp22


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 6, 7])
async def test_211_crawl_of_locations_collects_exactly_its_total(start_hub, make_peer, limit) -> None:
    """Unpublished Locations first, in a run and last: full pages, each once, the total what is collected."""
    hub = await start_hub()
    _, emsp11, emsp22 = await unpublished_network(hub, make_peer)
    seen = await crawl(hub, emsp11, f"/ocpi/2.1.1/locations?limit={limit}")
    assert_consistent(seen, VISIBLE_211, limit)
    for item in seen.items:
        validate("2.1.1", "Location", item)
    # 2.1.1 X-Limit: "Number of objects that are returned ... an upper limit" (the page size).
    assert set(seen.limits) == {str(limit)}
    # The 2.2.1 reader is served every stored Location (publish is its own to honour), counted exactly.
    seen22 = await crawl(hub, emsp22, f"/ocpi/2.2.1/locations/sender?limit={limit}")
    assert_consistent(seen22, [f"L{n}" for n in range(10)], limit)
    assert set(seen22.totals) == {10} and set(seen22.limits) == {"1000"}


async def test_211_total_is_exact_once_nothing_withheld_lies_ahead(start_hub, make_peer) -> None:
    """limit=3: page 1 withholds L0, L3, L4 on the way (7 = 10 - 3); page 2 reaches L9 and the end (6)."""
    hub = await start_hub()
    _, emsp11, _ = await unpublished_network(hub, make_peer)
    seen = await crawl(hub, emsp11, "/ocpi/2.1.1/locations?limit=3")
    assert [[i["id"] for i in page] for page in seen.pages] == [["L1", "L2", "L5"], ["L6", "L7", "L8"]]
    assert seen.totals == [7, 6]
    # One page takes everything: the total is exact from the first answer.
    whole = await crawl(hub, emsp11, "/ocpi/2.1.1/locations")
    assert [i["id"] for i in whole.items] == VISIBLE_211 and whole.totals == [6] and whole.limits == ["1000"]


async def test_strict_211_clients_get_everything(start_hub, make_peer) -> None:
    """A client that stops on a short page, and one that loops until it holds X-Total-Count items."""
    hub = await start_hub()
    _, emsp11, _ = await unpublished_network(hub, make_peer)
    collected: list[str] = []
    url: str | None = "/ocpi/2.1.1/locations?limit=2"
    while url is not None:  # stops on a short page
        _, body, headers = await hub.call("GET", url, token=emsp11.hub_token)
        collected += [i["id"] for i in body["data"]]
        match = LINK.match(headers.get("Link", ""))
        url = match.group(1) if match and len(body["data"]) == 2 else None
    assert collected == VISIBLE_211
    collected, total, url = [], None, "/ocpi/2.1.1/locations?limit=2"
    for _ in range(20):  # loops until it holds X-Total-Count items (read on every page)
        _, body, headers = await hub.call("GET", url, token=emsp11.hub_token)
        collected += [i["id"] for i in body["data"]]
        total = int(headers["X-Total-Count"])
        if len(collected) >= total:
            break
        url = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
    assert collected == VISIBLE_211 and total == len(VISIBLE_211)


async def test_211_crawl_of_cdrs_leaves_out_what_2_1_1_cannot_carry(start_hub, make_peer) -> None:
    """CDRs at an EVSE the CPO has since removed lack 2.1.1's required voltage/amperage: left out, not counted."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    site = example("location_example.json")  # EVSEs 3256 and 3257
    path = "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"
    status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=site)
    assert (status, answer["status_code"]) == (200, 1000), answer
    expected = []
    for n in range(8):
        cdr = cdr_for(CPO, EMSP11, f"C{n}")
        if n in (0, 2, 3, 7):  # the first, a run, the last
            cdr["cdr_location"].update(evse_uid="3257", evse_id="BE*BEC*E041503004")
        else:
            expected.append(f"C{n}")
        status, answer, _ = await hub.call("POST", "/ocpi/2.2.1/cdrs/receiver", token=cpo.hub_token, json=cdr)
        assert (status, answer["status_code"]) == (200, 1000), answer
    await wait_for(lambda: len(emsp11.requests_to("/cdrs")) == 8)  # each delivered while it could be
    # The CPO replaces the Location without EVSE 3257: its CDRs can no longer be given in 2.1.1
    # (the embedded Location's Connector needs voltage and amperage, from the stored Location).
    site["evses"] = [e for e in site["evses"] if e["uid"] != "3257"]
    status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=site)
    assert (status, answer["status_code"]) == (200, 1000), answer
    for limit in (1, 2, 3, 5):
        seen = await crawl(hub, emsp11, f"/ocpi/2.1.1/cdrs?limit={limit}")
        assert_consistent(seen, expected, limit)
        for item in seen.items:
            validate("2.1.1", "CDR", item)
    losses = await recorded_losses(hub)
    assert any(loss["module"] == "cdrs" and loss["kind"] == "dropped" for loss in losses), losses


@pytest.mark.parametrize("version", ["2.1.1", "2.3.0"])
async def test_bridged_reader_with_nothing_withheld_is_counted_exactly(start_hub, make_peer, version) -> None:
    """Nothing withheld: every page's X-Total-Count is the stored count, as for a 2.2.1 reader."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    reader = await join(hub, make_peer, EMSP11, version)
    for n in range(5):
        path = hub_path("2.2.1", "locations", "RECEIVER", f"BE/BEC/L{n}")
        status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=location("2.2.1", f"L{n}"))
        assert (status, answer["status_code"]) == (200, 1000), answer
    path = hub_path(version, "locations", "SENDER") + "?limit=2"
    seen = await crawl(hub, reader, path, headers=None if version == "2.1.1" else rh(EMSP11, HUB))
    assert_consistent(seen, [f"L{n}" for n in range(5)], 2)
    assert seen.totals == [5, 5, 5]
    for item in seen.items:
        validate(version, "Location", item)


async def test_past_the_scan_budget_a_short_page_keeps_its_link(start_hub, make_peer, monkeypatch) -> None:
    """A request judges at most SCAN_ROWS rows: a longer withheld run gives a short page, the Link goes on."""
    monkeypatch.setattr(getall, "SCAN_ROWS", 3)
    monkeypatch.setattr(getall, "BATCH_ROWS", 1)
    hub = await start_hub()
    _, emsp11, _ = await unpublished_network(hub, make_peer)
    seen = await crawl(hub, emsp11, "/ocpi/2.1.1/locations?limit=2")
    # L0 L1 L2 | L3 L4 L5 | L6 L7 L8 (L9 left: withheld, the end) - three rows judged per request.
    assert [[i["id"] for i in page] for page in seen.pages] == [["L1", "L2"], ["L5"], ["L6", "L7"], ["L8"]]
    assert [i["id"] for i in seen.items] == VISIBLE_211 and seen.totals[-1] == len(VISIBLE_211)
    assert seen.totals == sorted(seen.totals, reverse=True)


class ObjectReads:
    """Counts the store's reads of stored objects while installed (the GET-all path's statements)."""

    def __init__(self, hub: HubHandle, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        store = hub.app[STORE]  # fetchone reads through fetchall (storage/db.py)
        monkeypatch.setattr(store, "fetchall", self._counting(store.fetchall))

    def _counting(self, read: Any) -> Any:
        async def counted(sql: str, params: Any = ()) -> Any:
            if "objects" in sql:
                self.sql.append(sql)
            return await read(sql, params)

        return counted


async def test_211_cdr_page_reads_the_store_a_fixed_number_of_times(start_hub, make_peer, monkeypatch) -> None:
    """No read per item: the embedded Locations of a page's CDRs come in one query (limit 4 or 20: as many reads)."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    status, answer, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", token=cpo.hub_token, json=example("location_example.json")
    )
    assert (status, answer["status_code"]) == (200, 1000), answer
    for n in range(24):
        cdr = cdr_for(CPO, EMSP11, f"C{n}")
        status, answer, _ = await hub.call("POST", "/ocpi/2.2.1/cdrs/receiver", token=cpo.hub_token, json=cdr)
        assert (status, answer["status_code"]) == (200, 1000), answer
    await wait_for(lambda: len(emsp11.requests_to("/cdrs")) == 24)
    await settle(hub)
    reads = ObjectReads(hub, monkeypatch)
    counts = []
    for limit in (4, 20):
        before = len(reads.sql)
        _, body, headers = await hub.call("GET", f"/ocpi/2.1.1/cdrs?limit={limit}", token=emsp11.hub_token)
        assert len(body["data"]) == limit and headers["X-Total-Count"] == "24", headers
        counts.append(len(reads.sql) - before)
    # Counted (2: the directed-copy probe, the count), the rows (2: probe, page), the Locations (1).
    assert counts == [5, 5], reads.sql


async def test_a_run_of_withheld_locations_is_read_in_batches(start_hub, make_peer, monkeypatch) -> None:
    """120 unpublished Locations before 3 published: a 2.1.1 page reads them in batches, not one by one."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO, "2.2.1")
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    for n in range(123):
        body = location("2.2.1", f"L{n:03d}")
        if n < 120:
            body.update(publish=False, publish_allowed_to=[{"uid": "SOMEONE", "type": "RFID"}])
        path = hub_path("2.2.1", "locations", "RECEIVER", f"BE/BEC/L{n:03d}")
        status, answer, _ = await hub.call("PUT", path, token=cpo.hub_token, json=body, headers=rh(CPO, HUB))
        assert (status, answer["status_code"]) == (200, 1000), answer
    await settle(hub)
    reads = ObjectReads(hub, monkeypatch)
    seen = await crawl(hub, emsp11, "/ocpi/2.1.1/locations?limit=2")
    assert [[i["id"] for i in page] for page in seen.pages] == [["L120", "L121"], ["L122"]]
    assert seen.totals == [3, 3]  # the run withheld on page 1 is off the total from the first answer
    # Page 1 judges its 123 rows in 3 batches of 50 (BATCH_ROWS): per batch the directed-copy
    # probe, the rows and the Tokens the unpublished ones name (one query); plus the probe and
    # the count. Page 2: the probe and the rows (one Location, published: no Tokens to read).
    assert len(reads.sql) == 2 + 3 * 3 + 2, reads.sql


class _Recorder:
    """Stands in for the store to catch a storage function's statement."""

    def __init__(self) -> None:
        self.sql, self.params = "", list[Any]()

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        self.sql, self.params = sql, list(params)
        return []


@pytest.mark.sqlite_only("SQLite's EXPLAIN QUERY PLAN; the PostgreSQL runs count the statements above")
async def test_the_lookups_of_a_page_probe_the_object_key_index(start_hub) -> None:
    """One query for a page's Locations or Tokens: an index probe per key, never a scan of the module."""
    hub = await start_hub()
    recorder = _Recorder()
    await object_sql.get_many(recorder, "locations", ["BE/BEC/LOC1", "BE/BEC/LOC2"])  # type: ignore[arg-type]
    rows = await hub.app[STORE].fetchall("EXPLAIN QUERY PLAN " + recorder.sql, recorder.params)
    plan = "\n".join(str(r["detail"]) for r in rows)
    assert "(module=? AND object_key=?)" in plan and "SCAN objects" not in plan, plan
