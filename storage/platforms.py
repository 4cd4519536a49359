"""SQL for platforms, their endpoints and their parties (the registry)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from storage import times
from storage.db import Row, Store, SyncTx, Transaction
from storage.errors import Conflict, IntegrityError, PartyHeld, RecordNotFound
from storage.models import Endpoint, Party, Platform, PlatformBrief

_PLATFORM_COLS = (
    "id, name, status, versions_url, version, token_out, send_base64, initiated_by, "
    "created_at, updated_at, last_seen_in, last_seen_out, pull_interval, pulled_at, role_hint"
)


async def rename_platform(tx: Transaction, platform_id: int, name: str) -> None:
    """Give a platform the name its credentials carry."""
    await tx.execute("UPDATE platforms SET name=? WHERE id=?", (name, platform_id))


async def create_platform(
    tx: Transaction, *, name: str, status: str, initiated_by: str, now: str, versions_url: str | None = None
) -> int:
    """Insert a new platform row; return its id."""
    return await tx.insert(
        "INSERT INTO platforms (name, status, versions_url, initiated_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (name, status, versions_url, initiated_by, now, now),
    )


# A pair is held by a platform that serves it (not left) and is registered (we hold a token to call
# it); an unregistered platform's pairs and the pairs that left a platform are free again.
_HELD_ELSEWHERE = (
    "SELECT p.country_code, p.party_id FROM parties p JOIN platforms f ON f.id = p.platform_id"
    " WHERE p.platform_id <> ? AND p.left_at IS NULL AND f.token_out IS NOT NULL"
    " AND upper(p.country_code) = upper(?) AND upper(p.party_id) = upper(?)"
)
_HELD_HERE = (
    "SELECT 1 FROM parties WHERE platform_id = ? AND left_at IS NULL"
    " AND upper(country_code) = upper(?) AND upper(party_id) = upper(?)"
)


async def held_elsewhere(
    store: Store | Transaction, platform_id: int, pairs: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The (country_code, party_id) pairs another platform holds, in any role (issue 20: one platform per pair).

    A pair this platform holds already is not reported: re-registering (credentials PUT) with
    its own parties keeps working, also for a pair a database from before the rule holds twice.
    """
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for country_code, party_id in pairs:
        key = (country_code.upper(), party_id.upper())
        if key in seen:
            continue
        seen.add(key)
        if await store.fetchone(_HELD_HERE, (platform_id, country_code, party_id)) is not None:
            continue
        if await store.fetchone(_HELD_ELSEWHERE, (platform_id, country_code, party_id)) is not None:
            found.append((country_code, party_id))
    return found


async def save_registration(
    tx: Transaction,
    platform_id: int,
    *,
    versions_url: str,
    version: str,
    token_out: str,
    endpoints: Iterable[Endpoint],
    parties: Iterable[Party],
    status: str,
    now: str,
    send_base64: bool = True,
) -> None:
    """Store the outcome of a credentials exchange: replaces endpoints and parties.

    Conflict when another platform holds one of the (country_code, party_id) pairs, in any role
    (checked here, in the registration's own transaction, so two registrations cannot both win).
    """
    parties = list(parties)
    held = await held_elsewhere(tx, platform_id, [(p.country_code, p.party_id) for p in parties])
    if held:
        raise PartyHeld(held)
    changed = await tx.execute_rowcount(
        "UPDATE platforms SET versions_url=?, version=?, token_out=?, status=?, updated_at=?, send_base64=? WHERE id=?",
        (versions_url, version, token_out, status, now, int(send_base64), platform_id),
    )
    if not changed:
        raise RecordNotFound(f"platform {platform_id} does not exist")
    await tx.execute("DELETE FROM endpoints WHERE platform_id=?", (platform_id,))
    await tx.executemany(
        "INSERT INTO endpoints (platform_id, module, role, url) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (platform_id, module, role) DO UPDATE SET url=excluded.url",
        [(platform_id, ep.module, ep.role, ep.url) for ep in endpoints],
    )
    wanted = {(p.country_code.upper(), p.party_id.upper(), p.role) for p in parties}
    # ClientInfo is never deleted (mod_hub_client_info): a party that left the platform's roles is
    # kept, marked as left, and reported SUSPENDED from now on.
    for row in await tx.fetchall(
        "SELECT country_code, party_id, role FROM parties WHERE platform_id=? AND left_at IS NULL", (platform_id,)
    ):
        if (row["country_code"].upper(), row["party_id"].upper(), row["role"]) not in wanted:
            await tx.execute(
                "UPDATE parties SET left_at=?, last_updated=? WHERE platform_id=? AND country_code=?"
                " AND party_id=? AND role=?",
                (now, now, platform_id, row["country_code"], row["party_id"], row["role"]),
            )
    # A party whose previous platform unregistered (no token to call it), or that left it, may
    # register again elsewhere: it moves here instead of colliding with its own old row.
    await tx.executemany(
        "DELETE FROM parties WHERE upper(country_code)=upper(?) AND upper(party_id)=upper(?) AND role=?"
        " AND platform_id<>? AND (left_at IS NOT NULL OR platform_id IN (SELECT id FROM platforms"
        " WHERE token_out IS NULL))",
        [(p.country_code, p.party_id, p.role, platform_id) for p in parties],
    )
    try:
        for p in parties:
            values = (p.country_code, p.party_id, json.dumps(p.business_details), now, platform_id)
            updated = await tx.execute_rowcount(
                "UPDATE parties SET country_code=?, party_id=?, business_details=?, left_at=NULL, last_updated=?"
                " WHERE platform_id=? AND upper(country_code)=upper(?) AND upper(party_id)=upper(?) AND role=?",
                (*values, p.country_code, p.party_id, p.role),
            )
            if not updated:
                await tx.execute(
                    "INSERT INTO parties (platform_id, country_code, party_id, role, business_details, last_updated)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (platform_id, p.country_code, p.party_id, p.role, json.dumps(p.business_details), now),
                )
    except IntegrityError as exc:
        raise Conflict("a party in these credentials is already served by another platform") from exc


async def forget_registration(tx: Transaction, platform_id: int, *, status: str, now: str) -> None:
    """Drop what a credentials exchange stored (token, endpoints); parties stay for HubClientInfo."""
    await tx.execute(
        "UPDATE platforms SET token_out=NULL, status=?, updated_at=? WHERE id=?", (status, now, platform_id)
    )
    # ClientInfo.last_updated is the time of the last status change (mod_hub_client_info).
    await tx.execute("UPDATE parties SET last_updated=? WHERE platform_id=?", (now, platform_id))
    await tx.execute("DELETE FROM endpoints WHERE platform_id=?", (platform_id,))
    await tx.execute("DELETE FROM tokens WHERE platform_id=?", (platform_id,))


async def set_interop(
    tx: Transaction, platform_id: int, *, send_base64: bool, pull_interval: float | None, now: str
) -> None:
    """Per-platform interop settings: token encoding, and how often a pull-only CPO is pulled."""
    await tx.execute(
        "UPDATE platforms SET send_base64=?, pull_interval=?, updated_at=? WHERE id=?",
        (int(send_base64), pull_interval, now, platform_id),
    )


def set_pulled_at(tx: SyncTx, platform_id: int, *, at: datetime) -> None:
    """Where the next incremental pull of this platform starts (its date_from)."""
    tx.execute("UPDATE platforms SET pulled_at=? WHERE id=?", (times.encode(at), platform_id))


async def set_status(tx: Transaction, platform_id: int, status: str, *, now: str) -> None:
    """Change a platform's connection status (and its parties' last_updated)."""
    changed = await tx.execute_rowcount(
        "UPDATE platforms SET status=?, updated_at=? WHERE id=?", (status, now, platform_id)
    )
    if not changed:
        raise RecordNotFound(f"platform {platform_id} does not exist")
    await tx.execute("UPDATE parties SET last_updated=? WHERE platform_id=?", (now, platform_id))


async def delete_platform(tx: Transaction, platform_id: int) -> None:
    """Remove a platform and everything hanging off it."""
    await tx.execute("DELETE FROM platforms WHERE id=?", (platform_id,))


async def set_role_hint(tx: Transaction, platform_id: int, role: str | None) -> None:
    """The role an OCPI 2.1.1 partner serves (its credentials carry none)."""
    await tx.execute("UPDATE platforms SET role_hint=? WHERE id=?", (role, platform_id))


def touch_seen(tx: SyncTx, platform_id: int, *, now: str, direction: str) -> None:
    """Record when we last heard from ('in') or reached ('out') a platform."""
    column = "last_seen_in" if direction == "in" else "last_seen_out"
    tx.execute(f"UPDATE platforms SET {column}=? WHERE id=?", (now, platform_id))


def _platform(row: Row, endpoints: list[Endpoint], parties: list[Party]) -> Platform:
    return Platform(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        versions_url=row["versions_url"],
        version=row["version"],
        token_out=row["token_out"],
        send_base64=bool(row["send_base64"]),
        initiated_by=row["initiated_by"],
        created_at=times.decode(row["created_at"]),
        updated_at=times.decode(row["updated_at"]),
        last_seen_in=times.decode_optional(row["last_seen_in"]),
        last_seen_out=times.decode_optional(row["last_seen_out"]),
        pull_interval=row["pull_interval"],
        pulled_at=times.decode_optional(row["pulled_at"]),
        role_hint=row["role_hint"],
        endpoints=tuple(endpoints),
        parties=tuple(parties),
    )


def _party(row: Row) -> Party:
    return Party(
        platform_id=row["platform_id"],
        country_code=row["country_code"],
        party_id=row["party_id"],
        role=row["role"],
        business_details=json.loads(row["business_details"]),
        last_updated=row["last_updated"],
        left_at=row["left_at"],
    )


_ENDPOINT_SLICE = 500  # platforms whose endpoints list_platforms reads per query


async def list_platforms(
    store: Store | Transaction, *, endpoints: bool = True, after: int | None = None, limit: int | None = None
) -> list[Platform]:
    """Every platform with endpoints and parties, in three queries (no N+1); or ``limit`` after id ``after``.

    ``endpoints=False``: without their endpoints (``Platform.endpoints`` empty), for readers that
    need none: at 10,000 platforms the 170,000 endpoint rows were most of a full read's time.
    """
    where, tail, params = "", "", []
    if after is not None:
        where, params = " WHERE id > ?", [after]
    if limit is not None:  # (a limit of 0 too: the placeholder and its value go together)
        tail, params = " LIMIT ?", [*params, limit]
    rows = await store.fetchall(f"SELECT {_PLATFORM_COLS} FROM platforms{where} ORDER BY id{tail}", params)
    urls: dict[int, list[Endpoint]] = defaultdict(list)
    ids = [r["id"] for r in rows] if endpoints else []
    # In slices of platforms: all 170,000 endpoint rows of 10,000 platforms fetched at once
    # were a ~50 MB peak at start on top of what is kept (issue 22, bench scenario 12).
    for first in range(0, len(ids), _ENDPOINT_SLICE):
        chunk = ids[first : first + _ENDPOINT_SLICE]
        for r in await store.fetchall(
            "SELECT platform_id, module, role, url FROM endpoints WHERE platform_id >= ? AND platform_id <= ?"
            " ORDER BY platform_id, module, role",
            (chunk[0], chunk[-1]),
        ):
            # Module and role are a handful of words: one shared string each, not one per row.
            endpoint = Endpoint(module=sys.intern(r["module"]), role=sys.intern(r["role"]), url=r["url"])
            urls[r["platform_id"]].append(endpoint)
    parties: dict[int, list[Party]] = defaultdict(list)
    if rows:
        # A page's parties only (the ids are in order): not every party of 10,000 platforms.
        some = "" if after is None and limit is None else " WHERE platform_id >= ? AND platform_id <= ?"
        span = [] if not some else [rows[0]["id"], rows[-1]["id"]]
        for r in await store.fetchall(f"SELECT * FROM parties{some} ORDER BY country_code, party_id, role", span):
            parties[r["platform_id"]].append(_party(r))
    return [_platform(r, urls[r["id"]], parties[r["id"]]) for r in rows]


async def briefs(store: Store, platform_id: int | None = None) -> list[PlatformBrief]:
    """Every platform (or the one with ``platform_id``) as the overviews read it, in two queries."""
    one, params = ("", ()) if platform_id is None else (" WHERE id=?", (platform_id,))
    rows = await store.fetchall(
        "SELECT id, name, status, version, token_out, last_seen_in, last_seen_out, updated_at"
        f" FROM platforms{one} ORDER BY id",
        params,
    )
    parties: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    active: dict[int, list[tuple[str, str]]] = defaultdict(list)
    of_one = "" if platform_id is None else " WHERE platform_id=?"
    for r in await store.fetchall(
        f"SELECT platform_id, country_code, party_id, role, left_at FROM parties{of_one}"
        " ORDER BY country_code, party_id, role",
        params,
    ):
        parties[r["platform_id"]].append((r["country_code"], r["party_id"], r["role"]))
        if r["left_at"] is None:
            active[r["platform_id"]].append((r["country_code"].upper(), r["party_id"].upper()))
    # Unpacked in the order selected (a row's values, not eight lookups by name: 10,000 rows).
    return [
        PlatformBrief(
            number,
            name,
            status,
            version,
            token is not None and version is not None,
            seen_in,
            seen_out,
            updated,
            tuple(parties[number]),
            tuple(active[number]),
        )
        for number, name, status, version, token, seen_in, seen_out, updated in cast(list[tuple[Any, ...]], rows)
    ]


async def get_platform(store: Store | Transaction, platform_id: int) -> Platform:
    """One platform with endpoints and parties; RecordNotFound if absent."""
    row = await store.fetchone(f"SELECT {_PLATFORM_COLS} FROM platforms WHERE id=?", (platform_id,))
    if row is None:
        raise RecordNotFound(f"platform {platform_id} does not exist")
    endpoints = [
        Endpoint(module=r["module"], role=r["role"], url=r["url"])
        for r in await store.fetchall(
            "SELECT module, role, url FROM endpoints WHERE platform_id=? ORDER BY module, role", (platform_id,)
        )
    ]
    parties = [
        _party(r)
        for r in await store.fetchall(
            "SELECT * FROM parties WHERE platform_id=? ORDER BY country_code, party_id, role", (platform_id,)
        )
    ]
    return _platform(row, endpoints, parties)
