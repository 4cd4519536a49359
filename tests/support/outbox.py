"""Outbox rows for the storage-level backlog tests (tests/test_outbox_backlog*.py), both backends."""

from __future__ import annotations

from storage.db import SyncTx
from storage.outbox import NewMessage

T0 = "2026-12-05T10:00:00.000Z"
T1 = "2026-12-05T10:00:01.000Z"
DEADLINE = "2026-12-06T10:00:00.000Z"
LEASE = "2026-12-05T10:01:00.000Z"


def platforms(tx: SyncTx) -> None:
    """Receivers 1, 2 and 3, CONNECTED."""
    for pid in (1, 2, 3):
        tx.execute(
            "INSERT INTO platforms (id, name, status, initiated_by, created_at, updated_at)"
            " VALUES (?, ?, 'CONNECTED', 'hub', ?, ?)",
            (pid, f"receiver {pid}", T0, T0),
        )


def outbox_message(pid: int, key: str, n: int, body: bytes = b"{}", module: str = "sessions") -> NewMessage:
    """Message ``n`` of object ``key`` for receiver ``pid``."""
    return NewMessage(
        receiver_platform_id=pid,
        module=module,
        object_key=key,
        method="PUT",
        url=f"http://127.0.0.1:9/{pid}/{key}",
        headers={"X-Request-ID": f"{pid}-{key}-{n}"},
        body=body,
        created_at=T0,
        deadline_at=DEADLINE,
        request_id=f"{pid}-{key}-{n}",
    )
