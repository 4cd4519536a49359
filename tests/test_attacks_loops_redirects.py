"""Attacks tried: partner URLs and redirects that turn the hub on itself (issue 20, items 6 and 7).

A platform points its endpoints (or versions URL) at the hub, and hands the hub another
platform's token C: every push would come back to the hub as that platform and go out again,
forever. A proxy or a DNS alias in between hides the hub's address, so the hub also marks what
it sends (``Via``) and refuses a request carrying its own mark. Redirects are followed only to
the same origin, never with the token to another one, and a partner's odd HTTP status (300,
599, 600, 999) is never relayed as it came.

The suite runs with private URLs allowed (every fake lives on 127.0.0.1) and the hub listens on
127.0.0.1:<port>: the hub's own host:port must be refused while other loopback ports work.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from hub.keys import CLIENT, DIRECTORY, STORE
from routing.peers import ssrf
from routing.peers.client import PeerClient
from routing.peers.exchange import Exchange
from routing.peers.ssrf import GuardedResolver, UrlRefused
from routing.peers.transport import Transport
from tests.support.delivery import delivery_net, is_queued, outbox_rows, put_session
from tests.support.fakes import FakePlatform, envelope
from tests.support.routing import CPO1, EMSP1, MakePeer, connect, module_requests, network, rh, session_for
from tests.support.waiting import settle, wait_for

pytestmark = pytest.mark.both_backends

LOOP = ("NL", "LOP", "EMSP")


async def _post_credentials(hub: Any, body: dict[str, Any], token_a: str) -> dict[str, Any]:
    status, answer, _ = await hub.call("POST", "/ocpi/2.2.1/credentials", token=token_a, json=body)
    assert status == 200, answer
    return dict(answer)


# ---- item 6: the hub's own URL is not a partner URL -------------------------------------------------


async def test_endpoint_at_hubs_own_url_is_refused(hub, make_peer) -> None:
    port = hub.settings.port
    peer = await make_peer(LOOP)
    current: dict[str, str] = {}

    async def details(request: web.Request, body: Any) -> web.StreamResponse:
        data = peer.details()
        for endpoint in data["endpoints"]:
            if endpoint["identifier"] == "sessions" and endpoint["role"] == "RECEIVER":
                endpoint["url"] = f"http://{current['host']}:{port}/ocpi/2.2.1/sessions/receiver"
        return web.json_response(envelope(data))

    peer.details_override = details
    # Every spelling of "this machine" on the hub's port; 127.1 is no IP literal: refused when
    # the connector resolves it (127.0.0.1), which the registration's own check does not reach.
    for host in ("127.0.0.1", "localhost", "LOCALHOST.", "127.0.0.2", "[::1]", "0.0.0.0", "[::ffff:127.0.0.1]"):
        current["host"] = host
        answer = await _post_credentials(hub, peer.credentials_body(), await hub.invite("loop"))
        assert answer["status_code"] == 3001, (host, answer)
        assert "the hub's own" in answer["status_message"], (host, answer)

    # The versions URL itself at the hub, with a token the hub accepts (its own token A).
    token_a = await hub.invite("loop")
    answer = await _post_credentials(hub, {**peer.credentials_body(token_a), "url": hub.versions_url}, token_a)
    assert answer["status_code"] == 3001 and "the hub's own" in answer["status_message"], answer
    _, platforms = await hub.admin("GET", "/admin/platforms")
    assert not any(p["registered"] for p in platforms)

    # Other loopback ports stay allowed: the same peer registers once its endpoints are its own.
    peer.details_override = None
    answer = await _post_credentials(hub, peer.credentials_body(), await hub.invite("fine"))
    assert answer["status_code"] == 1000, answer


async def test_hubs_public_host_and_listening_address_are_refused_lexically(start_hub) -> None:
    hub = await start_hub(base_url="https://hub.example.test", host="0.0.0.0")
    client: PeerClient = hub.app[CLIENT]
    port = hub.settings.port
    for url in (
        "https://hub.example.test/ocpi/2.2.1/sessions",
        "https://HUB.example.test.:443/ocpi/versions",
        f"http://0.0.0.0:{port}/ocpi/versions",  # listening on all interfaces: loopback reaches it
        f"http://127.0.0.1:{port}/ocpi/versions",
    ):
        with pytest.raises(UrlRefused) as info:
            client.check_url(url)
        assert "the hub's own" in info.value.message, url
    # Another port or scheme of the public host is not the hub, nor is a partner that happens to
    # use the hub's port number on its own address.
    for url in ("https://hub.example.test:8443/x", "http://hub.example.test/x", "http://127.0.0.1:9/x"):
        client.check_url(url)
    client.check_url(f"http://93.184.216.34:{port}/ocpi/versions")


class _Scripted(AbstractResolver):
    """Resolves every name to one address (no real DNS): a DNS alias of the hub."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST
            )
        ]

    async def close(self) -> None:
        pass


async def test_dns_alias_of_the_hub_is_refused_at_connect_time(hub, make_peer) -> None:
    port = hub.settings.port
    peer = await make_peer(LOOP)
    peer_port = int(peer.base.rsplit(":", 1)[1])
    own = ssrf.HubOrigins.from_settings(hub.settings)
    resolver = GuardedResolver(_Scripted("127.0.0.1"), allow_private=True, own=own)
    async with Transport(resolver, dns_ttl=0) as transport:
        client = PeerClient(transport, connect_timeout=1.0, request_timeout=2.0, allow_private_urls=True, own=own)
        with pytest.raises(UrlRefused) as info:
            await client.send("GET", f"http://alias.example:{port}/ocpi/versions", token="x")
        assert "the hub's own" in info.value.message
        # The same alias on another loopback port is an ordinary partner.
        response = await client.send("GET", f"http://alias.example:{peer_port}/ocpi/versions", token=peer.token_a)
        assert response.status == 200 and response.ocpi_status == 1000


async def test_push_to_an_endpoint_stored_at_the_hubs_url_never_reaches_the_hub(start_hub, make_peer) -> None:
    # The attack itself: platform LOP gave the hub CPO1's token C as its token and (stored before
    # this check existed) endpoints at the hub. max_requests_in_progress bounds the loop that the
    # hub without the check would run into.
    hub = await start_hub(max_requests_in_progress=8, delivery={"relay_wait": 0.3})
    net = await network(hub, make_peer)
    evil = await make_peer(LOOP, token_for_hub=net.cpo1.hub_token)
    await evil.register_with(hub.versions_url, await hub.invite("loop"))
    pid = await net.platform_id(evil)
    await hub.app[STORE].write(
        lambda tx: tx.execute(
            "UPDATE endpoints SET url = replace(url, ?, ?) WHERE platform_id = ?", (evil.base, hub.base, pid)
        )
    )
    await hub.app[DIRECTORY].reload()
    seen: list[Exchange] = []
    hub.app[CLIENT].observers.append(seen.append)

    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/LOOP1",
        net.cpo1,
        json=session_for(CPO1, LOOP, "LOOP1"),
        headers=rh(CPO1, LOOP),
    )
    assert status == 200 and body["status_code"] == 4003 and "the hub's own" in body["status_message"], body
    await settle(hub)
    to_hub = [e for e in seen if e.url.startswith(hub.base)]
    assert to_hub and all(e.status is None for e in to_hub)  # refused before connecting, never answered
    letters = await outbox_rows(hub, "module='sessions'")
    assert [(r["state"], r["attempts"]) for r in letters] == [("dead", 1)], letters
    assert "the hub's own" in letters[0]["last_error"]
    # Only the refused origin is named: a receiver URL's path may hold a token uid (docs/SECURITY.md).
    assert hub.base in letters[0]["last_error"] and "LOOP1" not in letters[0]["last_error"], letters


def _forwarding_proxy(hub_base: str, forwarded: list[dict[str, str]], bound: int = 5) -> Any:
    """A module_responder that relays each request to the hub unchanged (a reverse proxy / DNS alias)."""

    async def forward(request: web.Request, body: Any) -> web.StreamResponse:
        if len(forwarded) >= bound:  # bounded, whatever the hub does
            return web.Response(status=502, text="proxy: too many hops")
        forwarded.append(dict(request.headers))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.request(
                request.method, hub_base + request.path_qs, headers=headers, data=await request.read()
            ) as answer:
                return web.Response(status=answer.status, body=await answer.read(), content_type="application/json")

    return forward


async def test_request_the_hub_sent_itself_is_refused_when_a_proxy_brings_it_back(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    evil: FakePlatform = await connect(hub, make_peer, LOOP, token_for_hub=net.cpo1.hub_token)
    await wait_for(lambda: len(evil.requests_to("/hubclientinfo/")) >= 4)  # it heard of the 4 others first
    forwarded: list[dict[str, str]] = []
    evil.module_responder = _forwarding_proxy(hub.base, forwarded)

    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/LOOP2",
        net.cpo1,
        json=session_for(CPO1, LOOP, "LOOP2"),
        headers=rh(CPO1, LOOP),
    )
    await settle(hub)  # (without the mark, the looped copy queued behind the first goes round again here)
    assert len(forwarded) == 1, len(forwarded)  # one hop came back and was refused: no second round
    assert "Via" in forwarded[0]
    # The hub refused the looped copy with 508 + 4000; the proxy relayed that as the partner's answer.
    assert status == 508 and body["status_code"] == 4000 and "Loop detected" in body["status_message"], body
    rows = await outbox_rows(hub, "module='sessions'")
    assert [r["state"] for r in rows] == ["rejected"], rows  # final: never retried into the loop

    # A Via from someone else's proxy is no loop: the partner's own request goes through.
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/OK1",
        net.cpo1,
        json=session_for(CPO1, EMSP1, "OK1"),
        headers=rh(CPO1, EMSP1, Via="1.1 caddy, HTTP/1.1 edge.example"),
    )
    assert status == 200 and body["status_code"] == 1000, body
    assert module_requests(net.emsp1, "sessions")[-1].path.endswith("/OK1")


# ---- item 7: redirects and odd statuses ----------------------------------------------------------


async def test_cross_origin_redirect_is_not_followed_with_token(hub, make_peer: MakePeer) -> None:
    net = await network(hub, make_peer)
    mirror = await make_peer(("NL", "MIR", "CPO"))
    mirror.token_for_hub = net.cpo1.token_for_hub  # it would accept the token, had it been sent

    async def elsewhere(request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": mirror.base + request.path})

    net.cpo1.module_responder = elsewhere
    net.emsp1.module_responder = elsewhere
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1, headers=rh(EMSP1, CPO1))
    assert status == 200 and body["status_code"] == 4001, body
    assert "another origin" in body["status_message"], body

    status, body, _ = await put_session(net, "redir", 1)  # a push: final, not retried into the redirect
    assert status == 200 and body["status_code"] == 4001 and "another origin" in body["status_message"], body
    assert mirror.received == []  # never called, so never saw the token


async def test_same_origin_redirect_is_still_followed_and_rechecked(hub, make_peer) -> None:
    net = await network(hub, make_peer)

    async def slash(request: web.Request, body: Any) -> web.StreamResponse:
        if not request.path.endswith("/"):
            return web.Response(status=308, headers={"Location": request.path + "/"})
        return web.json_response(envelope([]))

    net.cpo1.module_responder = slash
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender", net.emsp1, headers=rh(EMSP1, CPO1))
    assert status == 200 and body["status_code"] == 1000, body
    paths = [r.path for r in module_requests(net.cpo1, "locations")]
    assert paths == ["/ocpi/2.2.1/locations/sender", "/ocpi/2.2.1/locations/sender/"]


@pytest.mark.parametrize("http", [300, 304, 599, 600, 999])
async def test_partner_status_outside_the_usual_classes_is_a_4000_not_relayed(hub, make_peer, http) -> None:
    net = await network(hub, make_peer)

    async def odd(request: web.Request, body: Any) -> web.StreamResponse:
        headers = {"Location": str(request.url)} if http == 300 else {}
        return web.json_response(envelope([]), status=http, headers=headers)

    net.cpo1.module_responder = odd
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1, headers=rh(EMSP1, CPO1))
    assert status == 200 and body["status_code"] == 4000, (http, status, body)
    assert f"HTTP {http}" in body["status_message"], body


async def test_push_answered_300_with_an_ocpi_1000_is_a_failed_attempt(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer)

    async def multiple_choices(request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response(envelope(), status=300, headers={"Location": str(request.url)})

    net.emsp1.module_responder = multiple_choices
    status, body, _ = await put_session(net, "s300", 1)
    assert is_queued(status, body), body
    await settle(net.hub)
    (row,) = await outbox_rows(net.hub, "module='sessions'")
    assert (row["state"], row["attempts"], row["last_http_status"]) == ("pending", 1, 300), row


def test_hub_origins_refuse_only_the_hubs_own_port() -> None:
    from config import Settings

    own = ssrf.HubOrigins.from_settings(Settings(host="127.0.0.1", port=8900, database="x.sqlite3"))
    for url in ("http://127.0.0.1:8900/", "http://localhost:8900/x", "http://[::1]:8900/", "http://127.9.9.9:8900/"):
        assert own.refusal(url) is not None, url
    for url in ("http://127.0.0.1:8901/", "http://localhost/x", "http://example.com:8900/"):
        assert own.refusal(url) is None, url
