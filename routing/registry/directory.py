"""An in-memory snapshot of the registry for routing lookups, kept current after every change.

Routing a message must not cost registry queries: the directory answers "which platform
serves party X in role R, and where is its endpoint for module M" from memory. A change of one
platform replaces only that platform (``changed``): re-reading 10,000 platforms with their
endpoints took seconds and sat in every registration's answer (issue 22, bench scenario 12).
Other processes on the database hear of the change by NOTIFY with the platform's id
(``change_note``) and re-read that one platform (``refresh``), not all of them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from routing.registry.identity import contested
from storage import platforms as platform_sql
from storage.db import Store
from storage.errors import RecordNotFound
from storage.models import Party, Platform

LOGGER = logging.getLogger(__name__)

# Platforms that may receive messages (OFFLINE ones get queued deliveries, docs/DESIGN-NOTES.md, Delivery).
ROUTABLE = frozenset({"CONNECTED", "OFFLINE"})
CHANGE_LOG = 256  # single-platform changes a cache can catch up on; older ones mean a full rebuild
CHANGE_NOTE = "registry"  # NOTIFY payload of a registry change; ":<platform id>" when it is one platform's


def change_note(platform_id: int) -> str:
    """The NOTIFY payload telling other processes which platform changed."""
    return f"{CHANGE_NOTE}:{platform_id}"


def noted_platform(payload: str) -> int | None:
    """The platform id a ``change_note`` names; None for a bare note (older hubs: re-read everything)."""
    _, sep, rest = payload.partition(":")
    return int(rest) if sep and rest.isascii() and rest.isdigit() else None


class Directory:
    """Who serves which party, by case-folded (country_code, party_id)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._platforms: dict[int, Platform] = {}
        self._by_party: dict[tuple[str, str], list[Party]] = defaultdict(list)
        self.generation = 0  # bumped on every change: caches built from the directory compare it
        self.reloaded_at = 0  # the generation of the last full reload
        # (generation, platform id) of the last single-platform changes since that reload: caches
        # catch up on these instead of re-reading 10,000 platforms (hub/observe/traffic/recorder.py).
        self.change_log: list[tuple[int, int]] = []

    async def reload(self, *_: object) -> None:
        """Re-read every platform (called at start and after each registry change)."""
        platforms = _mark_contested(await platform_sql.list_platforms(self._store))
        by_party: dict[tuple[str, str], list[Party]] = defaultdict(list)
        for platform in platforms:
            for party in platform.parties:
                by_party[party.key].append(party)
        self._platforms = {p.id: p for p in platforms}
        self._by_party = by_party
        self.generation += 1
        self.reloaded_at = self.generation
        self.change_log = []

    async def changed(self, platform: Platform, *_: object) -> None:
        """Registry listener: put this one platform's fresh copy in place of the old one.

        The maps are replaced, not mutated, so a loop over ``platforms()`` that awaits keeps its
        snapshot (as with a reload). A pair held by several platforms (a database from before
        the one-platform rule) marks other platforms too: then everything is re-read.
        """
        await self._put(platform.id, platform)

    async def _put(self, platform_id: int, platform: Platform | None) -> None:
        """Replace one platform's entries (``None``: it is gone), or re-read all if a pair is contested."""
        old = self._platforms.get(platform_id)
        parties = platform.parties if platform is not None else ()
        keys = {p.key for p in parties} | ({p.key for p in old.parties} if old else set())
        others = [p for key in keys for p in self._by_party.get(key, []) if p.platform_id != platform_id or p.contested]
        if any(p.contested for p in others) or contested(
            [
                *(() if platform is None else (platform,)),
                *(self._platforms[i] for i in {p.platform_id for p in others} if i in self._platforms),
            ]
        ):
            await self.reload()
            return
        platforms = dict(self._platforms)
        if platform is None:
            platforms.pop(platform_id, None)
        else:
            platforms[platform_id] = platform
        by_party = dict(self._by_party)
        for key in keys:
            held = [p for p in by_party.get(key, []) if p.platform_id != platform_id]
            held.extend(p for p in parties if p.key == key)
            held.sort(key=lambda p: (p.platform_id, p.role))  # the order a reload builds
            if held:
                by_party[key] = held
            else:
                by_party.pop(key, None)
        self._platforms = platforms
        self._by_party = defaultdict(list, by_party)
        self.generation += 1
        self.change_log = [*self.change_log[-(CHANGE_LOG - 1) :], (self.generation, platform_id)]

    async def refresh(self, platform_id: int) -> None:
        """Re-read one platform that changed (in another process, or was deleted here), it alone.

        At 10,000 platforms a full reload is ~1.3 s of CPU; every OFFLINE, suspension or
        registration in one process made every other process do it.
        """
        try:
            platform: Platform | None = await platform_sql.get_platform(self._store, platform_id)
        except RecordNotFound:  # deleted (an invitation revoked): dropped from the maps
            platform = None
        await self._put(platform_id, platform)

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
    for (country_code, party_id), ids in sorted(found.items()):
        LOGGER.warning(
            "party %s*%s is held by platforms %s: it is served by none of them until the operator deletes"
            " the platform that must not have it (a country_code/party_id belongs to one platform)",
            country_code,
            party_id,
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
