"""OCPI routing headers (transport_and_format, Message Routing): parsed, checked as pairs."""

from __future__ import annotations

from collections.abc import Mapping

from routing.messages import FROM_CC, FROM_PID, TO_CC, TO_PID, PartyRef, RoutingHeaders
from routing.protocol.errors import InvalidParameters


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
