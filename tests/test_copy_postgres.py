"""``ocpi-hub copy-to-postgres``: a SQLite hub's data copied into PostgreSQL, checked row by row.

The SQLite database is built by the real hub: four platforms registered through the handshake,
locations broadcast, sessions and a CDR pushed to an eMSP that is down (dead letters, and a
message still pending). After the copy every table is compared row by row, and a hub started
on the PostgreSQL copy still knows its partners' tokens and answers GET-all with the same
locations. PostgreSQL comes from HUB_TEST_POSTGRES_URL (one schema per test).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from storage.migrate_sqlite import apply_migrations
from storage.migrations import STEPS
from tests.support.backends import POSTGRES_ENV, postgres_schema
from tests.support.delivery import (
    Script,
    a_cdr,
    delivery_net,
    is_queued,
    outbox_rows,
    post_cdr,
    put_session,
    session_body,
)
from tests.support.hub import cli
from tests.support.routing import CPO1, EMSP1, EMSP2, HUB, example, module_requests, rh
from tests.support.waiting import advance_until, wait_for

SKIPPED_TABLES = {"hub_processes", "console_sessions"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty schema on the test server; the URL selects it."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI at a SQLite file (HUB_DATABASE), with no other HUB_* setting around."""
    for name in list(os.environ):
        if name.startswith("HUB_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)

    def use(database: Path | str) -> None:
        monkeypatch.setenv("HUB_DATABASE", str(database))

    return use


def sqlite_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every copied table of the SQLite file: its rows as dicts, in primary-key order."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        names = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
            if r[0] != "_sqlite_migrations" and r[0] not in SKIPPED_TABLES
        ]
        return {
            n: _by_key([dict(r) for r in conn.execute(f'SELECT * FROM "{n}"')], _sqlite_key(conn, n)) for n in names
        }
    finally:
        conn.close()


def _sqlite_key(conn: sqlite3.Connection, table: str) -> list[str]:
    columns = sorted((r[5], r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")') if r[5])  # pk, name
    return [name for _, name in columns]


def _by_key(rows: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    assert key, "every hub table has a primary key"
    return sorted(rows, key=lambda r: tuple(r[k] for k in key))


def pg_table(url: str, table: str, key: list[str]) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(f'SELECT * FROM "{table}"')
        names = [c.name for c in cursor.description or []]
        return _by_key([dict(zip(names, row, strict=True)) for row in cursor.fetchall()], key)


def pg_one(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


async def _locations(net: Any, hub: Any, peer: Any) -> list[dict[str, Any]]:
    """GET-all of locations through ``hub`` by ``peer`` (eMSP two): the first page holds them all."""
    status, body, _ = await hub.call("GET", "/ocpi/2.2.1/locations/sender/", token=peer.hub_token, headers=rh(EMSP2))
    assert status == 200 and body["status_code"] == 1000, body
    return list(body["data"])


async def _sqlite_hub_with_history(start_hub: Any, make_peer: Any, clock: Any) -> Any:
    """The four-platform network on SQLite with stored objects, dead letters and a pending message."""
    net = await delivery_net(start_hub, make_peer, max_attempts=2, offline_after_failures=1000)
    for n in range(3):
        location = {**example("location_example.json"), "id": f"L{n}", "last_updated": f"2020-01-0{n + 1}T00:00:00Z"}
        status, body, _ = await net.call(
            "PUT", f"/ocpi/2.2.1/locations/receiver/BE/BEC/L{n}", net.cpo1, json=location, headers=rh(CPO1, HUB)
        )
        assert status == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: len(module_requests(net.emsp2, "locations")) == 3)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    assert is_queued(*(await put_session(net, "s-dead", 1))[:2])
    assert is_queued(*await post_cdr(net, a_cdr("CDR-DEAD")))
    await advance_until(net.hub, clock, lambda: script.failed == 4, step=10)
    assert is_queued(*(await put_session(net, "s-pending", 1))[:2])  # tried once, waits for its retry
    states = {row["state"] for row in await outbox_rows(net.hub)}
    assert {"pending", "dead"} <= states, states
    return net


async def test_copy_is_identical_row_by_row_and_a_hub_runs_on_it(
    pg_url, start_hub, make_peer, clock, hub_env, capsys
) -> None:
    net = await _sqlite_hub_with_history(start_hub, make_peer, clock)
    locations = await _locations(net, net.hub, net.emsp2)
    assert [loc["id"] for loc in locations] == ["L0", "L1", "L2"]
    await net.hub.server.close()  # the hub stops: its database lock is free for the copy
    database = Path(net.hub.settings.database)
    hub_env(database)
    token_file = database.with_name(database.name + ".admin-token")  # as `serve` would have written it
    token_file.write_text("generated-admin-token\n")

    code, out, err = await cli(capsys, "copy-to-postgres", pg_url)
    assert code == 0, err
    assert f"admin token: {token_file.resolve()} stays with the SQLite file; copy it to var/postgres.admin-token" in out
    source = sqlite_tables(database)
    for table, rows in source.items():
        assert f"  {table} " in out and f" {len(rows)} rows" in out
    assert "hub_processes" in out and "not copied" in out
    assert out.splitlines()[0] == f"copied {database.resolve()}"

    # Every table, every row, every column: identical (types included: bytes stay bytes).
    assert {m for m in {r["module"] for r in source["objects"]}} >= {"locations", "sessions", "cdrs"}
    assert {r["state"] for r in source["outbox"]} >= {"pending", "dead"}
    for table in ("platforms", "endpoints", "parties", "tokens", "traffic"):
        assert source[table], f"the test network left no {table} rows"
    conn = sqlite3.connect(database)
    try:
        keys = {table: _sqlite_key(conn, table) for table in source}
    finally:
        conn.close()
    for table, rows in source.items():
        copied = pg_table(pg_url, table, keys[table])
        assert len(copied) == len(rows), table
        for before, after in zip(rows, copied, strict=True):
            assert after == before, f"{table}: {before} became {after}"

    # A hub on the copy: partners' tokens authenticate, GET-all answers the same locations.
    pg_hub = await start_hub(database=pg_url, delivery={"relay_wait": 0.3, "max_attempts": 2})
    for peer in net.peers:
        status, body, _ = await pg_hub.call("GET", "/ocpi/versions", token=peer.hub_token)
        assert status == 200 and body["status_code"] == 1000, (peer.name, body)
    assert await _locations(net, pg_hub, net.emsp2) == locations

    # New rows get keys past the copied ones (the identity sequences were moved).
    max_seq = max(r["seq"] for r in source["objects"])
    max_platform = max(r["id"] for r in source["platforms"])
    location = {**example("location_example.json"), "id": "L9", "last_updated": "2020-02-01T00:00:00Z"}
    status, body, _ = await pg_hub.call(
        "PUT",
        "/ocpi/2.2.1/locations/receiver/BE/BEC/L9",
        token=net.cpo1.hub_token,
        json=location,
        headers=rh(CPO1, HUB),
    )
    assert status == 200 and body["status_code"] == 1000, body
    assert pg_one(pg_url, "SELECT seq FROM objects WHERE object_id = 'L9'") > max_seq
    await pg_hub.invite("newcomer")
    assert pg_one(pg_url, "SELECT max(id) FROM platforms") == max_platform + 1
    max_message = max(r["id"] for r in source["outbox"])
    status, body, _ = await pg_hub.call(
        "PUT",
        "/ocpi/2.2.1/sessions/receiver/BE/BEC/s-after",
        token=net.cpo1.hub_token,
        data=session_body("s-after", 1),
        headers=rh(CPO1, EMSP1),
    )
    assert is_queued(status, body), body  # eMSP one is still down
    assert pg_one(pg_url, "SELECT id FROM outbox WHERE object_key = 'BE/BEC/S-AFTER'") > max_message


async def test_refuses_a_target_that_holds_data(pg_url, start_hub, hub_env, capsys) -> None:
    hub = await start_hub()
    await hub.invite("first")
    await hub.server.close()
    hub_env(hub.settings.database)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a schema that belongs to something else
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    code, out, err = await cli(capsys, "copy-to-postgres", pg_url)
    assert code == 2 and err.count("\n") == 1, err
    assert "holds tables that are not the hub's (invoices)" in err
    assert pg_one(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()") == 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE invoices")

    code, out, err = await cli(capsys, "copy-to-postgres", "--json", pg_url)
    assert code == 0, err
    report = json.loads(out)
    assert (
        report["tables"]["platforms"] == 1 and report["tables"]["tokens"] == 1 and "hub_processes" in report["skipped"]
    )
    assert report["tables"]["audit_log"] >= 1  # who created the invitation moves with the data
    assert report["target"] == pg_url and report["seconds"] >= 0
    assert pg_one(pg_url, "SELECT count(*) FROM platforms") == 1

    code, out, err = await cli(capsys, "copy-to-postgres", pg_url)
    assert code == 2 and out == ""
    assert err.startswith("ocpi-hub: ") and err.count("\n") == 1 and "Traceback" not in err
    # The audit log (the test's admin calls) is data like the rest: it is copied, and counts here.
    assert "already holds data (in audit_log, platforms, " in err and "nothing was copied" in err
    assert pg_one(pg_url, "SELECT count(*) FROM platforms") == 1


async def test_a_failure_midway_leaves_the_target_empty(pg_url, start_hub, hub_env, capsys) -> None:
    hub = await start_hub()
    await hub.invite("first")
    await hub.server.close()
    # A value PostgreSQL refuses (NUL in text) in the last table copied: everything before it rolls back.
    conn = sqlite3.connect(hub.settings.database)
    with conn:
        conn.execute(
            "INSERT INTO traffic (ts, direction, method, path, error)"
            " VALUES ('2026-01-01T00:00:00Z', 'in', 'GET', '/x', 'a' || char(0) || 'b')"
        )
    conn.close()
    hub_env(hub.settings.database)
    code, _, err = await cli(capsys, "copy-to-postgres", pg_url)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "copying table traffic failed" in err and "nothing was copied" in err
    assert pg_one(pg_url, "SELECT count(*) FROM platforms") == 0
    assert pg_one(pg_url, "SELECT count(*) FROM tokens") == 0


async def test_refuses_an_outdated_sqlite_schema(tmp_path, hub_env, capsys) -> None:
    database = tmp_path / "old.sqlite3"
    latest = STEPS[-1].name
    apply_migrations(database, stop_before=latest)
    hub_env(database)
    code, out, err = await cli(capsys, "copy-to-postgres", "postgresql://postgres@127.0.0.1:5432/test")
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"lacks migration(s) {latest}: run `ocpi-hub migrate` on it first" in err


async def test_bad_urls_and_a_running_hub_are_one_line_errors(start_hub, hub_env, capsys, tmp_path) -> None:
    hub = await start_hub()
    hub_env(hub.settings.database)
    code, _, err = await cli(capsys, "copy-to-postgres", "postgresql://postgres@127.0.0.1:5432/test")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "is in use by" in err and "stop the hub before copying" in err
    await hub.server.close()

    for url, expected in [
        ("postgresql://postgres@127.0.0.1:1/test", "cannot connect to postgresql://postgres@127.0.0.1:1/test:"),
        ("mysql://root@127.0.0.1/hub", "is not a PostgreSQL URL"),
        ("postgresql://u:secret@127.0.0.1:1/x", "cannot connect to postgresql://u:***@127.0.0.1:1/x"),
    ]:
        code, out, err = await cli(capsys, "copy-to-postgres", url)
        assert code == 2 and out == "", url
        assert err.startswith("ocpi-hub: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert expected in err and "secret" not in err, err

    hub_env(tmp_path / "missing.sqlite3")
    code, _, err = await cli(capsys, "copy-to-postgres", "postgresql://postgres@127.0.0.1:1/test")
    assert code == 2 and "does not exist" in err and not (tmp_path / "missing.sqlite3").exists()
