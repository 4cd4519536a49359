import json
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "ocpi-examples-2.2.1"


async def connect(hub, make_peer, *roles, **kw):
    peer = await make_peer(*roles, **kw)
    await peer.register_with(hub.versions_url, await hub.invite(roles[0][1]))
    return peer


async def test_direct_broadcast_and_command(hub, make_peer):
    cpo = await connect(hub, make_peer, ("BE", "BEC", "CPO"))
    emsp = await connect(hub, make_peer, ("NL", "EXA", "EMSP"))
    session = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    session["country_code"], session["party_id"] = "BE", "BEC"
    status, body, headers = await hub.call(
        "PUT",
        f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session['id']}",
        token=cpo.hub_token,
        json=session,
        headers={
            "OCPI-from-country-code": "BE",
            "OCPI-from-party-id": "BEC",
            "OCPI-to-country-code": "NL",
            "OCPI-to-party-id": "EXA",
            "X-Correlation-ID": "corr-1",
        },
    )
    assert status == 200, body
    assert body["status_code"] == 1000
    got = emsp.requests_to("/sessions/receiver/BE/BEC/")
    assert len(got) == 1 and got[0].body == session
    assert got[0].headers["X-Correlation-ID"] == "corr-1"
    assert headers["OCPI-from-party-id"] == "EXA"

    location = json.loads((EXAMPLES / "location_example.json").read_text())
    status, body, _ = await hub.call(
        "PUT", f"/ocpi/2.2.1/locations/receiver/BE/BEC/{location['id']}", token=cpo.hub_token, json=location
    )
    assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: len(emsp.requests_to("/locations/receiver/")) == 1)
    assert emsp.requests_to("/locations/receiver/")[0].headers["OCPI-from-party-id"] == "HUB"

    status, body, headers = await hub.call("GET", "/ocpi/2.2.1/locations/sender/", token=emsp.hub_token)
    assert status == 200 and len(body["data"]) == 1 and headers["X-Total-Count"] == "1"

    async def cpo_answer(request, body):
        from aiohttp import web

        from tests.support.fakes import envelope

        cpo.last_command = body
        return web.json_response(envelope({"result": "ACCEPTED", "timeout": 30}))

    cpo.module_responder = cpo_answer
    status, body, _ = await hub.call(
        "POST",
        "/ocpi/2.2.1/commands/receiver/START_SESSION",
        token=emsp.hub_token,
        json={
            "response_url": emsp.base + "/ocpi/2.2.1/commands/sender/START_SESSION/abc",
            "token": {"uid": "X"},
            "location_id": location["id"],
        },
    )
    assert status == 200 and body["data"]["result"] == "ACCEPTED", body
    callback = cpo.last_command["response_url"]
    assert callback.startswith(hub.base)
    cpo.module_responder = None
    status, body, _ = await hub.call("POST", callback, token=cpo.hub_token, json={"result": "ACCEPTED"})
    assert status == 200 and body["status_code"] == 1000, body
    got = emsp.requests_to("/commands/sender/START_SESSION/abc")
    assert got and got[-1].body == {"result": "ACCEPTED"}


async def test_draft_registrations_path_registers(hub, make_peer):
    import aiohttp

    from tests.support.fakes import b64

    peer = await make_peer(("NL", "DRF", "EMSP"))
    token_a = await hub.invite("draft")
    async with aiohttp.ClientSession() as s:
        async with s.post(
            hub.base + "/ocpi/registrations",
            json=peer.credentials_body(),
            headers={"Authorization": "Token " + b64(token_a)},
        ) as r:
            body = await r.json()
    assert r.status == 200 and body["status_code"] == 1000
    assert body["data"]["roles"][0]["role"] == "HUB"
    status, again, _ = await hub.call("GET", "/ocpi/registrations", token=body["data"]["token"])
    assert status == 200 and again["data"]["token"] == body["data"]["token"]
