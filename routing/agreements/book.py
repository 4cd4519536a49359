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

This module holds the book as routing reads it: the checks, the operator's view, and the one
in-force rule (``_in_window``). The changes to it, and the HubClientInfo each change and each
validity-window crossing owes, are in routing/agreements/changes.py: they write the store and
the fan-out rows, which no check on the hot path needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from routing.clock import Clock, parse_iso
from routing.decide import ModuleSpec
from routing.messages import PartyRef
from routing.protocol.errors import NoAgreement, NotFound
from routing.protocol.vocab import other_interface
from routing.registry.identity import live_parties
from storage import agreements as agreement_sql
from storage.agreements import ALL_MODULES, AgreementRow, AgreementValues, Side
from storage.db import Store
from storage.errors import RecordNotFound
from storage.models import Party, Platform, PlatformBrief

NOTIFY_PAYLOAD = "agreements"


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


class AgreementBook:
    """The agreement book in memory and the routing checks on it."""

    def __init__(self, store: Store, clock: Clock, *, required: bool) -> None:
        self.store = store
        self.clock = clock
        self.required = required
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

    def seen_by(self, viewer: Platform) -> set[Side]:
        """HubClientInfo: the (country_code, party_id, role) of every other party ``viewer`` is told about.

        ``sees`` for all parties at once, from the viewer's own agreements in force: a page of
        the list costs the viewer's agreements, not a check of every party of the network.
        """
        now = self.clock.now()
        out: set[Side] = set()
        for mine in live_parties(viewer):
            own = (*mine.key, mine.role)
            for ag in self._by_party.get(mine.key, ()):
                for side, other in (ag.sides, ag.sides[::-1]):
                    if side == own and ag.in_force(now):
                        out.add(other)
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

    def summary(self, platforms: Iterable[PlatformBrief]) -> tuple[dict[str, Any], list[str]]:
        """For /status: the mode and counts, and a notice per connected platform with no agreement in force."""
        now = self.clock.now()
        in_force = sum(1 for ag in self._all.values() if ag.in_force(now))
        figures = {"mode": "required" if self.required else "open", "total": len(self._all), "in_force": in_force}
        notices: list[str] = []
        if self.required:
            for platform in platforms:
                if platform.status != "CONNECTED" or not platform.registered:
                    continue
                keys = platform.active_keys
                if not any(ag.in_force(now) for key in keys for ag in self._by_party.get(key, ())):
                    notices.append(
                        f"platform {platform.id} ({platform.name}): no roaming agreement in force; it exchanges nothing"
                    )
        return figures, notices

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


def in_force(v: AgreementValues, now: datetime) -> bool:
    """Whether agreement values are in force at ``now`` (Agreement.in_force before the row exists)."""
    valid_from = parse_iso(v.valid_from) if v.valid_from else None
    valid_to = parse_iso(v.valid_to) if v.valid_to else None
    return _in_window(v.state, valid_from, valid_to, now)


def _in_window(state: str, valid_from: datetime | None, valid_to: datetime | None, now: datetime) -> bool:
    """Active and ``valid_from <= now < valid_to`` (each bound optional): the one in-force rule."""
    return state == "active" and (valid_from is None or valid_from <= now) and (valid_to is None or now < valid_to)


def values_of(ag: Agreement) -> AgreementValues:
    """The stored values of an agreement (the base of a PATCH)."""
    r = ag.row
    return AgreementValues(r.a, r.b, r.modules, r.state, r.valid_from, r.valid_to, r.reference)
