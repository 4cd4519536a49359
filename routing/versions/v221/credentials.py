"""OCPI 2.2.1 Credentials: a list of CredentialsRole; a hub presents itself with role HUB."""

from __future__ import annotations

from typing import Any

from routing.versions.credentials_base import CoreCredentials, role_parties, token_url


def parse(body: dict[str, Any], role: str | None = None) -> CoreCredentials:
    """A 2.2.1 Credentials body (``role`` is unused: 2.2.1 names roles itself)."""
    del role
    token, url = token_url(body)
    return CoreCredentials(token, url, role_parties(body, "2.2.1"))


def render(creds: CoreCredentials) -> dict[str, Any]:
    """The hub's 2.2.1 Credentials: its parties as given (the hub's own with role HUB)."""
    return {"token": creds.token, "url": creds.url, "roles": [p.as_role() for p in creds.parties]}
