"""GET-all from the hub's store, pull through the hub (Link proxied), and the CDR Location proxy.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from tests.support.fakes import envelope
from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    HUB,
    answers,
    cdr_for,
    example,
    module_requests,
    network,
    party_of,
    rh,
    session_for,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


async def _push_locations(net, count: int) -> list[dict[str, Any]]:
    """``count`` locations of CPO one, last_updated one day apart (2020-01-01 .. ), broadcast."""
    pushed = []
    for n in range(count):
        location = {**example("location_example.json"), "id": f"L{n}", "last_updated": f"2020-01-0{n + 1}T00:00:00Z"}
        status, body, _ = await net.call(
            "PUT", f"/ocpi/2.2.1/locations/receiver/BE/BEC/L{n}", net.cpo1, json=location, headers=rh(CPO1, HUB)
        )
        assert status == 200 and body["status_code"] == 1000, body
        pushed.append(location)
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == count)
    return pushed


@pytest.mark.parametrize("to_hub", [True, False], ids=["to-hub", "no-to"])
async def test_get_all_pages_with_filters_from_the_store(hub, make_peer, to_hub) -> None:
    net = await network(hub, make_peer)
    pushed = await _push_locations(net, 6)
    headers = rh(EMSP1, HUB if to_hub else None)
    # date_from inclusive (L1 at 01-02), date_to exclusive (L5 at 01-06 is out): L1..L4.
    url = "/ocpi/2.2.1/locations/sender/?date_from=2020-01-02T00:00:00Z&date_to=2020-01-06T00:00:00Z&limit=3"
    status, body, answer_headers = await net.call("GET", url, net.emsp1, headers=headers)
    assert status == 200 and body["status_code"] == 1000, body
    assert [loc["id"] for loc in body["data"]] == ["L1", "L2", "L3"]
    assert body["data"][0] == pushed[1]  # the stored copy, last_updated untouched
    assert answer_headers["X-Total-Count"] == "4"
    assert answer_headers["X-Limit"] == "1000"
    assert (answer_headers["OCPI-from-country-code"], answer_headers["OCPI-from-party-id"]) == HUB
    assert answer_headers["OCPI-to-party-id"] == "TNM"
    next_url = LINK.match(answer_headers["Link"]).group(1)  # type: ignore[union-attr]
    assert next_url.startswith(hub.base + "/ocpi/2.2.1/locations/sender/")
    params = parse_qs(urlsplit(next_url).query)
    # The hub's keyset cursor: the last position served and the crawl's total (counted once).
    assert re.fullmatch(r"\d+\.4", params.pop("cursor")[0])
    assert params == {
        "date_from": ["2020-01-02T00:00:00Z"],
        "date_to": ["2020-01-06T00:00:00Z"],
        "offset": ["3"],
        "limit": ["3"],
    }
    status, body, answer_headers = await net.call("GET", next_url, net.emsp1, headers=headers)
    assert status == 200 and [loc["id"] for loc in body["data"]] == ["L4"]
    assert "Link" not in answer_headers
    assert answer_headers["X-Total-Count"] == "4"
    # Nothing of this reached any CPO: it is answered from the store.
    assert module_requests(net.cpo1, "locations") == [] and module_requests(net.cpo2, "locations") == []


async def test_get_all_offset_beyond_the_end_is_an_empty_last_page(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await _push_locations(net, 2)
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/locations/sender?offset=5&limit=2", net.emsp2)
    assert status == 200 and body["data"] == [] and headers["X-Total-Count"] == "2" and "Link" not in headers


async def test_sessions_and_cdrs_are_visible_only_to_their_emsp(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for sid, emsp in (("S1", EMSP1), ("S2", EMSP2), ("S3", EMSP1)):
        status, body, _ = await net.call(
            "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{sid}", net.cpo1, json=session_for(CPO1, emsp, sid)
        )
        assert status == 200 and body["status_code"] == 1000, body
    for cid, emsp in (("C1", EMSP2), ("C2", EMSP1)):
        status, body, _ = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr_for(CPO1, emsp, cid))
        assert status == 200 and body["status_code"] == 1000, body
    seen: dict[str, tuple[list[str], list[str]]] = {}
    for name, peer in (("emsp1", net.emsp1), ("emsp2", net.emsp2), ("cpo2", net.cpo2)):
        _, sessions, sh = await net.call("GET", "/ocpi/2.2.1/sessions/sender/?date_from=2000-01-01T00:00:00Z", peer)
        _, cdrs, ch = await net.call("GET", "/ocpi/2.2.1/cdrs/sender/", peer, headers=rh(None, HUB))
        seen[name] = ([s["id"] for s in sessions["data"]], [c["id"] for c in cdrs["data"]])
        assert sh["X-Total-Count"] == str(len(sessions["data"])) and ch["X-Total-Count"] == str(len(cdrs["data"]))
    assert seen == {"emsp1": (["S1", "S3"], ["C2"]), "emsp2": (["S2"], ["C1"]), "cpo2": ([], [])}


# (module, puller, target, the puller's party, the target's party)
PULLS = [
    ("locations", "emsp1", "cpo1", EMSP1, CPO1),
    ("tariffs", "emsp2", "cpo2", EMSP2, CPO2),
    ("sessions", "emsp1", "cpo2", EMSP1, CPO2),
    ("cdrs", "emsp2", "cpo1", EMSP2, CPO1),
    ("tokens", "cpo1", "emsp2", CPO1, EMSP2),
]


@pytest.mark.parametrize(("module", "puller", "target", "frm", "to"), PULLS, ids=[p[0] for p in PULLS])
async def test_pull_passes_through_and_proxies_the_next_link(hub, make_peer, module, puller, target, frm, to) -> None:
    net = await network(hub, make_peer)
    src, dst = getattr(net, puller), getattr(net, target)
    sender_url = f"{dst.base}/ocpi/2.2.1/{module}/sender"

    async def paged(request: web.Request, body: Any) -> web.StreamResponse:
        offset = int(request.query.get("offset", "0"))
        headers = {"X-Total-Count": "2", "X-Limit": "1"}
        if offset == 0:
            # Some peers hard-code https:// in links; the hub hands out its own URL anyway.
            headers["Link"] = f'<{sender_url}?offset=1&limit=1&date_from=2020-01-01T00:00:00Z>; rel="next"'
        return web.json_response(envelope([{"id": f"item-{offset}"}]), headers=headers)

    dst.module_responder = paged
    status, body, headers = await net.call(
        "GET", f"/ocpi/2.2.1/{module}/sender/?date_from=2020-01-01T00:00:00Z&limit=1", src, headers=rh(frm, to)
    )
    assert status == 200 and body["data"] == [{"id": "item-0"}], body
    (first,) = module_requests(dst, module)
    assert first.path == f"/ocpi/2.2.1/{module}/sender"
    assert first.query == {"date_from": "2020-01-01T00:00:00Z", "limit": "1"}
    assert party_of(first, "from") == frm[:2] and party_of(first, "to") == to[:2]
    assert headers["X-Total-Count"] == "2" and headers["X-Limit"] == "1"
    hub_next = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
    assert hub_next.startswith(hub.base + "/ocpi/2.2.1/proxy/") and dst.base not in hub_next

    # Another platform cannot use the page URL; nothing reaches the target.
    other = net.emsp2 if src is not net.emsp2 else net.emsp1
    status, body, _ = await net.call("GET", hub_next, other)
    assert status == 404 and body["status_code"] == 2000, body
    assert len(module_requests(dst, module)) == 1

    status, body, headers = await net.call("GET", hub_next, src, headers={"X-Correlation-ID": "page-2"})
    assert status == 200 and body["data"] == [{"id": "item-1"}], body
    second = module_requests(dst, module)[1]
    assert second.path == f"/ocpi/2.2.1/{module}/sender"
    assert second.query == {"offset": "1", "limit": "1", "date_from": "2020-01-01T00:00:00Z"}
    assert party_of(second, "from") == frm[:2] and party_of(second, "to") == to[:2]
    assert "Link" not in headers
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == to[:2]


async def test_cdr_location_header_is_a_hub_url_proxying_the_get(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    cdr = cdr_for(CPO1, EMSP1, "CDR-9")
    emsp_location = f"{net.emsp1.base}/ocpi/2.2.1/cdrs/receiver/stored/CDR-9"

    async def emsp(request: web.Request, body: Any) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response(envelope(), headers={"Location": emsp_location})
        return web.json_response(envelope(cdr))

    net.emsp1.module_responder = emsp
    status, body, headers = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr, headers=rh(CPO1))
    assert status == 200 and body["status_code"] == 1000, body
    hub_location = headers["Location"]
    assert hub_location.startswith(hub.base + "/ocpi/2.2.1/proxy/") and net.emsp1.base not in hub_location
    status, body, _ = await net.call("GET", hub_location, net.cpo2)  # not the CPO that posted it
    assert status == 404
    status, body, _ = await net.call("GET", hub_location, net.cpo1)
    assert status == 200 and body["data"] == cdr, body
    get = module_requests(net.emsp1, "cdrs")[-1]
    assert (get.method, get.path) == ("GET", "/ocpi/2.2.1/cdrs/receiver/stored/CDR-9")


async def test_cdr_location_works_from_the_hub_copy_when_the_emsp_gave_none(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    cdr = cdr_for(CPO1, EMSP2, "CDR-10")
    net.emsp2.module_responder = answers()  # no Location header
    status, body, headers = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr)
    assert status == 200 and body["status_code"] == 1000, body
    assert headers["Location"].startswith(hub.base + "/ocpi/2.2.1/proxy/")
    status, body, _ = await net.call("GET", headers["Location"], net.cpo1)
    assert status == 200 and body["data"] == cdr, body
    assert [r.method for r in module_requests(net.emsp2, "cdrs")] == ["POST"]
