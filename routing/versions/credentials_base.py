"""The version-neutral view of a Credentials object that every version's credentials.py maps to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CredentialsShapeError(ValueError):
    """A Credentials body that does not fit its version's shape (answered with OCPI 2001)."""


@dataclass(frozen=True)
class Party:
    """One party in credentials: 2.2.1's CredentialsRole."""

    country_code: str
    party_id: str
    role: str
    business_details: dict[str, Any] = field(default_factory=dict)

    def as_role(self) -> dict[str, Any]:
        """The 2.2.1/2.3.0 CredentialsRole JSON."""
        return {
            "role": self.role,
            "business_details": self.business_details,
            "party_id": self.party_id,
            "country_code": self.country_code,
        }


@dataclass(frozen=True)
class CoreCredentials:
    """Token, versions URL and parties, whatever the version on the wire."""

    token: str
    url: str
    parties: list[Party]
    hub_party_id: str | None = None


def party_of(role: dict[str, Any]) -> Party:
    """A Party from a CredentialsRole JSON object."""
    try:
        return Party(
            str(role["country_code"]),
            str(role["party_id"]),
            str(role["role"]),
            dict(role.get("business_details") or {}),
        )
    except (KeyError, TypeError) as exc:
        raise CredentialsShapeError(f"credentials role lacks {exc}") from exc


def role_parties(body: dict[str, Any], version: str) -> list[Party]:
    """The parties of a 2.2.1/2.3.0 body's ``roles`` (one at least: the field is "+")."""
    roles = body.get("roles")
    if not isinstance(roles, list) or not roles:
        raise CredentialsShapeError(f"{version} credentials need at least one role")
    return [party_of(r) for r in roles if isinstance(r, dict)]


def token_url(body: dict[str, Any]) -> tuple[str, str]:
    """The token and url every version's Credentials carries."""
    token, url = body.get("token"), body.get("url")
    if not isinstance(token, str) or not isinstance(url, str) or not token or not url:
        raise CredentialsShapeError("credentials need a token and a url")
    return token, url
