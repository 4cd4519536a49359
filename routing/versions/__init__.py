"""OCPI versions the hub speaks, one package per version with the same modules in each.

``routing/versions/v211``, ``v221`` and ``v230`` each hold ``models.py`` (pydantic models of
every object, generated from and checked against the spec field tables), ``credentials.py``
(that version's Credentials shape) and ``translate.py`` (module by module to and from 2.2.1,
the hub's core dialect). The routing core calls :func:`to_core` once on the way in and
:func:`from_core` once on the way out; a message between two partners on the same version is
never translated (:func:`needs_translation`), so 2.3.0 extensions pass untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from routing.protocol.vocab import ModuleID
from routing.versions.common import Untranslatable
from routing.versions.loss import Context, Loss, Losses
from routing.versions.v211 import credentials as cred211
from routing.versions.v211 import translate as tr211
from routing.versions.v221 import credentials as cred221
from routing.versions.v221 import translate as tr221
from routing.versions.v230 import credentials as cred230
from routing.versions.v230 import translate as tr230

CORE = "2.2.1"
# Highest first: the hub picks the first one both sides speak.
SUPPORTED = ("2.3.0", "2.2.1", "2.1.1")

_TRANSLATORS: dict[str, ModuleType] = {"2.1.1": tr211, "2.2.1": tr221, "2.3.0": tr230}
CREDENTIALS: dict[str, ModuleType] = {"2.1.1": cred211, "2.2.1": cred221, "2.3.0": cred230}

# Module of each object kind, for the loss report.
MODULE_OF = {
    "Location": ModuleID.LOCATIONS,
    "EVSE": ModuleID.LOCATIONS,
    "Connector": ModuleID.LOCATIONS,
    "Tariff": ModuleID.TARIFFS,
    "Token": ModuleID.TOKENS,
    "AuthorizationInfo": ModuleID.TOKENS,
    "LocationReferences": ModuleID.TOKENS,
    "Session": ModuleID.SESSIONS,
    "ChargingPreferences": ModuleID.SESSIONS,
    "CDR": ModuleID.CDRS,
    "CommandResponse": ModuleID.COMMANDS,
    "CommandResult": ModuleID.COMMANDS,
    "StartSession": ModuleID.COMMANDS,
    "StopSession": ModuleID.COMMANDS,
    "ReserveNow": ModuleID.COMMANDS,
    "UnlockConnector": ModuleID.COMMANDS,
    "CancelReservation": ModuleID.COMMANDS,
    "SetChargingProfile": ModuleID.CHARGING_PROFILES,
    "ChargingProfileResponse": ModuleID.CHARGING_PROFILES,
    "ActiveChargingProfile": ModuleID.CHARGING_PROFILES,
    "ActiveChargingProfileResult": ModuleID.CHARGING_PROFILES,
    "ChargingProfileResult": ModuleID.CHARGING_PROFILES,
    "ClearProfileResult": ModuleID.CHARGING_PROFILES,
    "ClientInfo": ModuleID.HUB_CLIENT_INFO,
}


@dataclass
class Translated:
    """The translated JSON and what it could not carry."""

    data: Any
    losses: list[Loss] = field(default_factory=list)


def needs_translation(sender: str, receiver: str) -> bool:
    """False when both sides speak the same version: the body is relayed as received."""
    return sender != receiver


def _apply(fn: Any, kind: str, data: Any, ctx: Context, partial: bool) -> Translated:
    if kind not in MODULE_OF:
        raise ValueError(f"unknown object kind {kind!r}")
    losses = Losses(MODULE_OF[kind])
    if isinstance(data, list):
        out: Any = [fn(kind, d, ctx, losses, partial) if isinstance(d, dict) else d for d in data]
    elif isinstance(data, dict):
        out = fn(kind, data, ctx, losses, partial)
    else:
        out = data
    return Translated(out, losses.items)


def to_core(version: str, kind: str, data: Any, ctx: Context | None = None, partial: bool = False) -> Translated:
    """Way in: a partner's ``version`` object of 2.2.1 ``kind`` (or a list of them) as 2.2.1."""
    return _apply(_TRANSLATORS[version].to_core, kind, data, ctx or Context(), partial)


def from_core(version: str, kind: str, data: Any, ctx: Context | None = None, partial: bool = False) -> Translated:
    """Way out: a 2.2.1 object of ``kind`` (or a list of them) as the partner's ``version``.

    Raises Untranslatable when the version cannot express the message at all.
    """
    return _apply(_TRANSLATORS[version].from_core, kind, data, ctx or Context(), partial)


def version_prefix(version: str) -> str:
    """The path prefix of a version's URLs at the hub (``/ocpi/2.1.1``...)."""
    return f"/ocpi/{version if version in SUPPORTED else CORE}"


def module_url(public_url: str, version: str, module: str, interface: str) -> str:
    """The hub's URL of a module interface in a version: 2.1.1 has one URL per module, no interface."""
    if version == "2.1.1":
        return f"{public_url}{version_prefix(version)}/{module}"
    return f"{public_url}{version_prefix(version)}/{module}/{interface.lower()}/"


def pick_version(theirs: list[str]) -> str | None:
    """The highest version both the hub and the partner speak."""
    return next((v for v in SUPPORTED if v in theirs), None)


__all__ = [
    "CORE",
    "CREDENTIALS",
    "SUPPORTED",
    "Context",
    "Loss",
    "Translated",
    "Untranslatable",
    "from_core",
    "module_url",
    "needs_translation",
    "pick_version",
    "to_core",
    "version_prefix",
]
