"""Operator accounts and the audit log without a browser: the admin API, the console and the CLI."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from hub.admin.accounts import hash_password, verify_password
from tests.support.console import Console
from tests.support.hub import ADMIN, cli
from tests.support.ops import pair

ALICE = ("alice", "alice-password-1")  # admin
BOB = ("bob", "bob-password-12")  # read-only


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


async def add(hub: Any, name: str, password: str, role: str) -> None:
    status, body = await hub.admin("POST", "/admin/operators", {"name": name, "role": role, "password": password})
    assert status == 201, body
    assert body["name"] == name and body["role"] == role and body["created_by"] == "admin-token"
    assert "password" not in str(body) and "scrypt" not in str(body)


async def audit(hub: Any, **query: str) -> list[dict[str, Any]]:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    status, body = await hub.admin("GET", "/admin/audit" + suffix)
    assert status == 200, body
    return list(body)


def test_passwords_are_salted_scrypt_hashes() -> None:
    one, two = hash_password("the same password"), hash_password("the same password")
    assert one != two and one.startswith("scrypt$16384$8$1$") and "the same password" not in one
    assert verify_password("the same password", one) and verify_password("the same password", two)
    assert not verify_password("the same passworD", one)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "md5$1$1$1$AA==$AA==")


async def test_admin_api_roles_and_the_audit_log(hub: Any, make_peer: Any) -> None:
    await pair(hub, make_peer)
    await add(hub, *ALICE, "admin")
    await add(hub, *BOB, "read-only")
    # Read-only: reads everything, changes nothing (403, audited as refused).
    status, body, _ = await hub.call("GET", "/admin/platforms", headers=basic(*BOB))
    assert status == 200 and len(body) == 2
    status, body, _ = await hub.call("POST", "/admin/platforms/1/suspend", headers=basic(*BOB))
    assert status == 403 and "read-only" in body["status_message"]
    _, platform = await hub.admin("GET", "/admin/platforms/1")
    assert platform["status"] == "CONNECTED"
    status, _, _ = await hub.call("POST", "/admin/operators", headers=basic(*BOB), json={"name": "eve"})
    assert status == 403
    # Admin operator: acts; the log names it.
    status, body, _ = await hub.call("POST", "/admin/platforms/1/suspend", headers=basic(*ALICE))
    assert status == 200 and body["status"] == "SUSPENDED"
    status, _, _ = await hub.call("POST", "/admin/platforms/1/resume", headers=basic(*ALICE))
    assert status == 200
    entries = await audit(hub)
    newest = entries[0]
    assert (newest["actor"], newest["role"], newest["via"]) == ("alice", "admin", "admin-api")
    assert newest["action"] == "POST /admin/platforms/{id}/resume" and newest["target"] == "platform 1"
    assert newest["outcome"] == "ok" and newest["address"] == "127.0.0.1"
    refused = [e for e in entries if e["actor"] == "bob"]
    assert [e["outcome"] for e in refused] == ["refused: read-only operator"] * 2
    created = [e for e in entries if e["action"] == "POST /admin/operators" and e["actor"] == "admin-token"]
    assert len(created) == 2  # the admin token (break-glass) added both
    # Reads are not changes: no entry for them.
    assert not [e for e in entries if e["action"].startswith("GET")]
    assert [e["actor"] for e in await audit(hub, actor="bob")] == ["bob", "bob"]
    # A failed change is logged with why it failed.
    status, _, _ = await hub.call("POST", "/admin/platforms/99/suspend", headers=basic(*ALICE))
    assert status == 404
    assert (await audit(hub, limit="1"))[0]["outcome"].startswith("failed: ")
    # Wrong password, unknown name, disabled operator: 401, like a wrong admin token.
    for headers in (
        basic("alice", "wrong-password!"),
        basic("nobody", "whatever-password"),
        {"Authorization": "Basic !!"},
    ):
        status, body, _ = await hub.call("GET", "/admin/platforms", headers=headers)
        assert status == 401 and body["status_code"] == 2000
    status, body = await hub.admin("POST", "/admin/operators/bob/disable")
    assert status == 200 and body["disabled_at"]
    status, _, _ = await hub.call("GET", "/admin/platforms", headers=basic(*BOB))
    assert status == 401
    status, _ = await hub.admin("POST", "/admin/operators/bob/disable")
    assert status == 404  # already disabled


async def test_new_operators_are_checked(hub: Any) -> None:
    for bad in (
        {"name": "admin-token", "role": "admin", "password": "long-enough-pass"},
        {"name": "has space", "role": "admin", "password": "long-enough-pass"},
        {"name": "carol", "role": "owner", "password": "long-enough-pass"},
        {"name": "carol", "role": "admin", "password": "short"},
        {"name": "carol", "role": "admin"},
        ["not", "an", "object"],
    ):
        status, body = await hub.admin("POST", "/admin/operators", bad)
        assert status == 400 and body["status_code"] == 2001, bad
    await add(hub, "carol", "long-enough-pass", "admin")
    status, body = await hub.admin("POST", "/admin/operators", {"name": "carol", "role": "admin", "password": "x" * 12})
    assert status == 400 and "exists" in body["status_message"]
    status, body = await hub.admin("GET", "/admin/operators")
    assert status == 200 and [o["name"] for o in body] == ["carol"] and "password_hash" not in body[0]


async def test_console_roles_and_sessions(hub: Any, make_peer: Any) -> None:
    await pair(hub, make_peer)
    await add(hub, *ALICE, "admin")
    await add(hub, *BOB, "read-only")
    reader, writer = Console(hub.base), Console(hub.base)
    try:
        assert await reader.login(BOB[1] + "x", name=BOB[0]) == 401
        assert await reader.login(BOB[1], name=BOB[0]) == 303
        assert await writer.login(ALICE[1], name=ALICE[0]) == 303
        # Read-only: pages without any form that changes something; every such post is a 403.
        status, text, _ = await reader.get("/console/platforms/1")
        assert status == 200 and 'id="read-only"' in text and "Suspend…" not in text and "bob · read-only" in text
        for path in ("/console/invitations", "/console/deadletters", "/console/platforms/1"):
            status, text, _ = await reader.get(path)
            assert 'method="post"' not in text.split("</header>")[1], path  # only the logout form remains
        status, _, _ = await reader.get("/console/platforms/1/suspend")
        assert status == 403
        for path, form in (
            ("/console/platforms/1/suspend", {}),
            ("/console/invitations", {"name": "sneaky"}),
            ("/console/deadletters/redrive", {"scope": "platform", "platform_id": "1"}),
        ):
            status, text, _ = await reader.post(path, {**form, "csrf": reader.csrf})
            assert status == 403 and "read-only" in text, path
        _, platform = await hub.admin("GET", "/admin/platforms/1")
        _, invitations = await hub.admin("GET", "/admin/invitations")
        assert platform["status"] == "CONNECTED" and invitations == []
        # Admin operator: acts, and the audit page shows who did it.
        status, _, _ = await writer.post("/console/platforms/1/suspend", {"csrf": writer.csrf})
        assert status == 303
        status, text, _ = await writer.get("/console/audit")
        row = text.split('class="audit-entry"')[1]
        assert "alice" in row and "platform.suspend" in row and "platform 1" in row and ">ok<" in row
        assert text.count("refused: read-only operator") == 3  # the 3 posts (opening the confirm page changes nothing)
        for refused in ("platform.suspend", "invitation.create", "deadletters.redrive"):
            assert refused in text
        status, text, _ = await reader.get("/console/audit?actor=alice")
        assert status == 200 and "bob" not in text.split("</form>")[1]  # read-only may read the log
        # Disabling an operator ends its console session at once.
        await hub.admin("POST", "/admin/operators/bob/disable")
        status, _, headers = await reader.get("/console/")
        assert status == 303 and headers["Location"] == "/console/login"
        assert await reader.login(BOB[1], name=BOB[0]) == 401
    finally:
        await reader.close()
        await writer.close()


async def test_cli_operators_and_audit(cli_env: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = await cli(capsys, "operators", "add", "dave")
    assert code == 0 and "operator dave added, role read-only" in out
    password = out.split("password (shown only now): ")[1].strip()
    status, _, _ = await cli_env.call("GET", "/admin/platforms", headers=basic("dave", password))
    assert status == 200
    secret = tmp_path / "pw"
    secret.write_text("erin-password-99\n")
    code, out, _ = await cli(capsys, "operators", "add", "erin", "--role", "admin", "--password-file", str(secret))
    assert code == 0 and "shown only now" not in out
    status, _, _ = await cli_env.call("POST", "/admin/platforms/7/suspend", headers=basic("erin", "erin-password-99"))
    assert status == 404  # allowed to try (admin), no such platform
    code, out, _ = await cli(capsys, "operators", "list")
    assert code == 0 and "dave  read-only  enabled" in out and "erin  admin  enabled" in out
    code, out, _ = await cli(capsys, "operators", "disable", "dave")
    assert code == 0 and "operator dave disabled" in out
    code, _, err = await cli(capsys, "operators", "disable", "dave")
    assert code == 3 and "no enabled operator" in err
    code, out, _ = await cli(capsys, "audit", "--limit", "3")
    lines = out.splitlines()
    assert code == 0 and "admin-token (admin) via admin-api: POST /admin/operators/{name}/disable" in lines[0]
    assert "erin (admin) via admin-api: POST /admin/platforms/{id}/suspend platform 7 -> failed:" in out
    assert lines[-1].startswith("older entries: --before ")
    code, out, _ = await cli(capsys, "audit", "--actor", "nobody")
    assert code == 3
    assert ADMIN not in out


async def test_a_new_password_ends_sessions_and_a_disabled_operator_comes_back(hub: Any) -> None:
    await add(hub, *ALICE, "admin")
    c = Console(hub.base)
    try:
        assert await c.login(ALICE[1], name=ALICE[0]) == 303
        status, body = await hub.admin("POST", "/admin/operators/alice/password", {"password": "short"})
        assert status == 400 and "password" in body["status_message"]
        status, body = await hub.admin("POST", "/admin/operators/alice/password", {"password": "a-new-password-7"})
        assert status == 200 and body["name"] == "alice"
        status, _, headers = await c.get("/console/")
        assert status == 303 and headers["Location"] == "/console/login"  # the old session ended
        assert await c.login(ALICE[1], name=ALICE[0]) == 401
        assert await c.login("a-new-password-7", name=ALICE[0]) == 303
        status, _ = await hub.admin("POST", "/admin/operators/alice/enable")
        assert status == 404  # not disabled
        await hub.admin("POST", "/admin/operators/alice/disable")
        status, body = await hub.admin("POST", "/admin/operators/alice/enable")
        assert status == 200 and body["disabled_at"] is None
        status, _, _ = await hub.call("GET", "/admin/platforms", headers=basic("alice", "a-new-password-7"))
        assert status == 200
        status, _ = await hub.admin("POST", "/admin/operators/nobody/password", {"password": "whatever-password"})
        assert status == 404
        actions = [e["action"] for e in await audit(hub, limit="4")]
        assert actions[1:] == [
            "POST /admin/operators/{name}/enable",
            "POST /admin/operators/{name}/disable",
            "POST /admin/operators/{name}/enable",
        ]
    finally:
        await c.close()


async def test_cli_password_and_enable(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    await add(cli_env, "frank", "frank-password-1", "read-only")
    code, out, _ = await cli(capsys, "operators", "password", "frank")
    assert code == 0 and "new password set" in out
    password = out.split("password (shown only now): ")[1].strip()
    status, _, _ = await cli_env.call("GET", "/admin/platforms", headers=basic("frank", password))
    assert status == 200
    await cli(capsys, "operators", "disable", "frank")
    code, out, _ = await cli(capsys, "operators", "enable", "frank")
    assert code == 0 and "operator frank enabled again" in out
    code, _, err = await cli(capsys, "operators", "enable")
    assert code == 2 and "needs an operator NAME" in err


async def test_a_change_whose_audit_entry_cannot_be_written_still_answers_what_happened(
    hub: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit entry is written after the change commits: if that write fails, the operator
    gets the change's own answer (a 500 would invite a second, duplicate change), and the entry
    goes to the log at ERROR instead."""
    import storage.operators as operator_sql

    def broken(tx: Any, entry: Any) -> None:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(operator_sql, "append_audit", broken)
    status, body = await hub.admin("POST", "/admin/invitations", {"name": "Audited CPO"})
    assert status == 201 and body["token_a"], body
    monkeypatch.undo()
    status, invitations = await hub.admin("GET", "/admin/invitations")
    assert status == 200 and [i["name"] for i in invitations] == ["Audited CPO"]
    lines = [r for r in caplog.records if r.levelname == "ERROR" and "audit entry not written" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "admin-token" in lines[0].getMessage() and "POST /admin/invitations" in lines[0].getMessage()
    assert "-> ok" in lines[0].getMessage()
