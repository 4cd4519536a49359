"""Pull-only CPOs: the hub pulls their Sender interfaces so GET-all through the hub includes them.

OCPI makes pull the required model and push optional (transport_and_format, "Pull and push"):
a CPO may publish only its Sender interfaces for locations and tariffs. For a platform whose
interop setting ``pull_interval`` is set, the hub GETs those lists every ``pull_interval``
seconds, incrementally (``date_from`` = the start of the last complete pull), following the
partner's own ``Link`` pages (at most ``MAX_PAGES``), and keeps every object as a broadcast copy.
Objects owned by a party the platform does not serve are skipped (anti-spoofing, as for pushes).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from routing.clock import Clock, iso
from routing.jobs.periodic import Periodic
from routing.messages import PartyRef
from routing.objects import ObjectRef, canonical_time
from routing.peers.client import PeerClient
from routing.protocol.envelope import dumps
from routing.protocol.errors import OcpiError
from routing.protocol.vocab import InterfaceRole, ModuleID, Role
from routing.registry.directory import Directory
from routing.registry.identity import live_parties
from routing.versions import CORE, Context, to_core
from storage import objects as object_sql
from storage import platforms as platform_sql
from storage import routing_index as index_sql
from storage.db import Store, SyncTx
from storage.models import Platform

LOGGER = logging.getLogger(__name__)

MODULES = (ModuleID.LOCATIONS, ModuleID.TARIFFS)
MAX_PAGES = 1000
PAGE_LIMIT = 1000
CHECK_EVERY = 60.0  # seconds between looks at which platform is due
_NEXT = re.compile(r"<([^>]*)>\s*;\s*rel=\"?next\"?", re.IGNORECASE)


class Puller:
    """Pulls the due pull-only CPOs; ``task`` runs ``pull_due`` every CHECK_EVERY seconds."""

    def __init__(self, *, store: Store, client: PeerClient, directory: Directory, clock: Clock) -> None:
        self.store = store
        self.client = client
        self.directory = directory
        self.clock = clock
        self._pulled: dict[int, datetime] = {}  # newer than the directory's copy of platforms.pulled_at
        self._round = asyncio.Lock()  # one round at a time: a second caller waits, then finds nothing due
        # An abandoned pull (stop) leaves pulled_at alone: the next one starts from the last complete one.
        self.task = Periodic("pull-only-partners", self.pull_due, lambda: CHECK_EVERY, clock, lead=store.try_lead)

    def _pulled_at(self, platform: Platform) -> datetime | None:
        return self._pulled.get(platform.id) or platform.pulled_at

    def _due(self, platform: Platform) -> bool:
        if not platform.pull_interval or platform.status != "CONNECTED" or not platform.registered:
            return False
        last = self._pulled_at(platform)
        return last is None or (self.clock.now() - last).total_seconds() >= platform.pull_interval

    async def pull_due(self) -> int:
        """Pull every due platform; return how many objects were stored."""
        stored = 0
        async with self._round:
            for platform in list(self.directory.platforms()):
                if self._due(platform):
                    stored += await self.pull(platform)
        return stored

    async def pull(self, platform: Platform) -> int:
        """Pull one platform's locations and tariffs since its last complete pull."""
        started = self.clock.now()
        owners = {p.key for p in live_parties(platform, (Role.CPO,))}
        stored = 0
        for module in MODULES:
            url = platform.endpoint(module, InterfaceRole.SENDER)
            if url is None or not owners:
                continue
            try:
                stored += await self._pull_module(platform, module, url, owners)
            except OcpiError as exc:
                LOGGER.warning("pull of %s from platform %s failed: %s", module, platform.id, exc.message)
                return stored  # pulled_at stays: the next pull starts from the last complete one
        await self.store.write(lambda tx: platform_sql.set_pulled_at(tx, platform.id, at=started))
        self._pulled[platform.id] = started
        LOGGER.info("pulled %d objects from platform %s", stored, platform.id)
        return stored

    async def _pull_module(self, platform: Platform, module: str, url: str, owners: set[tuple[str, str]]) -> int:
        query: dict[str, str] = {"limit": str(PAGE_LIMIT)}
        last = self._pulled_at(platform)
        if last:
            query["date_from"] = iso(last)  # the OCPI DateTime the partner filters on
        next_url: str | None = f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"
        stored = 0
        for _ in range(MAX_PAGES):
            if next_url is None:
                break
            response = await self.client.send(
                "GET",
                next_url,
                token=platform.token_out,
                send_base64=platform.send_base64,
                expect="list",
                log_context={"module": module, "platform_id": platform.id},
            )
            if not response.succeeded or not isinstance(response.data, list):
                raise OcpiError(f"GET {module}: {response.describe()}")
            pairs = [_as_core(platform, module, item) for item in response.data]
            items = [(core, sent) for core, sent in pairs if self._owned(core, owners, platform.id, module)]
            if items:
                await self.store.write(self._keep(module, items, platform.version))
                stored += len(items)
            link = response.headers.get("Link")
            match = _NEXT.search(link) if link else None
            next_url = match.group(1) if match and response.data else None
        return stored

    @staticmethod
    def _owned(item: Any, owners: set[tuple[str, str]], platform_id: int, module: str) -> bool:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("country_code", "party_id", "id")
        ):
            LOGGER.warning("pull from platform %s: skipping a %s entry without owner and id", platform_id, module)
            return False
        if (item["country_code"].upper(), item["party_id"].upper()) not in owners:
            LOGGER.warning("pull from platform %s: skipping %s owned by a party it does not serve", platform_id, module)
            return False
        return True

    def _keep(self, module: str, items: list[tuple[Any, Any]], version: str | None) -> Any:
        """A write job keeping each pulled object: its 2.2.1 copy, and what the partner sent beside it."""
        now = iso(self.clock.now())

        def job(tx: SyncTx) -> None:
            for item, sent in items:
                ref = ObjectRef(PartyRef(item["country_code"], item["party_id"]), item["id"])
                try:
                    last_updated = canonical_time(item.get("last_updated"))
                except OcpiError:
                    last_updated = now
                object_sql.put_copy(
                    tx,
                    module=module,
                    object_key=ref.key,
                    country_code=ref.owner.country_code,
                    party_id=ref.owner.party_id,
                    object_id=ref.object_id.upper(),
                    recipient=object_sql.EVERYONE,
                    body=dumps(item),
                    last_updated=last_updated,
                    origin_version=version if sent is not None else None,
                    origin_body=dumps(sent) if sent is not None else None,
                )
                if module == ModuleID.LOCATIONS:
                    index_sql.remember(tx, "location", ref.object_id, ref.owner.key, now=now)

        return job


_KIND: dict[str, str] = {ModuleID.LOCATIONS: "Location", ModuleID.TARIFFS: "Tariff"}


def _as_core(platform: Platform, module: str, item: Any) -> tuple[Any, Any]:
    """(the 2.2.1 copy, what the partner sent or None when it spoke 2.2.1) of one pulled object.

    A 2.1.1 or 2.3.0 partner's objects are translated like its pushes (routing/versions), owner
    ids of 2.1.1 taken from its one CPO party.
    """
    version = platform.version or CORE
    if version == CORE or not isinstance(item, dict):
        return item, None
    party = next(iter(live_parties(platform, (Role.CPO,))), None)
    ctx = Context(party.country_code, party.party_id, origin=version) if party else Context(origin=version)
    try:
        core = to_core(version, _KIND[module], item, ctx).data
    except (TypeError, ValueError, AttributeError, KeyError):
        return item, None  # not an object of its kind: _owned skips it with a warning
    return core, item
