"""Routing errors: unknown receivers, missing modules, dead or non-OCPI receivers, bad pushes.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

import pytest

from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    answers,
    connect,
    example,
    module_requests,
    network,
    raw_answer,
    rh,
    session_for,
)

pytestmark = pytest.mark.both_backends

LOC_URL = "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1"


def functional_requests(peer) -> list:
    """What a peer received besides HubClientInfo (which the hub pushes on every registration)."""
    return [r for r in peer.received if "/hubclientinfo/" not in r.path]


def _nothing_forwarded(net, module: str) -> None:
    for peer in net.peers:
        assert module_requests(peer, module) == [], peer.name


async def test_to_an_unknown_party_is_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _, body, _ = await net.call(
        "PUT", LOC_URL, net.cpo1, json=example("location_example.json"), headers=rh(CPO1, ("FR", "XXX"))
    )
    assert body["status_code"] == 4001, body
    _, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp1, headers=rh(EMSP1, ("SE", "ZZZ")))
    assert body["status_code"] == 4001, body
    _nothing_forwarded(net, "locations")


async def test_a_hub_made_error_answers_from_the_hub_to_the_requester(hub, make_peer) -> None:
    """transport_and_format: the hub's own errors come FROM the hub TO the requesting party: the
    FROM party when it is the caller's own, else the caller's first party (never the one named)."""
    net = await network(hub, make_peer)
    location = example("location_example.json")
    for from_party, expected in ((CPO1, CPO1), (EMSP2, CPO1), (None, CPO1)):
        sent = rh(from_party, ("FR", "XXX"))
        _, body, headers = await net.call("PUT", LOC_URL, net.cpo1, json=location, headers=sent)
        assert body["status_code"] in (4001, 2001), body
        assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == ("NL", "HUB")
        assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == expected[:2], from_party
    _nothing_forwarded(net, "locations")


async def test_receiver_without_the_module_is_4001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await connect(hub, make_peer, ("IT", "NOT", "EMSP"), modules=("locations", "hubclientinfo"))
    _, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12",
        net.cpo2,
        json=example("tariff_1_simple_2hour.json"),
        headers=rh(CPO2, ("IT", "NOT")),
    )
    assert body["status_code"] == 4001, body
    assert "tariffs" in body["status_message"]


async def test_command_to_a_receiver_that_is_down_is_4003(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await net.cpo1.close()
    _, body, _ = await net.call(
        "POST",
        "/ocpi/2.2.1/commands/receiver/START_SESSION",
        net.emsp1,
        json={"response_url": net.emsp1.base + "/cb/1", "token": example("token_put_example.json"), "location_id": "L"},
        headers=rh(EMSP1, CPO1),
    )
    assert body["status_code"] == 4003, body
    _, body, _ = await net.call("GET", "/ocpi/2.2.1/locations/sender/", net.emsp1, headers=rh(EMSP1, CPO1))
    assert body["status_code"] == 4003, body


async def test_push_to_a_receiver_that_is_down_answers_an_envelope(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    await net.emsp2.close()
    status, body, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
        net.cpo1,
        json=session_for(CPO1, EMSP2),
        headers=rh(CPO1, EMSP2),
    )
    # 4003 now; "queued" (1000) once durable delivery lands. Either way an OCPI envelope.
    assert isinstance(body, dict) and isinstance(body["status_code"], int) and "timestamp" in body, body
    assert body["status_code"] in (1000, 4002, 4003), body
    # The hub keeps working for everyone else.
    status, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/102", net.cpo1, json=session_for(CPO1, EMSP1, "102")
    )
    assert status == 200 and body["status_code"] == 1000, body
    assert len(module_requests(net.emsp1, "sessions")) == 1


FOREIGN = [
    ("html", raw_answer("<html><body>502 Bad Gateway</body></html>", http=502)),
    ("detail", raw_answer('{"detail": "Not authenticated"}', http=403, content_type="application/json")),
    ("empty", raw_answer("", http=200, content_type="application/json")),
    ("string-status", raw_answer('{"status_code": "OK"}', http=200, content_type="application/json")),
]


@pytest.mark.parametrize(("name", "responder"), FOREIGN, ids=[f[0] for f in FOREIGN])
async def test_non_ocpi_answers_to_a_get_are_mapped_to_an_ocpi_error(hub, make_peer, name, responder) -> None:
    net = await network(hub, make_peer)
    net.cpo2.module_responder = responder
    _status, body, headers = await net.call("GET", "/ocpi/2.2.1/tariffs/sender/12", net.emsp1, headers=rh(EMSP1, CPO2))
    assert isinstance(body, dict), body
    assert 4000 <= body["status_code"] < 5000, body
    assert "detail" not in body and "html" not in str(body.get("data"))
    assert headers["Content-Type"].startswith("application/json")
    assert len(module_requests(net.cpo2, "tariffs")) == 1


@pytest.mark.parametrize(("name", "responder"), FOREIGN, ids=[f[0] for f in FOREIGN])
async def test_non_ocpi_answers_to_a_push_are_never_relayed_raw(hub, make_peer, name, responder) -> None:
    net = await network(hub, make_peer)
    net.emsp1.module_responder = responder
    _, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", net.cpo1, json=session_for(CPO1, EMSP1)
    )
    assert isinstance(body, dict) and isinstance(body["status_code"], int) and "timestamp" in body, body
    assert body["status_code"] != 1000 or "queue" in body.get("status_message", "").lower(), body
    assert "detail" not in body


async def test_patch_without_last_updated_is_2001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for url, patch in (
        (LOC_URL + "/3256", {"status": "CHARGING"}),
        ("/ocpi/2.2.1/sessions/receiver/BE/BEC/101", {"kwh": 3}),
    ):
        _, body, _ = await net.call("PATCH", url, net.cpo1, json=patch, headers=rh(CPO1, EMSP1))
        assert body["status_code"] == 2001 and "last_updated" in body["status_message"], body
    _, body, _ = await net.call(
        "PATCH",
        "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678",
        net.emsp1,
        json={"valid": False},
        headers=rh(EMSP1, CPO1),
    )
    assert body["status_code"] == 2001, body
    _nothing_forwarded(net, "locations")
    _nothing_forwarded(net, "sessions")
    _nothing_forwarded(net, "tokens")


MISMATCHES = [
    ("location-id", LOC_URL.replace("LOC1", "LOC2"), lambda: example("location_example.json")),
    ("location-party", LOC_URL, lambda: {**example("location_example.json"), "party_id": "XYZ"}),
    ("evse-uid", LOC_URL + "/9999", lambda: example("location_put_example_add_evse.json")),
    ("connector-id", LOC_URL + "/3256/7", lambda: example("location_example.json")["evses"][0]["connectors"][0]),
    ("session-id", "/ocpi/2.2.1/sessions/receiver/BE/BEC/999", lambda: session_for(CPO1, EMSP1)),
]


@pytest.mark.parametrize(("name", "url", "make"), MISMATCHES, ids=[m[0] for m in MISMATCHES])
async def test_url_and_body_ids_that_differ_are_2001(hub, make_peer, name, url, make) -> None:
    net = await network(hub, make_peer)
    _, body, _ = await net.call("PUT", url, net.cpo1, json=make(), headers=rh(CPO1, EMSP1))
    assert body["status_code"] == 2001, body
    assert all(not functional_requests(peer) for peer in net.peers)


async def test_token_uid_mismatch_is_2001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    _, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/tokens/receiver/NL/TNM/OTHER", net.emsp1, json=example("token_put_example.json")
    )
    assert body["status_code"] == 2001, body
    _nothing_forwarded(net, "tokens")


@pytest.mark.parametrize(
    "headers",
    [
        {"OCPI-to-country-code": "NL"},
        {"OCPI-to-party-id": "TNM"},
        {"OCPI-from-country-code": "BE"},
        {"OCPI-from-party-id": "BEC", "OCPI-to-country-code": "NL", "OCPI-to-party-id": "TNM"},
    ],
    ids=["to-cc-only", "to-pid-only", "from-cc-only", "from-pid-only"],
)
async def test_half_a_routing_header_pair_is_2001(hub, make_peer, headers) -> None:
    net = await network(hub, make_peer)
    _, body, _ = await net.call(
        "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/101", net.cpo1, json=session_for(CPO1, EMSP1), headers=headers
    )
    assert body["status_code"] == 2001 and "pairs" in body["status_message"], body
    _nothing_forwarded(net, "sessions")


async def test_pushes_outside_the_module_interface_are_2001(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    cases = [
        ("PATCH", "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12", net.cpo2, {"last_updated": "2020-01-01T00:00:00Z"}),
        ("PUT", "/ocpi/2.2.1/cdrs/receiver/BE/BEC/1", net.cpo1, example("cdr_example.json")),
        ("DELETE", LOC_URL, net.cpo1, None),
        ("PUT", LOC_URL + "/3256/1/extra", net.cpo1, {"id": "extra"}),
    ]
    for method, url, peer, payload in cases:
        _, body, _ = await net.call(method, url, peer, json=payload, headers=rh(to=EMSP2))
        assert body["status_code"] == 2001, (method, url, body)
    assert all(not functional_requests(peer) for peer in net.peers)


async def test_receiver_2xxx_on_a_broadcast_leg_does_not_reach_the_sender(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    net.emsp1.module_responder = answers(status_code=2001, http=400, message="we hate this location")
    status, body, _ = await net.call(
        "PUT", LOC_URL, net.cpo1, json=example("location_example.json"), headers=rh(CPO1, ("NL", "HUB"))
    )
    assert status == 200 and body["status_code"] == 1000, body


async def test_command_addressed_to_an_emsp_is_4001_even_if_it_publishes_commands(hub, make_peer) -> None:
    # The fake eMSPs publish commands SENDER and RECEIVER endpoints; a command is still only for a CPO.
    net = await network(hub, make_peer)
    command = {"response_url": net.emsp2.base + "/cb/1", "session_id": "101"}
    _, body, _ = await net.call(
        "POST", "/ocpi/2.2.1/commands/receiver/STOP_SESSION", net.emsp2, json=command, headers=rh(EMSP2, EMSP1)
    )
    assert body["status_code"] == 4001, body
    assert module_requests(net.emsp1, "commands") == []
