"""Who may see an unpublished Location: OCPI 2.1.1 partners have no ``publish`` field.

2.2.1 mod_locations: a Location with ``publish`` false "SHALL NOT be published" and is shown
only to the drivers whose tokens ``publish_allowed_to`` lists. A 2.1.1 eMSP cannot read that
restriction (its Location has no such field) and would show the Location to everyone, so the
hub withholds it unless one of the partner's own Tokens (known to the hub from its pushes) is
listed; then it gets the Location with the restriction recorded as approximated. Both cases
are recorded in the loss report.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from routing.protocol.vocab import ModuleID
from routing.registry.identity import live_parties
from routing.versions.loss import Loss

if TYPE_CHECKING:
    from storage.db import Store
    from storage.models import Platform

_MODULE = ModuleID.LOCATIONS


def _loss(kind: str, detail: str) -> Loss:
    return Loss(_MODULE, "publish", "dropped" if kind == "dropped" else "approximated", detail)


def own_token_keys(platform: Platform, location: Any) -> list[str]:
    """The store keys of the platform's own Tokens an unpublished Location's ``publish_allowed_to`` names."""
    allowed = location.get("publish_allowed_to") if isinstance(location, dict) else None
    if not isinstance(allowed, list) or location.get("publish") is not False:
        return []
    # Tokens are stored under owner/uid/type (routing/objects.py ObjectRef.key; type RFID by default).
    listed = [
        (a["uid"], a.get("type") if isinstance(a.get("type"), str) else "RFID")
        for a in allowed
        if isinstance(a, dict) and isinstance(a.get("uid"), str) and a["uid"]
    ]
    return [
        f"{party.country_code}/{party.party_id}/{uid}/{token_type}".upper()
        for party in live_parties(platform)
        for uid, token_type in listed
    ]


def verdict(location: Any, own_token_known: bool) -> tuple[bool, Loss | None]:
    """(visible to the 2.1.1 platform, the loss) once it is known whether one of its Tokens is listed."""
    if not isinstance(location, dict) or location.get("publish") is not False:
        return True, None
    if own_token_known:
        detail = "publish=false: 2.1.1 cannot restrict it to publish_allowed_to; sent to the partner it names"
        return True, _loss("approximated", detail)
    return False, _loss("dropped", "publish=false Location withheld: 2.1.1 has no publish field")


async def _own_token_listed(store: Store, platform: Platform, location: Any) -> bool:
    """Whether ``publish_allowed_to`` names (by uid) a Token owned by one of the platform's parties."""
    from storage import objects as object_sql  # storage stays out of this module's import time

    for key in own_token_keys(platform, location):
        if await object_sql.get_any(store, ModuleID.TOKENS, key) is not None:
            return True
    return False


async def location_verdict(
    store: Store, platform: Platform, location: Any, object_key: str | None = None
) -> tuple[bool, Loss | None]:
    """(may the 2.1.1 ``platform`` see it, the loss to record) for a 2.2.1 Location or push body.

    A push body without ``publish`` (a PATCH, an EVSE) is judged by the hub's stored copy of
    ``object_key``.
    """
    from storage import objects as object_sql

    body = location if isinstance(location, dict) else {}
    if "publish" not in body and object_key:
        stored = await object_sql.get_any(store, _MODULE, object_key)
        body = json.loads(stored.body) if stored is not None else {}
    if body.get("publish") is not False:
        return True, None
    return verdict(body, await _own_token_listed(store, platform, body))
