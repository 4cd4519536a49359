"""Admin API shapes (docs/DESIGN-NOTES.md, Admin API and CLI): the contract the CLI and operators' scripts rely on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.cli import platforms as cli_platforms
from tests.support.fakes import b64
from tests.support.hub import ADMIN, cli

PLATFORM_KEYS = {
    "id",
    "name",
    "status",
    "initiated_by",
    "versions_url",
    "version",
    "registered",
    "roles",
    "endpoints",
    "created_at",
    "updated_at",
    "last_seen_in",
    "last_seen_out",
    "interop",
}


async def registered(hub: Any, make_peer: Any, *roles: tuple[str, str, str]) -> tuple[int, Any, str]:
    peer = await make_peer(*roles)
    status, body = await hub.admin("POST", "/admin/invitations", {"name": "party " + roles[0][1]})
    assert status == 201
    await peer.register_with(hub.versions_url, body["token_a"])
    return int(body["platform_id"]), peer, str(body["token_a"])


async def test_create_invitation_shape(hub):
    status, body = await hub.admin("POST", "/admin/invitations", {"name": "  Acme CPO  "})
    assert status == 201
    assert set(body) == {"token_a", "versions_url", "platform_id", "expires_at"}
    assert body["versions_url"] == hub.versions_url
    assert body["expires_at"] == "2026-12-02T12:00:00.000Z"  # FakeClock start + 7 days
    assert isinstance(body["token_a"], str) and 20 <= len(body["token_a"]) <= 64
    status, platform = await hub.admin("GET", f"/admin/platforms/{body['platform_id']}")
    assert (status, platform["name"], platform["status"]) == (200, "Acme CPO", "PLANNED")
    assert (platform["initiated_by"], platform["registered"], platform["roles"]) == ("party", False, [])
    second = (await hub.admin("POST", "/admin/invitations", {"name": "Acme CPO"}))[1]
    assert second["token_a"] != body["token_a"] and second["platform_id"] != body["platform_id"]


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "   "}, {"name": 5}, {"name": None}, [], "x", None])
async def test_invitation_needs_a_name(hub, payload):
    status, body = await hub.admin("POST", "/admin/invitations", payload)
    if payload is None:  # aiohttp sends no body at all for json=None
        assert (status, body["status_code"]) == (400, 2000)
    else:
        assert (status, body["status_code"]) == (400, 2001), body
    assert body["status_message"] and body["timestamp"]
    assert (await hub.admin("GET", "/admin/platforms")) == (200, [])


@pytest.mark.parametrize(
    "payload",
    [{}, {"versions_url": "http://127.0.0.1:1/ocpi/versions"}, {"token_a": "x"}, {"versions_url": "", "token_a": "x"}],
)
async def test_connection_needs_url_and_token(hub, payload):
    status, body = await hub.admin("POST", "/admin/connections", payload)
    assert (status, body["status_code"]) == (400, 2001)
    assert (await hub.admin("GET", "/admin/platforms")) == (200, [])


async def test_list_and_get_platforms(hub, make_peer):
    pid, peer, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"), ("NL", "CPA", "EMSP"))
    await hub.admin("POST", "/admin/invitations", {"name": "later"})
    status, rows = await hub.admin("GET", "/admin/platforms")
    assert status == 200 and [set(r) for r in rows] == [PLATFORM_KEYS, PLATFORM_KEYS]
    assert [(r["name"], r["status"], r["registered"]) for r in rows] == [
        ("party CPA", "CONNECTED", True),
        ("later", "PLANNED", False),
    ]
    status, one = await hub.admin("GET", f"/admin/platforms/{pid}")
    assert status == 200 and one == rows[0]
    assert one["roles"] == [
        {"country_code": "NL", "party_id": "CPA", "role": "CPO", "business_details": {"name": "Fake CPA"}},
        {"country_code": "NL", "party_id": "CPA", "role": "EMSP", "business_details": {"name": "Fake CPA"}},
    ]
    assert set(one["endpoints"][0]) == {"identifier", "role", "url"}
    assert (one["version"], one["versions_url"]) == ("2.2.1", peer.versions_url)


@pytest.mark.parametrize("pid", ["999", "abc", "-1", "1.5"])
async def test_unknown_platform_is_404(hub, pid):
    for method, path in (
        ("GET", f"/admin/platforms/{pid}"),
        ("POST", f"/admin/platforms/{pid}/suspend"),
        ("POST", f"/admin/platforms/{pid}/resume"),
        ("PUT", f"/admin/platforms/{pid}/credentials"),
        ("DELETE", f"/admin/platforms/{pid}"),
    ):
        status, body = await hub.admin(method, path)
        assert (status, body["status_code"]) == (404, 2000), (method, path, body)


async def test_suspend_and_resume(hub, make_peer, clock):
    pid, _, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    clock.advance(60)
    status, body = await hub.admin("POST", f"/admin/platforms/{pid}/suspend")
    assert (status, body["status"], body["registered"]) == (200, "SUSPENDED", True)
    assert body["updated_at"] == "2026-11-25T12:01:00.000Z"
    assert (await hub.admin("POST", f"/admin/platforms/{pid}/suspend"))[1]["status"] == "SUSPENDED"  # idempotent
    status, body = await hub.admin("POST", f"/admin/platforms/{pid}/resume")
    assert (status, body["status"]) == (200, "CONNECTED")
    assert (await hub.admin("GET", "/status"))[1]["platforms"][0]["status"] == "CONNECTED"


async def test_resume_of_unregistered_platform_is_405(hub, make_peer):
    planned = (await hub.admin("POST", "/admin/invitations", {"name": "p"}))[1]["platform_id"]
    status, body = await hub.admin("POST", f"/admin/platforms/{planned}/resume")
    assert (status, body["status_code"]) == (405, 2000)
    assert (await hub.admin("GET", f"/admin/platforms/{planned}"))[1]["status"] == "PLANNED"
    pid, _, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    assert (await hub.admin("DELETE", f"/admin/platforms/{pid}"))[0] == 200
    status, body = await hub.admin("POST", f"/admin/platforms/{pid}/resume")
    assert (status, body["status_code"]) == (405, 2000)


async def test_delete_of_planned_platform_revokes_token_a(hub):
    body = (await hub.admin("POST", "/admin/invitations", {"name": "p"}))[1]
    status, out = await hub.admin("DELETE", f"/admin/platforms/{body['platform_id']}")
    assert (status, out["status"], out["peer_answer"]) == (200, "UNREGISTERED", "not registered")
    assert (await hub.call("GET", "/ocpi/versions", token=body["token_a"]))[0] == 401


async def test_tokens_never_appear_in_admin_output(hub, make_peer):
    pid, peer, token_a = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    other = await make_peer(("NL", "CPB", "EMSP"))
    status, connected = await hub.admin(
        "POST", "/admin/connections", {"versions_url": other.versions_url, "token_a": other.token_a}
    )
    assert status == 201
    secrets = {token_a, peer.hub_token, peer.token_for_hub, other.token_a, other.token_for_hub, other.hub_token}
    outputs = [
        connected,
        (await hub.admin("GET", "/admin/platforms"))[1],
        (await hub.admin("GET", f"/admin/platforms/{pid}"))[1],
        (await hub.admin("POST", f"/admin/platforms/{pid}/suspend"))[1],
        (await hub.admin("PUT", f"/admin/platforms/{connected['id']}/credentials"))[1],
        (await hub.admin("GET", "/status"))[1],
        (await hub.admin("DELETE", f"/admin/platforms/{connected['id']}"))[1],
    ]
    secrets |= {other.token_for_hub, other.hub_token}  # rotated ones too
    dumped = json.dumps(outputs)
    assert [s for s in secrets if s and s in dumped] == []
    assert "token" not in {key for out in outputs if isinstance(out, dict) for key in out}


async def test_status_shape(hub, make_peer):
    pid, _, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"), ("BE", "CPA", "EMSP"))
    status, body = await hub.admin("GET", "/status")
    assert status == 200
    assert (body["status"], body["reasons"]) == ("ok", [])
    from hub import __version__

    assert body["version"] == __version__
    assert isinstance(body["uptime_seconds"], int | float) and body["uptime_seconds"] >= 0
    [platform] = body["platforms"]
    assert (platform["id"], platform["name"], platform["status"], platform["version"]) == (
        pid,
        "party CPA",
        "CONNECTED",
        "2.2.1",
    )
    assert platform["roles"] == [
        {"country_code": "BE", "party_id": "CPA", "role": "EMSP"},
        {"country_code": "NL", "party_id": "CPA", "role": "CPO"},
    ]


@pytest.mark.parametrize("how", ["party_delete", "admin_delete"])
async def test_unregistered_party_can_register_again(hub, make_peer, how):
    pid, peer, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    if how == "party_delete":
        assert (await hub.call("DELETE", "/ocpi/2.2.1/credentials", token=peer.hub_token))[0] == 200
    else:
        assert (await hub.admin("DELETE", f"/admin/platforms/{pid}"))[0] == 200
    new_pid, _, _ = await registered(hub, make_peer, ("nl", "cpa", "CPO"))
    assert new_pid != pid
    old, new = [(await hub.admin("GET", f"/admin/platforms/{p}"))[1] for p in (pid, new_pid)]
    assert (old["status"], old["roles"]) == ("UNREGISTERED", [])
    assert (new["status"], [r["party_id"] for r in new["roles"]]) == ("CONNECTED", ["cpa"])


async def test_suspension_survives_a_party_token_rotation(hub, make_peer):
    pid, peer, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    assert (await hub.admin("POST", f"/admin/platforms/{pid}/suspend"))[0] == 200
    status, body, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/credentials", token=peer.hub_token, json=peer.credentials_body()
    )
    assert (status, body["status_code"]) == (200, 1000)
    assert (await hub.admin("GET", f"/admin/platforms/{pid}"))[1]["status"] == "SUSPENDED"


async def test_failed_admin_rotation_keeps_old_tokens(hub, make_peer):
    from aiohttp import web

    peer = await make_peer(("NL", "CPB", "CPO"))
    status, body = await hub.admin(
        "POST", "/admin/connections", {"versions_url": peer.versions_url, "token_a": peer.token_a}
    )
    assert status == 201
    old_b, old_c = peer.hub_token, peer.token_for_hub
    offered: list[str] = []

    async def broken(request: web.Request, payload: Any) -> web.StreamResponse:
        offered.append(payload["token"])
        return web.Response(text="<html>maintenance</html>", status=503, content_type="text/html")

    peer.credentials_override = broken
    status, out = await hub.admin("PUT", f"/admin/platforms/{body['id']}/credentials")
    assert (status, out["status_code"]) == (502, 3001), out
    assert (await hub.call("GET", "/ocpi/2.2.1/credentials", token=old_b))[0] == 200
    assert (await hub.call("GET", "/ocpi/2.2.1/credentials", token=offered[0]))[0] == 401
    peer.credentials_override = None
    peer.received.clear()
    assert (await hub.admin("PUT", f"/admin/platforms/{body['id']}/credentials"))[0] == 200
    assert peer.received[0].headers["Authorization"] == "Token " + b64(old_c)


async def test_admin_delete_when_peer_is_down(hub, make_peer):
    pid, peer, _ = await registered(hub, make_peer, ("NL", "CPA", "CPO"))
    await peer.close()
    status, body = await hub.admin("DELETE", f"/admin/platforms/{pid}")
    assert (status, body["status"], body["registered"]) == (200, "UNREGISTERED", False)
    assert "failed" in body["peer_answer"]
    assert (await hub.call("GET", "/ocpi/2.2.1/credentials", token=peer.hub_token))[0] == 401


async def test_platforms_come_a_page_at_a_time_with_a_link_to_the_next(hub, make_peer, capsys, monkeypatch, tmp_path):
    """GET /admin/platforms?limit=&after=: id order, Link rel=next; the CLI follows the pages."""
    await registered(hub, make_peer, ("NL", "CPA", "CPO"), ("NL", "CPA", "EMSP"))
    for name in ("second", "third", "fourth", "fifth"):
        await hub.admin("POST", "/admin/invitations", {"name": name})
    _, every = await hub.admin("GET", "/admin/platforms")
    ids = [p["id"] for p in every]
    assert len(ids) == 5 and ids == sorted(ids)
    seen, url, links = [], "/admin/platforms?limit=2", []
    for _ in range(10):
        async with hub.session.get(hub.base + url, headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            assert r.status == 200
            page = await r.json()
            link = r.headers.get("Link")
        seen += page
        if link is None:
            break
        links.append(link)
        url = link.split(">")[0].removeprefix("<").removeprefix(hub.base)
    assert [p["id"] for p in seen] == ids and [len(p) for p in (seen[:2], seen[2:4], seen[4:])] == [2, 2, 1]
    assert links == [
        f'<{hub.base}/admin/platforms?after={ids[1]}&limit=2>; rel="next"',
        f'<{hub.base}/admin/platforms?after={ids[3]}&limit=2>; rel="next"',
    ]
    assert (await hub.admin("GET", f"/admin/platforms?after={ids[-1]}")) == (200, [])
    for bad in ("limit=0", "limit=1001", "limit=", "after=", "after=-1", "after=x", "limit=2.5"):
        status, body = await hub.admin("GET", f"/admin/platforms?{bad}")
        assert (status, body["status_code"]) == (400, 2001), (bad, body)
    # The CLI lists them all, a page at a time.
    monkeypatch.setattr(cli_platforms, "PAGE", 2)
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN + "\n")
    code, out, _ = await cli(capsys, "--url", hub.base, "--admin-token-file", str(token_file), "--json", "platforms")
    assert code == 0 and [p["id"] for p in json.loads(out)] == ids
