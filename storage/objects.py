"""SQL for the broadcast store that serves GET-all (docs/DESIGN-NOTES.md, Storage).

Bodies are kept as the JSON text received, so a page is served by joining stored strings
without parsing or re-serializing 100,000 objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Store, SyncTx


@dataclass(frozen=True)
class StoredObject:
    """One stored object: its JSON text and canonical last_updated."""

    body: str
    last_updated: str


_ONE = "SELECT body, last_updated FROM objects WHERE module=? AND object_key=?"


async def get_object(store: Store, module: str, object_key: str) -> StoredObject | None:
    """The stored object under this key, if any (committed data, reader connection)."""
    row = await store.fetchone(_ONE, (module, object_key))
    return StoredObject(row["body"], row["last_updated"]) if row else None


def load_object(tx: SyncTx, module: str, object_key: str) -> StoredObject | None:
    """The stored object under this key, read inside a write job."""
    row = tx.fetchone(_ONE, (module, object_key))
    return StoredObject(row["body"], row["last_updated"]) if row else None


def put_object(
    tx: SyncTx,
    *,
    module: str,
    object_key: str,
    country_code: str,
    party_id: str,
    object_id: str,
    body: str,
    last_updated: str,
    visible_to: str | None,
) -> None:
    """Insert or replace an object; a replaced object moves to the end of the stable order."""
    tx.execute("DELETE FROM objects WHERE module=? AND object_key=?", (module, object_key))
    tx.execute(
        "INSERT INTO objects (module, object_key, country_code, party_id, object_id, visible_to, last_updated, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (module, object_key, country_code, party_id, object_id, visible_to, last_updated, body),
    )


def delete_object(tx: SyncTx, module: str, object_key: str) -> None:
    """Remove an object (tariff DELETE)."""
    tx.execute("DELETE FROM objects WHERE module=? AND object_key=?", (module, object_key))


def _filters(
    module: str, date_from: str | None, date_to: str | None, visible_to: Sequence[str] | None
) -> tuple[str, list[object]]:
    where = ["module=?"]
    params: list[object] = [module]
    if date_from is not None:  # inclusive (transport_and_format, Pagination)
        where.append("last_updated>=?")
        params.append(date_from)
    if date_to is not None:  # exclusive
        where.append("last_updated<?")
        params.append(date_to)
    if visible_to is not None:
        marks = ",".join("?" * len(visible_to)) or "NULL"
        where.append(f"(visible_to IS NULL OR visible_to IN ({marks}))")
        params.extend(visible_to)
    return " AND ".join(where), params


async def page_objects(
    store: Store,
    module: str,
    *,
    offset: int,
    limit: int,
    date_from: str | None = None,
    date_to: str | None = None,
    visible_to: Sequence[str] | None = None,
) -> tuple[list[str], int]:
    """One page of JSON bodies in stable order (last_updated, then arrival) and the total count."""
    where, params = _filters(module, date_from, date_to, visible_to)
    total_row = await store.fetchone(f"SELECT count(*) AS n FROM objects WHERE {where}", params)
    rows = await store.fetchall(
        f"SELECT body FROM objects WHERE {where} ORDER BY last_updated, seq LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [r["body"] for r in rows], int(total_row["n"]) if total_row else 0
