"""SQL for the routing index learned from traffic: who owns a location, session, token, reservation."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Store, SyncTx, Transaction


@dataclass(frozen=True)
class IndexEntry:
    """Owner of an object (upper-cased) and, for sessions, the party it was sent to."""

    country_code: str
    party_id: str
    peer_country_code: str | None
    peer_party_id: str | None


def remember(
    tx: SyncTx,
    kind: str,
    object_id: str,
    owner: tuple[str, str],
    *,
    now: str,
    peer: tuple[str, str] | None = None,
) -> None:
    """Record (or refresh) who owns an object."""
    tx.execute(
        "INSERT INTO routing_index (kind, object_id, country_code, party_id, peer_country_code, peer_party_id,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, object_id, country_code, party_id) DO UPDATE SET"
        # The kept value is named with its table: PostgreSQL finds a bare name ambiguous with excluded.
        " peer_country_code=coalesce(excluded.peer_country_code, routing_index.peer_country_code),"
        " peer_party_id=coalesce(excluded.peer_party_id, routing_index.peer_party_id), updated_at=excluded.updated_at",
        (
            kind,
            object_id.upper(),
            owner[0].upper(),
            owner[1].upper(),
            peer[0].upper() if peer else None,
            peer[1].upper() if peer else None,
            now,
        ),
    )


async def lookup(
    store: Store | Transaction, kind: str, object_id: str, owner: tuple[str, str] | None = None
) -> list[IndexEntry]:
    """Every owner known for this object id (one unless ids collide across owners)."""
    sql = (
        "SELECT country_code, party_id, peer_country_code, peer_party_id FROM routing_index"
        " WHERE kind=? AND object_id=?"
    )
    params: list[object] = [kind, object_id.upper()]
    if owner is not None:
        sql += " AND country_code=? AND party_id=?"
        params += [owner[0].upper(), owner[1].upper()]
    rows = await store.fetchall(sql + " ORDER BY updated_at DESC", params)
    return [IndexEntry(r[0], r[1], r[2], r[3]) for r in rows]
