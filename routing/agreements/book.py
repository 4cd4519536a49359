"""Roaming agreements: who may exchange which modules with whom (issue 23; docs/DESIGN-NOTES.md, Roaming agreements).

With ``agreements = "open"`` (the default) every check here says yes. With ``"required"`` two
parties exchange a module only while an agreement between them is *in force*: state active,
``valid_from <= now < valid_to`` on the hub's clock, the module covered, and each side's
(country_code, party_id) in a role that takes part in the module the way the message goes (an
agreement between a CPO and an eMSP does not let that eMSP's pair, registered as a CPO too,
send CPO data).

The check is on the hot path, so the book lives in memory, indexed by party, and is reloaded
after every change: by this process at once, by the others on the cache NOTIFY (payload
``agreements``). It is made when a message is accepted, never when a queued one is delivered:
what was accepted under an agreement is delivered even if the agreement ends meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from routing.clock import Clock, iso, parse_iso
from routing.decide import ModuleSpec
from routing.jobs.cluster import CACHE_CHANNEL
from routing.messages import PartyRef
from routing.protocol.errors import AgreementConflict, NoAgreement, NotFound
from routing.protocol.vocab import other_interface
from routing.registry.identity import live_parties
from storage import agreements as agreement_sql
from storage import clientinfo_due as due_sql
from storage.agreements import ALL_MODULES, AgreementRow, AgreementValues, Side
from storage.db import Store, SyncTx
from storage.errors import Conflict, RecordNotFound
from storage.models import Party, Platform

LOGGER = logging.getLogger(__name__)

NOTIFY_PAYLOAD = "agreements"
CHECK_INTERVAL = 60.0  # seconds between looks for agreements whose validity window opened or closed
WATCHER = "agreement-windows"  # the cluster-wide lease of the process that announces them


@dataclass(frozen=True)
class Agreement:
    """One agreement as routing reads it (times parsed, modules a set; None = every module)."""

    row: AgreementRow
    modules: frozenset[str] | None
    valid_from: datetime | None
    valid_to: datetime | None

    @classmethod
    def of(cls, row: AgreementRow) -> Agreement:
        """Parse a stored row once, at reload."""
        modules = None if row.modules == ALL_MODULES else frozenset(row.modules.split(","))
        return cls(
            row,
            modules,
            parse_iso(row.valid_from) if row.valid_from else None,
            parse_iso(row.valid_to) if row.valid_to else None,
        )

    @property
    def id(self) -> int:
        """The row id."""
        return self.row.id

    @property
    def sides(self) -> tuple[Side, Side]:
        """Both parties, (country_code, party_id, role), upper case."""
        return self.row.a, self.row.b

    def in_force(self, now: datetime) -> bool:
        """Active and inside its validity window (valid_to exclusive)."""
        return _in_window(self.row.state, self.valid_from, self.valid_to, now)

    def covers(self, module: str) -> bool:
        """Whether the agreement includes this module."""
        return self.modules is None or module in self.modules

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The admin API's view of the agreement."""
        r = self.row
        return {
            "id": r.id,
            "parties": [{"country_code": s[0], "party_id": s[1], "role": s[2]} for s in (r.a, r.b)],
            "modules": ALL_MODULES if self.modules is None else sorted(self.modules),
            "state": r.state,
            "valid_from": r.valid_from,
            "valid_to": r.valid_to,
            "reference": r.reference,
            "in_force": self.in_force(now),
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }


def _pair(x: tuple[str, str], y: tuple[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    return (x, y) if x <= y else (y, x)


def _matches(side: Side, key: tuple[str, str], roles: Iterable[str] | None) -> bool:
    return side[:2] == key and (roles is None or side[2] in roles)


# Woken once a change committed a HubClientInfo fan-out row (the pusher, routing/registry/clientinfo.py).
ChangeListener = Callable[[], None]


class Agreements:
    """The agreement book in memory, the routing checks on it, and the operator's changes to it."""

    def __init__(self, store: Store, clock: Clock, *, required: bool, lease_seconds: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.required = required
        self.lease_seconds = lease_seconds  # a fan-out row is this process's for as long (shared database)
        self.listeners: list[ChangeListener] = []
        self._all: dict[int, Agreement] = {}
        self._by_party: dict[tuple[str, str], list[Agreement]] = defaultdict(list)
        # By the two parties' keys in sorted order: a check looks at that pair's agreement(s) only,
        # so a broadcast to N parties costs N lookups whatever the number of agreements.
        self._by_pair: dict[tuple[tuple[str, str], tuple[str, str]], list[Agreement]] = defaultdict(list)

    # ---- the book --------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read every agreement (at start, after a change here, on another process's NOTIFY)."""
        rows = await agreement_sql.list_agreements(self.store)
        loaded = {r.id: Agreement.of(r) for r in rows}
        by_party: dict[tuple[str, str], list[Agreement]] = defaultdict(list)
        by_pair: dict[tuple[tuple[str, str], tuple[str, str]], list[Agreement]] = defaultdict(list)
        for ag in loaded.values():
            a, b = ag.sides
            by_party[a[:2]].append(ag)
            by_party[b[:2]].append(ag)
            by_pair[_pair(a[:2], b[:2])].append(ag)
        self._all, self._by_party, self._by_pair = loaded, by_party, by_pair

    def all(self) -> list[Agreement]:
        """Every agreement, oldest first."""
        return sorted(self._all.values(), key=lambda a: a.id)

    def select(
        self, *, platform: Platform | None = None, party: str | None = None, state: str | None = None
    ) -> list[Agreement]:
        """Agreements of a platform's parties, of one party ('CC*PID'), in one state; oldest first."""
        found = self.all()
        if platform is not None:
            keys = {p.key for p in live_parties(platform)}
            found = [ag for ag in found if any(side[:2] in keys for side in ag.sides)]
        if party is not None:
            country_code, _, party_id = party.upper().partition("*")
            found = [ag for ag in found if any(side[:2] == (country_code, party_id) for side in ag.sides)]
        if state is not None:
            found = [ag for ag in found if ag.row.state == state]
        return found

    # ---- routing checks (hot path: memory only) ----------------------------------------------

    def allows(
        self,
        x: PartyRef,
        x_roles: Iterable[str] | None,
        y: PartyRef,
        y_roles: Iterable[str] | None,
        module: str,
    ) -> bool:
        """Whether party x (in one of ``x_roles``) and party y (in one of ``y_roles``) may exchange ``module``."""
        if not self.required:
            return True
        xk, yk = x.key, y.key
        now = self.clock.now()
        for ag in self._by_pair.get(_pair(xk, yk), ()):
            a, b = ag.sides
            if not (
                (_matches(a, xk, x_roles) and _matches(b, yk, y_roles))
                or (_matches(b, xk, x_roles) and _matches(a, yk, y_roles))
            ):
                continue
            if ag.covers(module) and ag.in_force(now):
                return True
        return False

    def allows_message(self, spec: ModuleSpec, interface: str, sender: PartyRef, receiver: PartyRef) -> bool:
        """Whether ``sender`` may send a message of this module to ``receiver``'s ``interface``.

        The receiver is in a role implementing ``interface``; the sender in a role using it (the other one).
        """
        if not self.required:
            return True
        sender_roles = spec.roles_for(other_interface(interface))
        return self.allows(sender, sender_roles, receiver, spec.roles_for(interface), spec.name)

    def require(self, spec: ModuleSpec, interface: str, sender: PartyRef, receiver: PartyRef) -> None:
        """NoAgreement (4001) unless ``sender`` may send this module's message to ``receiver`` on ``interface``."""
        if not self.allows_message(spec, interface, sender, receiver):
            raise NoAgreement(
                f"no roaming agreement in force between {sender} and {receiver} covering {spec.name}:"
                " this hub routes only between parties with one (ask the hub operator)"
            )

    def partners(
        self, viewers: Iterable[PartyRef], viewer_roles: Iterable[str], partner_role: str | None, module: str
    ) -> set[str]:
        """'CC/PID/' prefixes of the parties whose objects of ``module`` the viewers may read (storage keys).

        A viewer's own objects count too (a pair registered as CPO and eMSP reads its own locations).
        """
        now = self.clock.now()
        out: set[str] = set()
        wanted = frozenset(viewer_roles)
        for viewer in viewers:
            key = viewer.key
            out.add(f"{key[0]}/{key[1]}/")
            for ag in self._by_party.get(key, ()):
                if not (ag.covers(module) and ag.in_force(now)):
                    continue
                for mine, theirs in (ag.sides, ag.sides[::-1]):
                    if _matches(mine, key, wanted) and (partner_role is None or theirs[2] == partner_role):
                        out.add(f"{theirs[0]}/{theirs[1]}/")
        return out

    def sees(self, viewer: Platform, party: Party) -> bool:
        """HubClientInfo: whether ``viewer`` is told about ``party`` (its own, or an agreement in force, any module)."""
        if not self.required or party.platform_id == viewer.id:
            return True
        now = self.clock.now()
        mine = {(p.key, p.role) for p in live_parties(viewer)}
        for ag in self._by_party.get(party.key, ()):
            for theirs, other in (ag.sides, ag.sides[::-1]):
                if theirs == (*party.key, party.role) and (other[:2], other[2]) in mine and ag.in_force(now):
                    return True
        return False

    # ---- the operator's view -------------------------------------------------------------------

    def summary(self, platforms: Iterable[Platform]) -> tuple[dict[str, Any], list[str]]:
        """For /status: the mode and counts, and a notice per connected platform with no agreement in force."""
        now = self.clock.now()
        in_force = sum(1 for ag in self._all.values() if ag.in_force(now))
        figures = {"mode": "required" if self.required else "open", "total": len(self._all), "in_force": in_force}
        notices: list[str] = []
        if self.required:
            for platform in platforms:
                if platform.status != "CONNECTED" or not platform.registered:
                    continue
                keys = [p.key for p in live_parties(platform)]
                if not any(ag.in_force(now) for key in keys for ag in self._by_party.get(key, ())):
                    notices.append(
                        f"platform {platform.id} ({platform.name}): no roaming agreement in force; it exchanges nothing"
                    )
        return figures, notices

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

    def get(self, agreement_id: int) -> Agreement:
        """One agreement (404 when unknown)."""
        found = self._all.get(agreement_id)
        if found is None:
            raise NotFound(f"agreement {agreement_id} does not exist")
        return found

    async def fresh(self, agreement_id: int) -> Agreement:
        """One agreement read from the store (another process may have changed it)."""
        try:
            return Agreement.of(await agreement_sql.get_agreement(self.store, agreement_id))
        except RecordNotFound as exc:
            raise NotFound(f"agreement {agreement_id} does not exist") from exc

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

        def job(tx: SyncTx) -> bool:
            old = agreement_sql.read(tx, agreement_id)
            if old is None:
                raise RecordNotFound(f"agreement {agreement_id}")
            agreement_sql.update(tx, agreement_id, new, now=iso(at), announced=now_told)
            was_told = _told(old, at)
            moved = (old.a, old.b) != (new.a, new.b)  # other parties: the old pair ends, the new starts
            changes = []
            if was_told and (moved or not now_told):
                changes.append(Change((old.a, old.b), False))
            if now_told and (moved or not was_told):
                changes.append(Change((new.a, new.b), True))
            self._owe(tx, changes)
            return bool(changes)

        try:
            owed = await self.store.write(job)
        except RecordNotFound as exc:
            raise NotFound(f"agreement {agreement_id} does not exist") from exc
        except Conflict as exc:
            raise AgreementConflict(str(exc)) from exc
        LOGGER.info("agreement %s updated: %s", agreement_id, _text(values))
        await self._changed(owed)
        return self.get(agreement_id)

    async def delete(self, agreement_id: int) -> None:
        """Remove one agreement (404 when unknown); queued messages are still delivered."""
        at = self.clock.now()

        def job(tx: SyncTx) -> bool:
            old = agreement_sql.read(tx, agreement_id)
            if old is None:
                raise RecordNotFound(f"agreement {agreement_id}")
            agreement_sql.delete(tx, agreement_id)
            changes = [Change((old.a, old.b), False)] if _told(old, at) else []
            self._owe(tx, changes)
            return bool(changes)

        try:
            owed = await self.store.write(job)
        except RecordNotFound as exc:
            raise NotFound(f"agreement {agreement_id} does not exist") from exc
        LOGGER.info("agreement %s deleted", agreement_id)
        await self._changed(owed)


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


def in_force(v: AgreementValues, now: datetime) -> bool:
    """Whether agreement values are in force at ``now`` (Agreement.in_force before the row exists)."""
    valid_from = parse_iso(v.valid_from) if v.valid_from else None
    valid_to = parse_iso(v.valid_to) if v.valid_to else None
    return _in_window(v.state, valid_from, valid_to, now)


def _in_window(state: str, valid_from: datetime | None, valid_to: datetime | None, now: datetime) -> bool:
    """Active and ``valid_from <= now < valid_to`` (each bound optional): the one in-force rule."""
    return state == "active" and (valid_from is None or valid_from <= now) and (valid_to is None or now < valid_to)


def _told(row: AgreementRow, now: datetime) -> bool:
    """Whether partners were last told ``row`` is in force (unknown, before 0024: as it is now)."""
    return row.announced if row.announced is not None else Agreement.of(row).in_force(now)


def values_of(ag: Agreement) -> AgreementValues:
    """The stored values of an agreement (the base of a PATCH)."""
    r = ag.row
    return AgreementValues(r.a, r.b, r.modules, r.state, r.valid_from, r.valid_to, r.reference)


def _text(v: AgreementValues) -> str:
    return f"{v.a[0]}*{v.a[1]} {v.a[2]} <-> {v.b[0]}*{v.b[1]} {v.b[2]}, modules {v.modules}, {v.state}"
