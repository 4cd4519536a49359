"""HubClientInfo (mod_hub_client_info): the hub is its SENDER.

Every party's ClientInfo is served as a paginated list, and each status change is PUT to every
other connected platform's hubclientinfo RECEIVER. It is a configuration module: never routing
headers on these requests (transport_and_format, Message Routing).

With roaming agreements required (routing/agreements/book.py) a platform hears only of its own parties
and of those one of its parties has an agreement in force with: the list leaves the others out,
an agreement coming into force pushes each side's ClientInfo to the other, and one ending pushes
PLANNED (mod_hub_client_info: "may also be used when a Hub has some configuration indicating
which parties have contracts with each other"; a ClientInfo cannot be deleted).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from routing.agreements.book import AgreementBook
from routing.agreements.changes import changes_of
from routing.clock import Clock, iso, parse_iso
from routing.delivery.intake import Delivery
from routing.leased import LeasedRowsLoop
from routing.messages import Leg
from routing.peers.forward import new_request_id
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.registry.directory import ROUTABLE, Directory
from routing.registry.identity import active
from storage import clientinfo_due as due_sql
from storage import platforms as platform_sql
from storage.clientinfo_due import ANNOUNCE, BACKFILL, Due, LostClientInfo
from storage.db import Job, SyncTx
from storage.errors import RecordNotFound
from storage.models import Party, Platform

LOGGER = logging.getLogger(__name__)


def client_info(party: Party, status: str) -> dict[str, Any]:
    """One ClientInfo object; a party that left its platform (or is contested) is SUSPENDED (never deleted)."""
    return {
        "party_id": party.party_id,
        "country_code": party.country_code,
        "role": party.role,
        # UNREGISTERED is the hub's own state; ConnectionStatus has no such value (mod_hub_client_info).
        "status": "SUSPENDED" if not active(party) or status == "UNREGISTERED" else status,
        "last_updated": party.last_updated,
    }


# What a party without an agreement (any more) is to the others (see the module docstring).
NO_AGREEMENT = "PLANNED"
# ClientInfo PUTs built and committed at once by a push (routing/registry/clientinfo.py, ClientInfoPusher.push).
BATCH = 500
CLIENTINFO_CHANNEL = "ocpi_hub_clientinfo"  # NOTIFY: a fan-out row was pushed (the one behind it may go now)
CLAIM = 16  # fan-out rows read per round (alone; shared: the oldest one)


class ClientInfoList:
    """The HubClientInfo list (mod_hub_client_info, Sender interface), oldest change first.

    Built once per directory generation, not per request: at 10,000 platforms building and
    sorting every party's ClientInfo cost ~5.7 ms of the event loop for each page, however
    small, so one partner paging at its rate limit could hold the whole hub. A page is now a
    slice, the date filters two bisections (the order is by ``last_updated`` first), and with
    agreements required a viewer's list is built from its own agreements (``seen_by``).
    """

    def __init__(self, directory: Directory, agreements: AgreementBook) -> None:
        self.directory = directory
        self.agreements = agreements
        self._generation = -1
        self._items: list[dict[str, Any]] = []
        self._dates: list[str] = []
        self._by_side: dict[tuple[str, str, str], list[int]] = {}  # (cc, pid, role) -> positions
        self._by_platform: dict[int, list[int]] = {}

    def _build(self) -> None:
        entries = sorted(
            (
                (client_info(party, platform.status), platform.id)
                for platform in self.directory.platforms()
                for party in platform.parties
            ),
            key=lambda e: (e[0]["last_updated"] or "", e[0]["country_code"], e[0]["party_id"], e[0]["role"]),
        )
        self._items = [item for item, _ in entries]
        self._dates = [item["last_updated"] or "" for item in self._items]
        self._by_side, self._by_platform = {}, {}
        for n, (item, platform_id) in enumerate(entries):
            side = (item["country_code"].upper(), item["party_id"].upper(), item["role"])
            self._by_side.setdefault(side, []).append(n)
            self._by_platform.setdefault(platform_id, []).append(n)

    def visible(
        self, viewer: Platform | None, date_from: str | None = None, date_to: str | None = None
    ) -> list[dict[str, Any]]:
        """The ClientInfo objects ``viewer`` may hear of, ``date_from`` inclusive, ``date_to`` exclusive.

        The objects are shared between requests: a caller copies what it changes.
        """
        if self._generation != self.directory.generation:
            self._build()
            self._generation = self.directory.generation
        if self.agreements.required:
            if viewer is None:
                return []
            seen = set(self._by_platform.get(viewer.id, ()))
            for side in self.agreements.seen_by(viewer):
                seen.update(self._by_side.get(side, ()))
            return [
                item
                for item in (self._items[n] for n in sorted(seen))
                if (date_from is None or (item["last_updated"] or "") >= date_from)
                and (date_to is None or (item["last_updated"] or "") < date_to)
            ]
        start = 0 if date_from is None else bisect.bisect_left(self._dates, date_from)
        end = len(self._items) if date_to is None else bisect.bisect_left(self._dates, date_to)
        return self._items[start:end]


class ClientInfoPusher(LeasedRowsLoop):
    """Registry listener: PUTs ClientInfo changes to every other connected platform (push model).

    A platform that has just registered also receives the ClientInfo of every party already
    known, so it does not have to GET the list to learn who is there (mod_hub_client_info).

    Durable (the hub's rule: nothing accepted is lost on a crash): the registry (and the
    agreement book, for an agreement's change or window crossing) commits each change's fan-out
    as a ``clientinfo_due`` row in the change's own transaction (storage/clientinfo_due.py) and
    answers; this task then commits the PUTs ``BATCH`` at a time, each chunk with the row's
    progress, and deletes the row with the last chunk. Rows go oldest first, one at a time (a
    partner never sees an older status overtake a newer one); those a crash left are pushed by
    the first round after start. Several processes (PostgreSQL): a row is leased to the process
    that committed it; another takes it over once that lease runs out.
    """

    TASK_NAME = "clientinfo-pusher"
    CHANNEL = CLIENTINFO_CHANNEL
    DONE = "pushed"
    WHAT = "ClientInfo push"

    def __init__(self, directory: Directory, delivery: Delivery, clock: Clock, agreements: AgreementBook) -> None:
        self.directory = directory
        self.delivery = delivery
        self.store = delivery.store
        self.clock = clock
        self.agreements = agreements
        self.lease_seconds = delivery.lease_seconds
        self._init_loop()
        # Shared: the row behind one another process pushed may be ours (rows go one at a time).
        # Subscribed here, before the app's own subscriptions: a LISTEN added once the listening
        # connection is up was seen not to take effect (tests/test_clientinfo_due.py, behind).
        self.store.subscribe(CLIENTINFO_CHANNEL, lambda _: self.wake())

    def _leg(self, receiver: Platform, party: Party, status: str) -> Leg | None:
        base = receiver.endpoint(ModuleID.HUB_CLIENT_INFO, InterfaceRole.RECEIVER)
        if base is None:
            return None
        body = client_info(party, status)
        if body["last_updated"] is None:
            body["last_updated"] = iso(self.clock.now())
        return Leg(
            method="PUT",
            url=f"{base.rstrip('/')}/{quote(party.country_code)}/{quote(party.party_id)}",
            platform=receiver,
            routing=None,
            correlation_id=new_request_id(),
            body=json.dumps(body).encode(),
            module=ModuleID.HUB_CLIENT_INFO,
            object_key=f"{party.country_code}/{party.party_id}/{party.role}".upper(),
        )

    async def __call__(self, changed: Platform, status: str, registered: bool = False) -> None:
        """Registry listener: the change's fan-out row is committed already; push it now.

        With 10,000 platforms a registration means 20,000 PUTs (to everyone, and everyone's to
        the newcomer): built and committed before the credentials answer, they held it for
        seconds (issue 22, bench scenario 12), so they follow the answer, from the row.
        """
        self.wake()

    # ---- the loop's work (routing/leased.py runs it) -----------------------------------------

    async def _claim(self, now: str, lease_until: str) -> list[Due]:
        return await due_sql.claim(self.store, now=now, lease_until=lease_until, limit=CLAIM)

    async def _work(self, row: Due) -> None:
        if row.agreements is not None:
            await self.push_agreements(row)
        else:
            await self.push(row)

    def _release(self) -> Job:
        return due_sql.release

    # ---- one fan-out -------------------------------------------------------------------------

    async def push(self, due: Due) -> None:
        """One PUT per (party of the changed platform, receiving platform); backfill a new one.

        Built and committed in chunks of about ``BATCH`` PUTs, each with the row's progress, with
        the event loop free in between: at 10,000 platforms one piece held every other request
        for a third of a second. Receivers go in platform id order, so a chunk's progress is the
        last platform it covered; chunks keep the order per receiver.
        """
        # One snapshot for the whole push, taken before the later rows are read: a platform in it
        # that registered after this change has its row among them.
        platforms = sorted(self.directory.platforms(), key=lambda p: p.id)
        # A platform that registered after this change is left out both ways, as it would have been
        # had this push run at once: its own row tells it about everyone and everyone about it.
        later = await due_sql.registered_after(self.store, due.id)
        try:
            changed: Platform | None = await platform_sql.get_platform(self.store, due.platform_id)
        except RecordNotFound:  # gone since (a failed hub-initiated connection): nobody to tell about
            changed = None
        accepted = parse_iso(due.created_at)
        done = due.progress
        legs: list[Leg] = []
        scanned = 0
        total = 0
        for through, more in self._steps(due, changed, [p for p in platforms if p.id not in later]):
            legs.extend(more)
            scanned += 1
            if len(legs) < BATCH and scanned < BATCH:
                continue
            if legs:  # a stretch without PUTs needs no commit: it is scanned again after a crash
                if not await self._commit(due, legs, accepted, done, through, last=False):
                    return
                total += len(legs)
                done = through
                legs = []
            scanned = 0
            await asyncio.sleep(0)  # the rest of the push waits its turn behind waiting requests
        if not await self._commit(due, legs, accepted, done, done, last=True):
            return
        total += len(legs)
        if total:
            LOGGER.info("pushed ClientInfo %s of platform %s: %d PUTs", due.status, due.platform_id, total)

    def _steps(
        self, due: Due, changed: Platform | None, platforms: list[Platform]
    ) -> Iterator[tuple[tuple[int, int], list[Leg]]]:
        """Per platform (id order) past the row's progress: (phase, platform id) and the PUTs it owes."""
        if changed is None:
            return
        sees = self.agreements.sees
        for receiver in platforms:
            if (ANNOUNCE, receiver.id) <= due.progress:
                continue
            if receiver.id == changed.id or receiver.status not in ROUTABLE or not receiver.registered:
                yield (ANNOUNCE, receiver.id), []
                continue
            yield (
                (ANNOUNCE, receiver.id),
                [
                    leg
                    for party in changed.parties
                    if sees(receiver, party) and (leg := self._leg(receiver, party, due.status))
                ],
            )
        if not (due.registered and changed.registered):
            return
        for other in platforms:
            if (BACKFILL, other.id) <= due.progress:
                continue
            if other.id == changed.id:
                yield (BACKFILL, other.id), []
                continue
            yield (
                (BACKFILL, other.id),
                [
                    leg
                    for party in other.parties
                    if sees(changed, party) and (leg := self._leg(changed, party, other.status))
                ],
            )

    async def _commit(
        self,
        due: Due,
        legs: list[Leg],
        accepted: datetime,
        done: tuple[int, int],
        through: tuple[int, int],
        *,
        last: bool,
    ) -> bool:
        """Commit one chunk with the row's progress (the last one deletes the row); False if the row was lost."""
        ready = await self.delivery.translate(legs, broad=True)
        then = _progress(due.id, done, through, last=last, lease_until=self.lease_until())
        try:
            await self.delivery.enqueue_as_of(ready, accepted, then=then, background=True)
        except LostClientInfo as exc:  # another process took it over (this one stalled): its now
            LOGGER.warning("ClientInfo fan-out %s left to another process: %s", due.id, exc)
            return False
        return True

    async def push_agreements(self, due: Due) -> None:
        """An agreement change's row: each side of a pair now in force hears of the other; PLANNED when one ended.

        Whether a party is seen is decided now, on the book as it is (re-read first: the row may
        be another process's, or claimed before this process's own reload): an ended pair is
        announced only where the other side is no longer seen at all (another agreement in force
        may still relate them), a started one only where it is seen (not ended again meanwhile;
        that later change has its own row). Chunks of about ``BATCH`` PUTs, each with the number
        of changes done, as ``push``'s.
        """
        await self.agreements.reload()
        changes = changes_of(due.agreements or "[]")
        accepted = parse_iso(due.created_at)
        done = due.progress
        legs: list[Leg] = []
        total = 0
        for index, change in enumerate(changes, start=1):
            if (ANNOUNCE, index) <= due.progress:
                continue
            for about, to in (change.sides, change.sides[::-1]):
                legs.extend(self._about(about, to, ending=not change.in_force))
            if len(legs) >= BATCH:
                if not await self._commit(due, legs, accepted, done, (ANNOUNCE, index), last=False):
                    return
                total += len(legs)
                done = (ANNOUNCE, index)
                legs = []
                await asyncio.sleep(0)
        if not await self._commit(due, legs, accepted, done, done, last=True):
            return
        total += len(legs)
        if total:
            started = sum(1 for c in changes if c.in_force)
            LOGGER.info(
                "ClientInfo: %d agreement(s) started, %d ended: %d PUTs", started, len(changes) - started, total
            )

    def _about(self, about: tuple[str, str, str], to: tuple[str, str, str], *, ending: bool) -> list[Leg]:
        """PUTs of the ClientInfo of party ``about`` to the platform serving party ``to``."""
        legs: list[Leg] = []
        for receiving in self.directory.parties(to[:2], [to[2]]):
            receiver = self.directory.platform(receiving.platform_id)
            if receiver is None or receiver.status not in ROUTABLE or not receiver.registered:
                continue
            for party in self.directory.parties(about[:2], [about[2]], include_left=True):
                owner = self.directory.platform(party.platform_id)
                if owner is None or owner.id == receiver.id or self.agreements.sees(receiver, party) == ending:
                    continue
                leg = self._leg(receiver, party, NO_AGREEMENT if ending else owner.status)
                if leg is not None:
                    legs.append(leg)
        return legs


def _progress(
    due_id: int, done_from: tuple[int, int], through: tuple[int, int], *, last: bool, lease_until: str
) -> Callable[[SyncTx], None]:
    def job(tx: SyncTx) -> None:
        if last:
            due_sql.finish(tx, due_id, done_from=done_from)
        else:
            due_sql.advance(tx, due_id, done_from=done_from, done_through=through, lease_until=lease_until)

    return job
