"""Partners on OCPI 2.1.1, 2.2.1 and 2.3.0 on one hub: registration, translation on the wire."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio


async def test_versions_lists_three_with_details(start_hub) -> None:
    """/ocpi/versions lists 2.3.0, 2.2.1, 2.1.1; 2.1.1 details have no interface roles."""
    hub = await start_hub()
    token_a = await hub.invite("p")
    status, body, _ = await hub.call("GET", "/ocpi/versions", token=token_a)
    assert status == 200 and [v["version"] for v in body["data"]] == ["2.3.0", "2.2.1", "2.1.1"]
    for v in ("2.1.1", "2.2.1", "2.3.0"):
        status, details, _ = await hub.call("GET", f"/ocpi/{v}", token=token_a)
        assert status == 200 and details["data"]["version"] == v
        eps = details["data"]["endpoints"]
        assert all(e["url"].startswith(f"{hub.base}/ocpi/{v}/") for e in eps), eps
        ids = {e["identifier"] for e in eps}
        if v == "2.1.1":
            assert all("role" not in e for e in eps)
            assert "chargingprofiles" not in ids and "hubclientinfo" not in ids and "locations" in ids
        else:
            assert {"credentials", "locations", "chargingprofiles"} <= ids


@pytest.mark.parametrize("version", ["2.1.1", "2.2.1", "2.3.0"])
async def test_party_initiated_registration_in_each_version(start_hub, make_peer, version) -> None:
    """A partner registers on its version's URLs and gets the hub's credentials in its shape."""
    hub = await start_hub()
    peer = await make_peer(("NL", "P11", "CPO"), version=version)
    token_a = await hub.invite("p", role="CPO" if version == "2.1.1" else None)
    answer = await peer.register_with(hub.versions_url, token_a)
    data = answer["data"]
    if version == "2.1.1":
        assert set(data) == {"token", "url", "business_details", "party_id", "country_code"}
    elif version == "2.3.0":
        assert "HUB" not in {r["role"] for r in data["roles"]} and len(data["hub_party_id"]) <= 5
    else:
        assert data["roles"][0]["role"] == "HUB"
    _, platforms = await hub.admin("GET", "/admin/platforms")
    (info,) = platforms
    assert (info["version"], info["status"]) == (version, "CONNECTED")
    assert [(r["party_id"], r["role"]) for r in info["roles"]] == [("P11", "CPO")]
    # The hub now calls it on that version's URLs.
    assert all(f"/ocpi/{version}/" in e["url"] for e in info["endpoints"])


async def test_211_registration_without_role_is_refused(start_hub, make_peer) -> None:
    """A 2.1.1 partner whose invitation named no role: a clear 2001, nothing registered."""
    hub = await start_hub()
    peer = await make_peer(("NL", "P11", "CPO"), version="2.1.1")
    token_a = await hub.invite("p")
    with pytest.raises(AssertionError, match="no role"):
        await peer.register_with(hub.versions_url, token_a)
    _, platforms = await hub.admin("GET", "/admin/platforms")
    assert platforms[0]["registered"] is False


@pytest.mark.parametrize("version", ["2.1.1", "2.3.0"])
async def test_hub_initiated_connection_in_each_version(start_hub, make_peer, version) -> None:
    """connect: the hub picks the partner's version and POSTs its credentials in that shape."""
    hub = await start_hub()
    peer = await make_peer(("DE", "E23", "EMSP"), version=version)
    request = {"versions_url": peer.versions_url, "token_a": peer.token_a}
    if version == "2.1.1":
        request["role"] = "EMSP"
    status, body = await hub.admin("POST", "/admin/connections", request)
    assert status == 201, body
    assert body["version"] == version
    assert [(r["party_id"], r["role"]) for r in body["roles"]] == [("E23", "EMSP")]
    (posted,) = [r.body for r in peer.requests_to("/credentials") if r.method == "POST"]
    if version == "2.1.1":
        assert "roles" not in posted and posted["party_id"] == hub.settings.party_id
    else:
        assert "hub_party_id" in posted and "HUB" not in {r["role"] for r in posted["roles"]}


async def test_230_hub_reports_clients_as_roles(start_hub, make_peer) -> None:
    """2.3.0 credentials from the hub: hub_party_id, and the other platforms' parties as roles."""
    hub = await start_hub()
    other = await make_peer(("BE", "BEC", "CPO"))
    await other.register_with(hub.versions_url, await hub.invite("o"))
    peer = await make_peer(("FR", "E23", "EMSP"), version="2.3.0")
    answer = await peer.register_with(hub.versions_url, await hub.invite("p"))
    roles = answer["data"]["roles"]
    assert [(r["party_id"], r["role"]) for r in roles] == [("BEC", "CPO")]
    assert answer["data"]["hub_party_id"] == hub.settings.country_code + hub.settings.party_id


@pytest.mark.parametrize("version", ["2.1.1", "2.3.0"])
async def test_rotation_and_unregistration_in_each_version(start_hub, make_peer, version) -> None:
    """PUT rotates (new token, answer in the version's shape), DELETE unregisters."""
    hub = await start_hub()
    peer = await make_peer(("NL", "P11", "CPO"), version=version)
    await peer.register_with(hub.versions_url, await hub.invite("p", role="CPO"))
    creds_url = f"/ocpi/{version}/credentials"
    peer.token_for_hub = "rotated-b"  # the new token B the hub must use to read our API again
    status, body, _ = await hub.call("PUT", creds_url, token=peer.hub_token, json=peer.credentials_body())
    assert (status, body["status_code"]) == (200, 1000), body
    new_token = body["data"]["token"]
    assert new_token != peer.hub_token
    assert ("roles" in body["data"]) == (version != "2.1.1")
    status, body, _ = await hub.call("GET", creds_url, token=new_token)
    assert status == 200 and body["data"]["token"] == new_token
    status, body, _ = await hub.call("DELETE", creds_url, token=new_token)
    assert (status, body["status_code"]) == (200, 1000), body
    _, platforms = await hub.admin("GET", "/admin/platforms")
    assert (platforms[0]["registered"], platforms[0]["status"]) == (
        False,
        "UNREGISTERED",
    )  # it unregistered itself (credentials DELETE)


async def test_230_hub_initiated_connection_reports_clients_as_roles(start_hub, make_peer) -> None:
    """connect to a 2.3.0 party: the credentials the hub POSTs list its other clients' parties too."""
    hub = await start_hub()
    other = await make_peer(("BE", "BEC", "CPO"))
    await other.register_with(hub.versions_url, await hub.invite("o"))
    peer = await make_peer(("FR", "E23", "EMSP"), version="2.3.0")
    status, body = await hub.admin(
        "POST", "/admin/connections", {"versions_url": peer.versions_url, "token_a": peer.token_a}
    )
    assert status == 201, body
    (posted,) = [r.body for r in peer.requests_to("/credentials") if r.method == "POST"]
    assert posted["hub_party_id"].upper() == f"{hub.settings.country_code}{hub.settings.party_id}".upper()
    assert [(r["country_code"], r["party_id"], r["role"]) for r in posted["roles"]] == [("BE", "BEC", "CPO")]
