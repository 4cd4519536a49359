"""Attacks with crafted input (issue 20, low items): duplicate JSON keys, hostile ids, junk paging.

Each test is one attack tried by a registered partner: what it is answered on the wire, and that
the victim received nothing and nothing was stored. Payloads are the official OCPI 2.2.1
examples (CC BY-ND 4.0, EVRoaming Foundation; see tests/support/routing.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.routing import CPO1, CPO2, EMSP1, Net, cdr_for, example, module_requests, network, rh, session_for

pytestmark = pytest.mark.both_backends


def _refused(status: int, body: Any, http: int = 200) -> None:
    assert status == http and isinstance(body, dict) and body["status_code"] == 2001, (status, body)


async def _stored(net: Net, module: str, peer: Any) -> list[Any]:
    status, body, _ = await net.call("GET", f"/ocpi/2.2.1/{module}/sender/", peer)
    assert status == 200, body
    return list(body["data"])


# ---- duplicate keys: the owner check and the receiver must read the same values ----------------


def _with_duplicate(text: str, key: str, first: str) -> bytes:
    """``text`` with ``"key": first`` inserted before the object's own ``key`` (first-wins parsers see it)."""
    needle = f'"{key}": '
    at = text.index(needle)
    return (text[:at] + f'"{key}": "{first}", ' + text[at:]).encode()


async def test_duplicate_owner_key_in_a_cdr_is_refused(hub, make_peer) -> None:
    # The hub's parser keeps the last "party_id" (BEC, the caller's own: the owner check passes);
    # a receiver whose parser keeps the first reads ALL: the CDR of another CPO.
    net = await network(hub, make_peer)
    body = _with_duplicate(json.dumps(cdr_for(CPO1, EMSP1)), "party_id", CPO2[1])
    status, answer, _ = await net.call(
        "POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, data=body, headers={"Content-Type": "application/json"}
    )
    _refused(status, answer)
    assert "duplicate" in answer["status_message"]
    assert module_requests(net.emsp1, "cdrs") == [] and await _stored(net, "cdrs", net.emsp1) == []


async def test_duplicate_key_deep_in_a_session_is_refused(hub, make_peer) -> None:
    # cdr_token decides the receiver: a duplicate there would route by one value and deliver another.
    net = await network(hub, make_peer)
    session = session_for(CPO1, EMSP1)
    text = json.dumps(session)
    token_at = text.index('"cdr_token"')
    head, tail = text[:token_at], text[token_at:]
    body = (head + tail.replace('"party_id": ', '"party_id": "ALL", "party_id": ', 1)).encode()
    status, answer, _ = await net.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/101",
        net.cpo1,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    _refused(status, answer)
    assert module_requests(net.emsp1, "sessions") == [] and await _stored(net, "sessions", net.emsp1) == []


# ---- ids: CiString lengths, printable ASCII -------------------------------------------------

BAD_IDS = {
    "5000-characters": "X" * 5000,
    "40-characters": "C" * 40,  # a CDR id is CiString(39)
    "nul": "CDR\x00-1",
    "line-feed": "CDR\n-1",
    "right-to-left-override": "CDR-\u202e1",
    "dotless-i": "\u0131d",  # upper() makes it "ID": another CDR's key
}


@pytest.mark.parametrize("cdr_id", list(BAD_IDS.values()), ids=list(BAD_IDS))
async def test_hostile_cdr_id_is_refused(hub, make_peer, cdr_id) -> None:
    net = await network(hub, make_peer)
    status, answer, _ = await net.call("POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr_for(CPO1, EMSP1, cdr_id))
    _refused(status, answer)
    assert module_requests(net.emsp1, "cdrs") == [] and await _stored(net, "cdrs", net.emsp1) == []


async def test_id_lengths_follow_the_field_tables(hub, make_peer) -> None:
    # At the limit an id passes (CDR id 39, session id 36); one character more is refused.
    net = await network(hub, make_peer)
    status, answer, _ = await net.call(
        "POST", "/ocpi/2.2.1/cdrs/receiver", net.cpo1, json=cdr_for(CPO1, EMSP1, "C" * 39)
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    ok, long = "S" * 36, "S" * 37
    status, answer, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{ok}", net.cpo1, json=session_for(CPO1, EMSP1, ok)
    )
    assert status == 200 and answer["status_code"] == 1000, answer
    status, answer, _ = await net.call(
        "PUT", f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{long}", net.cpo1, json=session_for(CPO1, EMSP1, long)
    )
    _refused(status, answer)
    assert [r.path.rsplit("/", 1)[-1] for r in module_requests(net.emsp1, "sessions")] == [ok]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("location_id", "L" * 5000),
        ("location_id", "LOC\x001"),
        ("session_id", "S\u202e1"),
        ("reservation_id", "\u0131"),
    ],
    ids=["location-5000", "location-nul", "session-rlo", "reservation-dotless-i"],
)
async def test_hostile_ids_in_a_command_are_refused(hub, make_peer, field, value) -> None:
    net = await network(hub, make_peer)
    command = {"response_url": net.emsp1.base + "/r/1", "token": example("token_put_example.json"), field: value}
    name = {"location_id": "START_SESSION", "session_id": "STOP_SESSION", "reservation_id": "CANCEL_RESERVATION"}
    status, answer, _ = await net.call(
        "POST", f"/ocpi/2.2.1/commands/receiver/{name[field]}", net.emsp1, json=command, headers=rh(EMSP1, CPO1)
    )
    _refused(status, answer)
    assert module_requests(net.cpo1, "commands") == []


# ---- paging parameters: junk is 2001, never a 500 --------------------------------------------

JUNK = [
    "cursor=999999999999999999999.1",
    "cursor=1.999999999999999999999",
    "cursor=-1.2",
    "cursor=1.2.3",
    "cursor=%00",
    "offset=99999999999999999999",
    "offset=-1",
    "offset=1e3",
    "limit=0x10",
    "limit=%C2%B2",
    "date_from=9999-12-31T23:59:59-01:00",
    "date_from=0001-01-01T00:00:00%2B01:00",
    "date_to=2019-13-45T00:00:00Z",
    "date_to=now",
    "date_from=2019-01-01T00:00:00Z%00",
]


@pytest.mark.parametrize("query", JUNK)
async def test_junk_paging_parameters_are_2001(hub, make_peer, query) -> None:
    net = await network(hub, make_peer)
    status, answer, _ = await net.call("GET", f"/ocpi/2.2.1/sessions/sender/?{query}", net.emsp1)
    _refused(status, answer)
    assert "internal error" not in answer.get("status_message", "")
