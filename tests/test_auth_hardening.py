"""Auth hardening: token A only where allowed and single use, no module without token C, admin API
only with the admin token, inbound tokens only as hashes, constant-time comparisons, and FROM
headers / owner ids that must belong to the caller.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import sqlite3
from typing import Any

import pytest

from hub.admin import accounts
from hub.ocpi import middlewares
from tests.support.hub import ADMIN
from tests.support.routing import CPO1, CPO2, EMSP1, example, network, rh

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def _published(hub: Any, token: str) -> list[str]:
    """Every endpoint URL the hub publishes in its version details."""
    _, body, _ = await hub.call("GET", "/ocpi/2.2.1", token=token)
    return [e["url"] for e in body["data"]["endpoints"]]


def _paths(hub: Any, urls: list[str]) -> list[str]:
    """Published endpoints (minus credentials), sub-paths, stand-in URLs and the draft aliases."""
    out: list[str] = []
    for url in urls:
        path = url[len(hub.base) :]
        if "/credentials" in path:
            continue
        out += [path, path.rstrip("/"), path + "BE/BEC/LOC1"]
    out += [
        "/ocpi/2.2.1/callbacks/some-id",
        "/ocpi/2.2.1/proxy/some-id",
        "/ocpi/locations",
        "/ocpi/sessions",
        "/ocpi/cdrs",
        "/ocpi/commands/START_SESSION",
        "/ocpi/smartcharging",
        "/ocpi/tariffs",
        "/ocpi/tokens",
    ]
    return out


async def _assert_401(hub: Any, path: str, headers: dict[str, str]) -> None:
    for method in METHODS:
        status, body, resp_headers = await hub.call(method, path, headers=headers, json={} if method != "GET" else None)
        if status == 405 or (status == 404 and path.endswith("/LOC1") and "hubclientinfo" in path):
            continue  # no such method / sub-path: refused before auth, nothing reached
        assert status == 401, (method, path, headers, status, body)
        assert body["status_code"] == 2000 and "timestamp" in body, body
        assert resp_headers["Content-Type"].startswith("application/json")


async def test_no_module_without_token_c(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    unused_a = await hub.invite("unused")
    urls = await _published(hub, unused_a)
    assert len(urls) >= 16
    variants = {
        "none": {},
        "token A": {"Authorization": "Token " + base64.b64encode(unused_a.encode()).decode()},
        "raw token A": {"Authorization": "Token " + unused_a},
        "admin token as OCPI token": {"Authorization": "Token " + base64.b64encode(ADMIN.encode()).decode()},
        "bearer token C": {"Authorization": "Bearer " + (net.cpo1.hub_token or "")},
        "garbage": {"Authorization": "Token bm9wZQ=="},
        "empty": {"Authorization": "Token "},
    }
    for path in _paths(hub, urls):
        for headers in variants.values():
            await _assert_401(hub, path, headers)


async def test_token_a_only_on_versions_and_credentials_and_single_use(hub, make_peer) -> None:
    token_a = await hub.invite("p")
    for path in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"):
        status, body, _ = await hub.call("GET", path, token=token_a)
        assert status == 200 and body["status_code"] == 1000, (path, body)
    status, _, _ = await hub.call("GET", "/ocpi/2.2.1/hubclientinfo/", token=token_a)
    assert status == 401
    peer = await make_peer(EMSP1)
    await peer.register_with(hub.versions_url, token_a)
    for path in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"):
        status, body, _ = await hub.call("GET", path, token=token_a)
        assert status == 401, (path, body)
    status, body, _ = await hub.call("POST", "/ocpi/2.2.1/credentials", token=token_a, json=peer.credentials_body())
    assert status == 401, body
    # Token C works where token A may not.
    status, body, _ = await hub.call("GET", "/ocpi/2.2.1/hubclientinfo/", token=peer.hub_token)
    assert status == 200 and body["status_code"] == 1000


def _admin_routes(hub: Any) -> list[tuple[str, str]]:
    routes: list[tuple[str, str]] = []
    for route in hub.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if (path.startswith("/admin") or path in ("/status", "/metrics")) and route.method != "HEAD":
            routes.append((route.method, path.replace("{id}", "1").replace("{name}", "someone")))
    return routes


async def test_admin_api_only_with_the_admin_token(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    routes = _admin_routes(hub)
    assert {p for _, p in routes} >= {
        "/admin/invitations",
        "/admin/connections",
        "/admin/platforms",
        "/admin/platforms/1",
        "/admin/platforms/1/credentials",
        "/admin/platforms/1/suspend",
        "/admin/platforms/1/resume",
        "/admin/deadletters",
        "/admin/deadletters/redrive",
    }
    token_c = net.cpo1.hub_token or ""
    bad = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + ADMIN[:-1]},
        {"Authorization": "Bearer " + ADMIN[:-1] + "X"},  # same length, last character wrong
        {"Authorization": "Bearer " + ADMIN + "X"},
        {"Authorization": "Basic " + ADMIN},
        {"Authorization": "Token " + ADMIN},
        {"Authorization": "Bearer " + token_c},
        {"Authorization": "Token " + base64.b64encode(token_c.encode()).decode()},
    ]
    for method, path in routes:
        for headers in bad:
            status, body, _ = await hub.call(method, path, headers=headers, json={})
            assert status == 401, (method, path, headers, body)
            assert body["status_code"] == 2000
    # Nothing happened: the platforms are untouched.
    status, platforms = await hub.admin("GET", "/admin/platforms")
    assert status == 200 and {p["status"] for p in platforms} == {"CONNECTED"}


def test_token_comparisons_are_constant_time() -> None:
    # Code review made executable: the admin token and the token-hash match use hmac.compare_digest;
    # inbound tokens are looked up by their SHA-256 (no secret compared byte by byte in SQL).
    admin = inspect.getsource(accounts.check_admin_request)
    assert "hmac.compare_digest" in admin
    assert "hmac.compare_digest" in inspect.getsource(middlewares.hash_matches)
    assert "== expected" not in admin and "expected ==" not in admin and "get_secret_value() ==" not in admin


def _all_text(db_path: Any) -> str:
    conn = sqlite3.connect(db_path)
    try:
        parts: list[str] = []
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                parts += [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row]
        return "\n".join(parts)
    finally:
        conn.close()


async def test_inbound_tokens_are_stored_only_as_hashes(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    issued: list[str] = [p.hub_token or "" for p in net.peers]  # token C the hub issued
    unused_a = await hub.invite("later")
    issued.append(unused_a)
    # Rotation both ways: the peer PUTs new credentials, the operator rotates from the hub.
    old = net.emsp1.hub_token or ""
    status, body, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/credentials", token=old, json=net.emsp1.credentials_body(net.emsp1.token_for_hub)
    )
    assert status == 200 and body["status_code"] == 1000, body
    issued.append(body["data"]["token"])
    net.emsp1.hub_token = body["data"]["token"]
    pid = await net.platform_id(net.cpo2)
    status, _ = await hub.admin("PUT", f"/admin/platforms/{pid}/credentials")
    assert status == 200
    if net.cpo2.hub_token:
        issued.append(net.cpo2.hub_token)
    # Some traffic with every token, so logs and the traffic table have had their chance.
    for token in issued:
        await hub.call("GET", "/ocpi/2.2.1/hubclientinfo/", token=token)
    text = _all_text(hub.settings.database_path)
    for token in issued:
        assert token not in text, "a raw inbound token is stored"
        assert base64.b64encode(token.encode()).decode() not in text, "a base64 inbound token is stored"
    conn = sqlite3.connect(hub.settings.database)
    hashes = {r[0] for r in conn.execute("SELECT token_hash FROM tokens")}
    conn.close()
    assert hashlib.sha256(unused_a.encode()).hexdigest() in hashes
    assert all(len(h) == 64 for h in hashes)


@pytest.mark.parametrize(
    ("who", "frm", "url"),
    [
        ("cpo1", CPO2, "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"),  # FROM of another platform
        ("cpo1", CPO1, "/ocpi/2.2.1/locations/receiver/DE/ALL/LOC1"),  # owner ids of another platform
        ("emsp1", EMSP1, "/ocpi/2.2.1/locations/receiver/NL/TNM/LOC1"),  # its own ids, but not a CPO
    ],
)
async def test_from_headers_and_owner_ids_must_belong_to_the_caller(hub, make_peer, who, frm, url) -> None:
    net = await network(hub, make_peer)
    location = example("location_example.json")
    location["country_code"], location["party_id"] = url.split("/")[-3], url.split("/")[-2]
    status, body, _ = await net.call("PUT", url, getattr(net, who), json=location, headers=rh(frm, EMSP1))
    assert status in (200, 403) and body["status_code"] in (2001, 4001), body
    assert status == 403 or body["status_code"] != 1000
    for peer in net.peers:
        assert peer.requests_to("/locations/") == []
