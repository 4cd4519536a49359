"""The CLI on a PostgreSQL database: migrate (apply, list, dry run), and one clear line for what it cannot do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from storage.migrations import STEPS
from tests.support.backends import postgres_schema

ROOT = Path(__file__).resolve().parent.parent
ALL = [step.name for step in STEPS]


def run(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env={**clean, "HUB_DATABASE": database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> bool:
    return "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_migrate_list_and_dry_run_on_postgres(database: str) -> None:
    listed = run(database, "migrate", "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": n, "applied_at": None} for n in ALL]
    plan = run(database, "migrate", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert f"{len(ALL)} pending migration(s), nothing changed" in plan.stdout
    assert "+ CREATE TABLE platforms (" in plan.stdout
    first = run(database, "migrate")
    assert (first.returncode, first.stdout.strip()) == (0, "applied: " + ", ".join(ALL)), first.stderr
    again = run(database, "migrate", "--json")
    assert (again.returncode, json.loads(again.stdout)) == (0, {"applied": []})
    rows = json.loads(run(database, "migrate", "--list", "--json").stdout)
    assert [r["name"] for r in rows] == ALL and all(r["applied_at"] for r in rows)


def test_file_commands_refuse_postgres_in_one_line(database: str, tmp_path: Path) -> None:
    result = run(database, "backup", str(tmp_path / "b.sqlite3"))
    assert result.returncode != 0 and one_line(result), result.stderr
    assert "pg_dump" in result.stderr


def test_an_unreachable_server_is_one_line() -> None:
    result = run("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "migrate")
    assert result.returncode != 0 and one_line(result), result.stderr
    assert result.stderr.startswith("ocpi-hub: ")


def test_a_newer_schema_is_refused(database: str) -> None:
    assert run(database, "migrate").returncode == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO _hub_migrations (name, applied_at) VALUES ('9999_future', 'now')")
    result = run(database, "migrate")
    assert result.returncode != 0 and one_line(result), result.stderr
    assert "newer than this ocpi-hub knows" in result.stderr
