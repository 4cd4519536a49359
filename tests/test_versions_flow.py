"""The translation Flow is a value opened by the handler and closed once, with the real answer.

issue 24, item 3: the Flow (routing/versions/flow.py) travels on the message values instead of
a context variable, and the pipeline closes it with the status the caller actually got; the
stand-in callback handler used to close it with a made-up 500 on its success path. The real
app and fake partners (real HTTP servers) run; a spy on ``Flow.close`` sees each closing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from routing.versions import Context
from routing.versions.flow import Flow
from tests.support.bridge import CPO as CPO22
from tests.support.bridge import EMSP as EMSP22
from tests.support.bridge import join
from tests.support.commands import script
from tests.support.routing import example

pytestmark = [pytest.mark.asyncio, pytest.mark.both_backends]

CPO11 = ("NL", "C11", "CPO")
EMSP11 = ("NL", "E11", "EMSP")

Closing = tuple[Flow, int, int | None]


@pytest.fixture
def closings(monkeypatch: pytest.MonkeyPatch) -> list[Closing]:
    """Every ``Flow.close`` call of the test: (flow, HTTP status, OCPI status_code)."""
    seen: list[Closing] = []
    real = Flow.close

    def spy(self: Flow, status: int, ocpi_status: int | None) -> Any:
        seen.append((self, status, ocpi_status))
        return real(self, status, ocpi_status)

    monkeypatch.setattr(Flow, "close", spy)
    return seen


async def test_callback_success_closes_its_flow_once_with_200_1000(start_hub, make_peer, closings) -> None:
    """A CommandResult relayed to a 2.1.1 eMSP: one closing, 200/1000, its Loss in the traffic record."""
    hub = await start_hub()
    cpo = await join(hub, make_peer, CPO22, "2.2.1")
    emsp = await join(hub, make_peer, EMSP11, "2.1.1")
    cpo.module_responder = script(("/commands/", {"result": "ACCEPTED", "timeout": 30}))
    await hub.call(
        "PUT", "/ocpi/2.2.1/locations/receiver/BE/BEC/LOC1", token=cpo.hub_token, json=example("location_example.json")
    )
    token = {
        "uid": "012345678",
        "type": "RFID",
        "auth_id": "NL-E11-C12345678-X",
        "issuer": "E11 eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2015-06-29T22:39:09Z",
    }
    command = {
        "response_url": f"{emsp.base}/ocpi/2.1.1/emsp/commands/START_SESSION/42",
        "token": token,
        "location_id": "LOC1",
        "evse_uid": "3256",
    }
    status, body, _ = await hub.call("POST", "/ocpi/2.1.1/commands/START_SESSION", token=emsp.hub_token, json=command)
    assert (status, body["status_code"]) == (200, 1000), body
    (sent,) = cpo.requests_to("/commands/")
    callback = sent.body["response_url"][len(hub.base) :]
    closings.clear()

    status, body, _ = await hub.call(
        "POST",
        callback,
        token=cpo.hub_token,
        json={"result": "EVSE_OCCUPIED"},
        headers={"X-Correlation-ID": "corr-flow-callback"},
    )

    assert (status, body["status_code"]) == (200, 1000), body
    ((flow, got_status, got_ocpi),) = closings  # closed exactly once, by the pipeline
    assert (got_status, got_ocpi) == (200, 1000)
    assert flow.outcome == (200, 1000) and flow.kind == "CommandResult"
    assert [loss.path for _, loss in flow.losses] == ["result"]  # EVSE_OCCUPIED has no 2.1.1 name
    # The same Loss reaches the callback's traffic record (hub/ocpi/versioned.py, finish).
    _, traffic = await hub.admin("GET", "/admin/traffic?correlation_id=corr-flow-callback")
    (record,) = [r for r in traffic if r["direction"] == "in"]
    assert (record["http_status"], record["ocpi_status"]) == (200, 1000), record
    assert [loss["path"] for loss in json.loads(record["losses"])] == ["result"], record


async def test_refused_request_closes_its_flow_with_the_error_it_got(start_hub, make_peer, closings) -> None:
    """A charging profile toward a 2.1.1 CPO is refused (2001): the Flow records that, not a 500."""
    hub = await start_hub()
    await join(hub, make_peer, CPO11, "2.1.1")
    emsp = await join(hub, make_peer, EMSP22, "2.2.1")
    closings.clear()
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

    assert (status, body["status_code"]) == (200, 2001), body
    ((flow, got_status, got_ocpi),) = closings
    assert (got_status, got_ocpi) == (200, 2001) and flow.outcome == (200, 2001)


async def test_a_flow_closes_only_once() -> None:
    """A second closing is a bug, not a second set of loss records."""
    flow = Flow(None, "2.2.1", None, None, False, None, Context())
    assert flow.close(200, 1000) == [] and flow.outcome == (200, 1000)
    with pytest.raises(RuntimeError, match="closed twice"):
        flow.close(500, 3000)
