"""The ocpi-hub CLI: migrate on a file, admin commands against a running hub (DESIGN-NOTES.md, Admin API and CLI)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from config import Settings
from hub import __version__
from hub.cli.main import ensure_admin_token
from storage.migrate_sqlite import MIGRATIONS
from tests.support.hub import cli
from tests.support.ports import free_port
from tests.support.processes import wait_answering

ROOT = Path(__file__).resolve().parent.parent
ALL = [m.name for m in MIGRATIONS._migrations]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)


def run(db: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env={**clean, "HUB_DATABASE": str(db), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()[:10] if done.returncode == 0 else "unknown"


def test_version_tells_builds_apart(tmp_path):
    shown = run(tmp_path / "hub.sqlite3", "--version")
    assert shown.returncode == 0, shown.stderr
    commit = _git_commit()
    line = shown.stdout.strip()
    # The package version, the schema it migrates to, and the commit of this checkout.
    assert line.startswith(f"ocpi-hub {__version__} (schema {ALL[-1]}, commit {commit}")
    assert line.removesuffix("+dirty)").removesuffix(")").endswith(commit)
    baked = run(tmp_path / "hub.sqlite3", "--version", HUB_BUILD_COMMIT="build-42")
    assert baked.stdout.strip() == f"ocpi-hub {__version__} (schema {ALL[-1]}, commit build-42)"


def test_migrate_and_list(tmp_path):
    db = tmp_path / "deep" / "dir" / "hub.sqlite3"
    listed = run(db, "migrate", "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": n, "applied_at": None} for n in ALL]
    assert not db.exists()  # listing does not create the database
    first = run(db, "migrate")
    assert (first.returncode, first.stdout.strip()) == (0, "applied: " + ", ".join(ALL)), first.stderr
    again = run(db, "migrate", "--json")
    assert (again.returncode, json.loads(again.stdout)) == (0, {"applied": []})
    listed = run(db, "migrate", "--list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ALL and all(r["applied_at"] for r in rows)
    text = run(db, "migrate", "--list")
    assert text.stdout.splitlines()[0].startswith(ALL[0] + "  applied ")


def test_migrate_on_unusable_path_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(blocker / "hub.sqlite3", "migrate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ocpi-hub: ")


def test_ensure_admin_token_creates_0600_file_and_reuses_it(tmp_path):
    settings = Settings(database=tmp_path / "hub.sqlite3")
    with_token, path = ensure_admin_token(settings)
    assert path == tmp_path / "hub.sqlite3.admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = with_token.admin_token.get_secret_value()
    assert len(token) >= 32 and path.read_text() == token + "\n"
    again, path2 = ensure_admin_token(settings)
    assert path2 == path and again.admin_token.get_secret_value() == token
    path.chmod(0o644)  # loosened by hand: tightened again
    ensure_admin_token(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")  # emptied: replaced with a fresh token
    fresh, _ = ensure_admin_token(settings)
    assert fresh.admin_token.get_secret_value() not in ("", token)


def test_ensure_admin_token_prefers_configured_token(tmp_path):
    settings = Settings(database=tmp_path / "hub.sqlite3", admin_token="given")
    same, path = ensure_admin_token(settings)
    assert path is None and same.admin_token.get_secret_value() == "given"
    assert list(tmp_path.iterdir()) == []


async def test_cli_invite_prints_token_a(cli_env, capsys):
    hub = cli_env
    code, out, err = await cli(capsys, "invite", "Acme CPO")
    assert (code, err) == (0, "")
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["versions URL"].strip() == hub.versions_url
    token_a = lines["token A     "].strip()
    assert (await hub.call("GET", "/ocpi/versions", token=token_a))[0] == 200
    code, out, _ = await cli(capsys, "invite", "--json", "Other")
    data = json.loads(out)
    assert code == 0 and set(data) >= {"token_a", "versions_url", "platform_id"}
    assert (await hub.call("GET", "/ocpi/versions", token=data["token_a"]))[0] == 200


async def test_cli_platforms_and_status(cli_env, capsys, make_peer):
    hub = cli_env
    peer = await make_peer(("NL", "CPA", "CPO"), name="Acme")
    token_a = await hub.invite("acme")
    await peer.register_with(hub.versions_url, token_a)
    await hub.invite("waiting")
    code, out, err = await cli(capsys, "platforms", "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(p["name"], p["status"]) for p in rows] == [("acme", "CONNECTED"), ("waiting", "PLANNED")]
    code, out, _ = await cli(capsys, "platforms")
    assert code == 0 and "acme" in out and "CONNECTED" in out and "NL*CPA CPO" in out and "PLANNED" in out
    code, out, _ = await cli(capsys, "status", "--json")
    data = json.loads(out)
    assert (code, data["status"], data["version"]) == (0, "ok", __version__)
    assert data["build"]["schema"] == ALL[-1] and data["build"]["commit"].removesuffix("+dirty") == _git_commit()
    assert [p["status"] for p in data["platforms"]] == ["CONNECTED", "PLANNED"]
    code, out, _ = await cli(capsys, "status")
    assert code == 0 and out.startswith(f"status: ok  version: {__version__}") and "acme" in out


async def test_cli_connect(cli_env, capsys, make_peer):
    peer = await make_peer(("NL", "CPB", "EMSP"), name="Peer")
    code, out, err = await cli(capsys, "connect", "--json", peer.versions_url, peer.token_a, "--name", "Peer X")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["name"], data["status"], data["initiated_by"]) == ("Peer X", "CONNECTED", "hub")


async def test_cli_reports_hub_errors_in_one_line(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "wrong")
    code, out, err = await cli(capsys, "platforms")
    assert (code, out) == (2, "")
    assert err.startswith("ocpi-hub: hub answered HTTP 401") and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("HUB_PORT", str(free_port()))
    code, _, err = await cli(capsys, "status")
    assert code == 2 and err.startswith("ocpi-hub: cannot reach the hub")


async def test_serve_writes_admin_token_and_answers(tmp_path):
    db = tmp_path / "served.sqlite3"
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env = {**clean, "HUB_DATABASE": str(db), "HUB_PORT": str(port), "HUB_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--init"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_answering(session, f"http://127.0.0.1:{port}/health", proc)
            token_file = Path(str(db) + ".admin-token")
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            headers = {"Authorization": "Bearer " + token_file.read_text().strip()}
            async with session.get(f"http://127.0.0.1:{port}/admin/platforms", headers=headers) as r:
                assert (r.status, await r.json()) == (200, [])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # only the process this test started
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"serve did not stop on SIGINT: {err.decode()[-500:]}") from None
    assert f"versions URL : http://127.0.0.1:{port}/ocpi/versions" in out.decode()
    assert "Traceback" not in err.decode()
