"""Interop: the extrawest-ocpi peers through a hub that requires roaming agreements (issue 23).

The library CPO (NL*XCP) and eMSP (NL*XMS) register as usual. Without an agreement the CPO's
own push (no routing headers: a broadcast) reaches nobody and the eMSP's GET is refused with
4001; once the operator adds one, the same calls go through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.interop import payloads as P
from tests.interop.conftest import Peer
from tests.support.hub import HubHandle

pytestmark = pytest.mark.timeout(45)


async def test_library_peers_exchange_only_under_an_agreement(
    start_hub: Callable[..., Awaitable[HubHandle]], start_peer: Callable[[str, str, str], Awaitable[Peer]]
) -> None:
    hub = await start_hub(agreements="required")
    cpo, emsp = await asyncio.gather(start_peer("CPO", *P.CPO), start_peer("EMSP", *P.EMSP))
    for peer in (cpo, emsp):
        answer = await peer.register(hub)
        assert answer["status"] == 200 and answer["body"]["status_code"] == 1000, answer
    await cpo.seed("locations", "LOC1", P.location())

    push = await cpo.push("locations", "LOC1", hub)
    [answer] = push["receiver_responses"]
    assert (
        answer["response"]["status_code"] == 1000 and "broadcast to 0 parties" in answer["response"]["status_message"]
    )
    got = await emsp.send(module="locations", interface="SENDER", method="GET", path="LOC1", to=list(P.CPO))
    assert got["body"]["status_code"] == 4001, got
    # The library lower-cases CiStrings (README): the message names the parties as they were sent.
    message = got["body"]["status_message"].upper()
    assert "NO ROAMING AGREEMENT IN FORCE BETWEEN NL*XMS AND NL*XCP COVERING LOCATIONS" in message, got
    listed = await emsp.send(module="locations", interface="SENDER", method="GET", to=["NL", "HUB"])
    assert listed["body"]["status_code"] == 1000 and listed["body"]["data"] == [], listed

    parties = [
        {"country_code": cc, "party_id": pid, "role": role} for (cc, pid), role in ((P.CPO, "CPO"), (P.EMSP, "EMSP"))
    ]
    status, made = await hub.admin("POST", "/admin/agreements", {"parties": parties, "modules": ["locations"]})
    assert status == 201, made

    push = await cpo.push("locations", "LOC1", hub)
    [answer] = push["receiver_responses"]
    assert "broadcast to 1 party" in answer["response"]["status_message"], answer
    [received] = await emsp.received("/locations/", "PUT")
    assert received["path"] == "/ocpi/emsp/2.2.1/locations/NL/XCP/LOC1"
    got = await emsp.send(module="locations", interface="SENDER", method="GET", path="LOC1", to=list(P.CPO))
    assert got["body"]["status_code"] == 1000, got
    listed = await emsp.send(module="locations", interface="SENDER", method="GET", to=["NL", "HUB"])
    assert [loc["id"] for loc in listed["body"]["data"]] == ["loc1"], listed
