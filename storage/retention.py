"""SQL for the retention of stored copies (objects table) and the database's size figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DatabaseFigures:
    """Pages in use and free (free pages are what incremental vacuum gives back)."""

    page_size: int
    page_count: int
    freelist_count: int


async def expired_seqs(store: Store, module: str, *, before: str, limit: int) -> list[int]:
    """Up to ``limit`` objects of a module last updated before ``before`` (oldest first)."""
    rows = await store.fetchall(
        "SELECT seq FROM objects WHERE module = ? AND last_updated < ? ORDER BY last_updated LIMIT ?",
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


def incremental_vacuum(tx: SyncTx, pages: int) -> None:
    """Give up to ``pages`` free pages back to the file system (auto_vacuum=INCREMENTAL).

    PostgreSQL's autovacuum does this by itself: nothing to do there.
    """
    if tx.dialect.name == "sqlite":
        tx.fetchall(f"PRAGMA incremental_vacuum({int(pages)})")


async def module_figures(store: Store) -> list[ModuleFigures]:
    """Per module: stored objects and the oldest last_updated (index objects_page: no table scan)."""
    rows = await store.fetchall(
        "SELECT module, count(*) AS n, min(last_updated) AS oldest FROM objects GROUP BY module ORDER BY module"
    )
    return [ModuleFigures(r["module"], int(r["n"]), r["oldest"]) for r in rows]


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
