"""Direct routing (OCPI-to headers name a party): every module, on the wire.

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md), used unmodified apart from owner ids.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.routing import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    Net,
    answers,
    cdr_for,
    example,
    module_requests,
    network,
    party_of,
    rh,
    session_for,
)

pytestmark = pytest.mark.both_backends

VENDOR = {"x_vendor_ext": {"färg": "blå", "n": [1, 2.50, None]}}


def _connector() -> dict[str, Any]:
    return dict(example("location_example.json")["evses"][0]["connectors"][0])


# (case id, sender, receiver, method, hub path after /ocpi/2.2.1/, body or None)
CASES: list[tuple[str, str, str, str, str, Any]] = [
    (
        "location-put",
        "cpo1",
        "emsp2",
        "PUT",
        "locations/receiver/BE/BEC/LOC1",
        lambda: example("location_example.json"),
    ),
    (
        "location-patch",
        "cpo1",
        "emsp2",
        "PATCH",
        "locations/receiver/BE/BEC/LOC1",
        lambda: example("location_patch_example_location.json"),
    ),
    (
        "evse-put",
        "cpo1",
        "emsp2",
        "PUT",
        "locations/receiver/BE/BEC/LOC1/3256",
        lambda: example("location_put_example_add_evse.json"),
    ),
    (
        "evse-patch",
        "cpo1",
        "emsp2",
        "PATCH",
        "locations/receiver/BE/BEC/LOC1/3256",
        lambda: example("location_patch_example_status.json"),
    ),
    ("connector-put", "cpo1", "emsp2", "PUT", "locations/receiver/BE/BEC/LOC1/3256/1", _connector),
    (
        "connector-patch",
        "cpo1",
        "emsp2",
        "PATCH",
        "locations/receiver/BE/BEC/LOC1/3256/1",
        lambda: example("location_patch_example_tariff.json"),
    ),
    ("tariff-put", "cpo2", "emsp1", "PUT", "tariffs/receiver/DE/ALL/12", lambda: example("tariff_1_simple_2hour.json")),
    ("tariff-delete", "cpo2", "emsp1", "DELETE", "tariffs/receiver/DE/ALL/12", lambda: None),
    (
        "token-put",
        "emsp1",
        "cpo2",
        "PUT",
        "tokens/receiver/NL/TNM/012345678?type=RFID",
        lambda: example("token_put_example.json"),
    ),
    (
        "token-patch",
        "emsp1",
        "cpo2",
        "PATCH",
        "tokens/receiver/NL/TNM/012345678?type=RFID",
        lambda: example("token_patch_example.json"),
    ),
    ("session-put", "cpo1", "emsp2", "PUT", "sessions/receiver/BE/BEC/101", lambda: session_for(CPO1, EMSP1)),
    (
        "session-patch",
        "cpo1",
        "emsp2",
        "PATCH",
        "sessions/receiver/BE/BEC/101",
        lambda: example("session_patch_example_charging_period.json"),
    ),
    ("cdr-post", "cpo1", "emsp2", "POST", "cdrs/receiver", lambda: cdr_for(CPO1, EMSP1)),
]

PARTIES = {"cpo1": CPO1, "cpo2": CPO2, "emsp1": EMSP1, "emsp2": EMSP2}


@pytest.mark.parametrize(
    ("case", "sender", "receiver", "method", "path", "make_body"), CASES, ids=[c[0] for c in CASES]
)
async def test_direct_push_reaches_only_the_addressed_party(
    hub, make_peer, case, sender, receiver, method, path, make_body
) -> None:
    net: Net = await network(hub, make_peer)
    src, dst = getattr(net, sender), getattr(net, receiver)
    body = make_body()
    raw = None
    if body is not None:
        body = {**body, **VENDOR}
        # Odd but valid formatting: the receiver must get exactly these bytes.
        raw = json.dumps(body, indent=3, ensure_ascii=False).encode()
    module = path.split("/")[0]
    headers = rh(PARTIES[sender], PARTIES[receiver], X_Request_ID="req-in-1", X_Correlation_ID="corr-direct")
    status, answer, answer_headers = await net.call(method, f"/ocpi/2.2.1/{path}", src, data=raw, headers=headers)
    assert status == 200, answer
    assert answer["status_code"] == 1000, answer

    got = module_requests(dst, module)
    assert len(got) == 1, [r.path for r in dst.received]
    leg = got[0]
    suffix, _, query = path.partition("?")
    assert leg.method == method
    assert leg.path == "/ocpi/2.2.1/" + suffix
    assert leg.query == (dict([query.split("=")]) if query else {})
    if raw is not None:
        assert leg.raw == raw  # byte-identical: vendor fields and last_updated untouched
        assert leg.body["x_vendor_ext"] == VENDOR["x_vendor_ext"]
    else:
        assert leg.raw == b""
    assert leg.headers["X-Correlation-ID"] == "corr-direct"
    assert leg.headers["X-Request-ID"] not in ("", "req-in-1")
    assert party_of(leg, "from") == PARTIES[sender][:2]
    assert party_of(leg, "to") == PARTIES[receiver][:2]
    # Answer: FROM/TO swapped, the caller's own ids echoed.
    assert (answer_headers["OCPI-from-country-code"], answer_headers["OCPI-from-party-id"]) == PARTIES[receiver][:2]
    assert (answer_headers["OCPI-to-country-code"], answer_headers["OCPI-to-party-id"]) == PARTIES[sender][:2]
    assert answer_headers["X-Request-ID"] == "req-in-1"
    assert answer_headers["X-Correlation-ID"] == "corr-direct"
    # Nobody else heard of it.
    for other in net.peers:
        if other is not dst:
            assert module_requests(other, module) == [], other.name


async def test_each_hop_gets_a_new_request_id(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    for n in range(2):
        status, _, _ = await net.call(
            "PUT",
            "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
            net.cpo1,
            json=session_for(CPO1, EMSP1),
            headers=rh(CPO1, EMSP1, X_Request_ID="same-id", X_Correlation_ID=f"c{n}"),
        )
        assert status == 200
    legs = module_requests(net.emsp1, "sessions")
    assert [r.headers["X-Correlation-ID"] for r in legs] == ["c0", "c1"]
    ids = {r.headers["X-Request-ID"] for r in legs}
    assert len(ids) == 2 and "same-id" not in ids


async def test_receiver_client_error_is_relayed_unchanged(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    net.emsp1.module_responder = answers({"why": "tariff unknown"}, status_code=2001, http=400, message="nope")
    status, body, headers = await net.call(
        "PUT",
        "/ocpi/2.2.1/tariffs/receiver/DE/ALL/12",
        net.cpo2,
        json=example("tariff_1_simple_2hour.json"),
        headers=rh(CPO2, EMSP1),
    )
    assert status == 400
    assert body == {
        "data": {"why": "tariff unknown"},
        "status_code": 2001,
        "status_message": "nope",
        "timestamp": "2026-11-25T12:00:00Z",
    }
    assert headers["OCPI-from-party-id"] == "TNM" and headers["OCPI-to-party-id"] == "ALL"


async def test_receiver_server_error_on_get_is_relayed_unchanged(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    net.cpo1.module_responder = answers(status_code=3001, http=500, message="backend gone")
    status, body, _ = await net.call(
        "GET", "/ocpi/2.2.1/locations/sender/LOC1", net.emsp1, headers=rh(EMSP1, CPO1, X_Correlation_ID="g1")
    )
    assert status == 500
    assert body["status_code"] == 3001 and body["status_message"] == "backend gone"
    (leg,) = module_requests(net.cpo1, "locations")
    assert leg.path == "/ocpi/2.2.1/locations/sender/LOC1"
    assert leg.headers["X-Correlation-ID"] == "g1"


async def test_direct_get_of_one_object_returns_the_receivers_data(hub, make_peer) -> None:
    net = await network(hub, make_peer)
    token = example("token_put_example.json")
    net.cpo2.module_responder = answers(token)
    # The eMSP reads back what a CPO holds of its token: the CPO's tokens RECEIVER GET.
    status, body, headers = await net.call(
        "GET", "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678?type=RFID", net.emsp1, headers=rh(EMSP1, CPO2)
    )
    assert status == 200 and body["data"] == token
    (leg,) = module_requests(net.cpo2, "tokens")
    assert leg.method == "GET" and leg.path == "/ocpi/2.2.1/tokens/receiver/NL/TNM/012345678"
    assert leg.query == {"type": "RFID"}
    assert party_of(leg, "from") == ("NL", "TNM") and party_of(leg, "to") == ("DE", "ALL")
    assert headers["OCPI-from-party-id"] == "ALL" and headers["OCPI-to-party-id"] == "TNM"
    assert module_requests(net.cpo1, "tokens") == []
