"""The demo partner registers with a real hub, receives what is routed to it, and survives restarts."""

import argparse
import asyncio
import stat
from pathlib import Path

import pytest

from hub.cli import demo
from tests.support.ports import free_port
from tests.support.waiting import wait_for


def demo_args(hub, token_a, state: Path, port: int) -> argparse.Namespace:
    return argparse.Namespace(
        versions_url=hub.versions_url,
        token_a=token_a,
        role="emsp",
        country="NL",
        party="DEM",
        name="Demo",
        port=port,
        state=str(state),
    )


async def started(args, capsys) -> tuple[asyncio.Task, str]:
    """Run the demo until it prints its token (or fails); return the task and what it printed."""
    task = asyncio.create_task(demo.run(args))
    seen = []

    def printed() -> bool:
        seen.append(capsys.readouterr().out)
        return "token to call the hub with" in "".join(seen) or task.done()

    await wait_for(printed, timeout=10)
    return task, "".join(seen)


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_demo_partner_registers_and_receives(hub, make_peer, capsys, tmp_path):
    task, out = await started(demo_args(hub, await hub.invite("demo"), tmp_path / "demo.json", free_port()), capsys)
    try:
        assert not task.done() and "registered as NL*DEM EMSP" in out
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
        await stop(task)


async def test_restart_reuses_the_registration_and_rotation_prints_the_new_token(hub, capsys, tmp_path):
    state, port = tmp_path / "demo.json", free_port()
    task, out = await started(demo_args(hub, await hub.invite("demo"), state, port), capsys)
    first_token = out.split("token to call the hub with: ")[1].split()[0]
    await stop(task)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # it holds tokens

    # Restarted without a token A (the old one is used up): the registration is reused.
    task, out = await started(demo_args(hub, None, state, port), capsys)
    try:
        assert "reusing its registration as NL*DEM EMSP" in out and f"with: {first_token}" in out
        (platform,) = (await hub.admin("GET", "/admin/platforms"))[1]
        status, body = await hub.admin("PUT", f"/admin/platforms/{platform['id']}/credentials")
        assert status == 200, body
        out = ""

        def rotated() -> bool:
            nonlocal out
            out += capsys.readouterr().out
            return "new token to call the hub with" in out

        await wait_for(rotated)
        new_token = out.split("new token to call the hub with: ")[1].split()[0]
        assert new_token != first_token
        status, _, _ = await hub.call("GET", "/ocpi/versions", token=new_token)
        assert status == 200
        assert (await hub.call("GET", "/ocpi/versions", token=first_token))[0] == 401
    finally:
        await stop(task)


async def test_a_second_registration_of_the_same_party_says_what_to_do(hub, capsys, tmp_path):
    task, _ = await started(demo_args(hub, await hub.invite("demo"), tmp_path / "a.json", free_port()), capsys)
    await stop(task)
    args = demo_args(hub, await hub.invite("again"), tmp_path / "b.json", free_port())
    with pytest.raises(demo.DemoError) as err:
        await demo.run(args)
    text = str(err.value)
    assert '"status_code": 2001' in text and "already served by another platform" in text
    assert "ocpi-hub unregister ID" in text and "--state" in text


async def test_a_bad_token_a_prints_the_hubs_envelope(hub, tmp_path):
    args = demo_args(hub, "not-a-token", tmp_path / "demo.json", free_port())
    with pytest.raises(demo.DemoError) as err:
        await demo.run(args)
    text = str(err.value)
    assert f"GET {hub.versions_url} answered HTTP 401:" in text
    assert '"status_message": "unknown credentials token"' in text and "ocpi-hub invite" in text
