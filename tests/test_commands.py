"""Commands through the hub, on the wire (mod_commands; docs/DESIGN-NOTES.md, Callbacks and stand-in URLs).

The eMSP POSTs a command; the CPO receives it with the response_url replaced by a hub callback
URL; the CPO's CommandResponse comes back synchronously; later the CPO POSTs the CommandResult to
the hub URL and the eMSP receives it at its own response_url. Scenarios follow the sequence
diagrams command_*.plantuml.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.keys import STORE, WORKER
from tests.support.commands import (
    CALLBACKS,
    CMD,
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    Net,
    accept,
    assert_parties,
    command_body,
    connect,
    emsp_thanks,
    hdr,
    network,
    ocpi,
    parsed,
    peers_except,
    post_result,
    push_location,
    push_session,
    raw,
    routing,
    script,
    send_command,
    without,
)
from tests.support.fakes import envelope
from tests.support.waiting import until

pytestmark = pytest.mark.both_backends


@pytest.fixture
async def net(hub: Any, make_peer: Any) -> Net:
    return await network(hub, make_peer)


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


async def test_forwarded_result_keeps_the_correlation_id_it_arrived_with(net: Net) -> None:
    # transport_and_format 4.1.1: a hub forwards the X-Correlation-ID of the request it received;
    # the CommandResult is the CPO's own request, so it carries the CPO's id.
    net.cpo1.module_responder = script(accept("STOP_SESSION"))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    _, hub_url, _ = await send_command(net, "STOP_SESSION", cpo=net.cpo1, cpo_party=CPO1, correlation="the-command")
    status, answer, _ = await net.hub.call(
        "POST", hub_url, token=net.cpo1.hub_token, json={"result": "ACCEPTED"}, headers={"X-Correlation-ID": "cpo-own"}
    )
    assert status == 200 and answer["status_code"] == 1000
    got = net.emsp1.requests_to("/commands/sender/STOP_SESSION/")
    assert len(got) == 1 and got[0].headers["X-Correlation-ID"] == "cpo-own"


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


# ---- callbacks refused: 404 envelope, nothing reaches the eMSP ----------------------------------


async def refused(net: Net, url: str, poster_token: str | None) -> None:
    before = len(net.emsp1.received) + len(net.emsp2.received)
    status, answer, headers = await net.hub.call("POST", url, token=poster_token, json={"result": "ACCEPTED"})
    assert status == 404, answer
    assert answer["status_code"] == 2000 and "timestamp" in answer and "data" not in answer
    assert headers["Content-Type"].startswith("application/json")
    assert len(net.emsp1.received) + len(net.emsp2.received) == before


async def accepted_command(net: Net, command: str = "START_SESSION", timeout: int = 30) -> tuple[dict[str, Any], str]:
    net.cpo1.module_responder = script(accept(command, timeout))
    net.emsp1.module_responder = script(emsp_thanks(EMSP1))
    body, hub_url, _ = await send_command(net, command, cpo=net.cpo1, cpo_party=CPO1, correlation="cb")
    return body, hub_url


async def test_callback_expires_after_timeout_plus_margin(net: Net, clock: Any) -> None:
    body, hub_url = await accepted_command(net, timeout=30)
    clock.advance(89)  # timeout 30 + margin 60: still open
    await post_result(
        net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "cb"
    )
    clock.advance(2)
    await refused(net, hub_url, net.cpo1.hub_token)


async def test_expired_callbacks_are_purged_from_the_store(net: Net, clock: Any) -> None:
    await accepted_command(net, timeout=30)
    store = net.hub.app[STORE]

    async def callbacks() -> int:
        row = await store.fetchone("SELECT count(*) AS n FROM proxies WHERE kind='callback'")
        return int(row["n"])

    assert await callbacks() == 1
    clock.advance(30 + 60 + 1)  # past the CommandResponse timeout and its margin
    net.hub.app[WORKER].wake()  # the worker's periodic sweep removes it
    assert await until(callbacks, lambda n: n == 0, step=0.01) == 0


async def test_forged_callback_id(net: Net) -> None:
    _, hub_url = await accepted_command(net)
    await refused(net, net.hub.base + CALLBACKS + "not-a-real-id", net.cpo1.hub_token)
    await refused(net, hub_url[:-1] + ("A" if hub_url[-1] != "A" else "B"), net.cpo1.hub_token)


async def test_callback_from_another_cpo_or_the_emsp_itself(net: Net) -> None:
    body, hub_url = await accepted_command(net)
    await refused(net, hub_url, net.cpo2.hub_token)
    await refused(net, hub_url, net.emsp1.hub_token)
    await refused(net, hub_url, net.emsp2.hub_token)
    # the rightful CPO is not locked out by the attempts
    await post_result(
        net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "cb"
    )


async def test_callback_without_token_is_401(net: Net) -> None:
    _, hub_url = await accepted_command(net)
    status, answer, _ = await net.hub.call("POST", hub_url, json={"result": "ACCEPTED"})
    assert status == 401 and answer["status_code"] == 2000
    assert not net.emsp1.requests_to("/commands/sender/")


@pytest.mark.parametrize("verdict", ["REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION"])
async def test_not_accepted_command_expires_its_callback_at_once(net: Net, verdict: str) -> None:
    net.cpo1.module_responder = script((CMD + "STOP_SESSION", {"result": verdict, "timeout": 30}))
    _, hub_url, answer = await send_command(net, "STOP_SESSION", cpo=net.cpo1, cpo_party=CPO1)
    assert answer == {"data": {"result": verdict, "timeout": 30}, "status_code": 1000, "timestamp": answer["timestamp"]}
    await refused(net, hub_url, net.cpo1.hub_token)


async def test_cpo_error_answer_relayed_unchanged_and_callback_closed(net: Net) -> None:
    """command_unlock_unknow_location: the CPO answers 2003 with REJECTED; relayed as is, no result expected."""
    net.cpo1.module_responder = script(
        (CMD + "UNLOCK_CONNECTOR", ocpi(404, 2003, {"result": "REJECTED", "timeout": 0}, "Unknown Location"))
    )
    _, hub_url, answer = await send_command(net, "UNLOCK_CONNECTOR", cpo=net.cpo1, cpo_party=CPO1, expect_status=404)
    assert answer == envelope({"result": "REJECTED", "timeout": 0}, 2003, "Unknown Location")
    await refused(net, hub_url, net.cpo1.hub_token)


# ---- synchronous leg failures -------------------------------------------------------------------


async def test_cpo_too_slow_is_4002(start_hub: Any, make_peer: Any) -> None:
    hub = await start_hub(command_timeout=0.3)
    cpo = await connect(hub, make_peer, CPO1)
    emsp = await connect(hub, make_peer, EMSP1)
    cpo.module_responder = script(accept("START_SESSION"), delay=1.0)
    body = command_body("START_SESSION", emsp.base + "/cb/slow")
    status, answer, headers = await hub.call(
        "POST", CMD + "START_SESSION", token=emsp.hub_token, json=body, headers=routing(EMSP1, CPO1, correlation="t")
    )
    assert status == 200 and answer["status_code"] == 4002, answer
    assert headers["X-Correlation-ID"] == "t"
    assert len(cpo.requests_to(CMD + "START_SESSION")) == 1


async def test_no_result_accepted_after_4002(start_hub: Any, make_peer: Any) -> None:
    hub = await start_hub(command_timeout=0.3)
    cpo = await connect(hub, make_peer, CPO1)
    emsp = await connect(hub, make_peer, EMSP1)
    cpo.module_responder = script(accept("START_SESSION"), delay=1.0)
    body = command_body("START_SESSION", emsp.base + "/cb/slow")
    status, answer, _ = await hub.call(
        "POST", CMD + "START_SESSION", token=emsp.hub_token, json=body, headers=routing(EMSP1, CPO1)
    )
    assert answer["status_code"] == 4002
    hub_url = parsed(cpo.requests_to(CMD)[0])["response_url"]
    status, answer, _ = await hub.call("POST", hub_url, token=cpo.hub_token, json={"result": "ACCEPTED"})
    assert status == 404 and not emsp.requests_to("/cb/slow")


async def test_cpo_unreachable_is_4003(net: Net) -> None:
    await net.cpo1.close()
    body = command_body("START_SESSION", net.emsp1.base + "/cb/down")
    status, answer, _ = await net.hub.call(
        "POST", CMD + "START_SESSION", token=net.emsp1.hub_token, json=body, headers=routing(EMSP1, CPO1)
    )
    assert status == 200 and answer["status_code"] == 4003, answer
    assert not net.cpo2.requests_to(CMD)


async def test_unknown_to_is_4001(net: Net) -> None:
    body = command_body("START_SESSION", net.emsp1.base + "/cb/x")
    status, answer, _ = await net.hub.call(
        "POST",
        CMD + "START_SESSION",
        token=net.emsp1.hub_token,
        json=body,
        headers=routing(EMSP1, ("XX", "XXX", "CPO")),
    )
    assert status == 200 and answer["status_code"] == 4001, answer
    assert not net.cpo1.requests_to(CMD) and not net.cpo2.requests_to(CMD)


@pytest.mark.parametrize("bad", [None, "", "not-a-url", "ftp://emsp.example/cb", "http://", 42, ["http://x/y"]])
async def test_missing_or_bad_response_url_is_2001(net: Net, bad: Any) -> None:
    body = command_body("STOP_SESSION", "placeholder")
    body = without(body, "response_url") if bad is None else {**body, "response_url": bad}
    status, answer, _ = await net.hub.call(
        "POST", CMD + "STOP_SESSION", token=net.emsp1.hub_token, json=body, headers=routing(EMSP1, CPO1)
    )
    assert status == 200 and answer["status_code"] == 2001, answer
    assert not net.cpo1.requests_to(CMD)


@pytest.mark.parametrize(
    "answer_with",
    [
        raw(502, "<html><body>Bad Gateway</body></html>"),
        raw(200, '{"detail": "Not Found"}', "application/json"),
        raw(200, ""),
        raw(500, "Internal Server Error", "text/plain"),
    ],
)
async def test_non_ocpi_cpo_answer_is_an_ocpi_error(net: Net, answer_with: Any) -> None:
    net.cpo1.module_responder = script((CMD, answer_with))
    body = command_body("START_SESSION", net.emsp1.base + "/cb/x")
    status, answer, headers = await net.hub.call(
        "POST", CMD + "START_SESSION", token=net.emsp1.hub_token, json=body, headers=routing(EMSP1, CPO1)
    )
    assert status == 200 and answer["status_code"] == 4000, answer
    assert set(answer) == {"status_code", "status_message", "timestamp"}
    assert headers["Content-Type"].startswith("application/json")
    assert len(net.cpo1.requests_to(CMD)) == 1


async def test_callback_body_must_be_json_and_from_the_posting_cpo(net: Net) -> None:
    body, hub_url = await accepted_command(net)
    status, answer, _ = await net.hub.call("POST", hub_url, token=net.cpo1.hub_token, data=b"<result>ok</result>")
    assert status == 400 and answer["status_code"] == 2000, answer
    status, answer, _ = await net.hub.call(
        "POST", hub_url, token=net.cpo1.hub_token, json={"result": "ACCEPTED"}, headers=routing(CPO2, EMSP1)
    )
    assert status == 403 and answer["status_code"] == 2001, answer
    assert not net.emsp1.requests_to("/commands/sender/")
    await post_result(
        net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, body["response_url"], {"result": "ACCEPTED"}, "cb"
    )
