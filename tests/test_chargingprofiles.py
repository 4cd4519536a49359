"""Smart charging through the hub, on the wire (mod_charging_profiles; docs/DESIGN-NOTES.md, Callbacks).

Set (PUT, response_url in the body), Get (GET, response_url in the query with duration) and
Clear (DELETE, response_url in the query) go to the CPO with a hub callback URL; the CPO's
*Result reaches the eMSP at its own response_url. The CPO's ActiveChargingProfile update goes
to the eMSP's chargingprofiles SENDER endpoint. Also sessions charging_preferences (mod_sessions).
Scenarios follow sd_charging_profile_*.plantuml.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.support.commands import (
    CALLBACKS,
    CPO1,
    CPO2,
    EMSP1,
    EMSP2,
    Net,
    Party,
    assert_parties,
    assert_token,
    emsp_thanks,
    network,
    parsed,
    post_result,
    push_session,
    routing,
    script,
)
from tests.support.fakes import FakePlatform, envelope

pytestmark = pytest.mark.both_backends

PROFILES = "/ocpi/2.2.1/chargingprofiles/receiver/"
RESULTS = "/results/"

CHARGING_PROFILE: dict[str, Any] = {
    "start_date_time": "2026-11-25T12:00:00Z",
    "duration": 3600,
    "charging_rate_unit": "W",
    "min_charging_rate": 1380.0,
    "charging_profile_period": [{"start_period": 0, "limit": 11000.0}, {"start_period": 1800, "limit": 7400.5}],
}
ACTIVE_PROFILE: dict[str, Any] = {"start_date_time": "2026-11-25T12:00:00Z", "charging_profile": CHARGING_PROFILE}
RESPONSE = {"result": "ACCEPTED", "timeout": 60}


@pytest.fixture
async def net(hub: Any, make_peer: Any) -> Net:
    n = await network(hub, make_peer)
    for emsp, party in ((n.emsp1, EMSP1), (n.emsp2, EMSP2)):
        emsp.module_responder = script(emsp_thanks(party, RESULTS))
    return n


async def profile_request(
    net: Net,
    method: str,
    session_id: str,
    *,
    cpo: FakePlatform,
    cpo_party: Party,
    emsp: FakePlatform,
    emsp_party: Party,
    direct: bool = True,
    correlation: str,
) -> tuple[str, str]:
    """The eMSP's Set/Get/Clear; checks the CPO's leg and the relayed answer; returns (original, hub URL)."""
    original = f"{emsp.base}/ocpi/2.2.1/chargingprofiles/sender{RESULTS}{correlation}?ref=42"
    cpo.module_responder = script((PROFILES + session_id, RESPONSE))
    path = PROFILES + session_id
    body: dict[str, Any] | None = None
    if method == "PUT":
        body = {"charging_profile": CHARGING_PROFILE, "response_url": original, "x_vendor": [1, "two"]}
    elif method == "GET":
        path += "?duration=900&response_url=" + quote(original, safe="")
    else:
        path += "?response_url=" + quote(original, safe="")
    status, answer, headers = await net.hub.call(
        method,
        path,
        token=emsp.hub_token,
        json=body,
        headers=routing(emsp_party, cpo_party if direct else None, correlation=correlation),
    )
    assert status == 200 and answer["data"] == RESPONSE and answer["status_code"] == 1000, answer
    assert_parties(headers, cpo_party, emsp_party)
    assert headers["X-Correlation-ID"] == correlation
    got = cpo.requests_to(PROFILES + session_id)
    assert len(got) == 1 and got[0].method == method and got[0].path == PROFILES + session_id
    fwd = got[0]
    assert_parties(fwd.headers, emsp_party, cpo_party)
    assert_token(fwd, cpo)
    assert fwd.headers["X-Correlation-ID"] == correlation
    assert fwd.headers["X-Request-ID"] != "req-" + emsp_party[1].lower()
    if method == "PUT":
        assert body is not None
        sent = parsed(fwd)
        hub_url = sent["response_url"]
        assert {**sent, "response_url": original} == body and fwd.query == {}
    else:
        hub_url = fwd.query["response_url"]
        assert fwd.raw == b""
        assert fwd.query == (
            {"duration": "900", "response_url": hub_url} if method == "GET" else {"response_url": hub_url}
        )
    assert hub_url.startswith(net.hub.base + CALLBACKS)
    return original, hub_url


@pytest.mark.parametrize(
    ("method", "result"),
    [
        ("PUT", {"result": "ACCEPTED"}),
        ("GET", {"result": "ACCEPTED", "profile": ACTIVE_PROFILE}),
        ("DELETE", {"result": "UNKNOWN"}),
    ],
)
async def test_profile_round_trip_direct(net: Net, method: str, result: dict[str, Any]) -> None:
    original, hub_url = await profile_request(
        net,
        method,
        "SESS-15",
        cpo=net.cpo1,
        cpo_party=CPO1,
        emsp=net.emsp1,
        emsp_party=EMSP1,
        correlation="p-" + method,
    )
    await post_result(net, net.cpo1, CPO1, net.emsp1, EMSP1, hub_url, original, result, "p-" + method)
    assert not net.cpo2.received[-1].path.startswith("/ocpi/2.2.1/chargingprofiles")
    assert not net.emsp2.requests_to("/chargingprofiles/")


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
async def test_profile_open_routing_by_session(net: Net, method: str) -> None:
    await push_session(net, net.cpo2, CPO2, EMSP2, "SESS-DE-15")
    await push_session(net, net.cpo1, CPO1, EMSP2, "SESS-BE-15")
    original, hub_url = await profile_request(
        net, method, "SESS-DE-15", cpo=net.cpo2, cpo_party=CPO2, emsp=net.emsp2, emsp_party=EMSP2, direct=False,
        correlation="open-" + method,
    )  # fmt: skip
    assert not net.cpo1.requests_to("/chargingprofiles/")
    await post_result(
        net, net.cpo2, CPO2, net.emsp2, EMSP2, hub_url, original, {"result": "ACCEPTED"}, "open-" + method
    )


async def test_response_url_with_its_own_query_survives_the_query_string(net: Net) -> None:
    original = net.emsp1.base + "/ocpi/2.2.1/chargingprofiles/sender/results/x?a=1&b=two%20words&c=%26"
    net.cpo1.module_responder = script((PROFILES, RESPONSE))
    status, _, _ = await net.hub.call(
        "GET",
        PROFILES + "S1?response_url=" + quote(original, safe="") + "&duration=60",
        token=net.emsp1.hub_token,
        headers=routing(EMSP1, CPO1),
    )
    assert status == 200
    fwd = net.cpo1.requests_to(PROFILES)[0]
    assert fwd.query["duration"] == "60"
    status, _, _ = await net.hub.call(
        "POST", fwd.query["response_url"], token=net.cpo1.hub_token, json={"result": "REJECTED"}
    )
    assert status == 200
    got = net.emsp1.requests_to("/results/x")
    assert len(got) == 1 and got[0].query == {"a": "1", "b": "two words", "c": "&"}
    assert parsed(got[0]) == {"result": "REJECTED"}


@pytest.mark.parametrize("verdict", ["REJECTED", "TOO_OFTEN", "UNKNOWN_SESSION", "NOT_SUPPORTED"])
async def test_not_accepted_profile_request_closes_the_callback(net: Net, verdict: str) -> None:
    net.cpo1.module_responder = script((PROFILES, {"result": verdict, "timeout": 60}))
    status, answer, _ = await net.hub.call(
        "DELETE",
        PROFILES + "S1?response_url=" + quote(net.emsp1.base + "/results/1", safe=""),
        token=net.emsp1.hub_token,
        headers=routing(EMSP1, CPO1),
    )
    assert status == 200 and answer["data"] == {"result": verdict, "timeout": 60}
    hub_url = net.cpo1.requests_to(PROFILES)[0].query["response_url"]
    status, answer, _ = await net.hub.call("POST", hub_url, token=net.cpo1.hub_token, json={"result": "ACCEPTED"})
    assert status == 404 and answer["status_code"] == 2000
    assert not net.emsp1.requests_to("/results/")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "S1?duration=900", None),
        ("GET", "S1?duration=900&response_url=client.com%2F12345", None),
        ("DELETE", "S1", None),
        ("DELETE", "S1?response_url=", None),
        ("PUT", "S1", {"charging_profile": CHARGING_PROFILE}),
        ("PUT", "S1", {"charging_profile": CHARGING_PROFILE, "response_url": "mailto:x@y.z"}),
        ("PUT", "S1", [1, 2]),
    ],
)
async def test_profile_request_without_usable_response_url_is_2001(net: Net, method: str, path: str, body: Any) -> None:
    status, answer, _ = await net.hub.call(
        method, PROFILES + path, token=net.emsp1.hub_token, json=body, headers=routing(EMSP1, CPO1)
    )
    assert status == 200 and answer["status_code"] == 2001, answer
    assert not net.cpo1.requests_to("/chargingprofiles/")


# ---- CPO-initiated ActiveChargingProfile update (sd_charging_profile_updated) --------------------


async def active_profile_update(net: Net, session_id: str, to: Party | None) -> Any:
    status, answer, headers = await net.hub.call(
        "PUT",
        f"/ocpi/2.2.1/chargingprofiles/sender/{session_id}",
        token=net.cpo1.hub_token,
        json=ACTIVE_PROFILE,
        headers=routing(CPO1, to, correlation="upd"),
    )
    assert status == 200 and answer == envelope(), answer
    assert headers["X-Correlation-ID"] == "upd"
    return headers


@pytest.mark.parametrize("direct", [True, False])
async def test_active_profile_update_reaches_the_emsp_sender_endpoint(net: Net, direct: bool) -> None:
    await push_session(net, net.cpo1, CPO1, EMSP2, "SESS-BE-20")
    headers = await active_profile_update(net, "SESS-BE-20", EMSP2 if direct else None)
    assert_parties(headers, EMSP2, CPO1)
    got = net.emsp2.requests_to("/chargingprofiles/")
    assert len(got) == 1 and got[0].method == "PUT"
    assert got[0].path == "/ocpi/2.2.1/chargingprofiles/sender/SESS-BE-20"
    assert parsed(got[0]) == ACTIVE_PROFILE  # no response_url in an update: body untouched
    assert_parties(got[0].headers, CPO1, EMSP2)
    assert_token(got[0], net.emsp2)
    assert got[0].headers["X-Correlation-ID"] == "upd"
    assert not net.emsp1.requests_to("/chargingprofiles/") and not net.cpo2.requests_to("/chargingprofiles/")


async def test_active_profile_update_for_unknown_session_without_to_is_4001(net: Net) -> None:
    status, answer, _ = await net.hub.call(
        "PUT", "/ocpi/2.2.1/chargingprofiles/sender/NOPE", token=net.cpo1.hub_token, json=ACTIVE_PROFILE
    )
    assert status == 200 and answer["status_code"] == 4001
    assert not net.emsp1.requests_to("/chargingprofiles/") and not net.emsp2.requests_to("/chargingprofiles/")


# ---- sessions charging_preferences (mod_sessions, Sender interface PUT) ---------------------------

PREFERENCES = {
    "profile_type": "GREEN",
    "departure_time": "2026-11-25T18:00:00Z",
    "energy_need": 32.5,
    "discharge_allowed": False,
}


@pytest.mark.parametrize("direct", [True, False])
async def test_charging_preferences_routed_to_the_cpo_sessions_sender(net: Net, direct: bool) -> None:
    await push_session(net, net.cpo2, CPO2, EMSP1, "SESS-DE-30")
    net.cpo2.module_responder = script(("/charging_preferences", "ACCEPTED"))
    status, answer, headers = await net.hub.call(
        "PUT",
        "/ocpi/2.2.1/sessions/sender/SESS-DE-30/charging_preferences",
        token=net.emsp1.hub_token,
        json=PREFERENCES,
        headers=routing(EMSP1, CPO2 if direct else None, correlation="pref"),
    )
    assert status == 200 and answer["data"] == "ACCEPTED" and answer["status_code"] == 1000, answer
    assert_parties(headers, CPO2, EMSP1)
    got = net.cpo2.requests_to("/charging_preferences")
    assert len(got) == 1 and got[0].method == "PUT"
    assert got[0].path == "/ocpi/2.2.1/sessions/sender/SESS-DE-30/charging_preferences"
    assert parsed(got[0]) == PREFERENCES
    assert_parties(got[0].headers, EMSP1, CPO2)
    assert_token(got[0], net.cpo2)
    assert got[0].headers["X-Correlation-ID"] == "pref"
    assert not net.cpo1.requests_to("/charging_preferences")
