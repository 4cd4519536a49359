"""Broadcast push (TO = the hub, or a CPO's location/tariff push without TO): fan-out on the wire.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import json

import pytest

from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    HUB,
    module_requests,
    network,
    party_of,
    rh,
    session_for,
)
from tests.support.routing import (
    example as ex,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends


async def _fanned_out(peers, module: str, count: int = 1) -> None:
    await wait_for(lambda: all(len(module_requests(p, module)) >= count for p in peers))


@pytest.mark.parametrize("with_to", [True, False], ids=["to-hub", "no-to"])
async def test_location_push_goes_to_every_emsp_with_hub_as_from(hub, make_peer, with_to) -> None:
    net = await network(hub, make_peer)
    location = {**ex("location_example.json"), "x_vendor": "kept"}
    raw = json.dumps(location, indent=2).encode()
    headers = rh(CPO1, HUB if with_to else None, X_Correlation_ID="bc-1")
    status, body, answer_headers = await net.call(
        "PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", net.cpo1, data=raw, headers=headers
    )
    assert status == 200 and body["status_code"] == 1000, body
    assert (answer_headers["OCPI-from-country-code"], answer_headers["OCPI-from-party-id"]) == HUB
    assert (answer_headers["OCPI-to-country-code"], answer_headers["OCPI-to-party-id"]) == CPO1[:2]
    await _fanned_out([net.emsp1, net.emsp2], "locations")
    for emsp, party in ((net.emsp1, EMSP1), (net.emsp2, EMSP2)):
        (leg,) = module_requests(emsp, "locations")
        assert leg.method == "PUT"
        # The URL keeps the original owner's ids even though FROM is the hub.
        assert leg.path == "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"
        assert leg.raw == raw
        assert party_of(leg, "from") == HUB
        assert party_of(leg, "to") == party[:2]
        assert leg.headers["X-Correlation-ID"] == "bc-1"
    assert module_requests(net.cpo1, "locations") == []
    assert module_requests(net.cpo2, "locations") == []


async def test_evse_and_connector_patches_are_broadcast(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for path, body in (
        ("LOC1/3256", ex("location_patch_example_status.json")),
        ("LOC1/3256/1", ex("location_patch_example_tariff.json")),
    ):
        status, answer, _ = await net.call(
            "PATCH", f"/ocpi/2.2.1/locations/receiver/BE/BEC/{path}", net.cpo1, json=body, headers=rh(CPO1, HUB)
        )
        assert status == 200 and answer["status_code"] == 1000, answer
    await _fanned_out([net.emsp1, net.emsp2], "locations", 2)
    for emsp in (net.emsp1, net.emsp2):
        paths = sorted(r.path for r in module_requests(emsp, "locations"))
        assert paths == [
            "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1/3256",
            "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1/3256/1",
        ]
        assert {r.method for r in module_requests(emsp, "locations")} == {"PATCH"}
    assert module_requests(net.cpo2, "locations") == []


async def test_tariff_put_without_to_and_delete_to_hub_are_broadcast(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    tariff = ex("tariff_1_simple_2hour.json")
    status, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12", net.cpo2, json=tariff, headers=rh(CPO2)
    )
    assert status == 200 and body["status_code"] == 1000, body
    await _fanned_out([net.emsp1, net.emsp2], "tariffs")
    status, body, _ = await net.call(
        "DELETE", "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12", net.cpo2, headers=rh(CPO2, HUB)
    )
    assert status == 200 and body["status_code"] == 1000, body
    await _fanned_out([net.emsp1, net.emsp2], "tariffs", 2)
    for emsp in (net.emsp1, net.emsp2):
        put, delete = module_requests(emsp, "tariffs")
        assert (put.method, put.body) == ("PUT", tariff)
        assert (delete.method, delete.path, delete.raw) == ("DELETE", "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12", b"")
        assert party_of(delete, "from") == HUB
    assert module_requests(net.cpo1, "tariffs") == []
    # The hub's copy is gone too: GET-all no longer lists it.
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/tariffs/sender/", net.emsp1)
    assert status == 200 and body["data"] == [] and headers["X-Total-Count"] == "0"


async def test_emsp_token_broadcast_goes_to_cpos_only(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    token = ex("token_put_example.json")
    status, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678?type=RFID", net.emsp1, json=token, headers=rh(EMSP1, HUB)
    )
    assert status == 200 and body["status_code"] == 1000, body
    await _fanned_out([net.cpo1, net.cpo2], "tokens")
    for cpo, party in ((net.cpo1, CPO1), (net.cpo2, CPO2)):
        (leg,) = module_requests(cpo, "tokens")
        assert leg.path == "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678"
        assert leg.query == {"type": "RFID"}
        assert leg.body == token
        assert party_of(leg, "from") == HUB and party_of(leg, "to") == party[:2]
    assert module_requests(net.emsp2, "tokens") == []
    assert module_requests(net.emsp1, "tokens") == []


async def test_sessions_are_never_broadcast(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
        net.cpo1,
        json=session_for(CPO1, EMSP1),
        headers=rh(CPO1, HUB),
    )
    assert body["status_code"] == 4001, body
    assert all(module_requests(p, "sessions") == [] for p in net.peers)


async def test_get_addressed_to_the_hub_is_not_broadcast(hub, make_peer) -> None:
    # A single Location GET with OCPI-to = the hub is answered from the hub's copy: never fanned out.
    net = await network(hub, make_peer)
    status, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp1, headers=rh(EMSP1, HUB))
    assert status == 404 and body["status_code"] == 2003, body  # mod_locations: unknown Location
    assert all(module_requests(p, "locations") == [] for p in net.peers)


async def test_suspended_emsp_gets_no_broadcast(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    status, _ = await hub.admin("POST", f"/admin/platforms/{await net.platform_id(net.emsp2)}/suspend")
    assert status == 200
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1",
        net.cpo1,
        json=ex("location_example.json"),
        headers=rh(CPO1, HUB),
    )
    assert body["status_code"] == 1000 and "broadcast to 1 party" in body["status_message"], body
    await _fanned_out([net.emsp1], "locations")
    assert module_requests(net.emsp2, "locations") == []


async def test_stored_copy_keeps_values_past_64_bits_and_float_text(hub, make_peer) -> None:
    """The hub writes its stored copies with orjson and falls back to json for what orjson refuses:
    an eMSP's GET-all reads back the very values the CPO pushed (a vendor field's integer past
    64 bits, floats, non-ASCII text), in the legs and in the hub's own pages."""
    net = await network(hub, make_peer)
    tariff = {
        **ex("tariff_1_simple_2hour.json"),
        "x_vendor": {"big": 2**70, "neg": -(2**64), "f": [1.5e-7, 1e16, 0.1], "näme": "blå\u2028"},
    }
    status, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12", net.cpo2, json=tariff, headers=rh(CPO2, HUB)
    )
    assert status == 200 and body["status_code"] == 1000, body
    await _fanned_out([net.emsp1, net.emsp2], "tariffs")
    for emsp in (net.emsp1, net.emsp2):
        (leg,) = module_requests(emsp, "tariffs")
        assert leg.body == tariff
    status, body, headers = await net.call("GET", "/ocpi/2.2.1/tariffs/sender/", net.emsp1)
    assert status == 200 and headers["X-Total-Count"] == "1", body
    assert body["data"] == [tariff]
    assert body["data"][0]["x_vendor"]["big"] == 2**70
