"""OCPI 2.3.0 Credentials: roles without HUB, plus ``hub_party_id`` (credentials 2.3.0).

A hub states its own party in ``hub_party_id`` (CiString(5): country code + party id) and
reports its clients' parties as normal roles instead of one HUB role.
"""

from __future__ import annotations

from typing import Any

from routing.protocol.vocab import Role
from routing.versions.credentials_base import CoreCredentials, CredentialsShapeError, Party, role_parties, token_url


def parse(body: dict[str, Any], role: str | None = None) -> CoreCredentials:
    """A 2.3.0 Credentials body."""
    del role
    token, url = token_url(body)
    parties = role_parties(body, "2.3.0")
    if any(p.role == Role.HUB for p in parties):
        raise CredentialsShapeError("2.3.0 has no HUB role: a hub sends hub_party_id")
    hub = body.get("hub_party_id")
    return CoreCredentials(token, url, parties, hub if isinstance(hub, str) else None)


def render(creds: CoreCredentials, clients: list[Party] | None = None) -> dict[str, Any]:
    """The hub's 2.3.0 Credentials: ``hub_party_id`` and its clients' parties as roles."""
    hub = next((p for p in creds.parties if p.role == Role.HUB), creds.parties[0])
    roles = [p.as_role() for p in clients or [] if p.role != Role.HUB]
    if not roles:  # roles is "+": with no clients yet the hub lists its own party as OTHER
        roles = [Party(hub.country_code, hub.party_id, Role.OTHER, hub.business_details).as_role()]
    return {
        "token": creds.token,
        "url": creds.url,
        "hub_party_id": (hub.country_code + hub.party_id)[:5],
        "roles": roles,
    }
