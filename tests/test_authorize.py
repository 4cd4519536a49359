"""Real-time token authorization through the hub (mod_tokens, Sender POST .../{uid}/authorize).

The CPO asks the eMSP whether a token may charge; the hub routes it synchronously to the eMSP's
tokens SENDER endpoint (by the TO headers, or by the token uid it learned from the eMSP's token
pushes) and relays the eMSP's answer unchanged, including 404/2004 "unknown token".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.commands import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    Net,
    Party,
    assert_parties,
    assert_token,
    network,
    ocpi,
    parsed,
    raw,
    routing,
    script,
    token,
)
from tests.support.fakes import FakePlatform, envelope

SENDER = "/ocpi/2.2.1/tokens/sender/"
REFERENCES = {"location_id": "LOC-BE-1", "evse_uids": ["EVSE-1", "EVSE-2"], "x_vendor": True}


def authorization(allowed: str, party: Party = EMSP1, uid: str = "012345678") -> dict[str, Any]:
    """AuthorizationInfo (mod_tokens) as an eMSP answers it."""
    return {
        "allowed": allowed,
        "token": token(party, uid),
        "location": {"location_id": "LOC-BE-1", "evse_uids": ["EVSE-1"]},
        "authorization_reference": "AUTH-" + uid,
        "info": {"language": "en", "text": "have a nice charge"},
    }


@pytest.fixture
async def net(hub: Any, make_peer: Any) -> Net:
    return await network(hub, make_peer)


async def authorize(
    net: Net, uid: str, to: Party | None, *, cpo: FakePlatform | None = None, cpo_party: Party = CPO1, body: Any = None
) -> tuple[int, Any, Any]:
    cpo = cpo or net.cpo1
    return await net.hub.call(
        "POST",
        f"{SENDER}{uid}/authorize?type=RFID",
        token=cpo.hub_token,
        json=body,
        headers=routing(cpo_party, to, correlation="auth-" + uid),
    )


def check_forwarded(emsp: FakePlatform, emsp_party: Party, uid: str, cpo_party: Party = CPO1, body: Any = None) -> None:
    got = emsp.requests_to("/tokens/")
    assert len(got) == 1, [r.path for r in got]
    fwd = got[0]
    assert fwd.method == "POST" and fwd.path == f"{SENDER}{uid}/authorize" and fwd.query == {"type": "RFID"}
    assert (parsed(fwd) if body is not None else fwd.raw) == (body if body is not None else b"")
    assert_parties(fwd.headers, cpo_party, emsp_party)
    assert_token(fwd, emsp)
    assert fwd.headers["X-Correlation-ID"] == "auth-" + uid
    assert fwd.headers["X-Request-ID"] != "req-" + cpo_party[1].lower()


@pytest.mark.parametrize("allowed", ["ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"])
async def test_authorize_direct_relays_authorization_info(net: Net, allowed: str) -> None:
    info = authorization(allowed)
    net.emsp1.module_responder = script(("/authorize", info))
    status, answer, headers = await authorize(net, "012345678", EMSP1, body=REFERENCES)
    assert status == 200 and answer["status_code"] == 1000 and answer["data"] == info, answer
    assert_parties(headers, EMSP1, CPO1)
    assert headers["X-Correlation-ID"] == "auth-012345678"
    check_forwarded(net.emsp1, EMSP1, "012345678", body=REFERENCES)
    assert not net.emsp2.requests_to("/tokens/")


async def test_authorize_without_location_references(net: Net) -> None:
    net.emsp2.module_responder = script(("/authorize", authorization("ALLOWED", EMSP2, "AB12")))
    status, answer, _ = await authorize(net, "AB12", EMSP2, cpo=net.cpo2, cpo_party=CPO2)
    assert status == 200 and answer["data"]["allowed"] == "ALLOWED"
    check_forwarded(net.emsp2, EMSP2, "AB12", cpo_party=CPO2)


@pytest.mark.parametrize(
    ("http", "code", "message"),
    [(404, 2004, "Unknown token"), (400, 2002, "Not enough information"), (200, 2002, "need a location")],
)
async def test_emsp_error_relayed_unchanged(net: Net, http: int, code: int, message: str) -> None:
    net.emsp1.module_responder = script(("/authorize", ocpi(http, code, None, message)))
    status, answer, headers = await authorize(net, "UNKNOWN1", EMSP1, body=REFERENCES)
    assert status == http and answer == envelope(None, code, message), answer
    assert_parties(headers, EMSP1, CPO1)
    check_forwarded(net.emsp1, EMSP1, "UNKNOWN1", body=REFERENCES)


async def push_token(net: Net, emsp: FakePlatform, party: Party, uid: str) -> None:
    status, body, _ = await net.hub.call(
        "PUT",
        f"/ocpi/2.2.1/tokens/receiver/{party[0]}/{party[1]}/{uid}?type=RFID",
        token=emsp.hub_token,
        json=token(party, uid),
        headers=routing(party, ("NL", "HUB", "HUB")),
    )
    assert status == 200 and body["status_code"] == 1000, body


async def test_open_routing_by_token_uid(net: Net) -> None:
    await push_token(net, net.emsp1, EMSP1, "NL-UID-1")
    await push_token(net, net.emsp2, EMSP2, "FR-UID-2")
    info = authorization("ALLOWED", EMSP2, "FR-UID-2")
    net.emsp2.module_responder = script(("/authorize", info))
    status, answer, headers = await authorize(net, "FR-UID-2", None, body=REFERENCES)
    assert status == 200 and answer["data"] == info, answer
    assert_parties(headers, EMSP2, CPO1)
    check_forwarded(net.emsp2, EMSP2, "FR-UID-2", body=REFERENCES)
    assert not net.emsp1.requests_to("/tokens/sender/")


async def test_open_routing_unknown_token_is_2004(net: Net) -> None:
    """No eMSP is known for the token: mod_tokens says 2004 Unknown Token, not 4001."""
    await push_token(net, net.emsp1, EMSP1, "NL-UID-1")
    status, answer, _ = await authorize(net, "NEVER-PUSHED", None, body=REFERENCES)
    assert status == 404 and answer["status_code"] == 2004 and "data" not in answer, answer
    assert not net.emsp1.requests_to("/tokens/sender/") and not net.emsp2.requests_to("/tokens/sender/")


async def test_authorize_to_unknown_party_is_4001(net: Net) -> None:
    status, answer, _ = await authorize(net, "X1", ("SE", "ZZZ", "EMSP"), body=REFERENCES)
    assert status == 200 and answer["status_code"] == 4001
    assert not net.emsp1.requests_to("/tokens/sender/") and not net.emsp2.requests_to("/tokens/sender/")


async def test_authorize_emsp_unreachable_is_4003(net: Net) -> None:
    await net.emsp1.close()
    status, answer, _ = await authorize(net, "X1", EMSP1, body=REFERENCES)
    assert status == 200 and answer["status_code"] == 4003, answer


async def test_authorize_emsp_non_ocpi_answer_is_an_ocpi_error(net: Net) -> None:
    net.emsp1.module_responder = script(("/authorize", raw(503, "<h1>maintenance</h1>")))
    status, answer, _ = await authorize(net, "X1", EMSP1, body=REFERENCES)
    assert status == 200 and answer["status_code"] == 4000 and "data" not in answer, answer


async def test_cpo_may_not_speak_for_another_party(net: Net) -> None:
    status, answer, _ = await authorize(net, "X1", EMSP1, cpo=net.cpo1, cpo_party=CPO2, body=REFERENCES)
    assert status == 403 and answer["status_code"] == 2001, answer
    assert not net.emsp1.requests_to("/tokens/sender/")
