"""HubClientInfo: the hub's paginated list and its ClientInfo PUTs on register/suspend/resume/remove."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from hub.keys import CLIENT_INFO
from tests.support.bridge import join
from tests.support.fakes import FakePlatform, Received
from tests.support.routing import CPO1, EMSP1, EMSP2, connect, network
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def _infos(peer: FakePlatform) -> list[Received]:
    return peer.requests_to("/ocpi/2.2.1/hubclientinfo/receiver/")


def _assert_clientinfo_put(leg: Received, party: tuple[str, str, str], status: str) -> None:
    assert leg.method == "PUT"
    assert leg.path == f"/ocpi/2.2.1/hubclientinfo/receiver/{party[0]}/{party[1]}"
    assert leg.body["country_code"] == party[0] and leg.body["party_id"] == party[1]
    assert leg.body["role"] == party[2] and leg.body["status"] == status
    assert isinstance(leg.body["last_updated"], str) and leg.body["last_updated"].endswith("Z")
    # A configuration module: never routing headers.
    assert not any(h.lower().startswith("ocpi-") for h in leg.headers), leg.headers


async def test_get_lists_every_party_paginated(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/?limit=3", net.emsp1)
    assert status == 200 and body["status_code"] == 1000, body
    assert headers["X-Total-Count"] == "4" and headers["X-Limit"] == "1000"
    first = body["data"]
    assert len(first) == 3
    next_url = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
    assert next_url.startswith(hub.base + "/ocpi/2.2.1/hubclientinfo/")
    assert parse_qs(urlsplit(next_url).query) == {"offset": ["3"], "limit": ["3"]}
    status, body, headers = await net.call("GET", next_url, net.emsp1)
    assert status == 200 and len(body["data"]) == 1 and "Link" not in headers
    everyone = {(i["country_code"], i["party_id"], i["role"], i["status"]) for i in first + body["data"]}
    assert everyone == {
        ("BE", "BEC", "CPO", "CONNECTED"),
        ("DE", "ALL", "CPO", "CONNECTED"),
        ("NL", "TNM", "EMSP", "CONNECTED"),
        ("DE", "TNM", "EMSP", "CONNECTED"),
    }
    # The trailing slash is optional, and the answer carries no routing headers.
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/hubclientinfo", net.cpo2)
    assert status == 200 and len(body["data"]) == 4
    assert not any(h.lower().startswith("ocpi-") for h in headers)


async def test_a_230_readers_next_page_is_on_its_own_version(hub, make_peer) -> None:
    """The Link of a page read on /ocpi/2.3.0 stays on /ocpi/2.3.0 (the hub's Links follow the caller)."""
    await join(hub, make_peer, CPO1, "2.2.1")
    reader = await join(hub, make_peer, EMSP1, "2.3.0")
    status, body, headers = await hub.call("GET", "/ocpi/2.3.0/hubclientinfo/?limit=1", token=reader.hub_token)
    assert (status, body["status_code"], len(body["data"])) == (200, 1000, 1), body
    next_url = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
    assert next_url.startswith(hub.base + "/ocpi/2.3.0/hubclientinfo/"), next_url
    status, body, headers = await hub.call("GET", next_url, token=reader.hub_token)
    assert (status, len(body["data"])) == (200, 1) and "Link" not in headers and headers["X-Total-Count"] == "2"


async def test_registration_is_pushed_and_a_new_platform_learns_who_is_there(hub, make_peer) -> None:
    # mod_hub_client_info push model: every connected platform hears of a new party, and the new
    # platform receives the ClientInfo of every party already connected (no GET needed).
    cpo = await connect(hub, make_peer, CPO1)
    emsp = await connect(hub, make_peer, EMSP1)
    await wait_for(lambda: len(_infos(cpo)) == 1 and len(_infos(emsp)) == 1)
    _assert_clientinfo_put(_infos(cpo)[0], EMSP1, "CONNECTED")
    _assert_clientinfo_put(_infos(emsp)[0], CPO1, "CONNECTED")
    late = await connect(hub, make_peer, EMSP2)
    await wait_for(lambda: len(_infos(cpo)) == 2 and len(_infos(emsp)) == 2 and len(_infos(late)) == 2)
    _assert_clientinfo_put(_infos(cpo)[1], EMSP2, "CONNECTED")
    _assert_clientinfo_put(_infos(emsp)[1], EMSP2, "CONNECTED")
    told = sorted(_infos(late), key=lambda leg: leg.path)
    _assert_clientinfo_put(told[0], CPO1, "CONNECTED")
    _assert_clientinfo_put(told[1], EMSP1, "CONNECTED")
    assert not any(leg.body["party_id"] == EMSP2[1] and leg.body["country_code"] == EMSP2[0] for leg in told)


async def test_suspend_resume_and_remove_are_pushed(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    emsp2_id = await net.platform_id(net.emsp2)
    others = (net.cpo1, net.cpo2, net.emsp1)

    status, body = await hub.admin("POST", f"/admin/platforms/{emsp2_id}/suspend")
    assert status == 200 and body["status"] == "SUSPENDED", body
    await wait_for(lambda: all(len(_infos(p)) == 1 for p in others))
    for peer in others:
        _assert_clientinfo_put(_infos(peer)[0], EMSP2, "SUSPENDED")
    assert _infos(net.emsp2) == []
    # A suspended platform may not use functional modules meanwhile.
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp2)
    assert status == 403, body
    _, listed, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.cpo1)
    assert {(i["party_id"], i["status"]) for i in listed["data"] if i["country_code"] == "DE"} == {
        ("ALL", "CONNECTED"),
        ("TNM", "SUSPENDED"),
    }

    status, body = await hub.admin("POST", f"/admin/platforms/{emsp2_id}/resume")
    assert status == 200 and body["status"] == "CONNECTED", body
    await wait_for(lambda: all(len(_infos(p)) == 2 for p in others))
    for peer in others:
        _assert_clientinfo_put(_infos(peer)[1], EMSP2, "CONNECTED")

    cpo2_id = await net.platform_id(net.cpo2)
    status, body = await hub.admin("DELETE", f"/admin/platforms/{cpo2_id}")
    assert status == 200 and body["status"] == "UNREGISTERED", body
    assert [r.method for r in net.cpo2.requests_to("/ocpi/2.2.1/credentials")] == ["DELETE"]
    rest = (net.cpo1, net.emsp1, net.emsp2)
    await wait_for(lambda: all(any(r.body["party_id"] == "ALL" for r in _infos(p)) for p in rest))
    for peer in rest:
        (leg,) = [r for r in _infos(peer) if r.body["party_id"] == "ALL"]
        # UNREGISTERED is announced as SUSPENDED: ConnectionStatus has no such value.
        _assert_clientinfo_put(leg, ("DE", "ALL", "CPO"), "SUSPENDED")
    assert all(r.body["party_id"] != "ALL" for r in _infos(net.cpo2))


async def test_the_list_is_built_once_per_change_and_follows_every_change(hub, make_peer) -> None:
    """Pages are slices of one list built per directory change (it was rebuilt and sorted per request)."""
    net = await network(hub, make_peer)
    listing = hub.app[CLIENT_INFO]
    builds: list[int] = []
    build = listing._build

    def counted() -> None:
        builds.append(1)
        build()

    listing._build = counted  # type: ignore[method-assign]
    _, whole, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.cpo1)
    pages = []
    for offset in range(4):
        _, body, _ = await net.call("GET", f"/ocpi/2.2.1/hubclientinfo/?offset={offset}&limit=1", net.emsp1)
        pages += body["data"]
    assert pages == whole["data"] and len(builds) <= 1  # (built at most once: another test may have built it)
    built = len(builds)
    pages[0]["status"] = "CHANGED BY A READER"  # a page's objects are the reader's own copies
    _, again, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.cpo1)
    assert again["data"] == whole["data"] and len(builds) == built

    # A change: the next page shows it (built once more).
    emsp2_id = await net.platform_id(net.emsp2)
    status, body = await hub.admin("POST", f"/admin/platforms/{emsp2_id}/suspend")
    assert status == 200, body
    _, after, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.cpo1)
    assert {(i["country_code"], i["party_id"], i["status"]) for i in after["data"]} == {
        ("BE", "BEC", "CONNECTED"),
        ("DE", "ALL", "CONNECTED"),
        ("NL", "TNM", "CONNECTED"),
        ("DE", "TNM", "SUSPENDED"),
    }
    assert len(builds) == built + 1

    # date_from inclusive, date_to exclusive (transport_and_format, Pagination), as the list is ordered.
    items = after["data"]
    stamps = sorted({i["last_updated"] for i in items})
    assert [i["last_updated"] for i in items] == sorted(i["last_updated"] for i in items)
    for date_from, date_to in ((stamps[0], None), (stamps[-1], None), (None, stamps[-1]), (stamps[0], stamps[-1])):
        query = "&".join(f"{k}={v}" for k, v in (("date_from", date_from), ("date_to", date_to)) if v)
        _, body, headers = await net.call("GET", f"/ocpi/2.2.1/hubclientinfo/?{query}", net.cpo1)
        low, high = date_from or "", date_to or "~"
        expected = [i for i in items if low <= i["last_updated"] < high]
        assert body["data"] == expected and headers["X-Total-Count"] == str(len(expected)), query
