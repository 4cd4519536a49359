"""Interop: every functional module through the hub between extrawest-ocpi peers.

The CPO pushes with the library's own push facility (``POST /push/2.2.1``: no routing headers,
no X-Request-ID/X-Correlation-ID, as the library does), so the hub routes by broadcast
(locations, tariffs, tokens) and open routing (sessions and CDRs by their ``cdr_token`` owner).
GET-all and directed pushes, for which the library has no client, go through the peers'
``/debug/send`` with the library's models (tests/interop/peers/common.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer
from tests.interop.wire import assert_ids, outbound, routing
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)

Pair = tuple[HubHandle, Peer, Peer]


@pytest.mark.parametrize(
    ("module", "object_id", "make"),
    [("locations", "LOC1", P.location), ("tariffs", "12", P.tariff)],
)
async def test_cpo_broadcast_reaches_the_emsp(pair: Pair, module: str, object_id: str, make: Any) -> None:
    hub, cpo, emsp = pair
    await cpo.seed(module, object_id, make())

    push = await cpo.push(module, object_id, hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000
    [sent] = outbound(await cpo.state(), "PUT", f"/{module}/")
    assert sent["url"] == f"{hub.base}/ocpi/2.2.1/{module}/receiver/NL/XCP/{object_id}"
    [got] = await emsp.received(f"/{module}/", "PUT")
    # Broadcast push (transport_and_format 4.2.2): FROM = the hub, TO = the receiver; the owner's
    # ids stay in the URL; the body byte-for-byte what the CPO sent.
    assert got["path"] == f"/ocpi/emsp/2.2.1/{module}/NL/XCP/{object_id}"
    assert routing(got["headers"]) == ("NL", "HUB", "NL", "XMS")
    assert got["body"] == sent["body"]
    assert got["headers"]["authorization"].startswith("Token ")
    assert got["status"] == 200 and got["response"]["status_code"] == 1000
    assert (await emsp.state())["objects"][module][object_id.lower()]["id"] == object_id.lower()


async def test_session_is_routed_to_the_emsp_of_its_cdr_token(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await cpo.seed("sessions", "101", P.session())

    push = await cpo.push("sessions", "101", hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000
    [sent] = outbound(await cpo.state(), "PUT", "/sessions/")
    [got] = await emsp.received("/sessions/", "PUT")
    # Open routing (transport_and_format 4.2.3) by cdr_token owner; FROM = the CPO, TO = the eMSP.
    assert got["path"] == "/ocpi/emsp/2.2.1/sessions/NL/XCP/101"
    assert routing(got["headers"]) == ("NL", "XCP", "NL", "XMS")
    assert got["body"] == sent["body"]
    assert_ids(got, sent["response_headers"])
    # The eMSP's own answer is what the CPO got, with FROM/TO swapped.
    assert routing(sent["response_headers"]) == ("NL", "XMS", "NL", "XCP")
    assert sent["response"] == got["response"]


async def test_cdr_post_is_accepted_with_a_location_the_cpo_can_use(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await cpo.seed("cdrs", "12345", P.cdr())

    push = await cpo.push("cdrs", "12345", hub)

    # mod_cdrs 1.2.2: the answer to a CDR POST carries a Location header; the hub's is its own URL.
    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200
    headers = answer["response"]  # the library returns the receiver's headers for CDR pushes
    assert headers["location"].startswith(hub.base + "/ocpi/2.2.1/")
    [sent] = outbound(await cpo.state(), "POST", "/cdrs/")
    assert sent["response"]["status_code"] == 1000
    # The hub tried the eMSP at once, at the URL the library published (FROM the CPO, TO the eMSP).
    [first, *_] = await emsp.received("/cdrs", "POST")
    assert routing(first["headers"]) == ("NL", "XCP", "NL", "XMS")
    assert first["body"] == sent["body"]
    assert_ids(first, sent["response_headers"])
    # The CPO can read the CDR back through the Location it was given.
    status, body, _ = await hub.call("GET", headers["location"], token=(await cpo.state())["hub_token"])
    assert status == 200 and body["status_code"] == 1000
    assert isinstance(body["data"], dict) and body["data"]["id"] == "12345", body["data"]


async def test_cdr_reaches_the_fastapi_emsp_behind_its_307(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await cpo.seed("cdrs", "12345", P.cdr())
    await cpo.push("cdrs", "12345", hub)
    # The hub strips the published trailing slash, FastAPI answers 307 to ".../cdrs/": the hub must
    # repeat the POST there (RFC 9110 15.4.8: same method and body) instead of retrying until dead.
    await emsp.received("/cdrs", "POST")
    state = await emsp.wait_for(lambda s: "12345" in s["objects"].get("cdrs", {}), timeout=3.0)
    stored = state["objects"].get("cdrs", {}).get("12345")
    assert stored is not None, [(r["method"], r["path"], r.get("status")) for r in state["requests"]]
    [post] = [r for r in state["requests"] if r["path"] == "/ocpi/emsp/2.2.1/cdrs/" and r["method"] == "POST"]
    assert routing(post["headers"]) == ("NL", "XCP", "NL", "XMS")


async def test_token_from_the_emsp_reaches_the_cpo(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await emsp.seed("tokens", "12345678905880", P.token())

    push = await emsp.push("tokens", "12345678905880", hub)

    [answer] = push["receiver_responses"]
    assert answer["status_code"] == 200 and answer["response"]["status_code"] == 1000
    [sent] = outbound(await emsp.state(), "PUT", "/tokens/")
    [got] = await cpo.received("/tokens/", "PUT")
    assert got["path"] == "/ocpi/cpo/2.2.1/tokens/NL/XMS/12345678905880"
    assert routing(got["headers"]) == ("NL", "HUB", "NL", "XCP")
    assert got["body"] == sent["body"]
    assert got["status"] == 200 and got["response"]["status_code"] == 1000
    assert (await cpo.state())["objects"]["tokens"]["12345678905880"]["uid"] == "12345678905880"


async def test_updates_of_one_object_arrive_in_the_order_sent(pair: Pair) -> None:
    hub, cpo, emsp = pair
    first, second = P.location(), P.location()
    second["name"] = "Gent Zuid (renamed)"
    second["last_updated"] = "2015-06-30T00:00:00Z"
    await cpo.seed("tariffs", "12", P.tariff())
    await cpo.seed("sessions", "101", P.session())

    await cpo.seed("locations", "LOC1", first)
    await cpo.push("locations", "LOC1", hub)
    await cpo.push("tariffs", "12", hub)
    await cpo.seed("locations", "LOC1", second)
    await cpo.push("locations", "LOC1", hub)
    await cpo.push("sessions", "101", hub)

    def functional(state: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in state["requests"] if r["method"] == "PUT" and "/clientinfo/" not in r["path"]]

    state = await emsp.wait_for(lambda s: sum("response" in r for r in functional(s)) == 4)
    got = [(r["path"], r["body"].get("name")) for r in functional(state)]
    assert sorted(got, key=str) == sorted(
        [
            ("/ocpi/emsp/2.2.1/locations/NL/XCP/LOC1", "Gent Zuid"),
            ("/ocpi/emsp/2.2.1/tariffs/NL/XCP/12", None),
            ("/ocpi/emsp/2.2.1/locations/NL/XCP/LOC1", "Gent Zuid (renamed)"),
            ("/ocpi/emsp/2.2.1/sessions/NL/XCP/101", None),
        ],
        key=str,
    )
    # Order is kept per object (docs/DESIGN-NOTES.md, Delivery): the Location's two versions
    # arrive as sent, and the eMSP keeps the last one.
    assert [name for path, name in got if "/locations/" in path] == ["Gent Zuid", "Gent Zuid (renamed)"]
    assert all(r["status"] == 200 for r in functional(state))
    assert (await emsp.state())["objects"]["locations"]["loc1"]["name"] == "Gent Zuid (renamed)"


@pytest.mark.parametrize(
    ("module", "object_id", "make"),
    [("locations", "LOC1", P.location), ("tariffs", "12", P.tariff), ("sessions", "101", P.session)],
)
async def test_emsp_gets_all_through_the_hub(pair: Pair, module: str, object_id: str, make: Any) -> None:
    hub, cpo, emsp = pair
    await cpo.seed(module, object_id, make())
    await cpo.push(module, object_id, hub)
    [pushed] = outbound(await cpo.state(), "PUT", f"/{module}/")
    await emsp.received(f"/{module}/", "PUT")

    # GET All via Hubs (transport_and_format 4.2.4): no TO header; the hub answers from its store.
    answer = await emsp.send(module=module, interface="SENDER", method="GET", parse_list=True)

    assert answer["status"] == 200
    assert answer["body"]["status_code"] == 1000
    assert answer["body"]["data"] == [pushed["body"]]
    assert len(answer["parsed"]) == 1  # the library's model reads the page
    headers = answer["headers"]
    assert headers["x-total-count"] == "1" and int(headers["x-limit"]) >= 1
    assert "link" not in headers  # one page only: no next link (transport_and_format 4.1.5.2)
    assert routing(headers) == ("NL", "HUB", "NL", "XMS")
    assert headers["x-correlation-id"] == answer["request_headers"]["X-Correlation-ID"]
    assert headers["x-request-id"] == answer["request_headers"]["X-Request-ID"]


async def test_cpo_gets_all_tokens_through_the_hub(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await emsp.seed("tokens", "12345678905880", P.token())
    await emsp.push("tokens", "12345678905880", hub)
    await cpo.received("/tokens/", "PUT")

    answer = await cpo.send(module="tokens", interface="SENDER", method="GET", parse_list=True)

    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000
    assert [t["uid"] for t in answer["parsed"]] == ["12345678905880"]
    assert routing(answer["headers"]) == ("NL", "HUB", "NL", "XCP")


async def test_get_all_hides_a_directed_location_from_other_emsps(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    cpo = await start_peer("CPO", *P.CPO)
    chosen, other = await start_peer("EMSP", "NL", "XMS"), await start_peer("EMSP", "DE", "XOT")
    for peer in (cpo, chosen, other):
        assert (await peer.register(hub))["body"]["status_code"] == 1000

    # A push with OCPI-to = one eMSP (transport_and_format 4.2.1) is for that eMSP only.
    sent = await cpo.send(
        module="locations",
        method="PUT",
        path="NL/XCP/PRIVATE1",
        to=["NL", "XMS"],
        body=P.location("PRIVATE1"),
        model="Location",
        model_module="locations",
    )
    assert sent["status"] == 200 and sent["body"]["status_code"] == 1000, sent
    await chosen.received("/locations/", "PUT")

    mine = await chosen.send(module="locations", interface="SENDER", method="GET")
    theirs = await other.send(module="locations", interface="SENDER", method="GET")

    assert [loc["id"] for loc in mine["body"]["data"]] == ["private1"]
    assert theirs["body"]["status_code"] == 1000
    assert theirs["body"]["data"] == [], "another eMSP sees a location that was pushed to NL*XMS only"
    assert theirs["headers"]["x-total-count"] == "0"


async def test_get_all_crawl_sees_every_location_while_one_is_updated(pair: Pair) -> None:
    hub, cpo, emsp = pair
    for location_id in ("LOC1", "LOC2", "LOC3"):
        await cpo.seed("locations", location_id, P.location(location_id))
        await cpo.push("locations", location_id, hub)
    await emsp.received("/locations/", "PUT", count=3)

    # transport_and_format 4.1.5 (Pagination): the client follows Link until there is none; a
    # crawl is the full truth (an object missing from it is gone). Update LOC1 after page 1.
    seen: list[str] = []
    answer = await emsp.send(module="locations", interface="SENDER", method="GET", query={"limit": "1"})
    for page in range(10):
        assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
        assert answer["headers"]["x-total-count"] == "3"
        seen += [loc["id"] for loc in answer["body"]["data"]]
        if page == 0:
            renamed = P.location("LOC1")
            renamed["name"], renamed["last_updated"] = "Gent Zuid (renamed)", "2030-01-01T00:00:00Z"
            await cpo.seed("locations", "LOC1", renamed)
            await cpo.push("locations", "LOC1", hub)
            await emsp.received("/locations/", "PUT", count=4)
        link = answer["headers"].get("link")
        if not link:
            break
        url = link.split(";")[0].strip().strip("<>")
        assert url.startswith(hub.base), link
        answer = await emsp.send(module="locations", method="GET", url=url)
    assert sorted(set(seen)) == ["loc1", "loc2", "loc3"], seen
