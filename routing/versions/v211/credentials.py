"""OCPI 2.1.1 Credentials: one flat party (party_id, country_code, business_details), no role.

2.1.1 has no role in credentials (credentials.md 2.1), so the operator names it when inviting or
connecting; a 2.1.1 registration without that role is refused.
"""

from __future__ import annotations

from typing import Any

from routing.versions.credentials_base import (
    CoreCredentials,
    CredentialsShapeError,
    Party,
    token_url,
)


def parse(body: dict[str, Any], role: str | None = None) -> CoreCredentials:
    """A 2.1.1 Credentials body; ``role`` is the one the operator named for this partner."""
    token, url = token_url(body)
    if not role:
        raise CredentialsShapeError("OCPI 2.1.1 credentials carry no role: the invitation or connection must name one")
    try:
        party = Party(
            str(body["country_code"]),
            str(body["party_id"]),
            role,
            dict(body.get("business_details") or {}),
        )
    except KeyError as exc:
        raise CredentialsShapeError(f"2.1.1 credentials lack {exc}") from exc
    return CoreCredentials(token, url, [party])


def render(creds: CoreCredentials) -> dict[str, Any]:
    """The hub's own 2.1.1 Credentials: its first party, flat."""
    p = creds.parties[0]
    return {
        "token": creds.token,
        "url": creds.url,
        "business_details": p.business_details,
        "party_id": p.party_id,
        "country_code": p.country_code,
    }
