"""SQL for the hub processes' heartbeats (table hub_processes): who serves, since when, how recently seen."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.db import Store, SyncTx


@dataclass(frozen=True)
class ProcessRow:
    """One hub process as its last heartbeat left it."""

    id: str
    host: str
    os_pid: int  # column pid
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    figures: dict[str, Any]


def beat(tx: SyncTx, *, process_id: str, host: str, os_pid: int, started_at: str, now: str, figures: str) -> None:
    """Insert or refresh this process's row."""
    tx.execute(
        "INSERT INTO hub_processes (id, host, pid, started_at, heartbeat_at, figures) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET heartbeat_at=excluded.heartbeat_at, figures=excluded.figures,"
        " stopped_at=NULL",
        (process_id, host, os_pid, started_at, now, figures),
    )


def stopped(tx: SyncTx, *, process_id: str, now: str, figures: str) -> None:
    """A clean shutdown: the row stays (its figures count) marked stopped."""
    tx.execute(
        "UPDATE hub_processes SET stopped_at=?, heartbeat_at=?, figures=? WHERE id=?",
        (now, now, figures, process_id),
    )


def forget_before(tx: SyncTx, *, before: str) -> int:
    """Drop rows of processes last seen before ``before`` (restarts would pile up otherwise)."""
    return tx.execute_rowcount("DELETE FROM hub_processes WHERE heartbeat_at < ?", (before,))


async def list_processes(store: Store) -> list[ProcessRow]:
    """Every known process, the longest-running first."""
    rows = await store.fetchall(
        "SELECT id, host, pid, started_at, heartbeat_at, stopped_at, figures FROM hub_processes ORDER BY started_at, id"
    )
    return [
        ProcessRow(
            id=r["id"],
            host=r["host"],
            os_pid=int(r["pid"]),
            started_at=r["started_at"],
            heartbeat_at=r["heartbeat_at"],
            stopped_at=r["stopped_at"],
            figures=json.loads(r["figures"] or "{}"),
        )
        for r in rows
    ]
