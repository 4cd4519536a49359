"""Commands through the hub, on the wire (mod_commands, OCPI-DIGEST 3.6 and 4.2, DESIGN section 7).

The eMSP POSTs a command; the CPO receives it with the response_url replaced by a hub callback
URL; the CPO's CommandResponse comes back synchronously; later the CPO POSTs the CommandResult to
the hub URL and the eMSP receives it at its own response_url. Scenarios follow the sequence
diagrams command_*.plantuml.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.command_helpers import (
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    Net,
    Party,
    assert_parties,
    assert_token,
    hdr,
    network,
    ocpi,
    parsed,
    push_location,
    push_session,
    routing,
    script,
    token,
)
from tests.fakes import FakePlatform

CMD = "/ocpi/2.2.1/commands/receiver/"
CALLBACKS = "/ocpi/2.2.1/callbacks/"


def command_body(command: str, response_url: str, **ids: str) -> dict[str, Any]:
    """A command body per the mod_commands tables, plus a vendor field the hub must not touch."""
    bodies: dict[str, dict[str, Any]] = {
        "START_SESSION": {
            "token": token(),
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
            "connector_id": "1",
            "authorization_reference": "AUTH-REF-1",
        },
        "STOP_SESSION": {"session_id": ids.get("session_id", "SESS-1")},
        "RESERVE_NOW": {
            "token": token(),
            "expiry_date": "2026-11-25T14:00:00Z",
            "reservation_id": ids.get("reservation_id", "RES-1"),
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
        },
        "CANCEL_RESERVATION": {"reservation_id": ids.get("reservation_id", "RES-1")},
        "UNLOCK_CONNECTOR": {
            "location_id": ids.get("location_id", "LOC-BE-1"),
            "evse_uid": "EVSE-1",
            "connector_id": "1",
        },
    }
    return {"response_url": response_url, **bodies[command], "x_vendor": {"note": "ünïcode", "n": 1.5}}


@pytest.fixture
async def net(hub: Any, make_peer: Any) -> Net:
    return await network(hub, make_peer)


def accept(command: str, timeout: int = 30) -> tuple[str, Any]:
    return (CMD + command, {"result": "ACCEPTED", "timeout": timeout, "message": [{"language": "en", "text": "ok"}]})


def peers_except(net: Net, *keep: FakePlatform) -> list[FakePlatform]:
    return [p for p in (net.cpo1, net.cpo2, net.emsp1, net.emsp2) if p not in keep]


async def send_command(
    net: Net,
    command: str,
    *,
    cpo: FakePlatform,
    cpo_party: Party,
    emsp: FakePlatform = None,  # type: ignore[assignment]
    emsp_party: Party = EMSP1,
    direct: bool = True,
    correlation: str = "corr-cmd",
    **ids: str,
) -> tuple[dict[str, Any], str, Any]:
    """POST the command as the eMSP; check the synchronous leg on the wire; return (body sent, hub URL, answer)."""
    emsp = emsp or net.emsp1
    original = f"{emsp.base}/ocpi/2.2.1/commands/sender/{command}/cb-{correlation}?ref=42"
    body = command_body(command, original, **ids)
    before = len(cpo.requests_to(CMD + command))
    status, answer, headers = await net.hub.call(
        "POST",
        CMD + command,
        token=emsp.hub_token,
        json=body,
        headers=routing(emsp_party, cpo_party if direct else None, correlation=correlation),
    )
    assert status == 200, answer
    got = cpo.requests_to(CMD + command)
    assert len(got) == before + 1
    fwd = got[-1]
    assert fwd.method == "POST" and fwd.path == CMD + command
    sent = parsed(fwd)
    hub_url = sent["response_url"]
    assert hub_url.startswith(net.hub.base + CALLBACKS) and len(hub_url) > len(net.hub.base + CALLBACKS) + 20
    assert {**sent, "response_url": original} == body  # nothing else changed, unknown fields survive
    assert_parties(fwd.headers, emsp_party, cpo_party)
    assert_token(fwd, cpo)
    assert fwd.headers["X-Correlation-ID"] == correlation
    assert fwd.headers["X-Request-ID"] not in ("", "req-" + emsp_party[1].lower())
    assert_parties(headers, cpo_party, emsp_party)
    assert headers["X-Correlation-ID"] == correlation
    return body, hub_url, answer


async def post_result(
    net: Net,
    cpo: FakePlatform,
    cpo_party: Party,
    emsp: FakePlatform,
    emsp_party: Party,
    hub_url: str,
    original: str,
    result: dict[str, Any],
    correlation: str,
) -> None:
    """The CPO POSTs the CommandResult to the hub URL; the eMSP gets it at its own URL; the CPO gets its answer."""
    before = len(emsp.received)
    status, answer, headers = await net.hub.call(
        "POST", hub_url, token=cpo.hub_token, json=result, headers=routing(cpo_party, emsp_party)
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    assert answer["status_message"] == "thanks from " + emsp_party[1]
    assert_parties(headers, emsp_party, cpo_party)
    assert len(emsp.received) == before + 1
    got = emsp.received[-1]
    assert got.method == "POST" and f"{emsp.base}{got.path}?ref=42" == original and got.query == {"ref": "42"}
    assert parsed(got) == result
    assert_token(got, emsp)
    assert got.headers["X-Correlation-ID"] == correlation
    assert_parties(got.headers, cpo_party, emsp_party)
    assert got.headers["X-Request-ID"] != "req-" + cpo_party[1].lower()


def emsp_thanks(party: Party) -> tuple[str, Any]:
    return ("/commands/sender/", ocpi(200, 1000, message="thanks from " + party[1]))


@pytest.mark.parametrize(
    ("command", "cpo_index", "result"),
    [
        ("START_SESSION", 1, "ACCEPTED"),
        ("STOP_SESSION", 2, "ACCEPTED"),
        ("UNLOCK_CONNECTOR", 2, "ACCEPTED"),
        ("START_SESSION", 2, "EVSE_OCCUPIED"),
    ],
)
async def test_direct_command_round_trip(net: Net, command: str, cpo_index: int, result: str) -> None:
    cpo, cpo_party = (net.cpo1, CPO1) if cpo_index == 1 else (net.cpo2, CPO2)
    cpo.module_responder = script(accept(command))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    body, hub_url, answer = await send_command(net, command, cpo=cpo, cpo_party=cpo_party, correlation="c-" + command)
    assert answer["data"] == {"result": "ACCEPTED", "timeout": 30, "message": [{"language": "en", "text": "ok"}]}
    assert answer["status_code"] == 1000
    command_result = {"result": result, "message": [{"language": "en", "text": "from the charge point"}]}
    await post_result(
        net, cpo, cpo_party, net.emsp1, EMSP1, hub_url, body["response_url"], command_result, "c-" + command
    )
    for other in peers_except(net, cpo, net.emsp1):
        assert not other.requests_to("/commands/") and not other.requests_to("callbacks")


async def test_reserve_now_then_cancel_reservation_direct(net: Net) -> None:
    net.cpo2.module_responder = script(accept("RESERVE_NOW", 20), accept("CANCEL_RESERVATION", 20))
    net.emsp2.module_responder = script(emsp_thanks(EMSP2))
    reserve, reserve_url, _ = await send_command(
        net, "RESERVE_NOW", cpo=net.cpo2, cpo_party=CPO2, emsp=net.emsp2, emsp_party=EMSP2, correlation="res"
    )
    await post_result(
        net, net.cpo2, CPO2, net.emsp2, EMSP2, reserve_url, reserve["response_url"], {"result": "ACCEPTED"}, "res"
    )
    cancel, cancel_url, _ = await send_command(
        net, "CANCEL_RESERVATION", cpo=net.cpo2, cpo_party=CPO2, emsp=net.emsp2, emsp_party=EMSP2, correlation="can"
    )
    assert cancel_url != reserve_url
    await post_result(
        net, net.cpo2, CPO2, net.emsp2, EMSP2, cancel_url, cancel["response_url"], {"result": "ACCEPTED"}, "can"
    )
    assert not net.emsp1.requests_to("/commands/") and not net.cpo1.requests_to("/commands/")


async def test_cpo_cancels_reservation_later_on_the_reserve_now_url(net: Net, clock: Any) -> None:
    """command_reservenow_canceled_by_cpo: CANCELED_RESERVATION goes to the ReserveNow response_url, any time
    before the reservation's expiry_date, long after the CommandResponse timeout."""
    net.cpo1.module_responder = script(accept("RESERVE_NOW", 20))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    body, hub_url, _ = await send_command(net, "RESERVE_NOW", cpo=net.cpo1, cpo_party=CPO1, correlation="r2")
    await post_result(
        net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "r2"
    )
    clock.advance(3600)  # 13:00, the reservation expires at 14:00
    await post_result(
        net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "CANCELED_RESERVATION"}, "r2"
    )
    clock.advance(3600 + 120)  # past expiry_date and its margin: the URL is gone
    status, answer, _ = await net.hub.call("POST", hub_url, token=net.cpo1.hub_token, json={"result": "TIMEOUT"})
    assert status == 404 and answer["status_code"] == 2000


async def test_result_correlation_id_is_the_commands_even_if_cpo_sends_none(net: Net) -> None:
    net.cpo1.module_responder = script(accept("STOP_SESSION"))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    _, hub_url, _ = await send_command(net, "STOP_SESSION", cpo=net.cpo1, cpo_party=CPO1, correlation="keep-me")
    status, answer, _ = await net.hub.call("POST", hub_url, token=net.cpo1.hub_token, json={"result": "ACCEPTED"})
    assert status == 200 and answer["status_code"] == 1000
    got = net.emsp1.requests_to("/commands/sender/STOP_SESSION/")
    assert len(got) == 1 and got[0].headers["X-Correlation-ID"] == "keep-me"
    assert_parties(got[0].headers, CPO1, EMSP1)


# ---- open routing (no OCPI-to headers) ---------------------------------------------------------


async def test_open_routing_start_session_by_location_owner(net: Net) -> None:
    await push_location(net, net.cpo1, CPO1, "LOC-BE-1")
    await push_location(net, net.cpo2, CPO2, "LOC-DE-1")
    net.cpo2.module_responder = script(accept("START_SESSION"))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    body, hub_url, answer = await send_command(
        net, "START_SESSION", cpo=net.cpo2, cpo_party=CPO2, direct=False, location_id="LOC-DE-1", correlation="o1"
    )
    assert answer["data"]["result"] == "ACCEPTED"
    assert not net.cpo1.requests_to(CMD)
    await post_result(
        net, net.cpo2, CPO2, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "o1"
    )


async def test_open_routing_stop_session_to_the_session_owner(net: Net) -> None:
    await push_session(net, net.cpo2, CPO2, EMSP1, "SESS-DE-7")
    await push_session(net, net.cpo1, CPO1, EMSP1, "SESS-BE-7")
    net.cpo2.module_responder = script(accept("STOP_SESSION"))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    body, hub_url, _ = await send_command(
        net, "STOP_SESSION", cpo=net.cpo2, cpo_party=CPO2, direct=False, session_id="SESS-DE-7", correlation="o2"
    )
    assert not net.cpo1.requests_to(CMD)
    await post_result(
        net, net.cpo2, CPO2, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "o2"
    )


async def test_open_routing_cancel_reservation_follows_reserve_now(net: Net) -> None:
    await push_location(net, net.cpo1, CPO1, "LOC-BE-9")
    net.cpo1.module_responder = script(accept("RESERVE_NOW"), accept("CANCEL_RESERVATION"))
    net.emsp2.module_responder = script(emsp_thanks(EMSP2))
    common: dict[str, Any] = {"cpo": net.cpo1, "cpo_party": CPO1, "emsp": net.emsp2, "emsp_party": EMSP2}
    await send_command(
        net, "RESERVE_NOW", direct=False, location_id="LOC-BE-9", reservation_id="RES-77", correlation="o3", **common
    )
    body, hub_url, _ = await send_command(
        net, "CANCEL_RESERVATION", direct=False, reservation_id="RES-77", correlation="o4", **common
    )
    assert not net.cpo2.requests_to(CMD)
    await post_result(
        net, net.cpo1, CPO1, net.emsp2, EMSP2, hub_url, body["response_url"], {"result": "ACCEPTED"}, "o4"
    )


@pytest.mark.parametrize(
    ("command", "field"),
    [("START_SESSION", "location_id"), ("STOP_SESSION", "session_id"), ("CANCEL_RESERVATION", "reservation_id")],
)
async def test_open_routing_unknown_object_is_4001(net: Net, command: str, field: str) -> None:
    body = command_body(command, net.emsp1.base + "/cb/1", **{field: "NEVER-SEEN"})
    status, answer, _ = await net.hub.call(
        "POST", CMD + command, token=net.emsp1.hub_token, json=body, headers=routing(EMSP1)
    )
    assert status == 200 and answer["status_code"] == 4001, answer
    assert not net.cpo1.requests_to(CMD) and not net.cpo2.requests_to(CMD)


def test_header_lookup_is_case_insensitive() -> None:
    assert hdr({"ocpi-FROM-party-id": "X"}, "OCPI-from-party-id") == "X"
