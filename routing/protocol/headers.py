"""OCPI routing headers (transport_and_format, Message Routing): parsed, checked as pairs."""

from __future__ import annotations

from collections.abc import Mapping

from routing.messages import FROM_CC, FROM_PID, TO_CC, TO_PID, PartyRef, RoutingHeaders
from routing.protocol.errors import InvalidParameters


def _pair(headers: Mapping[str, str], country_code_header: str, party_id_header: str) -> PartyRef | None:
    country_code = (headers.get(country_code_header) or "").strip()
    party_id = (headers.get(party_id_header) or "").strip()
    if not country_code and not party_id:
        return None
    if not country_code or not party_id:
        raise InvalidParameters(f"routing headers come in pairs: {country_code_header} and {party_id_header}")
    if len(country_code) != 2 or not country_code.isascii() or not country_code.isalpha():
        raise InvalidParameters(f"{country_code_header} must be two letters")
    if len(party_id) != 3 or not party_id.isascii() or not party_id.isalnum():
        raise InvalidParameters(f"{party_id_header} must be three letters or digits")
    return PartyRef(country_code, party_id)


def parse_routing_headers(headers: Mapping[str, str]) -> RoutingHeaders:
    """Read the OCPI-from/to headers (names are case-insensitive in HTTP)."""
    return RoutingHeaders(from_party=_pair(headers, FROM_CC, FROM_PID), to_party=_pair(headers, TO_CC, TO_PID))
