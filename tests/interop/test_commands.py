"""Interop: START_SESSION eMSP -> hub -> CPO and the CommandResult back (mod_commands.asciidoc).

The eMSP sends the command with the library's StartSession model (the library has no command
client); the CPO is the library's own commands module: it answers ``data`` as a one-element list
and, as a background task, POSTs the CommandResult to the ``response_url`` it was given, which
the hub must have replaced with its own callback URL.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer, b64
from tests.interop.wire import routing
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)

Pair = tuple[HubHandle, Peer, Peer]
UID = "cmd-start-1"


async def _start_session(hub: HubHandle, cpo: Peer, emsp: Peer) -> dict[str, Any]:
    await cpo.seed("locations", "LOC1", P.location())
    body = {
        "response_url": f"{emsp.base}/ocpi/emsp/2.2.1/commands/{UID}",
        "token": P.token(),
        "location_id": "LOC1",
        "evse_uid": "3256",
        "connector_id": "1",
    }
    return await emsp.send(
        module="commands",
        method="POST",
        path="START_SESSION",
        to=["NL", "XCP"],
        body=body,
        model="StartSession",
        model_module="commands",
        correlation_id="interop-start-1",
    )


def _callback_post(state: dict[str, Any], hub: HubHandle) -> list[dict[str, Any]]:
    return [
        o
        for o in state["outbound"]
        if o["method"] == "POST" and o["url"].startswith(hub.base + "/ocpi/2.2.1/callbacks/")
    ]


async def test_start_session_reaches_the_cpo_with_the_hubs_callback_url(pair: Pair) -> None:
    hub, cpo, emsp = pair

    answer = await _start_session(hub, cpo, emsp)

    [got] = await cpo.received("/commands/", "POST")
    assert got["path"] == "/ocpi/cpo/2.2.1/commands/START_SESSION"
    assert routing(got["headers"]) == ("NL", "XMS", "NL", "XCP")
    assert got["headers"]["x-correlation-id"] == "interop-start-1"
    assert got["headers"]["x-request-id"] != answer["request_headers"]["X-Request-ID"]
    # mod_commands 1.2 / DESIGN-NOTES: the response_url the CPO sees is the hub's, never the eMSP's.
    sent = answer["sent"]
    assert got["body"]["response_url"].startswith(hub.base + "/ocpi/2.2.1/callbacks/")
    assert {k: v for k, v in got["body"].items() if k != "response_url"} == {
        k: v for k, v in sent.items() if k != "response_url"
    }
    [command] = (await cpo.state())["commands"]
    assert command["data"]["location_id"] == "loc1"
    # The CPO's own answer (data = [CommandResponse], as the library sends it) reached the eMSP.
    assert got["response"]["status_code"] == 1000
    assert answer["status"] == 200 and answer["body"]["status_code"] == 1000
    assert answer["headers"]["x-correlation-id"] == "interop-start-1"
    assert routing(answer["headers"]) == ("NL", "XCP", "NL", "XMS")


async def test_command_response_is_relayed_as_an_object(pair: Pair) -> None:
    hub, cpo, emsp = pair

    answer = await _start_session(hub, cpo, emsp)

    # mod_commands 3.1.1: the response to POST {command} is one CommandResponse object.
    data = answer["body"]["data"]
    assert isinstance(data, dict), data
    assert data["result"] == "ACCEPTED" and data["timeout"] == 30


async def test_command_result_reaches_the_emsp_through_the_hubs_callback(pair: Pair) -> None:
    hub, cpo, emsp = pair
    await _start_session(hub, cpo, emsp)

    # The library's CPO POSTs its CommandResult to the hub's callback right after answering.
    state = await cpo.wait_for(lambda s: any("status" in o for o in _callback_post(s, hub)))
    [result_post] = _callback_post(state, hub)
    assert result_post["body"]["result"] == "ACCEPTED"
    assert result_post["headers"]["authorization"] == f"Token {b64(state['hub_token'])}"
    assert result_post["status"] == 200, result_post
    assert result_post["response"]["status_code"] == 1000
    # ... and the hub forwards it to the eMSP's own response_url.
    [got] = await emsp.received(f"/commands/{UID}", "POST")
    assert got["body"] == result_post["body"]
    assert got["status"] == 200
    # A forwarded request keeps the X-Correlation-ID it arrived with (transport_and_format 4.1.1);
    # the library sends none with its CommandResult, so the hub uses the command's: the whole
    # exchange stays findable under one id, and the CPO's answer echoes it.
    answer_headers = result_post["response_headers"]
    assert got["headers"]["x-correlation-id"] == answer_headers["x-correlation-id"] == "interop-start-1"
    assert got["headers"]["x-request-id"] != answer_headers["x-request-id"]
    assert routing(got["headers"]) == ("NL", "XCP", "NL", "XMS")
    assert (await emsp.state())["command_results"] == {UID: {"result": "ACCEPTED", "message": []}}
