"""Outbox rows for the storage-level backlog tests (tests/test_outbox_backlog*.py), both backends."""

from __future__ import annotations

from storage import claims as claims_sql
from storage import outbox as outbox_sql
from storage import outcomes as outcome_sql
from storage.db import Store, SyncTx
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


async def queue_backlog_and_others(store: Store, backlog: int) -> None:
    """``backlog`` messages for receiver 1, then four for receivers 2 and 3 (chain (2, A) twice)."""
    await store.write(lambda tx: outbox_sql.enqueue_many(tx, [outbox_message(1, f"B{n}", n) for n in range(backlog)]))
    for n, (pid, key) in enumerate([(2, "A"), (3, "B"), (2, "A"), (2, "C")]):
        message = outbox_message(pid, key, n)
        await store.write(lambda tx, m=message: outbox_sql.enqueue(tx, m))


async def check_claims_skip_a_backlog_in_acceptance_order(store: Store) -> None:
    """What both backends' claims must do after ``queue_backlog_and_others``."""
    rows = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, skip_receivers=[1])
    # Receiver 1 skipped; chain (2, A) gives only its head; ids in acceptance order.
    assert [(r.receiver_platform_id, r.object_key) for r in rows] == [(2, "A"), (3, "B"), (2, "C")]
    assert [r.id for r in rows] == sorted(r.id for r in rows)
    assert await claims_sql.next_due_at(store, skip_receivers=[1], skip_request_ids=[rows[0].request_id]) == T0
    everyone = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=5)
    assert len(everyone) == 5 and everyone[0].receiver_platform_id == 1  # the oldest rows first, at most 5
    assert await claims_sql.next_due_at(store, skip_receivers=[1, 2, 3]) is None
    # A batch shared among receivers: at most per_receiver of each, still the oldest first.
    shared = await claims_sql.claim_heads(store, now=T1, lease_until=LEASE, limit=10, per_receiver=1)
    assert [(r.receiver_platform_id, r.object_key) for r in shared] == [(1, "B0"), (2, "A"), (3, "B")]


async def check_enqueue_many_coalesces_like_one_by_one(store: Store) -> None:
    """A broadcast's legs in one call: blocked behind, coalesced and ordered as one by one would be."""

    def patch(pid: int, n: int, body: bytes) -> NewMessage:
        return outbox_message(pid, "LOC1", n, body=body, module="locations")

    first = [patch(1, 0, b'{"status":"CHARGING"}'), patch(2, 0, b'{"status":"CHARGING"}')]
    assert await store.write(lambda tx: outbox_sql.enqueue_many(tx, first, coalesce=True)) == [False, False]
    # Receiver 1 already has this exact PATCH pending (coalesced: no new row); receiver 2 gets
    # another body (a new row, behind the first); receiver 3 had nothing (its chain head).
    second = [patch(1, 1, b'{"status":"CHARGING"}'), patch(2, 1, b'{"status":"AVAILABLE"}')]
    second.append(patch(3, 1, b'{"status":"CHARGING"}'))
    ids: dict[str, int] = {}

    def leased_heads(tx: SyncTx) -> list[bool]:
        return outbox_sql.enqueue_many(tx, second, coalesce=True, ids=ids, lease_until=LEASE)

    assert await store.write(leased_heads) == [True, True, False]
    rows = await store.fetchall(
        "SELECT id, receiver_platform_id AS pid, request_id, body, leased_by FROM outbox ORDER BY id"
    )
    # ``ids`` names the chain heads inserted (what the scheduler is handed): not the coalesced leg,
    # nor the one behind another; shared, only the head is leased (to this process).
    assert ids == {r["request_id"]: r["id"] for r in rows if r["request_id"] == "3-LOC1-1"}
    leased = {r["request_id"] for r in rows if r["leased_by"] is not None}
    assert leased == ({"3-LOC1-1"} if store.shared else set())
    # Ids order each chain (one receiver's copies of one object); across receivers they mean nothing.
    assert sorted((r["pid"], r["request_id"]) for r in rows) == [
        (1, "1-LOC1-0"),
        (2, "2-LOC1-0"),
        (2, "2-LOC1-1"),
        (3, "3-LOC1-1"),
    ]
    newer = next(r for r in rows if r["request_id"] == "2-LOC1-1")
    assert bytes(newer["body"]) == b'{"status":"AVAILABLE"}'
    assert newer["id"] > next(r["id"] for r in rows if r["request_id"] == "2-LOC1-0")
    stored = await outbox_sql.get(store, newer["id"])
    assert stored is not None and stored.headers == {"X-Request-ID": "2-LOC1-1"} and stored.state == "pending"
    # The legs of one group get ids in their order.
    legs = [outbox_message(pid, "ORDER", 0) for pid in (3, 1, 2)]
    await store.write(lambda tx: outbox_sql.enqueue_many(tx, legs))
    ordered = await store.fetchall(
        "SELECT receiver_platform_id AS pid FROM outbox WHERE object_key='ORDER' ORDER BY id"
    )
    assert [r["pid"] for r in ordered] == [3, 1, 2]


async def check_delete_delivered(store: Store) -> None:
    """``delete_delivered`` removes exactly the (id, request id) pairs given, and ids given alone."""
    ids = await store.write(
        lambda tx: [outbox_sql.enqueue(tx, outbox_message(1 + n % 3, f"D{n}", n))[0] for n in range(1200)]
    )
    # Pairs (more than one statement's worth), one stale pair (a reused id with another request id),
    # and ids alone (messages accepted without a request id).
    pairs: list[tuple[int, str | None]] = [(ids[n], f"{1 + n % 3}-D{n}-{n}") for n in range(0, 1100, 2)]
    pairs.append((ids[1], "someone-else"))
    pairs += [(ids[n], None) for n in (1101, 1103)]
    await store.write(lambda tx: outcome_sql.delete_delivered(tx, pairs))
    left = {int(r["id"]) for r in await store.fetchall("SELECT id FROM outbox")}
    gone = {ids[n] for n in range(0, 1100, 2)} | {ids[1101], ids[1103]}
    assert left == set(ids) - gone
    assert ids[1] in left  # the stale pair matched nothing
