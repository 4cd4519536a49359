"""Rows of the registry as typed, frozen models (what storage functions return)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


# A slotted dataclass, not a model: the directory holds one per (platform, module, role), 170,000
# at 10,000 platforms, where a pydantic model's per-instance dict and field set cost ~90 MB
# (issue 22, bench scenario 12).
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One module endpoint a platform published in its version details."""

    module: str
    role: str
    url: str


class Party(BaseModel):
    """One (country_code, party_id, role) served by a platform."""

    model_config = ConfigDict(frozen=True)

    platform_id: int
    country_code: str
    party_id: str
    role: str
    business_details: dict[str, Any]
    last_updated: str
    left_at: str | None = None  # the party left the platform's roles: kept (ClientInfo SUSPENDED), not routable
    # Set by the routing directory, never stored: another registered platform holds the same pair
    # (a database from before the one-platform rule, routing/registry/identity.py): served by neither.
    contested: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """Case-folded (country_code, party_id): CiStrings compare case-insensitively."""
        return (self.country_code.upper(), self.party_id.upper())


class Platform(BaseModel):
    """One OCPI connection: who it is, where its endpoints live, how to call it."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    status: str
    versions_url: str | None
    version: str | None
    token_out: str | None
    send_base64: bool
    initiated_by: str
    # Timestamps as datetimes (storage/times.py decodes the column text); routing and the admin
    # API format them with routing.clock.iso where they leave as JSON.
    created_at: datetime
    updated_at: datetime
    last_seen_in: datetime | None
    last_seen_out: datetime | None
    pull_interval: float | None = None  # seconds between pulls of a pull-only CPO (None: never)
    pulled_at: datetime | None = None  # start of the last complete pull (the next one's date_from)
    role_hint: str | None = None  # the operator-named role of an OCPI 2.1.1 partner
    endpoints: tuple[Endpoint, ...] = ()
    parties: tuple[Party, ...] = ()

    @property
    def registered(self) -> bool:
        """True once a credentials exchange has completed (we hold a token to call them)."""
        return self.token_out is not None and self.version is not None

    def endpoint(self, module: str, role: str) -> str | None:
        """URL of the platform's endpoint for (module, role), if published."""
        for ep in self.endpoints:
            if ep.module == module and ep.role == role:
                return ep.url
        return None


class TokenRecord(BaseModel):
    """An inbound token (by hash) and whose it is."""

    model_config = ConfigDict(frozen=True)

    token_hash: str
    platform_id: int
    kind: str
    expires_at: str | None


@dataclass(frozen=True, slots=True)
class PlatformBrief:
    """What the overviews read of a platform (/status, /metrics, the silence probe, names).

    No endpoints, token or business details; timestamps as the stored OCPI DateTime text. At
    10,000 platforms a full ``Platform`` read held the event loop ~0.2 s even without endpoints.
    """

    id: int
    name: str
    status: str
    version: str | None
    registered: bool  # a credentials exchange has completed (``Platform.registered``)
    last_seen_in: str | None
    last_seen_out: str | None
    updated_at: str
    parties: tuple[tuple[str, str, str], ...] = ()  # (country_code, party_id, role), those it left too
    active_keys: tuple[tuple[str, str], ...] = ()  # case-folded pairs of the parties it has not left
