"""SSRF guard (routing/peers/ssrf.py): partner URLs aimed at the hub's own network are refused.

Every test here only ever sends traffic to 127.0.0.1. Refusals use addresses that the guard
refuses before any connection is attempted (10.0.0.1, 169.254.169.254, [::1], localhost with
the guard on); hostname resolution is exercised through a scripted inner resolver, so no real
DNS lookup or non-loopback connection ever happens.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from hub.keys import CLIENT
from routing.peers.client import PeerClient
from routing.peers.handshake import discover
from routing.peers.ssrf import BlockedAddress, GuardedResolver, UrlRefused, check_url, refusal
from routing.peers.transport import Transport
from routing.protocol.errors import OcpiError, UnableToUseClientApi
from tests.support.commands import CPO1, EMSP1, network, routing
from tests.support.fakes import b64

REFUSED = [
    "http://10.0.0.1/ocpi/versions",
    "http://172.16.5.4/",
    "http://192.168.1.1:8080/x",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::1]/ocpi/versions",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://127.0.0.1:9/",
    "http://127.1.2.3/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://localhost/ocpi/versions",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "not a url",
    "/relative/path",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_urls_are_refused_when_private_urls_are_not_allowed(url: str) -> None:
    assert refusal(url, allow_private=False) is not None
    with pytest.raises(UrlRefused):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["https://ocpi.example.com/versions", "http://93.184.216.34/ocpi", "https://[2606:4700::1]/"]
)
def test_public_urls_pass(url: str) -> None:
    assert refusal(url, allow_private=False) is None


def test_allow_private_lets_loopback_through_but_never_other_schemes() -> None:
    assert refusal("http://127.0.0.1:8000/ocpi/versions", allow_private=True) is None
    assert refusal("file:///etc/passwd", allow_private=True) is not None


def test_a_refused_url_is_a_4003_class_error() -> None:
    with pytest.raises(OcpiError) as info:
        check_url("http://10.0.0.1/", allow_private=False)
    assert info.value.status_code == 4003


# ---- the hub with its production default (allow_private_urls=False) -------------------------------


async def _post_credentials(hub: Any, url: str) -> tuple[int, Any]:
    token_a = await hub.invite("evil")
    body = {
        "token": "evil-token-b",
        "url": url,
        "roles": [{"role": "CPO", "party_id": "EVL", "country_code": "NL", "business_details": {"name": "Evil"}}],
    }
    status, answer, _ = await hub.call("POST", "/ocpi/2.2.1/credentials", token=token_a, json=body)
    return status, answer


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/ocpi/versions",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/ocpi/versions",
        "http://localhost:1/ocpi/versions",
    ],
)
async def test_party_initiated_handshake_refuses_private_versions_url_with_3001(start_hub, url: str) -> None:
    hub = await start_hub(allow_private_urls=False)
    assert hub.app[CLIENT].allow_private_urls is False
    status, answer = await _post_credentials(hub, url)
    assert status == 200 and answer["status_code"] == 3001, answer
    assert "refused" in answer["status_message"]
    # Nothing was registered; the invitation is still unused.
    _, platforms = await hub.admin("GET", "/admin/platforms")
    assert all(not p["registered"] for p in platforms)


async def test_a_real_loopback_peer_is_never_called_with_the_guard_on(start_hub, make_peer) -> None:
    hub = await start_hub(allow_private_urls=False)
    peer = await make_peer(("NL", "LOO", "CPO"))
    token_a = await hub.invite("loop")
    # The peer talks to the hub (inbound is fine); the hub must not call the peer back on 127.0.0.1.
    auth = {"Authorization": "Token " + b64(token_a)}
    async with aiohttp.ClientSession() as s:
        async with s.post(hub.base + "/ocpi/2.2.1/credentials", json=peer.credentials_body(), headers=auth) as r:
            answer = await r.json()
    assert answer["status_code"] == 3001, answer
    assert peer.received == []


async def test_hub_initiated_connection_refuses_private_versions_url(start_hub, make_peer) -> None:
    hub = await start_hub(allow_private_urls=False)
    peer = await make_peer(("NL", "LOO", "CPO"))
    for url in ("http://10.0.0.1/ocpi/versions", "http://169.254.169.254/latest/meta-data", peer.versions_url):
        status, body = await hub.admin("POST", "/admin/connections", {"versions_url": url, "token_a": "x"})
        assert status == 502 and body["status_code"] == 3001, body
    assert peer.received == []


# ---- endpoints, response_url and Link: the guard made strict for everything but the fakes ---------


def _loopback_only(client: PeerClient) -> None:
    """Let the fakes (127.0.0.1) through, refuse every other non-public address like production."""

    def check(url: str) -> None:
        if refusal(url, allow_private=True) is None and "//127.0.0.1:" in url:
            return
        check_url(url, allow_private=False)

    client.check_url = check  # type: ignore[method-assign]


async def test_version_details_with_a_private_endpoint_are_3001(hub, make_peer) -> None:
    peer = await make_peer(("NL", "PRV", "CPO"))

    async def details(request: web.Request, body: Any) -> web.StreamResponse:
        data = peer.details()
        data["endpoints"].append(
            {"identifier": "locations", "role": "RECEIVER", "url": "http://169.254.169.254/latest/meta-data"}
        )
        return web.json_response({"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z", "data": data})

    peer.details_override = details
    _loopback_only(hub.app[CLIENT])
    with pytest.raises(UnableToUseClientApi) as info:
        await discover(hub.app[CLIENT], peer.versions_url, peer.token_a)
    assert "169.254.169.254" in info.value.message
    # Through the real handshake: 3001 in the credentials POST answer, nothing registered.
    token_a = await hub.invite("prv")
    status, answer, _ = await hub.call("POST", "/ocpi/2.2.1/credentials", token=token_a, json=peer.credentials_body())
    assert status == 200 and answer["status_code"] == 3001, answer
    assert "endpoint locations RECEIVER" in answer["status_message"]


@pytest.mark.parametrize(
    "response_url",
    ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/cb", "http://[::1]/cb", "http://localhost/cb"],
)
async def test_command_with_a_private_response_url_is_2001_and_not_forwarded(hub, make_peer, response_url) -> None:
    net = await network(hub, make_peer)
    _loopback_only(hub.app[CLIENT])
    net.cpo1.received.clear()
    body = {
        "response_url": response_url,
        "token": {"uid": "T1", "type": "RFID", "country_code": "NL", "party_id": "EXA", "contract_id": "C1"},
        "location_id": "LOC1",
    }
    status, answer, _ = await net.hub.call(
        "POST",
        "/ocpi/2.2.1/commands/receiver/START_SESSION",
        token=net.emsp1.hub_token,
        json=body,
        headers=routing(EMSP1, CPO1),
    )
    assert status == 200 and answer["status_code"] == 2001, answer
    assert "response_url" in answer["status_message"]
    assert net.cpo1.requests_to("/commands/") == []


async def test_charging_profile_query_response_url_is_checked_too(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _loopback_only(hub.app[CLIENT])
    net.cpo1.received.clear()
    _, answer, _ = await net.hub.call(
        "GET",
        "/ocpi/2.2.1/chargingprofiles/receiver/S1?duration=900&response_url=http://10.0.0.1/cb",
        token=net.emsp1.hub_token,
        headers=routing(EMSP1, CPO1),
    )
    assert answer["status_code"] == 2001, answer
    assert net.cpo1.requests_to("/chargingprofiles/") == []


async def test_a_link_to_a_private_address_is_dropped_not_proxied(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _loopback_only(hub.app[CLIENT])

    async def page(request: web.Request, body: Any) -> web.StreamResponse:
        headers = {"Link": '<http://10.0.0.1/ocpi/2.2.1/locations/sender?offset=1>; rel="next"'}
        return web.json_response(
            {"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z", "data": []}, headers=headers
        )

    net.cpo1.module_responder = page
    status, answer, headers = await net.hub.call(
        "GET", "/ocpi/2.2.1/locations/sender/", token=net.emsp1.hub_token, headers=routing(EMSP1, CPO1)
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    assert "Link" not in headers


async def test_a_redirect_the_guard_refuses_is_not_followed(hub, make_peer) -> None:
    net = await network(hub, make_peer)

    async def redirect(request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "file:///etc/passwd"})

    net.cpo1.module_responder = redirect
    _, answer, _ = await net.hub.call(
        "GET", "/ocpi/2.2.1/locations/sender/", token=net.emsp1.hub_token, headers=routing(EMSP1, CPO1)
    )
    assert answer["status_code"] == 4001, answer  # a refused hop is final, never retried
    assert "302" in answer["status_message"] and "not followed" in answer["status_message"]


# ---- connect-time enforcement: DNS answers are checked where the connection is made --------------


class ScriptedResolver(AbstractResolver):
    """Answers every name with one scripted address (no real DNS)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host=self.address, port=port, family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST
            )
        ]

    async def close(self) -> None:
        pass


async def test_guarded_resolver_refuses_names_resolving_to_private_addresses() -> None:
    for address in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "0.0.0.0"):
        with pytest.raises(BlockedAddress):
            await GuardedResolver(ScriptedResolver(address)).resolve("partner.example", 443)
    ok = await GuardedResolver(ScriptedResolver("93.184.216.34")).resolve("partner.example", 443)
    assert ok[0]["host"] == "93.184.216.34"
    inner = ScriptedResolver("93.184.216.34")
    with pytest.raises(BlockedAddress):  # refused by name, the inner resolver is never asked
        await GuardedResolver(inner).resolve("localhost", 80)
    assert inner.asked == []


async def test_dns_rebinding_to_loopback_is_refused_at_connect_time(make_peer) -> None:
    # A public-looking name that "rebinds" to 127.0.0.1: passes the lexical check, fails at connect.
    peer = await make_peer(("NL", "RBD", "CPO"))
    port = int(peer.base.rsplit(":", 1)[1])
    transport = Transport(GuardedResolver(ScriptedResolver("127.0.0.1")), dns_ttl=0)
    async with transport:
        client = PeerClient(transport, connect_timeout=1.0, request_timeout=2.0, allow_private_urls=False)
        url = f"http://partner.example:{port}/ocpi/versions"
        client.check_url(url)  # lexically fine
        with pytest.raises(UrlRefused) as info:
            await client.send("GET", url, token=peer.token_a)
    assert "127.0.0.1" in info.value.message
    assert peer.received == []
