"""The ids the hub routes and keys on, checked against the OCPI field tables (issue 20, low items).

Ids in URLs and the id fields of pushed objects and commands are CiStrings: printable ASCII only
(types, CiString), with a maximum length per field (the module field tables: Location.id 36,
EVSE.uid 36, Connector.id 36, Tariff.id 36, Token.uid 36, Session.id 36, CDR.id 39, command
ids 36; 2.1.1 allows 39 for Location.id and EVSE.uid and 36 for CDR.id). The hub compares ids
case-insensitively by upper-casing them, which is only sound for ASCII: the dotless i (U+0131)
followed by d, upper-cased, is ``ID``, another object's key. Anything else is refused with 2001
before it is routed, stored or forwarded. Checked in the caller's own version, before translation.
"""

from __future__ import annotations

from typing import Any

from routing.protocol.errors import InvalidParameters
from routing.protocol.vocab import InterfaceRole, ModuleID

# Field -> maximum length in 2.2.1 (2.3.0 has the same tables for these fields).
LIMITS: dict[str, int] = {
    "location_id": 36,
    "evse_uid": 36,
    "connector_id": 36,
    "tariff_id": 36,
    "token_uid": 36,
    "session_id": 36,
    "cdr_id": 39,
    "reservation_id": 36,
    "authorization_reference": 36,
}
# Where OCPI 2.1.1's tables differ (mod_locations: Location.id and EVSE.uid string(39); mod_cdrs: CDR.id 36).
LIMITS_211: dict[str, int] = {**LIMITS, "location_id": 39, "evse_uid": 39, "cdr_id": 36}
# A path segment in a position no table names (a command name, "authorize"): the longest id above.
OTHER_SEGMENT = 39

# What each position of a hub URL's path suffix holds, per (module, interface).
_OWNER = ("country_code", "party_id")
PATH_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    (ModuleID.LOCATIONS, InterfaceRole.RECEIVER): (*_OWNER, "location_id", "evse_uid", "connector_id"),
    (ModuleID.LOCATIONS, InterfaceRole.SENDER): ("location_id", "evse_uid", "connector_id"),
    (ModuleID.TARIFFS, InterfaceRole.RECEIVER): (*_OWNER, "tariff_id"),
    (ModuleID.TOKENS, InterfaceRole.RECEIVER): (*_OWNER, "token_uid"),
    (ModuleID.TOKENS, InterfaceRole.SENDER): ("token_uid",),
    (ModuleID.SESSIONS, InterfaceRole.RECEIVER): (*_OWNER, "session_id"),
    (ModuleID.SESSIONS, InterfaceRole.SENDER): ("session_id",),
    (ModuleID.CHARGING_PROFILES, InterfaceRole.RECEIVER): ("session_id",),
    (ModuleID.CHARGING_PROFILES, InterfaceRole.SENDER): ("session_id",),
}
# The id field of a pushed object, per module (a Location push one level down is an EVSE, two a Connector).
_OBJECT_ID: dict[str, str] = {
    ModuleID.TARIFFS: "tariff_id",
    ModuleID.TOKENS: "token_uid",
    ModuleID.SESSIONS: "session_id",
    ModuleID.CDRS: "cdr_id",
}
_LOCATION_LEVELS = (("id", "location_id"), ("uid", "evse_uid"), ("id", "connector_id"))
# Ids in a command body the hub routes on or passes to a CPO (mod_commands, object tables).
_COMMAND_FIELDS = ("location_id", "evse_uid", "connector_id", "session_id", "reservation_id", "authorization_reference")
# Ids of a Session or CDR that name other objects.
_REFERENCES = ("location_id", "evse_uid", "connector_id", "session_id")


def _printable_ascii(value: str) -> bool:
    # Both are C loops; for ASCII, isprintable() is exactly 0x20-0x7E.
    return value.isascii() and value.isprintable()


def check_id(value: str, field: str, limit: int) -> None:
    """2001 unless ``value`` is a printable-ASCII CiString of at most ``limit`` characters."""
    if not value or len(value) > limit:
        raise InvalidParameters(f"{field} must be 1 to {limit} characters (CiString({limit})), got {len(value)}")
    if not _printable_ascii(value):
        raise InvalidParameters(f"{field} must be printable ASCII (CiString)")


def check_country_code(value: str, field: str = "country_code") -> None:
    """2001 unless ``value`` is two ASCII letters (CiString(2), ISO 3166-1 alpha-2)."""
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise InvalidParameters(f"{field} must be two letters (CiString(2))")


def check_party_id(value: str, field: str = "party_id") -> None:
    """2001 unless ``value`` is three ASCII letters or digits (CiString(3), ISO 15118)."""
    if len(value) != 3 or not value.isascii() or not value.isalnum():
        raise InvalidParameters(f"{field} must be three letters or digits (CiString(3))")


def _check(name: str, value: Any, limits: dict[str, int], where: str = "") -> None:
    """Check one field when it is a string (other types are the translation's and routing's concern)."""
    if type(value) is not str:
        return
    if name == "country_code":
        if len(value) != 2 or not value.isascii() or not value.isalpha():
            check_country_code(value, where + name)
    elif name == "party_id":
        if len(value) != 3 or not value.isascii() or not value.isalnum():
            check_party_id(value, where + name)
    else:
        limit = limits.get(name, OTHER_SEGMENT)
        if not (0 < len(value) <= limit and value.isascii() and value.isprintable()):
            check_id(value, where + name, limit)


def check_path(version: str, module: str, interface: str, segments: list[str]) -> None:
    """The ids in a request's path suffix, by position (2001 for a malformed one)."""
    limits = LIMITS_211 if version == "2.1.1" else LIMITS
    fields = PATH_FIELDS.get((module, interface), ())
    for i, segment in enumerate(segments):
        name = fields[i] if i < len(fields) else "path segment"
        if name == "path segment":
            check_id(segment, name, OTHER_SEGMENT)
        else:
            _check(name, segment, limits, "URL ")


def check_query(module: str, query: dict[str, str]) -> None:
    """Query values the hub keys on: a Token's ``type`` (TokenType, an enum: letters and '_')."""
    value = query.get("type")
    if (
        module == ModuleID.TOKENS
        and value is not None
        and not (0 < len(value) <= 20 and value.isascii() and value.replace("_", "").isalpha())
    ):
        raise InvalidParameters("type must be a TokenType (letters and '_')")


def check_body(version: str, module: str, interface: str, method: str, segments: list[str], body: Any) -> None:
    """The ids of a pushed object or a command body (2001 for a malformed one)."""
    if not isinstance(body, dict) or method not in ("PUT", "PATCH", "POST"):
        return
    limits = LIMITS_211 if version == "2.1.1" else LIMITS
    if module == ModuleID.COMMANDS and interface == InterfaceRole.RECEIVER:
        for name in _COMMAND_FIELDS:
            _check(name, body.get(name), limits, "")
        return
    if interface != InterfaceRole.RECEIVER:
        return
    if module == ModuleID.LOCATIONS:
        level = max(0, min(len(segments) - 3, 2))
        key, name = _LOCATION_LEVELS[level]
        _check(name, body.get(key), limits, "")
    elif module in _OBJECT_ID:
        _check(_OBJECT_ID[module], body.get("uid" if module == ModuleID.TOKENS else "id"), limits, "")
    else:
        return
    for name in ("country_code", "party_id"):
        _check(name, body.get(name), limits, "")
    if module in (ModuleID.SESSIONS, ModuleID.CDRS):
        for name in _REFERENCES:
            if name != "session_id" or module == ModuleID.CDRS:
                _check(name, body.get(name), limits, "")
        token = body.get("cdr_token")
        if isinstance(token, dict):
            for name in ("country_code", "party_id"):
                _check(name, token.get(name), limits, "cdr_token.")
            _check("token_uid", token.get("uid"), limits, "cdr_token.")
