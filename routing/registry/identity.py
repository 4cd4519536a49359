"""Who a platform speaks for: the one identity rule behind every owner and viewer check (issue 20).

A (country_code, party_id) pair belongs to one platform only, whatever the role
(docs/DESIGN-NOTES.md, Identity and tokens): registration refuses a pair another platform holds,
role HUB and the hub's own pair (``refuse_reserved``; the held pairs are checked in the same
transaction that stores a registration, storage/platforms.py). Every check of "may this
platform act as, or read for, this party" then asks ``serves``, over the platform's *active*
parties: not those that left it (kept only as SUSPENDED ClientInfo), and not a pair a database
from before the rule holds on two platforms (``contested``): such a pair is served by neither
until the operator removes one of the platforms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from routing.messages import PartyRef
from routing.protocol.errors import PartyConflict
from routing.protocol.vocab import Role
from storage import platforms as platform_sql
from storage.db import Store
from storage.errors import Conflict, PartyHeld
from storage.models import Party, Platform


def active(party: Party) -> bool:
    """Whether the platform may act for this party now (it has not left, and no other platform holds it)."""
    return party.left_at is None and not party.contested


def live_parties(platform: Platform, roles: Iterable[str] | None = None) -> list[Party]:
    """The platform's active parties, optionally only those in ``roles``."""
    if roles is None:
        return [p for p in platform.parties if p.left_at is None and not p.contested]
    wanted = roles if isinstance(roles, frozenset | set | tuple) else frozenset(roles)
    return [p for p in platform.parties if p.left_at is None and not p.contested and p.role in wanted]


def serves(platform: Platform, party: PartyRef, roles: Iterable[str] | None = None) -> bool:
    """Whether ``party`` is an active party of ``platform`` (in one of ``roles``, when given)."""
    key = party.key
    return any(p.key == key for p in live_parties(platform, roles))


def refs(parties: Iterable[Party]) -> list[PartyRef]:
    """The parties as routing references, in their registered spelling, each pair once."""
    seen: set[tuple[str, str]] = set()
    out: list[PartyRef] = []
    for p in parties:
        if p.key not in seen:
            seen.add(p.key)
            out.append(PartyRef(p.country_code, p.party_id))
    return out


def refuse_reserved(parties: Iterable[tuple[str, str, str]], hub: PartyRef) -> None:
    """PartyConflict (2001) for role HUB or the hub's own pair among (country_code, party_id, role) claims."""
    for country_code, party_id, role in parties:
        claimed = PartyRef(country_code, party_id)
        if role.upper() == Role.HUB:
            raise PartyConflict(
                f"role HUB is not accepted for {claimed}: this hub is the network's hub; register the CPO, "
                "eMSP or other roles you serve (credentials, CredentialsRole)"
            )
        if claimed.same(hub):
            raise PartyConflict(f"party {claimed} is the hub's own party; it cannot be registered by a partner")


def held_message(pairs: Iterable[tuple[str, str]]) -> str:
    """The refusal for pairs another platform holds (one wording for POST, PUT and connect)."""
    names = ", ".join(f"{country_code}*{party_id}" for country_code, party_id in pairs)
    return (
        f"party {names} is already served by another platform on this hub; a country_code and party_id "
        "belong to one platform, whatever the role"
    )


def contested(platforms: Iterable[Platform]) -> dict[tuple[str, str], list[int]]:
    """Pairs held (not left) by more than one registered platform, with those platforms' ids."""
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for platform in platforms:
        if not platform.registered:
            continue
        for party in platform.parties:
            if party.left_at is None:
                holders[party.key].add(platform.id)
    return {key: sorted(ids) for key, ids in holders.items() if len(ids) > 1}


async def check_claims(store: Store, hub: PartyRef, platform_id: int, claims: Sequence[tuple[str, str, str]]) -> None:
    """PartyConflict (2001) for (country_code, party_id, role) claims the platform may not register.

    A cheap early answer, before the partner's API is read; the held pairs are checked again in
    the transaction that stores the registration (storage/platforms.py, save_registration),
    which is what makes the rule hold against two registrations at once.
    """
    refuse_reserved(claims, hub)
    held = await platform_sql.held_elsewhere(
        store, platform_id, [(country_code, party_id) for country_code, party_id, _ in claims]
    )
    if held:
        raise PartyConflict(held_message(held))


def conflict_error(exc: Conflict) -> PartyConflict:
    """The OCPI answer (2001; admin API 409) for a registration storage refused."""
    return PartyConflict(held_message(exc.pairs) if isinstance(exc, PartyHeld) else str(exc))
