"""Retention of finished messages and of the audit log (docs/OPERATIONS.md, Retention).

Dead, rejected and discarded outbox rows go ``retention.dead_letters`` after their finished_at,
audit entries ``retention.audit_log`` after their ts, in chunks of ``retention.batch_size``;
pending rows and rows a process holds never go; a younger dead letter can still be listed and
re-driven; /status shows what each window holds. The clock is the fake one (no waiting).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import pytest

from hub.cli.main import _print_storage
from hub.keys import RETENTION, STORE
from routing.clock import FakeClock, iso
from storage import deadletters as deadletters_sql
from storage import operators as operators_sql
from storage import outbox as outbox_sql
from storage import outcomes as outcome_sql
from storage import retention as retention_sql
from storage.db import Store, SyncTx
from storage.outbox import NewMessage
from tests.support.routing import network
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

DAY = 86400.0


def _message(pid: int, key: str, at: str) -> NewMessage:
    return NewMessage(
        receiver_platform_id=pid,
        module="sessions",
        object_key=key,
        method="PUT",
        url=f"http://127.0.0.1:9/sessions/{key}",
        headers={"X-Request-ID": f"rid-{key}"},
        body=b"{}",
        created_at=at,
        # Far ahead: the delivery sweeper's max_age expiry must not touch the pending ones.
        deadline_at="2099-01-01T00:00:00.000Z",
        request_id=f"rid-{key}",
    )


async def _seed(store: Store, pid: int, key: str, state: str, at: str) -> int:
    """One outbox row for ``pid`` ending in ``state``, finished (or accepted, when pending) at ``at``."""

    def job(tx: SyncTx) -> int:
        message_id, _ = outbox_sql.enqueue(tx, _message(pid, key, at))
        rid = f"rid-{key}"
        if state == "rejected":
            outcome_sql.finish(
                tx, message_id, http_status=200, ocpi_status=2001, state="rejected", now=at, request_id=rid
            )
        elif state in ("dead", "discarded"):
            outcome_sql.bury(tx, message_id, error="503", now=at, request_id=rid)
            if state == "discarded":
                deadletters_sql.discard(tx, reason="given up", now=at, ids=[message_id])
        return message_id

    return int(await store.write(job))


async def _audit(store: Store, at: str, action: str) -> None:
    entry = operators_sql.AuditEntry(
        ts=at, actor="alice", role="admin", via="admin-api", action=action, target=None, outcome="ok", address=None
    )
    await store.write(lambda tx: operators_sql.append_audit(tx, entry))


async def _states(store: Store) -> dict[int, str]:
    return {int(r["id"]): r["state"] for r in await store.fetchall("SELECT id, state FROM outbox")}


def _kept(status_body: dict[str, Any]) -> dict[str, int]:
    return {f["state"]: f["count"] for f in status_body["finished_messages"]}


async def _suspended_receiver(hub: Any, make_peer: Any) -> int:
    # A SUSPENDED receiver: its pending messages wait (nothing delivers them during the test).
    net = await network(hub, make_peer)
    pid = await net.platform_id(net.emsp1)
    status, body = await hub.admin("POST", f"/admin/platforms/{pid}/suspend")
    assert status == 200, body
    return pid


async def test_finished_messages_and_audit_entries_past_their_window_go_the_rest_stays(
    start_hub, make_peer, clock: FakeClock, monkeypatch, caplog
) -> None:
    hub = await start_hub(
        retention={"sweep_interval": 3600, "dead_letters": 30 * DAY, "audit_log": 365 * DAY, "batch_size": 2}
    )
    sweeper, store = hub.app[RETENTION], hub.app[STORE]
    await wait_for(lambda: sweeper.sweeps == 1)
    pid = await _suspended_receiver(hub, make_peer)
    now = clock.now()
    old, young = iso(now - timedelta(days=40)), iso(now - timedelta(days=10))
    gone = [await _seed(store, pid, f"old-dead-{n}", "dead", old) for n in range(3)]
    gone += [await _seed(store, pid, "old-rejected", "rejected", old)]
    gone += [await _seed(store, pid, f"old-discarded-{n}", "discarded", old) for n in range(2)]
    young_dead = await _seed(store, pid, "young-dead", "dead", young)
    young_discarded = await _seed(store, pid, "young-discarded", "discarded", young)
    kept = [young_dead, young_discarded, await _seed(store, pid, "young-rejected", "rejected", young)]
    kept.append(await _seed(store, pid, "old-pending", "pending", old))
    # A pending row whose finished_at says long ago (a crash between two writes, say): state decides.
    forged = await _seed(store, pid, "forged-pending", "pending", old)
    await store.write(lambda tx: tx.execute("UPDATE outbox SET finished_at = ? WHERE id = ?", (old, forged)))
    # An old dead letter another process holds a lease on (PostgreSQL's several processes): left alone.
    held = await _seed(store, pid, "held-dead", "dead", old)
    until = iso(now + timedelta(hours=2))  # still running at the sweep, an hour on
    await store.write(
        lambda tx: tx.execute("UPDATE outbox SET leased_by = 'other', lease_until = ? WHERE id = ?", (until, held))
    )
    kept += [forged, held]
    for n in range(3):
        await _audit(store, iso(now - timedelta(days=400)), f"old {n}")
    await _audit(store, iso(now - timedelta(days=300)), "young")
    audit_before = int((await store.fetchone("SELECT count(*) AS n FROM audit_log"))["n"])

    _, before = await hub.admin("GET", "/status")
    assert _kept(before) == {"dead": 5, "rejected": 2, "discarded": 3}
    oldest = {f["state"]: f["oldest_finished_at"] for f in before["finished_messages"]}
    assert oldest == {"dead": old, "rejected": old, "discarded": old}
    assert before["audit_log"]["count"] == audit_before
    assert before["audit_log"]["oldest_ts"] == iso(now - timedelta(days=400))

    chunks: list[tuple[str, int, int]] = []  # (what, ids asked, rows deleted) per write

    def spy(name: str, real: Any) -> Any:
        @functools.wraps(real)
        def wrapped(tx: SyncTx, ids: Any, **kwargs: Any) -> int:
            done = int(real(tx, ids, **kwargs))
            chunks.append((kwargs.get("state", name), len(ids), done))
            return done

        return wrapped

    monkeypatch.setattr(retention_sql, "delete_finished", spy("finished", retention_sql.delete_finished))
    monkeypatch.setattr(retention_sql, "delete_audit", spy("audit", retention_sql.delete_audit))
    clock.advance(3600)
    await wait_for(lambda: sweeper.sweeps == 2)

    assert sweeper.last is not None
    assert sweeper.last.messages_removed == {"dead": 3, "rejected": 1, "discarded": 2}
    assert sweeper.last.audit_removed == 3
    # Undecided dead letters going is said apart from the routine figures.
    warned = [r.getMessage() for r in caplog.records if r.name == "routing.jobs.retention" and r.levelname == "WARNING"]
    assert warned == ["retention sweep removed 3 dead letter(s) undecided for 30 days (retention.dead_letters)"]
    # Bounded: every write deleted at most batch_size rows (three old dead letters: 2 then 1).
    assert all(asked <= 2 and done <= 2 for _, asked, done in chunks), chunks
    assert [(what, done) for what, _, done in chunks if what == "dead"] == [("dead", 2), ("dead", 1)]
    assert [done for what, _, done in chunks if what == "audit"] == [2, 1]

    states = await _states(store)
    assert not set(gone) & set(states)
    assert all(message_id in states for message_id in kept)
    assert states[forged] == "pending" and states[held] == "dead"
    _, after = await hub.admin("GET", "/status")
    assert _kept(after) == {"dead": 2, "rejected": 1, "discarded": 1}
    assert after["audit_log"]["count"] == audit_before - 3
    assert after["audit_log"]["oldest_ts"] == iso(now - timedelta(days=300))

    # Within its window a dead letter is still the operator's: listed, re-driven; a discard still listed.
    status, letters = await hub.admin("GET", f"/admin/deadletters?platform_id={pid}")
    assert status == 200 and {m["id"] for m in letters} == {young_dead, held}, letters
    status, listed = await hub.admin("GET", f"/admin/deadletters?state=discarded&platform_id={pid}")
    assert status == 200 and [m["id"] for m in listed] == [young_discarded], listed
    status, body = await hub.admin("POST", "/admin/deadletters/redrive", json={"ids": [young_dead]})
    assert (status, body) == (200, {"redriven": 1})
    assert (await _states(store))[young_dead] == "pending"


async def test_a_dead_letter_redriven_after_the_read_is_not_deleted(start_hub, clock: FakeClock) -> None:
    # The sweep reads a chunk, then deletes it in another write: a re-drive in between wins.
    hub = await start_hub(retention={"sweep_interval": 3600, "dead_letters": 30 * DAY})
    store = hub.app[STORE]
    # The hub's own first sweep runs at start: seeded before it ends, the letter could go in it
    # (it did, once in a full run), and the re-drive below would find nothing.
    await wait_for(lambda: hub.app[RETENTION].sweeps == 1)
    now = clock.now()
    old = iso(now - timedelta(days=40))
    letter = await _seed(store, 77, "raced", "dead", old)
    before = iso(now - timedelta(days=30))
    ids = await retention_sql.finished_ids(store, "dead", before=before, now=iso(now), limit=10)
    assert ids == [letter]
    redriven = await store.write(
        lambda tx: deadletters_sql.redrive(tx, now=iso(now), deadline_at="2099-01-01T00:00:00.000Z", ids=[letter])
    )
    assert redriven == 1
    deleted = await store.write(
        lambda tx: retention_sql.delete_finished(tx, ids, state="dead", before=before, now=iso(now))
    )
    assert deleted == 0 and (await _states(store))[letter] == "pending"


async def test_zero_keeps_finished_messages_and_the_audit_log_for_ever(start_hub, clock: FakeClock) -> None:
    hub = await start_hub(retention={"sweep_interval": 3600, "dead_letters": 0, "audit_log": 0})
    sweeper, store = hub.app[RETENTION], hub.app[STORE]
    await wait_for(lambda: sweeper.sweeps == 1)
    ancient = iso(clock.now() - timedelta(days=5000))
    letter = await _seed(store, 77, "ancient", "dead", ancient)
    await _audit(store, ancient, "ancient")
    result = await sweeper.sweep()
    assert result.messages_removed == {} and result.audit_removed == 0
    assert letter in await _states(store)
    assert (await store.fetchone("SELECT count(*) AS n FROM audit_log WHERE ts = ?", (ancient,)))["n"] == 1


def test_ocpi_hub_status_prints_the_finished_messages_kept(capsys) -> None:
    figures = [
        {"state": "dead", "count": 2, "oldest_finished_at": "2026-10-16T12:00:00.000Z"},
        {"state": "rejected", "count": 0, "oldest_finished_at": None},
    ]
    _print_storage({"stored_objects": [], "finished_messages": figures, "audit_log": {"count": 1, "oldest_ts": None}})
    out = capsys.readouterr().out
    assert out == "  finished messages dead: 2 (oldest finished_at 2026-10-16T12:00:00.000Z)\n", out
