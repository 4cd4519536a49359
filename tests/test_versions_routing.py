"""Messages between partners on different OCPI versions, on the wire, with the loss report.

Fake partners are real HTTP servers speaking 2.1.1, 2.2.1 or 2.3.0; the tests assert what each
one receives: its own version's shape, no routing headers toward 2.1.1, and the Loss records
in the traffic record, the metric and /status.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from routing.versions.v211 import models as m211
from routing.versions.v221 import models as m221
from routing.versions.v230 import models as m230
from tests.support.commands import script
from tests.support.fakes import FakePlatform
from tests.support.hub import ADMIN
from tests.support.routing import cdr_for, example, session_for
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.asyncio, pytest.mark.both_backends]

CPO11 = ("NL", "C11", "CPO")
EMSP11 = ("NL", "E11", "EMSP")
CPO22 = ("BE", "BEC", "CPO")
EMSP22 = ("DE", "E22", "EMSP")
EMSP23 = ("FR", "E23", "EMSP")

LOCATION_211: dict[str, Any] = {
    "id": "LOC1",
    "type": "ON_STREET",
    "name": "Gent Zuid",
    "address": "F.Rooseveltlaan 3A",
    "city": "Gent",
    "postal_code": "9000",
    "country": "BEL",
    "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
    "evses": [
        {
            "uid": "3256",
            "evse_id": "BE*BEC*E041503001",
            "status": "AVAILABLE",
            "connectors": [
                {
                    "id": "1",
                    "standard": "IEC_62196_T2",
                    "format": "CABLE",
                    "power_type": "AC_3_PHASE",
                    "voltage": 220,
                    "amperage": 16,
                    "tariff_id": "11",
                    "last_updated": "2015-03-16T10:10:02Z",
                }
            ],
            "last_updated": "2015-06-28T08:12:01Z",
        }
    ],
    "time_zone": "Europe/Brussels",
    "last_updated": "2015-06-28T08:12:01Z",
}


async def join(hub: Any, make_peer: Any, party: tuple[str, str, str], version: str, **kw: Any) -> FakePlatform:
    """A fake partner on ``version``, registered through the real handshake."""
    peer = await make_peer(party, name=party[1], version=version, **kw)
    role = party[2] if version == "2.1.1" else None
    await peer.register_with(hub.versions_url, await hub.invite(party[1], role=role))
    return peer


def no_routing_headers(headers: dict[str, str]) -> bool:
    """True when none of the OCPI-from/OCPI-to headers is present."""
    return not [k for k in headers if k.lower().startswith("ocpi-")]


async def test_211_cpo_location_reaches_221_and_230_emsps(start_hub, make_peer) -> None:
    """A 2.1.1 CPO pushes a Location (no routing headers): both eMSPs get it in their version."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp22 = await join(hub, make_peer, EMSP22, "2.2.1")
    emsp23 = await join(hub, make_peer, EMSP23, "2.3.0")
    status, body, headers = await hub.call(
        "PUT", "/ocpi/2.1.1/locations/NL/C11/LOC1", token=cpo.hub_token, json=LOCATION_211
    )
    assert (status, body["status_code"]) == (200, 1000), body
    assert no_routing_headers(dict(headers))
    await wait_for(lambda: bool(emsp22.requests_to("/locations/")) and bool(emsp23.requests_to("/locations/")))
    (got22,) = emsp22.requests_to("/locations/")
    (got23,) = emsp23.requests_to("/locations/")
    assert got22.path == "/ocpi/2.2.1/locations/receiver/NL/C11/LOC1"
    assert got23.path == "/ocpi/2.3.0/locations/receiver/NL/C11/LOC1"
    for got, models in ((got22, m221), (got23, m230)):
        models.Location.model_validate(got.body)
        assert (got.body["country_code"], got.body["party_id"], got.body["publish"]) == ("NL", "C11", True)
        assert got.body["parking_type"] == "ON_STREET"
        connector = got.body["evses"][0]["connectors"][0]
        assert (connector["max_voltage"], connector["max_amperage"], connector["tariff_ids"]) == (220, 16, ["11"])
    # The hub's copy is 2.2.1: a 2.1.1 eMSP pulling it gets 2.1.1 back.
    emsp11 = await join(hub, make_peer, EMSP11, "2.1.1")
    status, body, _ = await hub.call("GET", "/ocpi/2.1.1/locations", token=emsp11.hub_token)
    assert status == 200 and body["status_code"] == 1000, body
    (pulled,) = body["data"]
    m211.Location.model_validate(pulled)
    assert pulled["evses"][0]["connectors"][0]["voltage"] == 220 and "country_code" not in pulled


async def test_221_cpo_session_and_cdr_reach_211_emsp_by_token_owner(start_hub, make_peer) -> None:
    """Open routing by cdr_token owner to a 2.1.1 eMSP: 2.1.1 shape, no routing headers, losses named."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO22, "2.2.1")
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    location = example("location_example.json")  # owned by BE*BEC, id LOC1
    status, body, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", token=cpo.hub_token, json=location
    )
    assert body["status_code"] == 1000, body
    session = session_for(CPO22, EMSP11)
    status, body, _ = await hub.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
        token=cpo.hub_token,
        json=session,
        headers={"X-Correlation-ID": "corr-session-211"},
    )
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: bool(emsp.requests_to("/sessions/")))
    (got,) = emsp.requests_to("/sessions/")
    assert got.path == "/ocpi/2.1.1/sessions/BE/BEC/101"
    assert no_routing_headers(got.headers)
    m211.Session.model_validate(got.body)
    assert got.body["auth_id"] == session["cdr_token"]["contract_id"]
    assert got.body["start_datetime"] == session["start_date_time"]
    assert got.body["location"]["id"] == "LOC1"  # the embedded Location, from the hub's copy
    assert [e["uid"] for e in got.body["location"]["evses"]] == [session["evse_uid"]]
    cdr = cdr_for(CPO22, EMSP11)
    status, body, _ = await hub.call("POST", "/ocpi/2.2.1/cdrs/receiver", token=cpo.hub_token, json=cdr)
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: bool(emsp.requests_to("/cdrs")))
    (got,) = emsp.requests_to("/cdrs")
    assert got.path == "/ocpi/2.1.1/cdrs" and no_routing_headers(got.headers)
    assert got.body["stop_date_time"] == cdr["end_date_time"]
    assert got.body["total_cost"] == cdr["total_cost"]["excl_vat"]
    assert got.body["location"]["evses"][0]["uid"] == cdr["cdr_location"]["evse_uid"]
    # The loss report: in the message's traffic record, the metric, /status.
    _, traffic = await hub.admin("GET", "/admin/traffic?correlation_id=corr-session-211")
    records = [r for r in traffic if r["direction"] == "in" and r["losses"]]
    assert records, traffic
    assert "cdr_token.uid" in records[0]["losses"]
    _, status_body = await hub.admin("GET", "/status")
    pairs = status_body["top_losses"]
    assert any(p["to_platform_id"] is not None and p["losses"] for p in pairs), pairs
    async with hub.session.get(hub.base + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
        metrics = await r.text()
    assert 'ocpi_hub_translation_losses_total{field="cdr_token.uid",kind="dropped",module="sessions"}' in metrics


async def test_command_from_211_emsp_to_221_cpo_and_result_back(start_hub, make_peer) -> None:
    """StartSession 2.1.1 -> 2.2.1 CPO; its CommandResponse and CommandResult back in 2.1.1."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO22, "2.2.1")
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    cpo.module_responder = script(("/commands/", {"result": "ACCEPTED", "timeout": 30}))
    location = example("location_example.json")
    await hub.call("PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", token=cpo.hub_token, json=location)
    response_url = f"{emsp.base}/ocpi/2.1.1/emsp/commands/START_SESSION/42"
    token_211 = {
        "uid": "012345678",
        "type": "RFID",
        "auth_id": "NL-E11-C12345678-X",
        "issuer": "E11 eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2015-06-29T22:39:09Z",
    }
    command = {"response_url": response_url, "token": token_211, "location_id": "LOC1", "evse_uid": "3256"}
    status, body, headers = await hub.call(
        "POST", "/ocpi/2.1.1/commands/START_SESSION", token=emsp.hub_token, json=command
    )
    assert (status, body["status_code"]) == (200, 1000), body
    assert body["data"] == {"result": "ACCEPTED"}  # 2.1.1 CommandResponse: no timeout
    assert no_routing_headers(dict(headers))
    (got,) = cpo.requests_to("/commands/")
    m221.StartSession.model_validate(got.body)
    assert got.body["token"]["contract_id"] == "NL-E11-C12345678-X"
    assert (got.body["token"]["country_code"], got.body["token"]["party_id"]) == ("NL", "E11")
    callback = got.body["response_url"]
    assert callback.startswith(hub.base)
    status, body, _ = await hub.call(
        "POST", callback[len(hub.base) :], token=cpo.hub_token, json={"result": "EVSE_OCCUPIED"}
    )
    assert body["status_code"] == 1000, body
    (result,) = [r for r in emsp.received if r.path.endswith("/START_SESSION/42")]
    assert result.body == {"result": "REJECTED"}  # no EVSE_OCCUPIED in 2.1.1: closest meaning
    assert no_routing_headers(result.headers)


async def test_charging_profiles_refused_for_211_party(start_hub, make_peer) -> None:
    """A 2.2.1 eMSP sending a charging profile to a 2.1.1 CPO gets a clear OCPI error."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp = await join(hub, make_peer, EMSP22, "2.2.1")
    profile = {
        "charging_profile": {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": 1}]},
        "response_url": f"{emsp.base}/cb/1",
    }
    headers = {
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "E22",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "C11",
    }
    status, body, _ = await hub.call(
        "PUT", "/ocpi/2.2.1/chargingprofiles/receiver/S1", token=emsp.hub_token, json=profile, headers=headers
    )
    assert (status, body["status_code"]) == (200, 2001) and "2.1.1" in body["status_message"], body
    assert not cpo.requests_to("chargingprofiles")


async def test_230_extension_fields_pass_between_230_partners(start_hub, make_peer) -> None:
    """2.3.0 to 2.3.0: the caller's own bytes, unknown fields included (never re-encoded)."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, ("NL", "C23", "CPO"), "2.3.0")
    emsp = await join(hub, make_peer, EMSP23, "2.3.0")
    emsp22 = await join(hub, make_peer, EMSP22, "2.2.1")
    location = copy.deepcopy(example("location_example.json"))
    location.update(country_code="NL", party_id="C23", x_vendor={"a": 1}, help_phone="+3212345678")
    _, body, _ = await hub.call("PUT", "/ocpi/2.3.0/locations/receiver/NL/C23/LOC1", token=cpo.hub_token, json=location)
    assert body["status_code"] == 1000, body
    await wait_for(lambda: bool(emsp.requests_to("/locations/")) and bool(emsp22.requests_to("/locations/")))
    (got,) = emsp.requests_to("/locations/")
    assert got.body["x_vendor"] == {"a": 1} and got.body["help_phone"] == "+3212345678"
    (got22,) = emsp22.requests_to("/locations/")
    assert "x_vendor" not in got22.body and "help_phone" not in got22.body


async def test_211_cpo_authorizes_at_221_emsp(start_hub, make_peer) -> None:
    """Real-time authorization from a 2.1.1 CPO: the eMSP's AuthorizationInfo comes back as 2.1.1."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    emsp = await join(hub, make_peer, EMSP22, "2.2.1")
    token = example("token_put_example.json")
    token.update(country_code="DE", party_id="E22", uid="UID22")
    _, body, _ = await hub.call("PUT", "/ocpi/2.2.1/tokens/receiver/DE/E22/UID22", token=emsp.hub_token, json=token)
    assert body["status_code"] == 1000, body
    await wait_for(lambda: bool(cpo.requests_to("/tokens/")))
    (pushed,) = cpo.requests_to("/tokens/")
    assert pushed.path == "/ocpi/2.1.1/tokens/DE/E22/UID22" and no_routing_headers(pushed.headers)
    assert pushed.body["auth_id"] == token["contract_id"] and "contract_id" not in pushed.body
    info = {"allowed": "ALLOWED", "token": token, "authorization_reference": "REF1"}
    emsp.module_responder = script(("/authorize", info))
    where = {"location_id": "LOC1", "evse_uids": ["3256"], "connector_ids": ["1"]}
    status, body, headers = await hub.call(
        "POST", "/ocpi/2.1.1/tokens/UID22/authorize", token=cpo.hub_token, json=where
    )
    assert (status, body["status_code"]) == (200, 1000), body
    assert body["data"] == {"allowed": "ALLOWED"}  # 2.1.1 AuthorizationInfo has no token/reference
    assert no_routing_headers(dict(headers))
    (asked,) = emsp.requests_to("/authorize")
    assert asked.body == {"location_id": "LOC1", "evse_uids": ["3256"]}  # no connector_ids in 2.2.1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ocpi/2.1.1/sessions/NL/C11/1", {"auth_id": 5, "location": "x", "total_cost": "a"}),
        ("/ocpi/2.1.1/locations/NL/C11/L1", {"evses": [{"connectors": "no"}], "opening_times": 3}),
        ("/ocpi/2.1.1/cdrs", {"auth_id": ["x"], "location": {"evses": "y"}}),
        ("/ocpi/2.1.1/locations/NL/C11/L1", ["not", "an", "object"]),
    ],
)
async def test_211_garbage_is_a_clear_error_not_a_500(start_hub, make_peer, path, body) -> None:
    """Bodies that are no 2.1.1 object at all: refused (or tolerated, as 2.2.1 ones are), never a 500."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO11, "2.1.1")
    method = "POST" if path.endswith("/cdrs") else "PUT"
    status, answer, _ = await hub.call(method, path, token=cpo.hub_token, json=body)
    assert status < 500 and answer["status_code"] < 3000 and "Traceback" not in str(answer), answer
