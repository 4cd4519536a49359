"""What real partners do and the 2.2.1 hub rules around it (issue 11), checked on the wire.

Each test is named after the rule it checks: redirects, list-wrapped answers, confidential and
stable GET-all, one broadcast leg per party, routing headers and ids on everything, 4001 vs
4003, the per-platform token encoding, and HubClientInfo for parties that leave.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from hub.keys import PULLER
from tests.support.fakes import envelope
from tests.support.routing import (
    CPO1,
    EMSP1,
    EMSP2,
    HUB,
    cdr_for,
    connect,
    example,
    module_requests,
    network,
    party_of,
    rh,
    session_for,
)
from tests.support.waiting import until, wait_for

LOC_URL = "/ocpi/2.2.1/locations/receiver/BE/BEC/"
LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def _location(loc_id: str, name: str = "x", last_updated: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    loc: dict[str, Any] = example("location_example.json")
    loc.update(id=loc_id, name=name, last_updated=last_updated)
    return loc


async def _traffic(hub: Any, correlation_id: str) -> list[dict[str, Any]]:
    status, rows = await hub.admin("GET", f"/admin/traffic?correlation_id={correlation_id}")
    assert status == 200
    return list(rows)


# ---- redirects (FastAPI answers 307 to a URL without its trailing slash) -------------------------


async def test_cdr_post_follows_a_307_to_the_slashed_url_with_method_and_body(hub, make_peer) -> None:
    net = await network(hub, make_peer)

    async def fastapi_like(request: web.Request, body: Any) -> web.StreamResponse:
        if not request.path.endswith("/"):
            return web.Response(status=307, headers={"Location": str(request.url.with_path(request.path + "/"))})
        return web.json_response(envelope(), headers={"Location": f"{net.emsp1.base}/cdrs/1"})

    net.emsp1.module_responder = fastapi_like
    cdr = cdr_for(CPO1, EMSP1, "CDR-307")
    status, body, _ = await net.call(
        "POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr, headers=rh(CPO1, EMSP1, X_Correlation_ID="c-307")
    )
    assert status == 200 and body["status_code"] == 1000, body
    got = module_requests(net.emsp1, "cdrs")
    assert [(r.method, r.path.endswith("/")) for r in got] == [("POST", False), ("POST", True)]
    assert got[1].body == cdr and got[1].raw == got[0].raw  # 307: same method, same body
    legs = [r for r in await _traffic(hub, "c-307") if r["direction"] == "out"]
    assert [r["http_status"] for r in legs] == [307, 200]
    assert "redirected" in legs[0]["note"]


async def test_a_302_on_a_push_is_not_turned_into_a_get_and_is_never_retried(hub, make_peer) -> None:
    net = await network(hub, make_peer)

    async def moved(request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": str(request.url) + "/"})

    net.emsp1.module_responder = moved
    status, body, headers = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/S302",
        net.cpo1,
        json=session_for(CPO1, EMSP1, "S302"),
        headers=rh(CPO1, EMSP1),
    )
    assert status == 200 and body["status_code"] == 4001 and "not followed" in body["status_message"], body
    assert (party_of_headers(headers, "from"), party_of_headers(headers, "to")) == (HUB, CPO1[:2])
    assert len(module_requests(net.emsp1, "sessions")) == 1  # one attempt, no GET, no retry
    # The worker records the dead letter just after answering.
    _, letters = await until(lambda: hub.admin("GET", "/admin/deadletters"), lambda answer: bool(answer[1]), step=0.01)
    assert [m["module"] for m in letters] == ["sessions"]
    assert "not followed" in letters[0]["last_error"]


async def test_a_redirect_loop_and_too_many_hops_are_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    hops: list[str] = []

    async def loop(request: web.Request, body: Any) -> web.StreamResponse:
        hops.append(request.path)
        other = "/a" if request.path.endswith("/b") else "/b"
        return web.Response(status=307, headers={"Location": str(request.url.with_path("/loop" + other))})

    net.cpo1.module_responder = loop
    _, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1, headers=rh(EMSP1, CPO1))
    assert body["status_code"] == 4001 and "loop" in body["status_message"], body
    assert len(hops) <= 4


def party_of_headers(headers: Any, side: str) -> tuple[str, str] | None:
    cc, pid = headers.get(f"OCPI-{side}-country-code"), headers.get(f"OCPI-{side}-party-id")
    return (cc, pid) if cc and pid else None


# ---- the tolerant reader: [object] where the spec says object -----------------------------------


async def test_a_list_wrapped_command_response_is_read_and_relayed_as_an_object(hub, make_peer) -> None:
    net = await network(hub, make_peer)

    async def cpo(request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response(envelope([{"result": "ACCEPTED", "timeout": 30}]))

    net.cpo1.module_responder = cpo
    body = {
        "response_url": f"{net.emsp1.base}/ocpi/2.2.1/commands/sender/START_SESSION/1",
        "token": example("token_put_example.json"),
        "location_id": "LOC1",
    }
    status, answer, _ = await net.call(
        "POST", "/ocpi/2.2.1/commands/receiver/START_SESSION", net.emsp1, json=body, headers=rh(EMSP1, CPO1)
    )
    assert status == 200 and answer["data"] == {"result": "ACCEPTED", "timeout": 30}, answer  # spec-shaped
    hub_url = json.loads(module_requests(net.cpo1, "commands")[0].raw)["response_url"]
    net.emsp1.module_responder = None
    status, answer, _ = await net.hub.call(
        "POST", hub_url, token=net.cpo1.hub_token, json={"result": "ACCEPTED"}, headers=rh(CPO1, EMSP1)
    )
    assert status == 200 and answer["status_code"] == 1000, answer  # the callback was not expired
    assert [r.body for r in module_requests(net.emsp1, "commands")] == [{"result": "ACCEPTED"}]


# ---- GET-all: confidential and stable ---------------------------------------------------------------


async def test_directed_pushes_are_visible_only_to_their_recipient(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for emsp, name in ((EMSP1, "for one"), (EMSP2, "for two")):
        status, body, _ = await net.call(
            "PUT", LOC_URL + "PRIV", net.cpo1, json=_location("PRIV", name), headers=rh(CPO1, emsp)
        )
        assert status == 200 and body["status_code"] == 1000, body
    status, body, _ = await net.call("PUT", LOC_URL + "PUB", net.cpo1, json=_location("PUB"), headers=rh(CPO1, HUB))
    assert body["status_code"] == 1000, body
    # A broadcast of PRIV too: each recipient still sees its own directed copy, counted once.
    _, body, _ = await net.call("PUT", LOC_URL + "BOTH", net.cpo1, json=_location("BOTH", "all"), headers=rh(CPO1, HUB))
    await net.call("PUT", LOC_URL + "BOTH", net.cpo1, json=_location("BOTH", "mine"), headers=rh(CPO1, EMSP1))
    for peer, party, name in ((net.emsp1, EMSP1, "for one"), (net.emsp2, EMSP2, "for two")):
        _, page, headers = await net.call("GET", "/ocpi/2.2.1/locations/sender/", peer, headers=rh(party, HUB))
        both = "mine" if party == EMSP1 else "all"
        assert {(loc["id"], loc["name"]) for loc in page["data"]} == {("PRIV", name), ("PUB", "x"), ("BOTH", both)}
        assert headers["X-Total-Count"] == "3"
        url = "/ocpi/2.2.1/locations/sender/?date_from=2030-01-01T00:00:00Z"
        _, page, headers = await net.call("GET", url, peer, headers=rh(party, HUB))
        assert page["data"] == [] and headers["X-Total-Count"] == "0"
        _, one, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/PRIV", peer, headers=rh(party, HUB))
        assert one["data"]["name"] == name
    # The other CPO, to whom nothing was directed, sees only what was broadcast.
    _, page, headers = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.cpo2)
    assert [loc["id"] for loc in page["data"]] == ["PUB", "BOTH"] and headers["X-Total-Count"] == "2"


async def test_a_crawl_skips_no_object_that_changes_while_it_pages(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for n in range(5):
        await net.call("PUT", LOC_URL + f"L{n}", net.cpo1, json=_location(f"L{n}"), headers=rh(CPO1, HUB))
    seen: list[str] = []
    url = "/ocpi/2.2.1/locations/sender/?limit=2"
    for page_no in range(5):
        _, page, headers = await net.call("GET", url, net.emsp1, headers=rh(EMSP1, HUB))
        assert headers["X-Total-Count"] == "5"
        seen += [loc["id"] for loc in page["data"]]
        if page_no == 0:  # L0 and L3 change after the first page: neither moves, nothing is skipped
            for n in (0, 3):
                await net.call(
                    "PUT",
                    LOC_URL + f"L{n}",
                    net.cpo1,
                    json=_location(f"L{n}", "new", "2026-06-01T00:00:00Z"),
                    headers=rh(CPO1, HUB),
                )
        if "Link" not in headers:
            break
        url = LINK.match(headers["Link"]).group(1)  # type: ignore[union-attr]
        assert parse_qs(urlsplit(url).query)["limit"] == ["2"]
    assert seen == ["L0", "L1", "L2", "L3", "L4"]


# ---- broadcast: one leg per receiving party -----------------------------------------------------


async def test_broadcast_sends_one_request_per_receiving_party(hub, make_peer) -> None:
    cpo = await connect(hub, make_peer, CPO1)
    two = await connect(hub, make_peer, EMSP1, EMSP2)
    nap = await connect(hub, make_peer, ("NL", "NAP", "NAP"))
    _status, body, _ = await hub.call(
        "PUT", LOC_URL + "LOC1", token=cpo.hub_token, json=_location("LOC1"), headers=rh(CPO1, HUB)
    )
    assert body["status_code"] == 1000 and "broadcast to 3 parties" in body["status_message"], body
    await wait_for(lambda: len(module_requests(two, "locations")) == 2 and len(module_requests(nap, "locations")) == 1)
    assert sorted(party_of(r, "to") for r in module_requests(two, "locations")) == sorted([EMSP1[:2], EMSP2[:2]])
    assert all(
        party_of(r, "from") == HUB for r in module_requests(two, "locations") + module_requests(nap, "locations")
    )


# ---- who answers, with which headers and codes ----------------------------------------------------


async def test_a_known_party_that_is_not_connected_is_4003_and_an_unknown_one_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    status, _ = await hub.admin("POST", f"/admin/platforms/{await net.platform_id(net.emsp2)}/suspend")
    assert status == 200
    url = "/ocpi/2.2.1/sessions/receiver/BE/BEC/S1"
    _, body, headers = await net.call(
        "PUT", url, net.cpo1, json=session_for(CPO1, EMSP2, "S1"), headers=rh(CPO1, EMSP2)
    )
    assert body["status_code"] == 4003, body
    _, body, headers = await net.call(
        "PUT", url, net.cpo1, json=session_for(CPO1, EMSP2, "S1"), headers=rh(CPO1, ("XX", "NOP"))
    )
    assert body["status_code"] == 4001, body
    # Errors the hub makes are answers FROM the hub TO the requester, with the request's ids.
    assert (party_of_headers(headers, "from"), party_of_headers(headers, "to")) == (HUB, CPO1[:2])
    assert headers["X-Request-ID"] and headers["X-Correlation-ID"]
    assert body["status_message"]


async def test_every_envelope_the_hub_makes_has_a_status_message(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _, versions, _ = await net.call("GET", "/ocpi/versions", net.emsp1)
    _, page, _ = await net.call("GET", "/ocpi/2.2.1/tariffs/sender/", net.emsp1)
    _, missing, _ = await net.call("GET", "/ocpi/2.2.1/nowhere", net.emsp1)
    assert all(isinstance(b["status_message"], str) and b["status_message"] for b in (versions, page, missing))


async def test_handshake_calls_carry_request_and_correlation_ids(hub, make_peer) -> None:
    peer = await connect(hub, make_peer, CPO1)
    calls = [r for r in peer.received if r.path.startswith("/ocpi/versions") or r.path == "/ocpi/2.2.1"]
    assert calls and all(r.headers.get("X-Request-ID") and r.headers.get("X-Correlation-ID") for r in calls)


# ---- per-platform interop: the token encoding ------------------------------------------------------


async def test_a_partner_that_reads_raw_tokens_only_is_retried_raw_and_remembered(hub, make_peer) -> None:
    peer = await make_peer(CPO1, accept_base64=False)
    status, platform = await hub.admin(
        "POST", "/admin/connections", {"versions_url": peer.versions_url, "token_a": peer.token_a}
    )
    assert status == 201 and platform["interop"] == {"send_base64": False, "pull_interval": None}, platform
    first = [r for r in peer.received if r.path == "/ocpi/versions"]
    assert first[0].headers["Authorization"] != "Token " + peer.token_a  # Base64 first (2.2.1)
    assert first[1].headers["Authorization"] == "Token " + peer.token_a  # then raw, once
    status, body = await hub.admin("PATCH", f"/admin/platforms/{platform['id']}", {"interop": {"send_base64": True}})
    assert status == 200 and body["interop"] == {"send_base64": True, "pull_interval": None}
    bad_bodies: list[Any] = [{"interop": {"send_base64": "yes"}}, {"interop": {"other": 1}}, {}, []]
    bad_bodies += [{"interop": {"pull_interval": v}} for v in (0, 5, True, "60", 10**9)]
    for bad in bad_bodies:
        status, body = await hub.admin("PATCH", f"/admin/platforms/{platform['id']}", bad)
        assert status == 400 and body["status_code"] == 2001, (bad, body)


# ---- HubClientInfo: never deleted --------------------------------------------------------------------


async def test_a_party_that_leaves_its_platform_is_kept_as_suspended(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    both = await connect(hub, make_peer, ("NL", "ONE", "EMSP"), ("NL", "TWO", "EMSP"))
    await wait_for(lambda: len(net.cpo1.requests_to("/hubclientinfo/")) >= 2)
    net.clear()
    both.roles = [("NL", "ONE", "EMSP")]
    status, body, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/credentials", token=both.hub_token, json=both.credentials_body()
    )
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: any(r.body["party_id"] == "TWO" for r in net.cpo1.requests_to("/hubclientinfo/")))
    pushed = [r.body for r in net.cpo1.requests_to("/hubclientinfo/") if r.body["party_id"] == "TWO"]
    assert pushed[-1]["status"] == "SUSPENDED"
    _, listed, _ = await net.call("GET", "/ocpi/2.2.1/hubclientinfo/", net.cpo1)
    assert {(i["party_id"], i["status"]) for i in listed["data"] if i["country_code"] == "NL"} >= {
        ("ONE", "CONNECTED"),
        ("TWO", "SUSPENDED"),
    }
    # It is no longer a receiver: a push to it is 4003 (known, not connected).
    _, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/S9",
        net.cpo1,
        json=session_for(CPO1, ("NL", "TWO", "EMSP"), "S9"),
        headers=rh(CPO1, ("NL", "TWO")),
    )
    assert body["status_code"] == 4003, body


# ---- pull-only CPOs (transport_and_format: pull is required, push optional) ----------------------


async def test_a_pull_only_cpo_is_pulled_incrementally_and_get_all_includes_its_data(hub, make_peer, clock) -> None:
    net = await network(hub, make_peer)
    gets: list[dict[str, str]] = []

    async def sender_only(request: web.Request, body: Any) -> web.StreamResponse:
        if request.method != "GET" or "/locations/sender" not in request.path:
            return web.json_response(envelope([]))
        gets.append(dict(request.query))
        if request.query.get("offset") != "1":
            nxt = str(request.url.update_query(offset="1"))
            return web.json_response(envelope([_location("PULLED-1")]), headers={"Link": f'<{nxt}>; rel="next"'})
        spoof = {**_location("NOT-MINE"), "party_id": "XXX"}  # not a party of this platform: skipped
        return web.json_response(envelope([_location("PULLED-2"), spoof]))

    net.cpo1.module_responder = sender_only
    pid = await net.platform_id(net.cpo1)
    status, body = await hub.admin("PATCH", f"/admin/platforms/{pid}", {"interop": {"pull_interval": 3600}})
    assert status == 200 and body["interop"] == {"send_base64": True, "pull_interval": 3600}, body

    async def listed() -> list[str]:
        _, page, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1, headers=rh(EMSP1, HUB))
        return [loc["id"] for loc in page["data"]]

    clock.advance(60)
    first_pull_at = clock.now()
    await wait_for(lambda: len(gets) == 2)
    # A round of our own waits for the periodic one in flight (one round at a time), so its
    # stores are committed when it returns; nothing is due again within the interval.
    clock.advance(60)  # not due yet: interval 3600 s
    assert await hub.app[PULLER].pull_due() == 0
    assert await listed() == ["PULLED-1", "PULLED-2"]
    assert "date_from" not in gets[0] and gets[1]["offset"] == "1"  # the partner's own pages followed
    assert len(gets) == 2
    clock.advance(3600)
    await wait_for(lambda: len(gets) == 4)
    assert gets[2]["date_from"].startswith(first_pull_at.strftime("%Y-%m-%dT%H:%M"))  # incremental
