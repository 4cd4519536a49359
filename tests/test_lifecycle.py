"""Platform life cycle through the CLI and the admin API, and the CLI's global options and exit codes."""

from __future__ import annotations

import json
from datetime import timedelta

import storage.outbox as outbox_sql
from hub.keys import DIRECTORY, STORE
from routing.clock import iso
from storage import outcomes as outcome_sql
from storage.outbox import NewMessage
from tests.support.hub import ADMIN, cli
from tests.support.ops import DIRECT, pair, platform_entry


async def test_suspend_resume_rotate_delete_from_the_cli(cli_env, capsys, make_peer, clock):
    hub = cli_env
    _cpo, emsp = await pair(hub, make_peer)
    emsp_id = platform_entry((await hub.admin("GET", "/status"))[1], "EXA")["id"]

    code, out, _ = await cli(capsys, "suspend", str(emsp_id))
    assert (code, out) == (0, f"platform {emsp_id} (EXA): suspended, status SUSPENDED\n")
    code, out, _ = await cli(capsys, "resume", str(emsp_id))
    assert (code, out) == (0, f"platform {emsp_id} (EXA): resumed, status CONNECTED\n")
    old_token = emsp.hub_token
    code, out, _ = await cli(capsys, "rotate", str(emsp_id), "--json")
    assert code == 0 and json.loads(out)["status"] == "CONNECTED"
    assert [r.method for r in emsp.requests_to("/ocpi/2.2.1/credentials")][-1] == "PUT"
    assert emsp.hub_token != old_token  # the fake peer keeps the token the hub PUT to it

    # Routine offboarding closes out what is left for the eMSP: a queued message and a dead letter
    # become 'discarded' with the reason (kept for the record), and /status is ok again.
    await cli(capsys, "suspend", str(emsp_id))
    now = iso(clock.now())
    later = iso(clock.now() + timedelta(days=1))
    queued = NewMessage(emsp_id, "sessions", "BE/BEC/Q", "PUT", emsp.base + "/q", dict(DIRECT), b"{}", now, later)
    died = NewMessage(emsp_id, "sessions", "BE/BEC/D", "PUT", emsp.base + "/d", dict(DIRECT), b"{}", now, later)
    await hub.app[STORE].write(lambda tx: outbox_sql.enqueue(tx, queued))
    dead_id, _ = await hub.app[STORE].write(lambda tx: outbox_sql.enqueue(tx, died))
    await hub.app[STORE].write(lambda tx: outcome_sql.bury(tx, dead_id, error="HTTP 503", now=now))
    _, status = await hub.admin("GET", "/status")
    assert status["status"] == "degraded" and any("1 dead letter(s)" in r for r in status["reasons"])
    code, out, _ = await cli(capsys, "unregister", str(emsp_id))
    assert code == 0 and out.startswith(f"platform {emsp_id} (EXA): unregistered, status UNREGISTERED")
    assert [r.method for r in emsp.requests_to("/ocpi/2.2.1/credentials")][-1] == "DELETE"
    assert (await hub.admin("GET", f"/admin/deadletters?platform_id={emsp_id}"))[1] == []
    closed = (await hub.admin("GET", f"/admin/deadletters?platform_id={emsp_id}&state=discarded"))[1]
    assert sorted(m["url"].rsplit("/", 1)[1] for m in closed) == ["d", "q"]
    assert {m["discard_reason"] for m in closed} == {"closed out: receiver unregistered by the hub operator"}
    assert {m["state"] for m in closed} == {"discarded"}

    # /status: listed as UNREGISTERED, apart from SUSPENDED, and no warning about the platform itself.
    _, status = await hub.admin("GET", "/status")
    assert platform_entry(status, "EXA")["status"] == "UNREGISTERED"
    assert not any("SUSPENDED" in n or "UNREGISTERED" in n for n in status["notices"] + status["reasons"])
    assert (status["status"], status["reasons"], status["totals"]["dead_letters"]) == ("ok", [], 0)
    code, _, _ = await cli(capsys, "status", "--check")
    assert code == 0
    # An unregistered platform cannot be suspended or resumed: it must be invited again.
    code, _, err = await cli(capsys, "resume", str(emsp_id))
    assert code == 2 and "invite its partner again" in err


async def test_invitations_list_and_revoke(cli_env, capsys, clock):
    hub = cli_env
    code, out, err = await cli(capsys, "invitations")
    assert (code, out, err) == (3, "", "ocpi-hub: no open invitations\n")
    token_a = await hub.invite("Partner X")
    code, out, _ = await cli(capsys, "invitations", "--json")
    (row,) = json.loads(out)
    assert code == 0 and (row["name"], row["expired"]) == ("Partner X", False)
    status, listed = await hub.admin("GET", "/admin/invitations")
    assert status == 200 and listed == [row]
    directory = hub.app[DIRECTORY]
    reloads = directory.reloaded_at
    code, out, _ = await cli(capsys, "revoke", str(row["platform_id"]))
    assert (code, out) == (0, f"invitation {row['platform_id']} revoked; its token A no longer works\n")
    assert (await hub.call("GET", "/ocpi/versions", token=token_a))[0] == 401
    # The revoked platform left the routing directory alone: no re-read of every platform.
    assert directory.platform(row["platform_id"]) is None and directory.reloaded_at == reloads
    code, _, err = await cli(capsys, "revoke", str(row["platform_id"]))
    assert (code, err) == (3, f"ocpi-hub: no open invitation '{row['platform_id']}'\n")
    status, body = await hub.admin("DELETE", "/admin/invitations/abc")
    assert (status, body["status_code"]) == (404, 2000)


async def test_global_options_before_or_after_and_from_any_directory(cli_env, capsys, monkeypatch, tmp_path):
    hub = cli_env
    token_file = tmp_path / "elsewhere" / "admin-token"
    token_file.parent.mkdir()
    token_file.write_text(ADMIN + "\n")
    monkeypatch.delenv("HUB_ADMIN_TOKEN")
    monkeypatch.setenv("HUB_PORT", "1")  # wrong on purpose: --url / HUB_URL must win
    monkeypatch.chdir(tmp_path)
    await hub.invite("P")
    before = await cli(capsys, "--json", "--url", hub.base, "--admin-token-file", str(token_file), "invitations")
    after = await cli(capsys, "invitations", "--json", "--url", hub.base, "--admin-token-file", str(token_file))
    assert before == after and before[0] == 0 and json.loads(before[1])[0]["name"] == "P"
    monkeypatch.setenv("HUB_URL", hub.base)
    code, out, _ = await cli(capsys, "--admin-token-file", str(token_file), "invitations", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "P"
    # Without a token: the message names the absolute path it looked at, and the ways to give one.
    code, _, err = await cli(capsys, "platforms")
    assert code == 2 and f"{tmp_path / 'cli.sqlite3.admin-token'}" in err and "--admin-token-file" in err


async def test_exit_codes(cli_env, capsys, monkeypatch):
    code, out, err = await cli(capsys, "platforms")
    assert (code, err) == (3, "ocpi-hub: no platforms: invite one with `ocpi-hub invite NAME`\n")
    code, _, err = await cli(capsys, "traffic", "--correlation-id", "nope")
    assert (code, err) == (3, "ocpi-hub: no traffic records match\n")
    code, _, err = await cli(capsys, "redrive", "--list")
    assert (code, err) == (3, "ocpi-hub: no dead letters\n")
    code, out, err = await cli(capsys, "redrive", "12345")
    assert (code, out, err) == (3, "re-driven: 0 message(s)\n", "ocpi-hub: no dead letters matched ids 12345\n")
    code, _, err = await cli(capsys, "suspend", "999")
    assert (code, err) == (3, "ocpi-hub: platform 999 does not exist\n")
    code, _, _ = await cli(capsys, "status", "--check")
    assert code == 0
    monkeypatch.setenv("HUB_URL", "http://127.0.0.1:1")  # nothing listens there
    code, _, err = await cli(capsys, "status", "--check")
    assert code == 1 and err.startswith("ocpi-hub: cannot reach the hub at http://127.0.0.1:1/status")
    code, _, _ = await cli(capsys, "status")
    assert code == 2


def test_one_word_for_ending_a_registration_with_the_old_name_kept() -> None:
    from hub.cli.main import build_parser
    from hub.cli.platforms import cmd_unregister

    parser = build_parser()
    assert parser.parse_args(["unregister", "3"]).func is cmd_unregister
    assert parser.parse_args(["delete", "3"]).func is cmd_unregister  # scripts written before keep working
    assert "unregister a platform" in parser.format_help()
