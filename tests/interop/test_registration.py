"""Interop: the credentials handshake with extrawest-ocpi peers, in both directions (credentials.asciidoc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer, b64
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)


def _roles(platform: dict[str, object]) -> set[tuple[str, str, str]]:
    roles = platform["roles"]
    assert isinstance(roles, list)
    return {(r["country_code"].upper(), r["party_id"].upper(), r["role"]) for r in roles}


async def test_party_initiated_registration_with_invitation_token_a(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    emsp = await start_peer("EMSP", *P.EMSP)

    answer = await emsp.register(hub)

    # The hub's credentials answer (credentials.asciidoc 1.2.2 POST): 1000, a token C for the
    # peer, the hub's versions URL, the hub's role; the library's Credentials model accepted it.
    assert answer["status"] == 200, answer
    body = answer["body"]
    assert body["status_code"] == 1000
    assert body["data"]["url"] == hub.versions_url
    assert body["data"]["token"]
    assert [r["role"] for r in body["data"]["roles"]] == ["HUB"]
    state = await emsp.state()
    assert state["hub_token"] == body["data"]["token"]
    # Before answering, the hub fetched the peer's versions and 2.2.1 details with the token the
    # peer gave it in the POST body (base64, 2.2.1), in that order.
    posted = next(o for o in state["outbound"] if o["method"] == "POST" and "/credentials" in o["url"])
    token_for_hub = posted["body"]["token"]
    calls = [(r["method"], r["path"], r["headers"].get("authorization")) for r in state["requests"]]
    assert calls[:2] == [
        ("GET", "/ocpi/versions", f"Token {b64(token_for_hub)}"),
        ("GET", "/ocpi/2.2.1/details", f"Token {b64(token_for_hub)}"),
    ]
    status, platforms = await hub.admin("GET", "/admin/platforms")
    assert status == 200
    [platform] = platforms
    assert platform["status"] == "CONNECTED" and platform["initiated_by"] == "party"
    assert _roles(platform) == {("NL", "XMS", "EMSP")}
    # The library publishes its endpoints with a trailing slash; the hub keeps them as published.
    urls = {e["identifier"]: e["url"] for e in platform["endpoints"]}
    assert urls["cdrs"] == f"{emsp.base}/ocpi/emsp/2.2.1/cdrs/"


async def test_invitation_token_a_is_single_use(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    emsp = await start_peer("EMSP", *P.EMSP)
    token_a = await hub.invite("eMSP")
    first = await emsp._post("/debug/register", {"versions_url": hub.versions_url, "token_a": token_a})
    assert first["body"]["status_code"] == 1000

    # credentials.asciidoc 1.2.2: after registration token A is no longer valid.
    status, _, _ = await hub.call("GET", "/ocpi/versions", token=token_a)
    assert status == 401


async def test_hub_initiated_registration_with_the_peers_token_a(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    cpo = await start_peer("CPO", *P.CPO)

    # The library acts as the server side: it accepts its token A on versions, details and the
    # credentials POST, then calls the hub back with the hub's token.
    status, platform = await hub.admin(
        "POST", "/admin/connections", {"versions_url": cpo.versions_url, "token_a": cpo.token_a, "name": "lib CPO"}
    )

    assert status == 201, platform
    assert platform["status"] == "CONNECTED" and platform["initiated_by"] == "hub"
    assert _roles(platform) == {("NL", "XCP", "CPO")}
    state = await cpo.state()
    token_a_header = f"Token {b64(cpo.token_a)}"
    handshake = [
        (r["method"], r["path"]) for r in state["requests"] if r["headers"].get("authorization") == token_a_header
    ]
    assert handshake == [
        ("GET", "/ocpi/versions"),
        ("GET", "/ocpi/2.2.1/details"),
        ("POST", "/ocpi/cpo/2.2.1/credentials/"),
    ]
    post = state["requests"][2]
    assert post["status"] == 200 and post["response"]["status_code"] == 1000
    hub_token = post["body"]["token"]
    assert post["body"]["url"] == hub.versions_url
    assert state["hub_token"] == hub_token
    # The library fetched the hub's versions and details with the hub's token while handling the POST.
    fetched = [(o["method"], o["url"], o["status"]) for o in state["outbound"]]
    assert fetched == [("GET", hub.versions_url, 200), ("GET", hub.base + "/ocpi/2.2.1", 200)]
    assert all(o["headers"]["authorization"] == f"Token {b64(hub_token)}" for o in state["outbound"])


async def test_hub_initiated_peer_receives_tokens_with_the_token_it_issued(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    cpo, emsp = await start_peer("CPO", *P.CPO), await start_peer("EMSP", *P.EMSP)
    status, _ = await hub.admin(
        "POST", "/admin/connections", {"versions_url": cpo.versions_url, "token_a": cpo.token_a}
    )
    assert status == 201
    assert (await emsp.register(hub))["body"]["status_code"] == 1000
    await emsp.seed("tokens", "12345678905880", P.token())

    push = await emsp.push("tokens", "12345678905880", hub)

    assert push["receiver_responses"][0]["response"]["status_code"] == 1000
    [put] = await cpo.received("/tokens/", "PUT")
    # The hub calls the CPO with the token C the library issued in its credentials answer.
    issued = next(r for r in (await cpo.state())["requests"] if r["method"] == "POST")["response"]["data"]["token"]
    assert put["headers"]["authorization"] == f"Token {b64(issued)}"
    assert put["status"] == 200 and put["response"]["status_code"] == 1000


async def test_hub_initiated_rotation_and_unregistration_with_the_library(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    cpo, emsp = await start_peer("CPO", *P.CPO), await start_peer("EMSP", *P.EMSP)
    status, platform = await hub.admin(
        "POST", "/admin/connections", {"versions_url": cpo.versions_url, "token_a": cpo.token_a}
    )
    assert status == 201
    assert (await emsp.register(hub))["body"]["status_code"] == 1000
    # mod_hub_client_info: the CPO, connected first, learns about the eMSP; no routing headers on
    # a configuration module (transport_and_format 4.2, Message Routing Headers).
    [info] = await cpo.received("/clientinfo/", "PUT")
    assert info["path"] == "/ocpi/cpo/2.2.1/clientinfo/nl/xms"
    assert info["body"]["status"] == "CONNECTED" and info["body"]["role"] == "EMSP"
    assert not any(h.startswith("ocpi-") for h in info["headers"])

    # Rotation (credentials.asciidoc 1.2.3 PUT): the library answers with a new token C ...
    status, _ = await hub.admin("PUT", f"/admin/platforms/{platform['id']}/credentials")
    assert status == 200
    [put] = await cpo.received("/credentials/", "PUT")
    assert put["status"] == 200 and put["response"]["status_code"] == 1000
    new_token = put["response"]["data"]["token"]
    # ... which the hub uses from then on.
    await emsp.seed("tokens", "12345678905880", P.token())
    await emsp.push("tokens", "12345678905880", hub)
    [token_put] = await cpo.received("/tokens/", "PUT")
    assert token_put["headers"]["authorization"] == f"Token {b64(new_token)}"
    assert token_put["status"] == 200

    # Unregistration (credentials.asciidoc 1.2.4 DELETE) at the URL the library published.
    status, gone = await hub.admin("DELETE", f"/admin/platforms/{platform['id']}")
    assert status == 200, gone
    [delete] = await cpo.received("/credentials/", "DELETE")
    assert delete["path"] == "/ocpi/cpo/2.2.1/credentials/"
    assert delete["status"] == 200 and delete["response"]["status_code"] == 1000
    assert (await cpo.state())["hub_token"] is None
    assert gone["registered"] is False


async def test_handshake_calls_carry_request_and_correlation_ids(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub()
    cpo, emsp = await start_peer("CPO", *P.CPO), await start_peer("EMSP", *P.EMSP)
    status, _ = await hub.admin(
        "POST", "/admin/connections", {"versions_url": cpo.versions_url, "token_a": cpo.token_a}
    )
    assert status == 201
    assert (await emsp.register(hub))["body"]["status_code"] == 1000

    # transport_and_format 4.1.1 (Unique message IDs): "Every request SHALL contain a unique
    # request ID" and "Every request/response SHALL contain a unique correlation ID" - the
    # configuration modules included (credentials.asciidoc, version_information_endpoint).
    calls = [(peer.role, r) for peer in (cpo, emsp) for r in (await peer.state())["requests"]]
    handshake = [(role, r["method"], r["path"]) for role, r in calls if "/clientinfo/" not in r["path"]]
    assert ("CPO", "POST", "/ocpi/cpo/2.2.1/credentials/") in handshake
    assert ("EMSP", "GET", "/ocpi/2.2.1/details") in handshake
    missing = [
        (role, r["method"], r["path"])
        for role, r in calls
        if not (r["headers"].get("x-request-id") and r["headers"].get("x-correlation-id"))
    ]
    assert missing == [], f"hub requests without X-Request-ID/X-Correlation-ID: {missing}"
