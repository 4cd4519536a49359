"""SQL for the traffic log: a bounded ring of redacted exchange records (migration 0004_traffic).

Rows arrive in batches from the hub's in-memory buffer; each batch is one transaction that also
trims the table to the newest ``keep`` rows, so the table never grows past the setting. Several
processes on one PostgreSQL database leave the trim to one of them (``trim=False`` elsewhere): two
processes deleting the same oldest rows would only wait on each other's row locks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from storage import platforms as platform_sql
from storage.db import Store, SyncTx

COLUMNS = (
    "ts",
    "direction",
    "module",
    "method",
    "path",
    "platform_id",
    "from_party",
    "to_party",
    "http_status",
    "ocpi_status",
    "attempt",
    "request_id",
    "correlation_id",
    "latency_ms",
    "error",
    "note",
    "losses",
)


@dataclass(frozen=True)
class TrafficRecord:
    """One request in or call out, already redacted (no token, no token uid, no body)."""

    ts: str
    direction: str
    module: str | None
    method: str
    path: str
    platform_id: int | None
    from_party: str | None
    to_party: str | None
    http_status: int | None
    ocpi_status: int | None
    attempt: int | None
    request_id: str | None
    correlation_id: str | None
    latency_ms: float
    error: str | None = None
    note: str | None = None  # e.g. a followed redirect, a normalized answer (migration 0006)
    losses: str | None = None  # JSON list of translation Loss records (routing/versions)


async def insert_batch(
    store: Store,
    records: Sequence[TrafficRecord],
    *,
    keep: int,
    seen: Mapping[tuple[int, str], str] | None = None,
    trim: bool = True,
) -> None:
    """Append the records, trim to the newest ``keep`` rows (if ``trim``), record last-seen times: one transaction.

    ``seen`` maps (platform_id, 'in' | 'out') to when the hub last heard from / reached it.
    """
    if not records and not seen:
        return
    placeholders = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO traffic ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    row_of = attrgetter(*COLUMNS)  # the row tuple in C, not a generator per record
    rows = [row_of(r) for r in records]
    touched = [(at, platform_id, direction) for (platform_id, direction), at in (seen or {}).items()]

    def job(tx: SyncTx) -> None:
        if rows:
            tx.executemany(sql, rows)
            if trim:
                _trim(tx, keep)
        for at, platform_id, direction in touched:
            platform_sql.touch_seen(tx, platform_id, now=at, direction=direction)

    await store.write(job, background=True)


def _trim(tx: SyncTx, keep: int) -> None:
    # ids only grow, so "id <= max - keep" is an index range delete of the oldest rows.
    tx.execute("DELETE FROM traffic WHERE id <= (SELECT max(id) FROM traffic) - ?", (keep,))


async def trim(store: Store, keep: int) -> None:
    """Delete all but the newest ``keep`` rows (the trimming process of a cluster, now and then)."""
    await store.write(lambda tx: _trim(tx, keep), background=True)


# Which rows a traffic search shows (``kind``): partner traffic is every row the hub could put on a
# platform (requests from a known partner, calls to one); the admin API's own calls and the rest
# (unauthenticated callers, scanners, a browser's favicon, load-balancer probes) are apart.
KINDS: dict[str, str] = {
    "partner": "platform_id IS NOT NULL",
    "admin": "module = 'admin'",
    "other": "platform_id IS NULL AND (module IS NULL OR module <> 'admin')",
}


async def query(
    store: Store,
    *,
    correlation_id: str | None = None,
    request_id: str | None = None,
    platform_id: int | None = None,
    module: str | None = None,
    http_status: int | None = None,
    ocpi_status: int | None = None,
    since: str | None = None,
    until: str | None = None,
    kind: str | None = None,
    direction: str | None = None,
    failed: bool = False,
    before: int | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[dict[str, object]]:
    """The newest ``limit`` matching rows (older than row ``before``), oldest first (legs read top to bottom).

    With ``after``: the ``limit`` rows just newer than row ``after`` (the previous page), oldest first.
    ``since``/``until`` are OCPI DateTimes written by the hub (one format), so text order is time order.
    ``kind`` is a key of KINDS (None: every row); ``failed``: no answer, or HTTP 400 and above.
    """
    where: list[str] = []
    params: list[object] = []
    equal: tuple[tuple[str, object], ...] = (
        ("correlation_id", correlation_id),
        ("request_id", request_id),
        ("platform_id", platform_id),
        ("module", module),
        ("http_status", http_status),
        ("ocpi_status", ocpi_status),
        ("direction", direction),
    )
    for column, value in equal:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    for condition, value in (("ts >= ?", since), ("ts <= ?", until), ("id < ?", before), ("id > ?", after)):
        if value is not None:
            where.append(condition)
            params.append(value)
    if kind is not None:
        where.append(f"({KINDS[kind]})")
    if failed:
        where.append("(http_status IS NULL OR http_status >= 400)")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if after is not None and before is None else "DESC"
    rows = await store.fetchall(
        f"SELECT id, {', '.join(COLUMNS)} FROM traffic {clause} ORDER BY id {order} LIMIT ?", (*params, limit)
    )
    found = [dict(row) for row in rows]
    return found if order == "ASC" else found[::-1]


async def legs(store: Store, correlation_ids: Sequence[str], *, limit: int = 1000) -> list[dict[str, object]]:
    """Every row of these correlation ids (all legs of those messages), oldest first."""
    if not correlation_ids:
        return []
    marks = ", ".join("?" for _ in correlation_ids)
    rows = await store.fetchall(
        f"SELECT id, {', '.join(COLUMNS)} FROM traffic WHERE correlation_id IN ({marks}) ORDER BY id DESC LIMIT ?",
        (*correlation_ids, limit),
    )
    return [dict(row) for row in reversed(rows)]


@dataclass(frozen=True)
class MinuteFigures:
    """Traffic in one minute: partner requests in, calls out and the calls' latency."""

    minute: str  # 'YYYY-MM-DDTHH:MM'
    requests_in: int
    calls_out: int
    latency_avg_ms: float | None
    latency_max_ms: float | None


async def per_minute(store: Store, *, since: str) -> list[MinuteFigures]:
    """Per-minute figures of the rows at or after ``since`` (partner traffic only: rows with a platform)."""
    rows = await store.fetchall(
        "SELECT substr(ts, 1, 16) AS minute,"
        " sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END) AS requests_in,"
        " sum(CASE WHEN direction = 'out' THEN 1 ELSE 0 END) AS calls_out,"
        " avg(CASE WHEN direction = 'out' AND http_status IS NOT NULL THEN latency_ms END) AS latency_avg,"
        " max(CASE WHEN direction = 'out' AND http_status IS NOT NULL THEN latency_ms END) AS latency_max"
        " FROM traffic WHERE ts >= ? AND platform_id IS NOT NULL GROUP BY minute ORDER BY minute",
        (since,),
    )
    return [
        MinuteFigures(
            minute=str(r["minute"]),
            requests_in=int(r["requests_in"] or 0),
            calls_out=int(r["calls_out"] or 0),
            latency_avg_ms=None if r["latency_avg"] is None else float(r["latency_avg"]),
            latency_max_ms=None if r["latency_max"] is None else float(r["latency_max"]),
        )
        for r in rows
    ]


async def count(store: Store) -> int:
    """How many rows the table holds."""
    row = await store.fetchone("SELECT count(*) FROM traffic")
    return int(row[0]) if row is not None else 0
