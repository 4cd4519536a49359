"""The Credentials objects of the handshake, both ways (credentials.asciidoc).

Ours: the hub's own object, one HUB role in 2.2.1, and in 2.3.0 (which has no HUB role) the
roles of every party the hub reaches. Theirs: a partner's object validated (2001 on any
problem) and turned into the platform's parties. Tokens: fresh ones for tokens B and C.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError

from config import Settings
from routing.protocol.errors import InvalidParameters
from routing.protocol.models import Credentials
from routing.protocol.vocab import Role
from routing.versions import registration
from storage import platforms as platform_sql
from storage.db import Store
from storage.models import Party, Platform


def new_token() -> str:
    """A fresh credentials token: 43 URL-safe characters (within string(64), never Base64-encoded)."""
    return secrets.token_urlsafe(32)


def parse_credentials(body: Any) -> Credentials:
    """Validate a Credentials object from a partner (2001 on any problem)."""
    if isinstance(body, list) and len(body) == 1:  # list-wrapped data
        body = body[0]
    try:
        return Credentials.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        # Valid JSON that reached the credentials resource: an OCPI error, never an HTTP one
        # (status_codes.asciidoc: "a HTTP error MUST NOT be returned").
        raise InvalidParameters(f"invalid credentials: {where}: {first['msg']}") from exc


def hub_credentials(settings: Settings, token: str) -> dict[str, Any]:
    """The hub's own Credentials object: one HUB role in 2.2.1 (credentials.asciidoc)."""
    business: dict[str, Any] = {"name": settings.name}
    if settings.website:
        business["website"] = settings.website
    return {
        "token": token,
        "url": settings.versions_url,
        "roles": [
            {
                "role": Role.HUB,
                "business_details": business,
                "party_id": settings.party_id,
                "country_code": settings.country_code,
            }
        ],
    }


async def credentials_for(
    store: Store, settings: Settings, token: str, version: str, platform_id: int
) -> dict[str, Any]:
    """The hub's Credentials for one platform, in its version.

    2.3.0 has no HUB role: the hub names its ``hub_party_id`` and lists the parties it can
    reach (every other registered platform's) as normal roles (credentials 2.3.0).
    """
    body = registration.hub_body(version, hub_credentials(settings, token))
    if version != "2.3.0":
        return body
    roles = [
        {
            "role": p.role,
            "business_details": p.business_details,
            "party_id": p.party_id,
            "country_code": p.country_code,
        }
        for platform in await platform_sql.list_platforms(store, endpoints=False)
        if platform.id != platform_id and platform.registered
        for p in platform.parties
        if not p.left_at
    ]
    return {**body, "roles": roles} if roles else body


def role_hint(platform: Platform) -> str | None:
    """The operator-named role, else the role a registered 2.1.1 partner already has."""
    return platform.role_hint or next((p.role for p in platform.parties), None)


def parties_of(platform_id: int, creds: Credentials, now: str) -> list[Party]:
    """Every role of a Credentials object as a party of the platform."""
    return [
        Party(
            platform_id=platform_id,
            country_code=r.country_code,
            party_id=r.party_id,
            role=r.role,
            business_details=r.business_details.model_dump(exclude_none=True),
            last_updated=now,
        )
        for r in creds.roles
    ]


def roles_text(creds: Credentials) -> str:
    """The roles as text for logs: CC*PID/ROLE, comma separated."""
    return ", ".join(f"{r.country_code}*{r.party_id}/{r.role}" for r in creds.roles)
