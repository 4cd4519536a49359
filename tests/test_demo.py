"""The demo partner registers with a real hub and receives what is routed to it."""

import argparse
import asyncio

from aiohttp.test_utils import unused_port

from hub import demo
from tests.fakes import wait_for


async def test_demo_partner_registers_and_receives(hub, make_peer, capsys):
    port = unused_port()
    args = argparse.Namespace(
        versions_url=hub.versions_url,
        token_a=await hub.invite("demo"),
        role="emsp",
        country="NL",
        party="DEM",
        name="Demo",
        port=port,
    )
    task = asyncio.create_task(demo.run(args))
    try:
        await wait_for(lambda: "registered as NL*DEM EMSP" in capsys.readouterr().out or task.done(), timeout=10)
        assert not task.done()
        status, platforms = await hub.admin("GET", "/admin/platforms")
        assert [p["roles"][0]["party_id"] for p in platforms if p["status"] == "CONNECTED"] == ["DEM"]
        cpo = await make_peer(("NL", "DCP", "CPO"))
        await cpo.register_with(hub.versions_url, await hub.invite("cpo"))
        session = {"country_code": "NL", "party_id": "DCP", "id": "S1", "last_updated": "2026-11-25T10:00:00Z"}
        status, body, _ = await hub.call(
            "PUT",
            "/ocpi/2.2.1/sessions/receiver/NL/DCP/S1",
            token=cpo.hub_token,
            json=session,
            headers={"OCPI-to-country-code": "NL", "OCPI-to-party-id": "DEM"},
        )
        assert status == 200 and body["status_code"] == 1000
        out = capsys.readouterr().out
        assert "got PUT /ocpi/2.2.1/sessions/receiver/NL/DCP/S1 from NL*DCP" in out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
