"""OCPI 2.2.1 vocabulary as StrEnums: module identifiers, interface roles, party roles.

Each member equals its wire string (``ModuleID.LOCATIONS == "locations"``), so stored rows,
JSON bodies and dictionary keys stay the plain strings they were. Values that come from
partners stay ``str`` at the boundary and become members where they are validated.
"""

from __future__ import annotations

from enum import StrEnum


class ModuleID(StrEnum):
    """ModuleID (version_information_endpoint, ModuleID enum)."""

    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class InterfaceRole(StrEnum):
    """InterfaceRole (version_information_endpoint, InterfaceRole enum)."""

    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class Role(StrEnum):
    """Role (types, Role enum): the role a party plays."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


# The roles a platform can register a party in: every Role but the hub's own.
PARTY_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.HUB)


def other_interface(interface: str) -> InterfaceRole:
    """SENDER <-> RECEIVER: the interface the peer of a request implements."""
    return InterfaceRole.RECEIVER if interface == InterfaceRole.SENDER else InterfaceRole.SENDER
