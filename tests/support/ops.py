"""Helpers shared by the operations tests (status, metrics, traffic, CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.routing import connect
from tests.support.waiting import wait_for

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi-examples-2.2.1"


async def pair(hub: Any, make_peer: Any) -> tuple[Any, Any]:
    """A CPO (BE*BEC) and an eMSP (NL*EXA), registered, with the hub's HubClientInfo pushes settled."""
    cpo = await connect(hub, make_peer, ("BE", "BEC", "CPO"), name="CPO")
    emsp = await connect(hub, make_peer, ("NL", "EXA", "EMSP"), name="EMSP")
    # The eMSP's registration makes the hub push its ClientInfo to the CPO; let it land before counting.
    await wait_for(lambda: bool(cpo.requests_to("/hubclientinfo/")))
    return cpo, emsp


def session(session_id: str = "SESS1") -> dict[str, Any]:
    """The spec's example session, owned by BE*BEC."""
    body: dict[str, Any] = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    body["country_code"], body["party_id"], body["id"] = "BE", "BEC", session_id
    return body


DIRECT = {
    "OCPI-from-country-code": "BE",
    "OCPI-from-party-id": "BEC",
    "OCPI-to-country-code": "NL",
    "OCPI-to-party-id": "EXA",
}


async def push_session(hub: Any, cpo: Any, session_id: str, correlation_id: str | None = None) -> None:
    """CPO -> eMSP session PUT through the hub (direct routing); asserts 1000."""
    headers = dict(DIRECT)
    if correlation_id:
        headers["X-Correlation-ID"] = correlation_id
    status, body, _ = await hub.call(
        "PUT",
        f"/ocpi/2.2.1/sessions/receiver/BE/BEC/{session_id}",
        token=cpo.hub_token,
        json=session(session_id),
        headers=headers,
    )
    assert status == 200 and body["status_code"] == 1000, body


def platform_entry(status_body: dict[str, Any], name: str) -> dict[str, Any]:
    """The /status entry of the platform with this name."""
    return next(p for p in status_body["platforms"] if p["name"] == name)
