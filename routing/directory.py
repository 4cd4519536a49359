"""An in-memory snapshot of the registry for routing lookups, reloaded after every change.

Routing a message must not cost registry queries: the directory answers "which platform
serves party X in role R, and where is its endpoint for module M" from memory.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from routing.identity import contested
from storage import platforms as platform_sql
from storage.db import Store
from storage.models import Party, Platform

LOGGER = logging.getLogger(__name__)

# Platforms that may receive messages (OFFLINE ones get queued deliveries, docs/DESIGN-NOTES.md, Delivery).
ROUTABLE = frozenset({"CONNECTED", "OFFLINE"})


class Directory:
    """Who serves which party, by case-folded (country_code, party_id)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._platforms: dict[int, Platform] = {}
        self._by_party: dict[tuple[str, str], list[Party]] = defaultdict(list)

    async def reload(self, *_: object) -> None:
        """Re-read every platform (called at start and after each registry change)."""
        platforms = _mark_contested(await platform_sql.list_platforms(self._store))
        by_party: dict[tuple[str, str], list[Party]] = defaultdict(list)
        for platform in platforms:
            for party in platform.parties:
                by_party[party.key].append(party)
        self._platforms = {p.id: p for p in platforms}
        self._by_party = by_party

    def platform(self, platform_id: int) -> Platform | None:
        """The platform with this id, if known."""
        return self._platforms.get(platform_id)

    def platforms(self) -> Iterable[Platform]:
        """Every known platform."""
        return self._platforms.values()

    def parties(
        self, key: tuple[str, str], roles: Iterable[str] | None = None, *, include_left: bool = False
    ) -> list[Party]:
        """Parties with this identity (optionally only these roles; those that left only if asked)."""
        found = [p for p in self._by_party.get((key[0].upper(), key[1].upper()), []) if include_left or not p.left_at]
        if roles is None:
            return found
        wanted = set(roles)
        return [p for p in found if p.role in wanted]


def _mark_contested(platforms: list[Platform]) -> list[Platform]:
    """Mark pairs held by several platforms (a database from before the one-platform rule): neither serves them."""
    found = contested(platforms)
    if not found:
        return platforms
    for (cc, pid), ids in sorted(found.items()):
        LOGGER.warning(
            "party %s*%s is held by platforms %s: it is served by none of them until the operator deletes"
            " the platform that must not have it (a country_code/party_id belongs to one platform)",
            cc,
            pid,
            ", ".join(str(i) for i in ids),
        )
    out: list[Platform] = []
    for platform in platforms:
        if platform.registered and any(p.left_at is None and p.key in found for p in platform.parties):
            parties = tuple(
                p.model_copy(update={"contested": True}) if p.left_at is None and p.key in found else p
                for p in platform.parties
            )
            platform = platform.model_copy(update={"parties": parties})
        out.append(platform)
    return out
