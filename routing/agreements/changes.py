"""Changes to the agreement book, each committed with the HubClientInfo it owes (issue 23).

The operator's changes (create, import, update, delete) and the validity windows that open or
close by themselves: each is written in one store job together with the ``clientinfo_due`` row
of the HubClientInfo pushes it owes (storage/clientinfo_due.py, pushed by
routing/registry/clientinfo.py), then the book is reloaded here and in the other processes.

Separate from routing/agreements/book.py, the book as routing reads it: that is the hot path and
only reads memory; this module writes the store and keeps the bookkeeping of what partners were
told (``Change``, the ``announced`` flag). Whether an agreement is in force is decided in book.py
only, for the stored agreements and the new values alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.agreements.book import NOTIFY_PAYLOAD, Agreement, AgreementBook, in_force
from routing.clock import Clock, iso
from routing.jobs.cluster import CACHE_CHANNEL
from routing.protocol.errors import AgreementConflict, NotFound
from storage import agreements as agreement_sql
from storage import clientinfo_due as due_sql
from storage.agreements import AgreementRow, AgreementValues, Side
from storage.db import Store, SyncTx
from storage.errors import Conflict, RecordNotFound

LOGGER = logging.getLogger(__name__)

CHECK_INTERVAL = 60.0  # seconds between looks for agreements whose validity window opened or closed
WATCHER = "agreement-windows"  # the cluster-wide lease of the process that announces them


# Woken once a change committed a HubClientInfo fan-out row (the pusher, routing/registry/clientinfo.py).
ChangeListener = Callable[[], None]


class Agreements(AgreementBook):
    """The agreement book with the operator's changes to it and its window crossings (HubClientInfo owed)."""

    def __init__(self, store: Store, clock: Clock, *, required: bool, lease_seconds: float = 30.0) -> None:
        super().__init__(store, clock, required=required)
        self.lease_seconds = lease_seconds  # a fan-out row is this process's for as long (shared database)
        self.listeners: list[ChangeListener] = []

    # ---- operator changes and window crossings: HubClientInfo owed ---------------------------

    def _owe(self, tx: SyncTx, changes: list[Change]) -> None:
        """Commit the HubClientInfo fan-out ``changes`` owe in the change's own job (routing/registry/clientinfo.py).

        A kill -9 after the commit cannot lose it: the pusher resumes the row at start. Open mode
        tells nothing (every party sees every other one anyway).
        """
        if not (changes and self.required):
            return
        lease = iso(self.clock.now() + timedelta(seconds=self.lease_seconds))
        due_sql.add_agreements(tx, changes_json(changes), created_at=self._now(), owner=tx.owner, lease_until=lease)

    async def _changed(self, owed: bool) -> None:
        """Reload, tell the other processes, and wake the pusher when a fan-out row was committed."""
        await self.reload()
        await self.store.notify(CACHE_CHANNEL, NOTIFY_PAYLOAD)
        if owed and self.required:
            for listener in self.listeners:
                listener()

    async def tick(self) -> None:
        """The periodic round (every CHECK_INTERVAL, in every process).

        With processes sharing the database, re-read the book first: a NOTIFY missed while the
        LISTEN connection was down leaves a process at most one round behind. Then the process
        leading ``agreement-windows`` announces the windows that opened or closed.
        """
        if self.store.shared:
            await self.reload()
        if await self.store.try_lead(WATCHER):
            await self.watch_windows()

    async def watch_windows(self) -> None:
        """Announce every agreement whose in-force state differs from what its partners were told.

        "The change" of a window opening or closing is the stored ``announced`` flag flipping:
        flipped in one job with the fan-out row it owes, and only from the value read (another
        process's flip wins), so a crash before that commit leaves the difference for the next
        look and one after it leaves the row to the pusher: each crossing is pushed once. A row
        from before migration 0024 (``announced`` unknown) is taken as told, silently.
        """
        now = self.clock.now()
        stale = sorted(ag.id for ag in self._all.values() if ag.row.announced != ag.in_force(now))
        if not stale:
            return

        def job(tx: SyncTx) -> list[Change]:
            changes: list[Change] = []
            for agreement_id in stale:
                row = agreement_sql.read(tx, agreement_id)
                if row is None:
                    continue
                in_force = Agreement.of(row).in_force(now)
                if row.announced == in_force or not agreement_sql.announce(
                    tx, agreement_id, told=row.announced, now_told=in_force
                ):
                    continue
                if row.announced is not None:
                    changes.append(Change((row.a, row.b), in_force))
            self._owe(tx, changes)
            return changes

        changes = await self.store.write(job)
        started = sum(1 for c in changes if c.in_force)
        if changes:
            LOGGER.info("agreement windows: %d came into force, %d ended", started, len(changes) - started)
        await self._changed(bool(changes))

    def _now(self) -> str:
        return iso(self.clock.now())

    async def create(self, values: AgreementValues) -> Agreement:
        """Add one agreement (409 when the two parties have one)."""
        return (await self.create_many([values], single=True))[0]

    async def create_many(self, rows: list[AgreementValues], *, single: bool = False) -> list[Agreement]:
        """Add every agreement of an import, or none (409 naming the first pair that has one)."""
        at = self.clock.now()
        now = iso(at)
        ordered = [v.ordered() for v in rows]
        told = [in_force(v, at) for v in ordered]

        def job(tx: SyncTx) -> list[int]:
            ids = agreement_sql.insert_many(tx, ordered, now=now, announced=told)
            self._owe(tx, [Change((v.a, v.b), True) for v, t in zip(ordered, told, strict=True) if t])
            return ids

        try:
            ids = await self.store.write(job)
        except Conflict as exc:
            raise AgreementConflict(str(exc) if single else f"{exc}; nothing was imported") from exc
        if single:
            LOGGER.info("agreement %s created: %s", ids[0], _text(rows[0]))
        else:
            LOGGER.info("%d agreements imported", len(ids))
        await self._changed(any(told))
        return [self.get(i) for i in ids]

    async def update(self, agreement_id: int, values: AgreementValues) -> Agreement:
        """Replace one agreement's fields (404 unknown, 409 when its new pair has another agreement)."""
        at = self.clock.now()
        new = values.ordered()
        now_told = in_force(new, at)

        def change(tx: SyncTx, old: AgreementRow) -> list[Change]:
            agreement_sql.update(tx, agreement_id, new, now=iso(at), announced=now_told)
            was_told = _told(old, at)
            moved = (old.a, old.b) != (new.a, new.b)  # other parties: the old pair ends, the new starts
            changes = []
            if was_told and (moved or not now_told):
                changes.append(Change((old.a, old.b), False))
            if now_told and (moved or not was_told):
                changes.append(Change((new.a, new.b), True))
            return changes

        owed = await self._change_stored(agreement_id, change)
        LOGGER.info("agreement %s updated: %s", agreement_id, _text(values))
        await self._changed(owed)
        return self.get(agreement_id)

    async def delete(self, agreement_id: int) -> None:
        """Remove one agreement (404 when unknown); queued messages are still delivered."""
        at = self.clock.now()

        def change(tx: SyncTx, old: AgreementRow) -> list[Change]:
            agreement_sql.delete(tx, agreement_id)
            return [Change((old.a, old.b), False)] if _told(old, at) else []

        owed = await self._change_stored(agreement_id, change)
        LOGGER.info("agreement %s deleted", agreement_id)
        await self._changed(owed)

    async def _change_stored(self, agreement_id: int, change: Callable[[SyncTx, AgreementRow], list[Change]]) -> bool:
        """Apply ``change`` to the stored agreement (read locked in the same job); whether it owes ClientInfo.

        The HubClientInfo it owes is committed with it. 404 when the agreement is gone, 409 when
        its new pair has another agreement.
        """

        def job(tx: SyncTx) -> bool:
            old = agreement_sql.read(tx, agreement_id)
            if old is None:
                raise RecordNotFound(f"agreement {agreement_id}")
            changes = change(tx, old)
            self._owe(tx, changes)
            return bool(changes)

        try:
            return await self.store.write(job)
        except RecordNotFound as exc:
            raise NotFound(f"agreement {agreement_id} does not exist") from exc
        except Conflict as exc:
            raise AgreementConflict(str(exc)) from exc


@dataclass(frozen=True)
class Change:
    """What partners are owed about one pair of sides: it came into force (True) or stopped being (False)."""

    sides: tuple[Side, Side]
    in_force: bool


def changes_json(changes: list[Change]) -> str:
    """The fan-out row's ``agreements`` column (storage/clientinfo_due.py)."""
    return json.dumps([{"sides": [list(s) for s in c.sides], "in_force": c.in_force} for c in changes])


def changes_of(text: str) -> list[Change]:
    """The changes of a fan-out row (``changes_json`` read back)."""
    out = []
    for item in json.loads(text):
        a, b = (tuple(str(x) for x in side) for side in item["sides"])
        out.append(Change(((a[0], a[1], a[2]), (b[0], b[1], b[2])), bool(item["in_force"])))
    return out


def _told(row: AgreementRow, now: datetime) -> bool:
    """Whether partners were last told ``row`` is in force (unknown, before 0024: as it is now)."""
    return row.announced if row.announced is not None else Agreement.of(row).in_force(now)


def _text(v: AgreementValues) -> str:
    return f"{v.a[0]}*{v.a[1]} {v.a[2]} <-> {v.b[0]}*{v.b[1]} {v.b[2]}, modules {v.modules}, {v.state}"
