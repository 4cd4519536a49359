"""SQL for the durable outbox: the messages and how they are enqueued.

What an attempt records (finish, retry later, bury), expiry and deletes are
storage/outcomes.py; dead letters once buried (list, re-drive, discard) are storage/deadletters.py.

A message's chain is (receiver, module, object_key): only the oldest pending message of a chain
is ever due, so a new message never overtakes a queued one for the same object (docs/DESIGN-NOTES.md, Delivery).
Which due message goes to which process is storage/claims.py.

When several hub processes share the database (``tx.owner`` set: PostgreSQL), enqueueing takes
the object's advisory lock (``lock_object``), so two processes accepting pushes for one object
give them ids in commit order, and only the lease holder (``leased_by``) records an outcome.
Alone (SQLite), the process owns every row and none of this applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Row, Store, SyncTx, Transaction


@dataclass(frozen=True)
class NewMessage:
    """A push to commit before the hub answers."""

    receiver_platform_id: int
    module: str
    object_key: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    created_at: str
    deadline_at: str
    request_id: str = ""  # the X-Request-ID in ``headers``, sent unchanged on every attempt
    lease_until: str | None = None  # fast path: leased to this process (when shared) until then

    def stored(self, message_id: int) -> Message:
        """The row this message became once enqueued (no attempt yet)."""
        return Message(
            id=message_id,
            receiver_platform_id=self.receiver_platform_id,
            module=self.module,
            object_key=self.object_key,
            method=self.method,
            url=self.url,
            request_id=self.request_id,
            headers=self.headers,
            body=self.body,
            state="pending",
            attempts=0,
            created_at=self.created_at,
            next_attempt_at=self.created_at,
            deadline_at=self.deadline_at,
            last_error=None,
            last_http_status=None,
            last_ocpi_status=None,
        )


@dataclass(frozen=True)
class Message:
    """A stored outbox row."""

    id: int
    receiver_platform_id: int
    module: str
    object_key: str
    method: str
    url: str
    request_id: str
    headers: dict[str, str]
    body: bytes | None
    state: str
    attempts: int
    created_at: str
    next_attempt_at: str
    deadline_at: str
    last_error: str | None
    last_http_status: int | None
    last_ocpi_status: int | None
    discard_reason: str | None = None


@dataclass(frozen=True)
class QueueStats:
    """Queue figures of one receiver."""

    depth: int
    oldest_created_at: str | None
    dead: int
    retries: int


def message_from_row(row: Row) -> Message:
    """The Message of an outbox row."""
    return Message(
        id=row["id"],
        receiver_platform_id=row["receiver_platform_id"],
        module=row["module"],
        object_key=row["object_key"],
        method=row["method"],
        url=row["url"],
        request_id=row["request_id"] or "",
        headers=json.loads(row["headers"]),
        body=row["body"],
        state=row["state"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        deadline_at=row["deadline_at"],
        last_error=row["last_error"],
        last_http_status=row["last_http_status"],
        last_ocpi_status=row["last_ocpi_status"],
        discard_reason=row["discard_reason"],
    )


def lock_object(tx: SyncTx, module: str, object_key: str) -> None:
    """Shared database: hold the object's lock until COMMIT, so one process at a time writes its chains and copies.

    Within a process the single writer serializes jobs; across processes two jobs for one object
    would otherwise interleave: outbox ids out of commit order within a chain, and a PATCH
    applied to a stored copy that another process was replacing (a lost update). Keyed by
    schema too: one schema is one cluster (storage/postgres.py). A job that declares its
    objects to ``Store.write(..., locks=...)`` has them locked before it runs, in the batch's
    sorted order (no deadlock between two processes' batches); this call is then free.
    """
    tx.lock(module, object_key)


_PENDING_IN_CHAIN = (
    "SELECT 1 FROM outbox WHERE receiver_platform_id=? AND module=? AND object_key=? AND state='pending'"
)
_INSERT = (
    "INSERT INTO outbox (receiver_platform_id, module, object_key, method, url, request_id, headers, body,"
    " state, created_at, next_attempt_at, deadline_at, leased_by, lease_until)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?,"
    f" CASE WHEN EXISTS ({_PENDING_IN_CHAIN}) THEN NULL ELSE ? END,"
    f" CASE WHEN EXISTS ({_PENDING_IN_CHAIN}) THEN NULL ELSE ? END)"
    # The chain again as parameters, not the new row's columns: so SQLite probes outbox_chain; with
    # column references it walked the receiver's whole queue (issue 22: a push to a receiver with
    # 20,000 queued took 4.7 ms, 0.01 ms now).
    " RETURNING id, CASE WHEN EXISTS (SELECT 1 FROM outbox p WHERE p.receiver_platform_id=?"
    " AND p.module=? AND p.object_key=? AND p.state='pending' AND p.id<outbox.id)"
    " THEN 1 ELSE 0 END AS behind"
)


def enqueue(tx: SyncTx, message: NewMessage, *, coalesce: bool = False) -> tuple[int, bool]:
    """Insert a message; return (id, blocked) where blocked means an older one of its chain is pending.

    With ``coalesce``, a message identical to the newest pending one of its chain is not added
    again (repeated EVSE status pushes): that row's id is returned instead.
    """
    lock_object(tx, message.module, message.object_key)  # ids follow commit order per chain
    chain = (message.receiver_platform_id, message.module, message.object_key)
    if coalesce:
        last = tx.fetchone(
            "SELECT id, method, url, body FROM outbox WHERE receiver_platform_id=? AND module=? AND object_key=?"
            " AND state='pending' ORDER BY id DESC LIMIT 1",
            chain,
        )
        if last is not None and (last["method"], last["url"], last["body"]) == (
            message.method,
            message.url,
            message.body,
        ):
            return int(last["id"]), True
    # One statement, so one round trip on PostgreSQL: an older pending message of the chain
    # decides both the fast-path lease (only a chain head is leased) and "blocked".
    leased = tx.owner is not None and message.lease_until is not None
    [row] = tx.fetchall(
        _INSERT,
        (
            *chain,
            message.method,
            message.url,
            message.request_id,
            json.dumps(message.headers),
            message.body,
            message.created_at,
            message.created_at,
            message.deadline_at,
            *chain,
            tx.owner if leased else None,
            *chain,
            message.lease_until if leased else None,
            *chain,
        ),
    )
    return int(row["id"]), bool(row["behind"])


# SQLite, many messages of one object (a broadcast): one statement reads every chain's newest
# pending row, one inserts them all. Row by row, each statement hands the GIL back and forth
# between the writer thread and a busy event loop (up to 5 ms each): 1,000 receivers took seconds.
_NEWEST_PENDING = (
    "SELECT json_group_array(json_array(x.k, x.last IS NOT NULL, coalesce((SELECT p.method=:method AND p.url=x.u"
    " AND p.body IS :body FROM outbox p WHERE p.id=x.last), 0))) AS found"
    " FROM (SELECT j.key AS k, json_extract(j.value, '$[1]') AS u,"
    " (SELECT max(q.id) FROM outbox q WHERE q.receiver_platform_id=json_extract(j.value, '$[0]')"
    " AND q.module=:module AND q.object_key=:key AND q.state='pending') AS last"
    " FROM json_each(:legs) j ORDER BY j.key) x"
)
_INSERT_MANY = (
    "INSERT INTO outbox (receiver_platform_id, module, object_key, method, url, request_id, headers, body,"
    " state, created_at, next_attempt_at, deadline_at)"
    " SELECT json_extract(j.value, '$[0]'), :module, :key, :method, json_extract(j.value, '$[1]'),"
    " json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]'), :body, 'pending', :created, :created, :deadline"
    " FROM json_each(:legs) j ORDER BY j.key RETURNING id, request_id"
)


# PostgreSQL, the same two statements over arrays (unnest ... WITH ORDINALITY keeps the legs'
# order, so ids follow it): one round trip each instead of one per receiver.
_PG_NEWEST_PENDING = (
    "SELECT l.ord, x.id IS NOT NULL AS pending,"
    " coalesce(x.method=? AND x.url=l.url AND x.body IS NOT DISTINCT FROM ?::bytea, false) AS same"
    " FROM unnest(?::bigint[], ?::text[]) WITH ORDINALITY AS l(pid, url, ord)"
    " LEFT JOIN LATERAL (SELECT q.id, q.method, q.url, q.body FROM outbox q WHERE q.receiver_platform_id=l.pid"
    " AND q.module=? AND q.object_key=? AND q.state='pending' ORDER BY q.id DESC LIMIT 1) x ON true"
    " ORDER BY l.ord"
)
_PG_INSERT_MANY = (
    "INSERT INTO outbox (receiver_platform_id, module, object_key, method, url, request_id, headers, body,"
    " state, created_at, next_attempt_at, deadline_at, leased_by, lease_until)"
    " SELECT l.pid, ?, ?, ?, l.url, l.rid, l.headers, ?::bytea, 'pending', ?, ?, ?,"
    " CASE WHEN l.head = 1 THEN ?::text END, CASE WHEN l.head = 1 THEN ?::text END"
    " FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[])"
    " WITH ORDINALITY AS l(pid, url, rid, headers, head, ord)"
    " ORDER BY l.ord RETURNING id, request_id, leased_by IS NOT NULL AS leased"
)


def _group_pg(
    tx: SyncTx,
    shared: dict[str, object],
    created: str,
    deadline: str,
    legs: list[NewMessage],
    coalesce: bool,
    ids: dict[str, int] | None,
    lease_until: str | None,
) -> list[bool]:
    """PostgreSQL: one group's ``blocked`` per leg, and its fresh legs inserted in one statement."""
    module, key, method, body = shared["module"], shared["key"], shared["method"], shared["body"]
    pids = [m.receiver_platform_id for m in legs]
    urls = [m.url for m in legs]
    rows = tx.fetchall(_PG_NEWEST_PENDING, (method, body, pids, urls, module, key))
    fresh = [(m, not r["pending"]) for m, r in zip(legs, rows, strict=True) if not (coalesce and r["same"])]
    if fresh:
        # Leased (``lease_until`` and an owner): only a chain head, as ``enqueue`` leases one.
        leasing = lease_until is not None and tx.owner is not None
        inserted = tx.fetchall(
            _PG_INSERT_MANY,
            (
                *(module, key, method, body, created, created, deadline),
                tx.owner if leasing else None,
                lease_until if leasing else None,
                [m.receiver_platform_id for m, _ in fresh],
                [m.url for m, _ in fresh],
                [m.request_id for m, _ in fresh],
                [json.dumps(m.headers) for m, _ in fresh],
                [1 if head and leasing else 0 for _, head in fresh],  # (booleans go as integers here)
            ),
        )
        # Shared, only the rows leased to this process may be handed over to its scheduler.
        _note_ids([r for r in inserted if r["leased"]], ids)
    return [bool(r["pending"]) for r in rows]


def _note_ids(rows: Sequence[Row], ids: dict[str, int] | None) -> None:
    if ids is not None:
        ids.update((r["request_id"], int(r["id"])) for r in rows)


def enqueue_many(
    tx: SyncTx,
    messages: Sequence[NewMessage],
    *,
    coalesce: bool = False,
    ids: dict[str, int] | None = None,
    lease_until: str | None = None,
) -> list[bool]:
    """``enqueue`` for each message; return each one's ``blocked``, in order.

    ``ids``: filled with request id -> row id of each chain head inserted that the caller's
    scheduler may be handed (a coalesced message is not inserted): alone, every one; on a shared
    database, those leased to this process (``lease_until``).
    ``lease_until`` (shared database): each chain head inserted is leased to this process until
    then, like the fast path's (another process takes it over only once the lease runs out).
    """
    if any(m.lease_until for m in messages):
        each = [enqueue(tx, m, coalesce=coalesce) for m in messages]
        if ids is not None:  # heads only (a coalesced message's id is the pending row's: blocked)
            ids.update((m.request_id, row_id) for m, (row_id, behind) in zip(messages, each, strict=True) if not behind)
        return [behind for _, behind in each]
    blocked: list[bool] = [False] * len(messages)
    groups: dict[tuple[object, ...], list[int]] = {}
    # A broadcast: one group, or one per OCPI version of its body. Ids follow the legs within a
    # group; across groups they need not: a chain is one receiver's, whose legs share one body.
    for i, m in enumerate(messages):
        key = (m.module, m.object_key, m.method, m.body, m.created_at, m.deadline_at)
        groups.setdefault(key, []).append(i)
    for (module, object_key, method, body, created, deadline), members in groups.items():
        legs = [messages[i] for i in members]
        shared = {"module": module, "key": object_key, "method": method, "body": body}
        if tx.dialect.name != "sqlite":
            lock_object(tx, str(module), str(object_key))  # ids follow commit order per chain (enqueue)
            found_pg = _group_pg(tx, shared, str(created), str(deadline), legs, coalesce, ids, lease_until)
            for i, behind in zip(members, found_pg, strict=True):
                blocked[i] = behind
            continue
        pairs = json.dumps([[m.receiver_platform_id, m.url] for m in legs])
        row = tx.fetchone(_NEWEST_PENDING, {**shared, "legs": pairs})
        found = sorted(json.loads(row["found"])) if row is not None else []
        fresh, heads = [], set()
        for i, m, (_, pending, same) in zip(members, legs, found, strict=True):
            blocked[i] = bool(pending)
            if not (coalesce and same):  # coalesced: the newest pending one of its chain says the same
                fresh.append([m.receiver_platform_id, m.url, m.request_id, json.dumps(m.headers)])
                if not pending:
                    heads.add(m.request_id)
        if fresh:
            params = {**shared, "created": created, "deadline": deadline, "legs": json.dumps(fresh)}
            _note_ids([r for r in tx.fetchall(_INSERT_MANY, params) if r["request_id"] in heads], ids)
    return blocked


async def get(store: Store | Transaction, message_id: int) -> Message | None:
    """One message by id."""
    row = await store.fetchone("SELECT * FROM outbox WHERE id=?", (message_id,))
    return message_from_row(row) if row else None


async def queue_stats(store: Store, platform_id: int | None = None) -> dict[int, QueueStats]:
    """Depth, oldest pending, dead letters and retries per receiver (or of one), in one query."""
    one, params = ("", ()) if platform_id is None else (" WHERE receiver_platform_id=?", (platform_id,))
    rows = await store.fetchall(
        "SELECT receiver_platform_id,"
        " sum(CASE WHEN state='pending' THEN 1 ELSE 0 END) AS depth,"
        " min(CASE WHEN state='pending' THEN created_at END) AS oldest,"
        " sum(CASE WHEN state='dead' THEN 1 ELSE 0 END) AS dead,"
        " sum(CASE WHEN state='pending' AND attempts>0 THEN attempts ELSE 0 END) AS retries"
        f" FROM outbox{one} GROUP BY receiver_platform_id",
        params,
    )
    return {
        int(r["receiver_platform_id"]): QueueStats(
            depth=int(r["depth"] or 0),
            oldest_created_at=r["oldest"],
            dead=int(r["dead"] or 0),
            retries=int(r["retries"] or 0),
        )
        for r in rows
    }
