"""The messages the routing layers pass each other, as plain values with no routing logic.

Parties, routing headers, an inbound request, an outbound leg, the reply to the caller and the
receiver picked for it live here so that the service, the decision, the forwarding, delivery,
proxies, GET-all and the version bridge all import one dependency-free module instead of each
other (issue 24, item 2). Only OCPI vocabulary (routing/protocol/), the stored platform and the
request's translation Flow (routing/versions/flow.py, a plain value carried on ``Inbound`` and
``Leg``, issue 24, item 3) are imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from routing.protocol.envelope import envelope_bytes
from routing.protocol.ids import new_id
from routing.protocol.reader import Shape
from routing.versions.flow import Flow
from storage.models import Platform

# Routing header names (transport_and_format, Message Routing).
FROM_CC = "OCPI-from-country-code"
FROM_PID = "OCPI-from-party-id"
TO_CC = "OCPI-to-country-code"
TO_PID = "OCPI-to-party-id"

Headers = CIMultiDict[str]


@dataclass(frozen=True)
class PartyRef:
    """A (country_code, party_id) pair as sent, compared case-insensitively (CiString)."""

    country_code: str
    party_id: str

    @property
    def key(self) -> tuple[str, str]:
        """Upper-cased identity for comparisons and lookups."""
        return (self.country_code.upper(), self.party_id.upper())

    @property
    def recipient(self) -> str:
        """'CC*PID' upper: the party as the recipient of a stored copy (storage/objects.py)."""
        return f"{self.key[0]}*{self.key[1]}"

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id}"

    def same(self, other: PartyRef | None) -> bool:
        """Case-insensitive equality."""
        return other is not None and self.key == other.key


@dataclass(frozen=True)
class RoutingHeaders:
    """FROM and TO parties of a request; either may be absent (open routing omits TO)."""

    from_party: PartyRef | None
    to_party: PartyRef | None

    def as_headers(self) -> dict[str, str]:
        """The four headers for an outgoing request."""
        out: dict[str, str] = {}
        if self.from_party is not None:
            out[FROM_CC] = self.from_party.country_code
            out[FROM_PID] = self.from_party.party_id
        if self.to_party is not None:
            out[TO_CC] = self.to_party.country_code
            out[TO_PID] = self.to_party.party_id
        return out

    def swapped(self) -> RoutingHeaders:
        """FROM/TO swapped, as on an answer."""
        return RoutingHeaders(from_party=self.to_party, to_party=self.from_party)


@dataclass(frozen=True)
class Inbound:
    """One functional-module request as the hub received it."""

    module: str
    interface: str  # the hub interface called: SENDER or RECEIVER
    method: str
    segments: list[str]
    query: dict[str, str]
    query_string: str
    routing: RoutingHeaders
    request_id: str
    correlation_id: str
    caller: Platform
    flow: Flow = field(compare=False, repr=False)  # its versions and losses, opened by the handler
    raw_body: bytes | None = None
    body: Any = None


@dataclass(frozen=True)
class Leg:
    """One outbound request to one receiver."""

    method: str
    url: str
    platform: Platform
    routing: RoutingHeaders | None  # None for configuration modules (never routing headers)
    correlation_id: str
    body: bytes | None = None
    module: str = ""
    object_key: str = ""
    request_id: str = field(default_factory=new_id)
    expect: Shape | None = None  # the shape the spec gives the answer's data
    # The translation Flow of the partner request this leg serves (None: the hub's own message).
    flow: Flow | None = field(default=None, compare=False, repr=False)

    def headers(self) -> dict[str, str]:
        """X-Request-ID, X-Correlation-ID and the routing headers of this leg."""
        out = {"X-Request-ID": self.request_id, "X-Correlation-ID": self.correlation_id}
        if self.routing is not None:
            out.update(self.routing.as_headers())
        return out


class Reply:
    """What the hub answers its caller: HTTP status, JSON body bytes, headers (case-insensitive)."""

    def __init__(
        self, status: int, body: bytes, headers: Mapping[str, str] | None = None, *, from_hub: bool = False
    ) -> None:
        self.status = status
        self.body = body
        self.headers: Headers = CIMultiDict(headers or {})
        self.from_hub = from_hub  # made by the hub itself, not a receiver's answer relayed

    @classmethod
    def envelope(
        cls, data: Any = None, *, status_code: int = 1000, message: str | None = None, timestamp: str, status: int = 200
    ) -> Reply:
        """A reply made by the hub itself."""
        body = envelope_bytes(data=data, status_code=status_code, message=message, timestamp=timestamp)
        return cls(status, body, from_hub=True)


@dataclass(frozen=True)
class Target:
    """One receiver: platform, the party addressed, and the endpoint base URL."""

    platform: Platform
    party: PartyRef
    base_url: str
