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
import json
import logging
from typing import Any
from urllib.parse import quote

from routing.agreements.book import Agreement, Agreements
from routing.clock import Clock, iso
from routing.delivery.intake import Delivery
from routing.messages import Leg
from routing.peers.forward import new_request_id
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.registry.directory import ROUTABLE, Directory
from routing.registry.identity import active
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


def all_client_info(directory: Directory, viewer: Platform | None, agreements: Agreements) -> list[dict[str, Any]]:
    """ClientInfo of every party of every platform ``viewer`` may hear of, oldest change first."""
    items = [
        client_info(party, platform.status)
        for platform in directory.platforms()
        for party in platform.parties
        if not agreements.required or (viewer is not None and agreements.sees(viewer, party))
    ]
    return sorted(items, key=lambda i: (i["last_updated"], i["country_code"], i["party_id"], i["role"]))


class ClientInfoPusher:
    """Registry listener: PUTs ClientInfo changes to every other connected platform (push model).

    A platform that has just registered also receives the ClientInfo of every party already
    known, so it does not have to GET the list to learn who is there (mod_hub_client_info).
    """

    def __init__(self, directory: Directory, delivery: Delivery, clock: Clock, agreements: Agreements) -> None:
        self.directory = directory
        self.delivery = delivery
        self.clock = clock
        self.agreements = agreements
        # Pushes run one after the other, in the order of the changes (FIFO lock), so a partner
        # never sees an older status overtake a newer one.
        self._order = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

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
        """Registry listener: the ClientInfo PUTs are built and committed after the caller's answer.

        With 10,000 platforms a registration means 20,000 PUTs (to everyone, and everyone's to
        the newcomer): built and committed before the credentials answer, they held it for
        seconds (issue 22, bench scenario 12). The registration itself is committed already;
        a crash in between loses these PUTs, as one between that commit and this call did.
        """
        task = asyncio.create_task(self._push_in_order(changed, status, registered))
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            LOGGER.error("ClientInfo push failed: %s", exc, exc_info=exc)

    async def drain(self) -> None:
        """Wait for every ClientInfo push started so far (shutdown: commit them before the store closes)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _push_in_order(self, changed: Platform, status: str, registered: bool) -> None:
        async with self._order:
            await self.push(changed, status, registered)

    async def push(self, changed: Platform, status: str, registered: bool = False) -> None:
        """Push one PUT per (party of the changed platform, receiving platform); backfill a new one.

        Built and committed in batches of ``BATCH`` with the event loop free in between: at
        10,000 platforms one piece held every other request (the answer of the registration
        itself among them) for a third of a second. Batches keep the order per receiver.
        """
        platforms = list(self.directory.platforms())  # one snapshot for the whole push
        sees = self.agreements.sees
        legs: list[Leg] = []
        total = 0
        for i, receiver in enumerate(platforms):
            if receiver.id == changed.id or receiver.status not in ROUTABLE or not receiver.registered:
                continue
            for party in changed.parties:
                if sees(receiver, party) and (leg := self._leg(receiver, party, status)):
                    legs.append(leg)
            if len(legs) >= BATCH or i % BATCH == BATCH - 1:
                total += await self._flush(legs)
        if registered and changed.registered:
            for i, other in enumerate(platforms):
                if other.id != changed.id:
                    legs.extend(
                        leg
                        for party in other.parties
                        if sees(changed, party) and (leg := self._leg(changed, party, other.status))
                    )
                if len(legs) >= BATCH or i % BATCH == BATCH - 1:
                    total += await self._flush(legs)
        total += await self._flush(legs)
        if total:
            LOGGER.info("pushed ClientInfo %s of platform %s: %d PUTs", status, changed.id, total)

    async def _flush(self, legs: list[Leg]) -> int:
        """Commit the batch (emptied), then let the loop serve others; how many legs it held."""
        count = len(legs)
        if legs:
            await self.delivery.enqueue(list(legs))
            legs.clear()
        await asyncio.sleep(0)  # the rest of the push waits its turn behind waiting requests
        return count

    async def agreements_changed(self, started: list[Agreement], ended: list[Agreement]) -> None:
        """Tell each side of an agreement that came into force about the other; PLANNED when one ended.

        An ended agreement is announced only where the other side is no longer seen at all (another
        agreement in force may still relate the two parties).
        """
        legs: list[Leg] = []
        for agreements, ending in ((started, False), (ended, True)):
            for ag in agreements:
                for about, to in (ag.sides, ag.sides[::-1]):
                    legs.extend(self._about(about, to, ending=ending))
        if legs:
            LOGGER.info("ClientInfo: %d agreement(s) started, %d ended: %d PUTs", len(started), len(ended), len(legs))
            await self.delivery.enqueue(legs)

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
