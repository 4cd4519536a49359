"""Credentials handshake over real HTTP, both directions (credentials.asciidoc; docs/DESIGN-NOTES.md, Identity)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from tests.support.fakes import FakePlatform, b64, envelope
from tests.support.ports import free_port

pytestmark = pytest.mark.both_backends

CREDS = "/ocpi/2.2.1/credentials"
MULTI = (("NL", "CPA", "CPO"), ("NL", "CPA", "EMSP"), ("DE", "XY1", "CPO"))


async def invite(hub: Any, name: str = "party") -> tuple[int, str]:
    status, body = await hub.admin("POST", "/admin/invitations", {"name": name})
    assert status == 201, body
    return int(body["platform_id"]), str(body["token_a"])


async def platform(hub: Any, pid: int) -> dict[str, Any]:
    status, body = await hub.admin("GET", f"/admin/platforms/{pid}")
    assert status == 200, body
    return dict(body)


def assert_envelope(status: int, body: Any, headers: Any, http: int, code: int) -> None:
    assert status == http, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["status_code"] == code, body
    assert body["timestamp"].endswith("Z")


def auths(peer: FakePlatform) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, r.headers.get("Authorization", "")) for r in peer.received]


async def register(hub: Any, peer: FakePlatform) -> tuple[int, str, str]:
    pid, token_a = await invite(hub, peer.name)
    answer = await peer.register_with(hub.versions_url, token_a)
    return pid, token_a, answer["data"]["token"]


# ---- party-initiated ----------------------------------------------------------------------------


async def test_party_initiated_handshake_end_to_end(hub, make_peer):
    peer = await make_peer(*MULTI)
    pid, token_a = await invite(hub, "multi")
    token_b = peer.token_for_hub
    status, body, headers = await hub.call("POST", CREDS, token=token_a, json=peer.credentials_body())
    assert_envelope(status, body, headers, 200, 1000)
    data = body["data"]
    assert data["token"] not in (token_a, token_b) and 1 <= len(data["token"]) <= 64
    assert data["url"] == hub.versions_url
    assert data["roles"] == [
        {"role": "HUB", "business_details": {"name": "OCPI Hub"}, "party_id": "HUB", "country_code": "NL"}
    ]
    # The hub read our API with our token B, Base64-encoded, versions first.
    assert auths(peer) == [
        ("GET", "/ocpi/versions", "Token " + b64(token_b)),
        ("GET", "/ocpi/2.2.1", "Token " + b64(token_b)),
    ]
    info = await platform(hub, pid)
    assert (info["status"], info["version"], info["registered"]) == ("CONNECTED", "2.2.1", True)
    assert info["versions_url"] == peer.versions_url
    assert {(r["country_code"], r["party_id"], r["role"]) for r in info["roles"]} == set(MULTI)
    assert {"name": "Fake XY1"} in [r["business_details"] for r in info["roles"]]
    assert len(info["endpoints"]) == 1 + 2 * len(peer.modules)
    assert {"identifier": "credentials", "role": "RECEIVER", "url": f"{peer.base}/ocpi/2.2.1/credentials"} in info[
        "endpoints"
    ]
    # GET credentials with token C: the hub's credentials for us.
    status, body, headers = await hub.call("GET", CREDS, token=data["token"])
    assert_envelope(status, body, headers, 200, 1000)
    assert body["data"]["token"] == data["token"] and body["data"]["roles"][0]["role"] == "HUB"


async def test_put_rotates_token_and_refetches_endpoints(hub, make_peer):
    peer = await make_peer(("NL", "CPA", "CPO"))
    pid, _, token_c = await register(hub, peer)
    peer.received.clear()
    peer.modules = ("locations",)
    peer.token_for_hub = "fake-rotated-b"
    status, body, headers = await hub.call("PUT", CREDS, token=token_c, json=peer.credentials_body())
    assert_envelope(status, body, headers, 200, 1000)
    new_c = body["data"]["token"]
    assert new_c != token_c
    assert auths(peer) == [
        ("GET", "/ocpi/versions", "Token " + b64("fake-rotated-b")),
        ("GET", "/ocpi/2.2.1", "Token " + b64("fake-rotated-b")),
    ]
    assert (await hub.call("GET", CREDS, token=token_c))[0] == 401
    assert (await hub.call("GET", CREDS, token=new_c))[0] == 200
    info = await platform(hub, pid)
    assert {(e["identifier"], e["role"]) for e in info["endpoints"]} == {
        ("credentials", "RECEIVER"),
        ("locations", "SENDER"),
        ("locations", "RECEIVER"),
    }
    assert info["status"] == "CONNECTED"


async def test_delete_unregisters(hub, make_peer):
    peer = await make_peer(("NL", "CPA", "CPO"))
    pid, _, token_c = await register(hub, peer)
    status, body, headers = await hub.call("DELETE", CREDS, token=token_c)
    assert_envelope(status, body, headers, 200, 1000)
    assert "data" not in body
    assert (await hub.call("GET", CREDS, token=token_c))[0] == 401
    info = await platform(hub, pid)
    assert (info["status"], info["registered"], info["endpoints"]) == ("UNREGISTERED", False, [])


async def test_405_for_post_when_registered_and_put_delete_when_not(hub, make_peer):
    peer = await make_peer(("NL", "CPA", "CPO"))
    pid, token_a = await invite(hub)
    for method in ("PUT", "DELETE"):
        status, body, headers = await hub.call(method, CREDS, token=token_a, json=peer.credentials_body())
        assert_envelope(status, body, headers, 405, 2000)
        assert headers["Allow"] == "GET, POST"
    assert peer.received == []
    assert (await platform(hub, pid))["status"] == "PLANNED"
    answer = await peer.register_with(hub.versions_url, token_a)
    status, body, headers = await hub.call("POST", CREDS, token=answer["data"]["token"], json=peer.credentials_body())
    assert_envelope(status, body, headers, 405, 2000)
    assert headers["Allow"] == "GET, PUT, DELETE"


async def test_token_a_is_single_use(hub, make_peer):
    peer = await make_peer(("NL", "CPA", "CPO"))
    _, token_a, _ = await register(hub, peer)
    for method, path in (("GET", "/ocpi/versions"), ("GET", "/ocpi/2.2.1"), ("POST", CREDS)):
        status, body, headers = await hub.call(method, path, token=token_a, json=peer.credentials_body())
        assert_envelope(status, body, headers, 401, 2000)


async def test_token_a_used_twice_concurrently_registers_once(hub, make_peer):
    one = await make_peer(("NL", "CPA", "CPO"))
    two = await make_peer(("NL", "CPB", "CPO"))
    pid, token_a = await invite(hub)
    results = await asyncio.gather(
        *(hub.call("POST", CREDS, token=token_a, json=p.credentials_body()) for p in (one, two))
    )
    assert sorted(r[1]["status_code"] for r in results) == [1000, 2000]
    assert sorted(r[0] for r in results) == [200, 401]
    assert len((await platform(hub, pid))["roles"]) == 1


async def test_token_a_expires(hub, make_peer, clock):
    _, token_a = await invite(hub)
    clock.advance(hub.settings.token_a_ttl - 1)
    assert (await hub.call("GET", "/ocpi/versions", token=token_a))[0] == 200
    clock.advance(2)
    status, body, headers = await hub.call("GET", "/ocpi/versions", token=token_a)
    assert_envelope(status, body, headers, 401, 2000)
    peer = await make_peer(("NL", "CPA", "CPO"))
    assert (await hub.call("POST", CREDS, token=token_a, json=peer.credentials_body()))[0] == 401
    assert peer.received == []


async def test_token_a_refused_outside_versions_and_credentials(start_hub, make_peer):
    async def ok(request: web.Request) -> web.Response:
        return web.json_response(envelope({"ok": True}))

    def add_route(app: web.Application) -> None:
        from hub.ocpi.versions import ROUTER

        app[ROUTER].add("GET", "/hubtest/sender", ok)

    hub = await start_hub(app_hook=add_route)
    _, token_a = await invite(hub)
    status, body, headers = await hub.call("GET", "/ocpi/2.2.1/hubtest/sender/", token=token_a)
    assert_envelope(status, body, headers, 401, 2000)
    assert "token A" in body["status_message"]
    assert (await hub.call("GET", "/admin/platforms", token=token_a))[0] == 401
    peer = await make_peer(("NL", "CPA", "CPO"))
    answer = await peer.register_with(hub.versions_url, token_a)
    status, body, _ = await hub.call("GET", "/ocpi/2.2.1/hubtest/sender", token=answer["data"]["token"])
    assert (status, body["data"]) == (200, {"ok": True})


async def test_raw_and_base64_tokens_accepted(hub, make_peer):
    peer = await make_peer(("NL", "CPA", "CPO"))
    _, token_a = await invite(hub)
    answer = await peer.register_with(hub.versions_url, token_a, raw_token=True)
    token_c = answer["data"]["token"]
    for raw in (True, False):
        status, body, _ = await hub.call("GET", CREDS, token=token_c, raw_token=raw)
        assert (status, body["data"]["token"]) == (200, token_c)


@pytest.mark.parametrize(
    "header", [None, "Token " + b64("no-such-token"), "Token no-such-token", "Bearer x", "Token ", "Token"]
)
async def test_missing_or_unknown_token_is_401(hub, header):
    headers = {} if header is None else {"Authorization": header}
    for path in ("/ocpi/versions", "/ocpi/2.2.1", CREDS):
        status, body, hdrs = await hub.call("GET", path, headers=headers)
        assert_envelope(status, body, hdrs, 401, 2000)


# ---- party-initiated failures: nothing stored, token A still usable ---------------------------


async def _html(request: web.Request, body: Any) -> web.StreamResponse:
    return web.Response(text="<html><body>Bad gateway</body></html>", content_type="text/html")


async def _text(request: web.Request, body: Any) -> web.StreamResponse:
    return web.Response(text="not json at all", content_type="application/json")


async def _detail(request: web.Request, body: Any) -> web.StreamResponse:
    return web.json_response({"detail": "Internal error"}, status=500)


async def _ocpi_error(request: web.Request, body: Any) -> web.StreamResponse:
    return web.json_response(envelope(status_code=2000, message="nope"))


async def _no_credentials(request: web.Request, body: Any) -> web.StreamResponse:
    base = f"http://{request.host}"
    return web.json_response(
        envelope({"version": "2.2.1", "endpoints": [{"identifier": "locations", "role": "SENDER", "url": base + "/l"}]})
    )


FAILURES = [
    ("down", {}, 3001),
    ("versions_html", {"versions_override": _html}, 3001),
    ("versions_text", {"versions_override": _text}, 3001),
    ("versions_detail", {"versions_override": _detail}, 3001),
    ("versions_ocpi_error", {"versions_override": _ocpi_error}, 3001),
    ("details_html", {"details_override": _html}, 3001),
    ("no_mutual_version", {"offer_versions": ("2.0", "2.1")}, 3002),  # the hub speaks 2.1.1-2.3.0
    ("no_credentials_endpoint", {"details_override": _no_credentials}, 3003),
]


@pytest.mark.parametrize(("case", "kwargs", "code"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_party_handshake_failure_stores_nothing(hub, make_peer, case, kwargs, code):
    peer = await make_peer(("NL", "CPA", "CPO"), **kwargs)
    pid, token_a = await invite(hub)
    body_in = peer.credentials_body()
    if case == "down":
        body_in["url"] = f"http://127.0.0.1:{free_port()}/ocpi/versions"
    status, body, headers = await hub.call("POST", CREDS, token=token_a, json=body_in)
    assert_envelope(status, body, headers, 200, code)
    assert body.get("data") is None and body["status_message"]
    info = await platform(hub, pid)
    assert (info["status"], info["registered"], info["roles"], info["endpoints"]) == ("PLANNED", False, [], [])
    # Fixed, the party retries with the same token A.
    peer.versions_override = peer.details_override = None
    peer.offer_versions = ("2.2.1",)
    answer = await peer.register_with(hub.versions_url, token_a)
    assert answer["status_code"] == 1000
    assert (await platform(hub, pid))["status"] == "CONNECTED"


def _creds(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": "tok-b",
        "url": "http://127.0.0.1:1/ocpi/versions",
        "roles": [{"role": "CPO", "party_id": "CPA", "country_code": "NL", "business_details": {"name": "X"}}],
    }
    body.update(changes)
    return body


INVALID = [
    ("missing_token", {k: v for k, v in _creds().items() if k != "token"}),
    ("empty_roles", _creds(roles=[])),
    ("bad_party_id", _creds(roles=[{**_creds()["roles"][0], "party_id": "TOOLONG"}])),
    ("bad_country", _creds(roles=[{**_creds()["roles"][0], "country_code": "N1"}])),
    ("bad_role", _creds(roles=[{**_creds()["roles"][0], "role": "KING"}])),
    ("token_not_string", _creds(token=12345)),
    ("token_with_space", _creds(token="a b")),
    ("roles_not_list", _creds(roles="CPO")),
    ("url_not_url", _creds(url="versions")),
    ("list_of_two", [_creds(), _creds()]),
    ("empty_list", []),
    ("string", "credentials"),
    ("null", None),
]


@pytest.mark.parametrize(("case", "payload"), INVALID, ids=[i[0] for i in INVALID])
async def test_invalid_credentials_body_is_2001(hub, make_peer, case, payload):
    peer = await make_peer(("NL", "CPA", "CPO"))
    pid, token_a = await invite(hub)
    data = b"null" if payload is None else None
    status, body, headers = await hub.call("POST", CREDS, token=token_a, json=payload, data=data)
    assert_envelope(status, body, headers, 200, 2001)
    assert "invalid credentials" in body["status_message"]
    info = await platform(hub, pid)
    assert (info["status"], info["roles"], info["endpoints"]) == ("PLANNED", [], [])
    assert (await peer.register_with(hub.versions_url, token_a))["status_code"] == 1000


# ---- hub-initiated ------------------------------------------------------------------------------


async def connect(hub: Any, peer: FakePlatform) -> dict[str, Any]:
    status, body = await hub.admin(
        "POST", "/admin/connections", {"versions_url": peer.versions_url, "token_a": peer.token_a}
    )
    assert status == 201, body
    return dict(body)


async def test_hub_initiated_connection(hub, make_peer):
    peer = await make_peer(("NL", "CPB", "CPO"), ("NL", "CPB", "EMSP"), name="Peer")
    body = await connect(hub, peer)
    assert (body["status"], body["initiated_by"], body["version"], body["registered"]) == (
        "CONNECTED",
        "hub",
        "2.2.1",
        True,
    )
    assert body["name"] == "Peer CPB"
    assert {(r["party_id"], r["role"]) for r in body["roles"]} == {("CPB", "CPO"), ("CPB", "EMSP")}
    assert not [t for t in (peer.token_a, peer.token_for_hub, peer.hub_token) if t in json.dumps(body)]
    a = "Token " + b64(peer.token_a)
    assert auths(peer) == [
        ("GET", "/ocpi/versions", a),
        ("GET", "/ocpi/2.2.1", a),
        ("POST", "/ocpi/2.2.1/credentials", a),
    ]
    posted = peer.received[2].body
    assert posted["url"] == hub.versions_url and posted["roles"][0]["role"] == "HUB"
    assert posted["token"] == peer.hub_token
    # During its POST handler the party called our versions with token B, successfully.
    assert peer.callback_result[0] == 200
    assert "2.2.1" in [v["version"] for v in peer.callback_result[1]["data"]]
    status, creds, _ = await hub.call("GET", CREDS, token=peer.hub_token)
    assert (status, creds["data"]["token"]) == (200, peer.hub_token)


async def test_admin_rotation_and_delete_use_token_c(hub, make_peer):
    peer = await make_peer(("NL", "CPB", "CPO"))
    pid = (await connect(hub, peer))["id"]
    token_c, old_b = peer.token_for_hub, peer.hub_token
    peer.received.clear()
    status, body = await hub.admin("PUT", f"/admin/platforms/{pid}/credentials")
    assert status == 200 and body["status"] == "CONNECTED", body
    new_c = peer.token_for_hub
    assert [(m, p) for m, p, _ in auths(peer)] == [
        ("PUT", "/ocpi/2.2.1/credentials"),
        ("GET", "/ocpi/versions"),
        ("GET", "/ocpi/2.2.1"),
    ]
    assert [a for _, _, a in auths(peer)] == ["Token " + b64(t) for t in (token_c, new_c, new_c)]
    assert peer.hub_token != old_b and peer.callback_result[0] == 200
    assert (await hub.call("GET", CREDS, token=old_b))[0] == 401
    assert (await hub.call("GET", CREDS, token=peer.hub_token))[0] == 200
    peer.received.clear()
    status, body = await hub.admin("DELETE", f"/admin/platforms/{pid}")
    assert status == 200, body
    assert (body["status"], body["registered"], body["endpoints"]) == ("UNREGISTERED", False, [])
    assert "OCPI 1000" in body["peer_answer"]
    assert auths(peer) == [("DELETE", "/ocpi/2.2.1/credentials", "Token " + b64(new_c))]
    assert not peer.registered
    assert (await hub.call("GET", CREDS, token=peer.hub_token))[0] == 401
    status, body = await hub.admin("PUT", f"/admin/platforms/{pid}/credentials")
    assert (status, body["status_code"]) == (405, 2000)


async def _post_garbage(request: web.Request, body: Any) -> web.StreamResponse:
    return web.Response(text="<html>oops</html>", status=502, content_type="text/html")


HUB_FAILURES = [*FAILURES, ("credentials_post_html", {"credentials_override": _post_garbage}, 3001)]


@pytest.mark.parametrize(("case", "kwargs", "code"), HUB_FAILURES, ids=[f[0] for f in HUB_FAILURES])
async def test_hub_initiated_failure_is_502_and_leaves_nothing(hub, make_peer, case, kwargs, code):
    peer = await make_peer(("NL", "CPB", "CPO"), **kwargs)
    url = f"http://127.0.0.1:{free_port()}/ocpi/versions" if case == "down" else peer.versions_url
    status, body = await hub.admin("POST", "/admin/connections", {"versions_url": url, "token_a": peer.token_a})
    assert (status, body["status_code"]) == (502, code), body
    assert body["status_message"] and body["timestamp"]
    assert await hub.admin("GET", "/admin/platforms") == (200, [])
    if case == "credentials_post_html":  # the token B we offered is gone too
        assert (await hub.call("GET", "/ocpi/versions", token=peer.received[-1].body["token"]))[0] == 401


async def test_hub_initiated_party_already_served_is_409(hub, make_peer):
    first = await make_peer(("NL", "CPB", "CPO"))
    await register(hub, first)
    second = await make_peer(("nl", "cpb", "CPO"))
    status, body = await hub.admin(
        "POST", "/admin/connections", {"versions_url": second.versions_url, "token_a": second.token_a}
    )
    assert (status, body["status_code"]) == (409, 2001), body
    assert len((await hub.admin("GET", "/admin/platforms"))[1]) == 1
