"""HubClientInfo (mod_hub_client_info): the hub is its SENDER.

Every party's ClientInfo is served as a paginated list, and each status change is PUT to every
other connected platform's hubclientinfo RECEIVER. It is a configuration module: never routing
headers on these requests (OCPI-DIGEST 1.9).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from routing.clock import Clock, iso
from routing.delivery import Delivery
from routing.directory import ROUTABLE, Directory
from routing.forward import Leg, new_request_id
from storage.models import Party, Platform

LOGGER = logging.getLogger(__name__)


def client_info(party: Party, status: str) -> dict[str, Any]:
    """One ClientInfo object."""
    return {
        "party_id": party.party_id,
        "country_code": party.country_code,
        "role": party.role,
        "status": status,
        "last_updated": party.last_updated,
    }


def all_client_info(directory: Directory) -> list[dict[str, Any]]:
    """ClientInfo of every party of every platform, oldest change first."""
    items = [client_info(party, platform.status) for platform in directory.platforms() for party in platform.parties]
    return sorted(items, key=lambda i: (i["last_updated"], i["country_code"], i["party_id"], i["role"]))


class ClientInfoPusher:
    """Registry listener: PUTs a changed platform's ClientInfo to every other connected platform."""

    def __init__(self, directory: Directory, delivery: Delivery, clock: Clock) -> None:
        self.directory = directory
        self.delivery = delivery
        self.clock = clock

    async def __call__(self, changed: Platform, status: str) -> None:
        """Push one PUT per (party of the changed platform, receiving platform)."""
        legs: list[Leg] = []
        for receiver in self.directory.platforms():
            if receiver.id == changed.id or receiver.status not in ROUTABLE or not receiver.registered:
                continue
            base = receiver.endpoint("hubclientinfo", "RECEIVER")
            if base is None:
                continue
            for party in changed.parties:
                body = client_info(party, status)
                if body["last_updated"] is None:
                    body["last_updated"] = iso(self.clock.now())
                legs.append(
                    Leg(
                        method="PUT",
                        url=f"{base.rstrip('/')}/{quote(party.country_code)}/{quote(party.party_id)}",
                        platform=receiver,
                        routing=None,
                        correlation_id=new_request_id(),
                        body=json.dumps(body).encode(),
                        module="hubclientinfo",
                        object_key=f"{party.country_code}/{party.party_id}/{party.role}".upper(),
                    )
                )
        if legs:
            LOGGER.info("pushing ClientInfo %s of platform %s to %d receivers", status, changed.id, len(legs))
            await self.delivery.enqueue(legs)
