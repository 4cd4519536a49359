"""SQL for retention: stored copies (objects), finished outbox messages, the audit log; the database's size.

Finished messages are outbox rows that will not be delivered as they stand: ``dead`` (an
operator may still re-drive or discard them, storage/deadletters.py), ``rejected`` (the
receiver's final non-1xxx answer, storage/outcomes.py) and ``discarded``. Each has its
``finished_at``; a re-drive clears it with the state, so a row re-driven between the read of a
chunk and its delete is left alone (the delete checks again). Index outbox_finished (0023).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from storage.db import Store, SyncTx

# Owners whose platform is still registered: their locations and tariffs stay.
_LIVE_OWNER = (
    "EXISTS (SELECT 1 FROM parties pa JOIN platforms pl ON pl.id = pa.platform_id"
    " WHERE upper(pa.country_code) = upper(?) AND upper(pa.party_id) = upper(?)"
    " AND pl.token_out IS NOT NULL AND pl.status <> 'UNREGISTERED')"
)


@dataclass(frozen=True)
class ModuleFigures:
    """How many objects one module keeps and the oldest last_updated among them."""

    module: str
    count: int
    oldest_last_updated: str | None


FINISHED_STATES: tuple[str, ...] = ("dead", "rejected", "discarded")

# Not a row a process is sending: a lease still running (PostgreSQL, storage/claims.py).
_NOT_LEASED = "(leased_by IS NULL OR lease_until IS NULL OR lease_until <= ?)"


@dataclass(frozen=True)
class KeptFigures:
    """How many rows of one kind are kept and the oldest time the retention window counts from."""

    kind: str
    count: int
    oldest: str | None


@dataclass(frozen=True)
class DatabaseFigures:
    """Pages in use and free (free pages are what incremental vacuum gives back)."""

    page_size: int
    page_count: int
    freelist_count: int


async def expired_seqs(store: Store, module: str, *, before: str, limit: int) -> list[int]:
    """Up to ``limit`` objects of a module last updated before ``before``, in no particular order.

    The sweep deletes them all, chunk by chunk, so their order does not matter; sorting by
    last_updated (no index has it: one would cost every object write) sorted every object of the
    module for each chunk: 230 ms a chunk at 300,000 Locations, 1.2 ms without (bench/seed.py).
    """
    rows = await store.fetchall(
        "SELECT seq FROM objects WHERE module = ? AND last_updated < ? LIMIT ?",
        (module, before, limit),
    )
    return [int(r["seq"]) for r in rows]


async def owners(store: Store, modules: Sequence[str]) -> list[tuple[str, str, str]]:
    """Distinct (module, country_code, party_id) owning stored objects of these modules."""
    marks = ",".join("?" * len(modules))
    rows = await store.fetchall(
        f"SELECT DISTINCT module, country_code, party_id FROM objects WHERE module IN ({marks})", list(modules)
    )
    return [(r["module"], r["country_code"], r["party_id"]) for r in rows]


async def owner_is_live(store: Store, country_code: str, party_id: str) -> bool:
    """True while a registered platform serves this party."""
    row = await store.fetchone(f"SELECT {_LIVE_OWNER} AS live", (country_code, party_id))
    return bool(row and row["live"])


async def owned_seqs(store: Store, module: str, country_code: str, party_id: str, *, limit: int) -> list[int]:
    """Up to ``limit`` objects of one owner in one module."""
    rows = await store.fetchall(
        "SELECT seq FROM objects WHERE module = ? AND country_code = ? AND party_id = ? LIMIT ?",
        (module, country_code, party_id, limit),
    )
    return [int(r["seq"]) for r in rows]


def delete_expired(tx: SyncTx, seqs: Sequence[int], *, before: str) -> int:
    """Delete these objects unless they were updated meanwhile (a newer push replaces the row)."""
    marks = ",".join("?" * len(seqs))
    return tx.execute_rowcount(f"DELETE FROM objects WHERE seq IN ({marks}) AND last_updated < ?", [*seqs, before])


def delete_orphaned(tx: SyncTx, seqs: Sequence[int], country_code: str, party_id: str) -> int:
    """Delete these objects unless their owner registered again meanwhile."""
    marks = ",".join("?" * len(seqs))
    return tx.execute_rowcount(
        f"DELETE FROM objects WHERE seq IN ({marks}) AND NOT {_LIVE_OWNER}", [*seqs, country_code, party_id]
    )


# Each reads its index (tests/test_outbox_backlog*.py hold them to it): outbox_finished (0023) by
# state and finished_at, audit_log_ts by ts; the deletes go by primary key.
FINISHED_IDS = (
    f"SELECT id FROM outbox WHERE state = ? AND finished_at < ? AND {_NOT_LEASED} ORDER BY finished_at LIMIT ?"
)
# "finished_at IS NOT NULL": the partial index outbox_finished holds exactly these rows.
FINISHED_FIGURES = (
    "SELECT count(*) AS n, min(finished_at) AS oldest FROM outbox WHERE state = ? AND finished_at IS NOT NULL"
)
AUDIT_IDS = "SELECT id FROM audit_log WHERE ts < ? ORDER BY ts LIMIT ?"


def delete_finished_sql(n: int) -> str:
    """The DELETE of ``n`` finished messages by id, each checked again: ids, then state, before, now."""
    marks = ",".join("?" * n)
    # "state || ''": no index on state, so SQLite deletes by primary key; with "state = ?" it took
    # outbox_finished and read every old row of the state again for each chunk.
    return f"DELETE FROM outbox WHERE id IN ({marks}) AND state || '' = ? AND finished_at < ? AND {_NOT_LEASED}"


async def finished_ids(store: Store, state: str, *, before: str, now: str, limit: int) -> list[int]:
    """Up to ``limit`` messages in ``state`` that finished before ``before`` and no process holds (oldest first)."""
    rows = await store.fetchall(FINISHED_IDS, (state, before, now, limit))
    return [int(r["id"]) for r in rows]


def delete_finished(tx: SyncTx, ids: Sequence[int], *, state: str, before: str, now: str) -> int:
    """Delete these messages if they are still ``state``, finished before ``before`` and not held (re-driven: kept)."""
    return tx.execute_rowcount(delete_finished_sql(len(ids)), [*ids, state, before, now])


async def audit_ids(store: Store, *, before: str, limit: int) -> list[int]:
    """Up to ``limit`` audit entries written before ``before`` (oldest first)."""
    rows = await store.fetchall(AUDIT_IDS, (before, limit))
    return [int(r["id"]) for r in rows]


def delete_audit_sql(n: int) -> str:
    """The DELETE of ``n`` audit entries by id, each checked again: ids, then before."""
    return f"DELETE FROM audit_log WHERE id IN ({','.join('?' * n)}) AND ts || '' < ?"  # by primary key, as above


def delete_audit(tx: SyncTx, ids: Sequence[int], *, before: str) -> int:
    """Delete these audit entries (the only delete of the otherwise append-only log)."""
    return tx.execute_rowcount(delete_audit_sql(len(ids)), [*ids, before])


async def kept_figures(store: Store) -> list[KeptFigures]:
    """Finished messages per state (oldest finished_at) and audit entries (oldest ts), each from its index."""
    figures = []
    for state in FINISHED_STATES:
        row = await store.fetchone(FINISHED_FIGURES, (state,))
        figures.append(KeptFigures(state, int(row["n"]) if row else 0, row["oldest"] if row else None))
    row = await store.fetchone("SELECT count(*) AS n, min(ts) AS oldest FROM audit_log")
    figures.append(KeptFigures("audit_log", int(row["n"]) if row else 0, row["oldest"] if row else None))
    return figures


def incremental_vacuum(tx: SyncTx, pages: int) -> None:
    """Give up to ``pages`` free pages back to the file system (auto_vacuum=INCREMENTAL).

    PostgreSQL's autovacuum does this by itself: nothing to do there.
    """
    if tx.dialect.name == "sqlite":
        tx.fetchall(f"PRAGMA incremental_vacuum({int(pages)})")


# The oldest last_updated per module reads every stored object (no index has last_updated: one
# would cost every object write): ~0.46 s at 1,000,000 objects, on every /status and console
# overview. When it takes that long it is kept OLDEST_KEPT seconds; the counts stay exact
# (the index objects_order covers them: ~30 ms there). A small store is read every time.
OLDEST_SLOW = 0.05
OLDEST_KEPT = 60.0
_oldest: WeakKeyDictionary[Store, tuple[float, dict[str, str | None]]] = WeakKeyDictionary()
_monotonic = time.monotonic  # (tests move it on)


async def module_figures(store: Store) -> list[ModuleFigures]:
    """Per module: stored objects and the oldest last_updated (up to OLDEST_KEPT s old on a big store)."""
    counts = await store.fetchall("SELECT module, count(*) AS n FROM objects GROUP BY module ORDER BY module")
    kept = _oldest.get(store)
    if kept is not None and _monotonic() < kept[0]:
        oldest = kept[1]
    else:
        started = _monotonic()
        rows = await store.fetchall("SELECT module, min(last_updated) AS oldest FROM objects GROUP BY module")
        oldest = {r["module"]: r["oldest"] for r in rows}
        if _monotonic() - started >= OLDEST_SLOW:
            _oldest[store] = (_monotonic() + OLDEST_KEPT, oldest)
        else:
            _oldest.pop(store, None)
    return [ModuleFigures(r["module"], int(r["n"]), oldest.get(r["module"])) for r in counts]


async def database_figures(store: Store) -> DatabaseFigures:
    """Page size, pages and free pages of the database (PostgreSQL: its schema's size in blocks, none free).

    On PostgreSQL the hub's data is its schema's tables (with their indexes and TOAST), not the
    whole database, which other clusters or applications may share; pg_database_size also stats
    every file of the database, 100+ ms on a busy one, on every /status.
    """
    if store.dialect.name != "sqlite":
        row = await store.fetchone(
            "SELECT current_setting('block_size')::bigint AS b,"
            " (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace s ON s.oid = c.relnamespace"
            " WHERE s.nspname = current_schema() AND c.relkind = 'r')::bigint AS n"
        )
        block = int(row["b"]) if row else 8192
        return DatabaseFigures(block, (int(row["n"]) // block) if row else 0, 0)
    size = await store.fetchone("PRAGMA page_size")
    count = await store.fetchone("PRAGMA page_count")
    free = await store.fetchone("PRAGMA freelist_count")
    return DatabaseFigures(int(size[0]) if size else 0, int(count[0]) if count else 0, int(free[0]) if free else 0)
