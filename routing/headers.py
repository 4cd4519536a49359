"""OCPI routing headers (transport_and_format, Message Routing): parsed, checked as pairs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from routing.errors import InvalidParameters

FROM_CC = "OCPI-from-country-code"
FROM_PID = "OCPI-from-party-id"
TO_CC = "OCPI-to-country-code"
TO_PID = "OCPI-to-party-id"


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


def _pair(headers: Mapping[str, str], cc_name: str, pid_name: str) -> PartyRef | None:
    cc = (headers.get(cc_name) or "").strip()
    pid = (headers.get(pid_name) or "").strip()
    if not cc and not pid:
        return None
    if not cc or not pid:
        raise InvalidParameters(f"routing headers come in pairs: {cc_name} and {pid_name}")
    if len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        raise InvalidParameters(f"{cc_name} must be two letters")
    if len(pid) != 3 or not pid.isascii() or not pid.isalnum():
        raise InvalidParameters(f"{pid_name} must be three letters or digits")
    return PartyRef(cc, pid)


def parse_routing_headers(headers: Mapping[str, str]) -> RoutingHeaders:
    """Read the OCPI-from/to headers (names are case-insensitive in HTTP)."""
    return RoutingHeaders(from_party=_pair(headers, FROM_CC, FROM_PID), to_party=_pair(headers, TO_CC, TO_PID))
