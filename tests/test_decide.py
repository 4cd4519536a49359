"""Unit tests of the pure routing decisions (routing/decide.py) and the stored-copy merge rules (routing/objects.py).

Payloads are the official OCPI 2.2.1 examples (CC BY-ND 4.0, EVRoaming Foundation; see
tests/support/routing.py and tests/fixtures/ocpi-examples-2.2.1/NOTICE.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from routing.decide import (
    MODULES,
    Broadcast,
    Direct,
    FromStore,
    GetAll,
    Open,
    RouteKey,
    caller_party,
    check_owner,
    decide,
    open_route_key,
)
from routing.messages import PartyRef, RoutingHeaders
from routing.objects import ObjectRef, apply_push, canonical_time, check_body_matches, object_ref
from routing.protocol.errors import InvalidParameters, UnknownReceiver
from routing.protocol.headers import parse_routing_headers
from routing.protocol.paths import join as _join
from storage.models import Party, Platform
from tests.support.routing import example

HUB = PartyRef("NL", "HUB")
NONE = RoutingHeaders(None, None)


def _to(cc: str, pid: str) -> RoutingHeaders:
    return RoutingHeaders(from_party=None, to_party=PartyRef(cc, pid))


def _platform(*parties: tuple[str, str, str]) -> Platform:
    return Platform(
        id=7,
        name="p",
        status="CONNECTED",
        versions_url=None,
        version="2.2.1",
        token_out="t",
        send_base64=True,
        initiated_by="party",
        created_at="2020-01-01T00:00:00Z",
        updated_at="2020-01-01T00:00:00Z",
        last_seen_in=None,
        last_seen_out=None,
        parties=tuple(
            Party(platform_id=7, country_code=c, party_id=p, role=r, business_details={}, last_updated="x")
            for c, p, r in parties
        ),
    )


# ---- decide ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "interface", "method", "segments", "headers", "kind"),
    [
        ("locations", "RECEIVER", "PUT", ["BE", "BEC", "L"], _to("DE", "TNM"), Direct),
        ("locations", "SENDER", "GET", [], _to("be", "bec"), Direct),  # pull
        ("locations", "SENDER", "GET", [], _to("nl", "hub"), GetAll),  # CiString compare
        ("sessions", "SENDER", "GET", [], NONE, GetAll),
        ("locations", "RECEIVER", "PUT", ["BE", "BEC", "L"], _to("NL", "HUB"), Broadcast),
        ("tariffs", "RECEIVER", "DELETE", ["BE", "BEC", "T"], _to("NL", "HUB"), Broadcast),
        ("tokens", "RECEIVER", "PATCH", ["NL", "TNM", "U"], _to("NL", "HUB"), Broadcast),
        ("locations", "RECEIVER", "PUT", ["BE", "BEC", "L"], NONE, Broadcast),  # open routing of CPO data
        ("tariffs", "RECEIVER", "DELETE", ["BE", "BEC", "T"], NONE, Broadcast),
        ("locations", "SENDER", "GET", ["L"], _to("NL", "HUB"), FromStore),  # single object from the hub's copy
        ("sessions", "RECEIVER", "PUT", ["BE", "BEC", "S"], NONE, Open),
        ("locations", "SENDER", "GET", ["L"], NONE, Open),
    ],
)
def test_decide(module, interface, method, segments, headers, kind) -> None:
    body = _session() if module == "sessions" else {}
    assert isinstance(decide(MODULES[module], interface, method, segments, headers, HUB, body), kind)


def test_decide_refuses_a_request_that_names_no_receiver() -> None:
    with pytest.raises(UnknownReceiver):
        decide(MODULES["cdrs"], "RECEIVER", "POST", [], NONE, HUB, example("cdr_example.json"))  # no token owner


@pytest.mark.parametrize(
    ("module", "interface", "method", "segments"),
    [
        ("sessions", "RECEIVER", "PUT", ["BE", "BEC", "S"]),  # sessions are never broadcast
        ("cdrs", "RECEIVER", "POST", []),
        ("tariffs", "SENDER", "GET", ["T"]),  # GET is never broadcast
        ("commands", "RECEIVER", "POST", ["START_SESSION"]),
    ],
)
def test_decide_refuses_what_cannot_go_to_the_hub(module, interface, method, segments) -> None:
    with pytest.raises(UnknownReceiver):
        decide(MODULES[module], interface, method, segments, _to("NL", "HUB"), HUB, {})


# ---- open_route_key -------------------------------------------------------------------------


def _session(cc: str | None = "NL", pid: str | None = "TNM") -> dict[str, Any]:
    body: dict[str, Any] = example("session_example_1_simple_start.json")
    if cc:
        body["cdr_token"]["country_code"], body["cdr_token"]["party_id"] = cc, pid
    return body


def test_open_route_key_by_content() -> None:
    m = MODULES
    s = ["BE", "BEC", "101"]
    assert open_route_key(m["sessions"], "RECEIVER", "PUT", s, _session()) == RouteKey(
        "party", party=PartyRef("NL", "TNM")
    )
    # Without a token owner, and for PATCH: wherever the PUT went.
    expected = RouteKey("session", "101", party=PartyRef("BE", "BEC"), want_peer=True)
    assert open_route_key(m["sessions"], "RECEIVER", "PUT", s, _session(None)) == expected
    assert open_route_key(m["sessions"], "RECEIVER", "PATCH", s, {"kwh": 1, "last_updated": "x"}) == expected
    cdr = example("cdr_example.json")
    assert open_route_key(m["cdrs"], "RECEIVER", "POST", [], cdr) is None  # 2.2 CdrToken: no owner
    cdr["cdr_token"].update(country_code="NL", party_id="TNM")
    assert open_route_key(m["cdrs"], "RECEIVER", "POST", [], cdr) == RouteKey("party", party=PartyRef("NL", "TNM"))
    assert open_route_key(m["locations"], "SENDER", "GET", ["LOC1", "3256"], None) == RouteKey("location", "LOC1")
    assert open_route_key(m["locations"], "SENDER", "GET", [], None) is None
    assert open_route_key(m["tokens"], "SENDER", "POST", ["012345678", "authorize"], None) == RouteKey(
        "token", "012345678"
    )
    assert open_route_key(m["commands"], "RECEIVER", "POST", ["start_session"], {"location_id": "L9"}) == RouteKey(
        "location", "L9"
    )
    assert open_route_key(m["commands"], "RECEIVER", "POST", ["STOP_SESSION"], {"session_id": "S"}) == RouteKey(
        "session", "S"
    )
    assert open_route_key(m["commands"], "RECEIVER", "POST", ["CANCEL_RESERVATION"], {"reservation_id": "R"}) == (
        RouteKey("reservation", "R")
    )
    assert open_route_key(m["commands"], "RECEIVER", "POST", ["STOP_SESSION"], {}) is None
    assert open_route_key(m["sessions"], "RECEIVER", "GET", ["BE"], None) is None


# ---- caller_party / check_owner -------------------------------------------------------------


def test_caller_party() -> None:
    both = _platform(("BE", "BEC", "CPO"), ("BE", "BEM", "EMSP"))
    frm = RoutingHeaders(from_party=PartyRef("be", "bem"), to_party=None)
    assert caller_party(both, frm, None) == PartyRef("be", "bem")
    assert caller_party(both, NONE, frozenset({"EMSP"})) == PartyRef("BE", "BEM")
    assert caller_party(both, NONE, frozenset({"CPO"})) == PartyRef("BE", "BEC")
    assert caller_party(both, NONE, frozenset({"NSP"})) == PartyRef("BE", "BEC")  # falls back to any own party
    with pytest.raises(InvalidParameters) as err:
        caller_party(both, RoutingHeaders(from_party=PartyRef("DE", "ALL"), to_party=None), None)
    assert err.value.status == 403
    with pytest.raises(InvalidParameters):
        caller_party(_platform(), NONE, None)


def test_check_owner() -> None:
    both = _platform(("BE", "BEC", "CPO"), ("BE", "BEM", "EMSP"))
    check_owner(both, PartyRef("be", "bec"), "CPO")
    check_owner(both, PartyRef("BE", "BEM"), None)
    for owner, role in ((PartyRef("BE", "BEM"), "CPO"), (PartyRef("DE", "ALL"), "CPO"), (PartyRef("DE", "ALL"), None)):
        with pytest.raises(InvalidParameters) as err:
            check_owner(both, owner, role)
        assert err.value.status == 403


def test_parse_routing_headers() -> None:
    parsed = parse_routing_headers({"OCPI-from-country-code": "be", "OCPI-from-party-id": "bec"})
    assert parsed == RoutingHeaders(PartyRef("be", "bec"), None)
    for bad in ({"OCPI-to-country-code": "NL"}, {"OCPI-to-country-code": "NLD", "OCPI-to-party-id": "TNM"}):
        with pytest.raises(InvalidParameters):
            parse_routing_headers(bad)


# ---- objects: URLs, body checks, merge rules ------------------------------------------------


def test_object_ref_and_body_checks() -> None:
    ref = object_ref("tokens", ["NL", "TNM", "012345678"], {"type": "app_user"})
    assert ref.key == "NL/TNM/012345678/APP_USER"
    assert object_ref("tokens", ["nl", "tnm", "u"], {}).key == "NL/TNM/U/RFID"
    assert object_ref("locations", ["BE", "BEC", "L", "E", "C"], {}).sub == ("E", "C")
    for module, segments in (("locations", ["BE", "BEC"]), ("sessions", ["BE", "BEC", "S", "x"])):
        with pytest.raises(InvalidParameters):
            object_ref(module, segments, {})
    loc = ObjectRef(PartyRef("BE", "BEC"), "LOC1")
    check_body_matches(loc, {**example("location_example.json"), "country_code": "be"}, "id", "PUT")
    with pytest.raises(InvalidParameters):
        check_body_matches(loc, {"id": "LOC2"}, "id", "PUT")
    with pytest.raises(InvalidParameters):
        check_body_matches(loc, {"name": "x"}, "id", "PATCH")
    with pytest.raises(InvalidParameters):
        check_body_matches(ObjectRef(PartyRef("BE", "BEC"), "LOC1", ("3256",)), {"uid": "3257"}, "id", "PUT")
    assert canonical_time("2020-01-01T10:00:00Z") < canonical_time("2020-01-01T10:00:00.5Z")


def test_evse_and_connector_merge_into_the_stored_location() -> None:
    location = example("location_example.json")
    evse_ref = ObjectRef(PartyRef("BE", "BEC"), "LOC1", ("3256",))
    patched = apply_push("locations", "PATCH", evse_ref, location, example("location_patch_example_status.json"))
    assert patched is not None
    assert patched["evses"][0]["status"] == "CHARGING"
    assert patched["evses"][0]["connectors"] == location["evses"][0]["connectors"]  # merge, not replace
    assert patched["evses"][0]["last_updated"] == patched["last_updated"] == "2019-06-24T12:39:09Z"
    assert patched["evses"][1] == location["evses"][1]
    # Connector PATCH lands inside its EVSE; both parents' last_updated follow.
    conn_ref = ObjectRef(PartyRef("BE", "BEC"), "LOC1", ("3256", "2"))
    patched = apply_push("locations", "PATCH", conn_ref, location, example("location_patch_example_tariff.json"))
    assert patched is not None
    conn = patched["evses"][0]["connectors"][1]
    assert conn["tariff_ids"] == ["15"] and conn["standard"] == location["evses"][0]["connectors"][1]["standard"]
    assert patched["evses"][0]["last_updated"] == patched["last_updated"] == "2019-06-24T12:39:09Z"
    # EVSE PUT of a new uid appends it; PUT of a known one replaces it.
    new_evse = {**example("location_put_example_add_evse.json"), "uid": "9999"}
    added = apply_push("locations", "PUT", ObjectRef(PartyRef("BE", "BEC"), "LOC1", ("9999",)), location, new_evse)
    assert added is not None and [e["uid"] for e in added["evses"]] == ["3256", "3257", "9999"]
    replaced = apply_push("locations", "PUT", evse_ref, location, example("location_put_example_add_evse.json"))
    assert replaced is not None and replaced["evses"][0] == example("location_put_example_add_evse.json")
    # Sub-object pushes without a stored parent cannot be built; the location itself is untouched.
    assert apply_push("locations", "PATCH", evse_ref, None, {"last_updated": "x"}) is None
    assert location == example("location_example.json")


def test_session_patch_appends_charging_periods_and_put_replaces() -> None:
    ref = ObjectRef(PartyRef("BE", "BEC"), "101")
    first = example("session_example_2_short_finished.json")
    periods = first["charging_periods"]
    patch = example("session_patch_example_charging_period.json")
    merged = apply_push("sessions", "PATCH", ref, first, patch)
    assert merged is not None
    assert merged["charging_periods"] == periods + patch["charging_periods"]
    assert merged["kwh"] == 15.0 and merged["last_updated"] == patch["last_updated"]
    assert merged["id"] == first["id"]
    again = apply_push("sessions", "PATCH", ref, merged, patch)
    assert again is not None and len(again["charging_periods"]) == len(periods) + 2
    put = apply_push("sessions", "PUT", ref, merged, {**first, "charging_periods": []})
    assert put is not None and put["charging_periods"] == []
    assert apply_push("sessions", "PATCH", ref, None, patch) is None
    # A CDR POST is stored whole.
    cdr = example("cdr_example.json")
    assert apply_push("cdrs", "POST", ObjectRef(PartyRef("BE", "BEC"), "12345"), None, cdr) == cdr


def test_join_keeps_path_and_query_whatever_the_base_slash() -> None:
    for base in ("http://x/ocpi/2.2.1/tokens/receiver", "http://x/ocpi/2.2.1/tokens/receiver/"):
        assert (
            _join(base, ["NL", "TNM", "a b"], "type=RFID")
            == "http://x/ocpi/2.2.1/tokens/receiver/NL/TNM/a%20b?type=RFID"
        )
        assert _join(base, [], "") == "http://x/ocpi/2.2.1/tokens/receiver"
    # A dot segment or an encoded separator never reaches a receiver URL, whoever built the list.
    for bad in ("..", ".", "a/b", "a\\b", "a\x00b"):
        with pytest.raises(InvalidParameters):
            _join("http://x/ocpi/2.2.1/tokens/receiver", ["NL", "TNM", bad], "")
