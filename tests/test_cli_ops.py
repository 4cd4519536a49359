"""Operator CLI for operations: `ocpi-hub status` (table and --json) and `ocpi-hub traffic`."""

from __future__ import annotations

import json

from hub import __version__
from hub.keys import REGISTRY, STORE
from tests.support.hub import ADMIN, cli
from tests.support.ops import pair, platform_entry, push_session
from tests.support.waiting import wait_for


async def test_status_table_and_json(cli_env, capsys, make_peer):
    hub = cli_env
    cpo, emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "CLI1")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/CLI1")))

    code, out, err = await cli(capsys, "status", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["status"] == "ok" and platform_entry(data, "EXA")["delivered"] >= 1

    code, out, err = await cli(capsys, "status")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"status: ok  version: {__version__}  uptime: ")
    header = next(line for line in lines if "delivered" in line)
    for column in ("name", "status", "parties", "queue", "dead", "failed", "p50 ms", "p99 ms"):
        assert column in header
    exa = next(line for line in lines if " EXA " in line)
    assert "CONNECTED" in exa and "NL*EXA EMSP" in exa and "2.2.1" in exa

    await hub.app[REGISTRY].set_status(platform_entry(data, "EXA")["id"], "OFFLINE")
    code, out, _ = await cli(capsys, "status")
    assert code == 0 and out.startswith("status: degraded")
    assert f"  ! platform {platform_entry(data, 'EXA')['id']} (EXA) is OFFLINE" in out.splitlines()
    code, out, _ = await cli(capsys, "status", "--check")
    assert code == 1 and out.startswith("status: degraded")


async def test_status_check_is_zero_when_ok(cli_env, capsys):
    code, out, _ = await cli(capsys, "status", "--check")
    assert code == 0 and out.startswith("status: ok")


async def test_status_down_is_one_line(cli_env, capsys):
    await cli_env.app[STORE].close()
    code, out, err = await cli(capsys, "status")
    assert (code, out) == (2, "")
    assert err.strip() == "ocpi-hub: hub answered HTTP 503: down, store unreadable: StoreClosedError"


async def test_traffic_by_correlation_id(cli_env, capsys, make_peer):
    hub = cli_env
    cpo, emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "CLI2", correlation_id="corr-cli-2")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/CLI2")))

    code, out, err = await cli(capsys, "traffic", "--correlation-id", "corr-cli-2", "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["direction"], r["module"]) for r in rows] == [("out", "sessions"), ("in", "sessions")]

    code, out, _ = await cli(capsys, "traffic", "--correlation-id", "corr-cli-2")
    assert code == 0 and out.rstrip().endswith("2 record(s)")
    assert "BE*BEC -> NL*EXA" in out and "/ocpi/2.2.1/sessions/receiver/BE/BEC/CLI2" in out

    code, out, _ = await cli(capsys, "traffic", "--limit", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    code, _, err = await cli(capsys, "traffic", "--limit", "0")
    assert code == 2 and err.startswith("ocpi-hub: hub answered HTTP 400")


async def test_platforms_still_works(cli_env, capsys, make_peer):
    await pair(cli_env, make_peer)
    code, out, _ = await cli(capsys, "platforms")
    assert code == 0 and "BE*BEC CPO" in out and "NL*EXA EMSP" in out


async def test_traffic_filters_like_the_console(cli_env, capsys, make_peer):
    hub = cli_env
    cpo, emsp = await pair(hub, make_peer)
    for n in range(3):
        await push_session(hub, cpo, f"CLIF{n}")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/CLIF2")))
    async with hub.session.get(hub.base + "/favicon.ico") as r:
        assert r.status == 404

    # Partner traffic by default: no admin call (the CLI's own, the test's) and no favicon.
    code, out, _ = await cli(capsys, "traffic", "--limit", "500", "--json")
    rows = json.loads(out)
    assert code == 0 and rows and all(r["platform_id"] is not None for r in rows)
    code, out, _ = await cli(capsys, "traffic", "--kind", "other", "--json")
    assert code == 0 and "/favicon.ico" in {r["path"] for r in json.loads(out)}
    code, out, _ = await cli(capsys, "traffic", "--kind", "admin", "--json")
    assert code == 0 and all(r["module"] == "admin" for r in json.loads(out))
    code, out, _ = await cli(capsys, "traffic", "--direction", "out", "--module", "sessions", "--json")
    assert code == 0 and [r["direction"] for r in json.loads(out)] == ["out"] * 3
    code, out, _ = await cli(capsys, "traffic", "--kind", "all", "--failed", "--json")
    failed = json.loads(out)
    assert code == 0 and failed and all(r["http_status"] is None or r["http_status"] >= 400 for r in failed)
    # One message's id finds it whatever its kind (here an admin call), unless a kind is named.
    async with hub.session.get(
        hub.base + "/admin/platforms", headers={"Authorization": f"Bearer {ADMIN}", "X-Correlation-ID": "admin-corr"}
    ) as r:
        assert r.status == 200
    code, out, _ = await cli(capsys, "traffic", "--correlation-id", "admin-corr", "--json")
    assert code == 0 and [r["module"] for r in json.loads(out)] == ["admin"]
    code, _, _ = await cli(capsys, "traffic", "--correlation-id", "admin-corr", "--kind", "partner")
    assert code == 3
    # Paging: --before the oldest id shown gives the next, older rows.
    code, out, _ = await cli(capsys, "traffic", "--module", "sessions", "--limit", "2")
    assert code == 0 and "older ones: --before" in out
    first = json.loads((await cli(capsys, "traffic", "--module", "sessions", "--limit", "2", "--json"))[1])
    older = await cli(
        capsys, "traffic", "--module", "sessions", "--limit", "2", "--before", str(first[0]["id"]), "--json"
    )
    second = json.loads(older[1])
    assert len(second) == 2 and max(r["id"] for r in second) < min(r["id"] for r in first)
