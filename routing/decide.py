"""Pure routing decisions (docs/DESIGN-NOTES.md, Routing): no I/O, tested without HTTP.

``decide`` turns one request into one frozen route: ``Direct`` (TO names a party),
``Broadcast`` (TO = the hub, or a location/tariff/token push without TO), ``GetAll`` (a list
GET answered from the hub's store), ``FromStore`` (a single Location GET addressed to the hub)
or ``Open`` (no TO: the content names the receiver). ``pick_target`` turns a party into a
platform and endpoint: 4001 for a party the hub does not know, 4003 for a known party that is
not connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.messages import PartyRef, RoutingHeaders, Target
from routing.protocol.errors import (
    ConnectionProblem,
    InvalidParameters,
    MethodNotAllowed,
    SpoofedParty,
    UnknownReceiver,
)
from routing.protocol.vocab import InterfaceRole, ModuleID, Role
from routing.registry.directory import ROUTABLE, Directory
from routing.registry.identity import active, live_parties, refs, serves
from storage.models import Platform

PUSH_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
# Who receives a CPO's locations and tariffs: eMSPs, navigation providers, national access
# points (NAP: open-data portals), smart-charging providers and OTHER (topology, Roles).
CPO_DATA_RECEIVERS = frozenset({Role.EMSP, Role.NSP, Role.NAP, Role.OTHER, Role.SCSP})


@dataclass(frozen=True, kw_only=True)
class ModuleSpec:
    """What routing must know of one functional module (keyword-only: seven fields, four of one type)."""

    name: ModuleID
    receiver_roles: frozenset[Role]  # party roles implementing the module's RECEIVER interface
    sender_roles: frozenset[Role]  # party roles implementing its SENDER interface
    owner_role: Role | None = None  # data owner whose ids appear in receiver URLs (client owned objects)
    broadcast: bool = False  # pushes meant for everyone (mod_*: Locations, Tariffs, Tokens)
    stored: bool = False  # pushes kept for GET-all
    index_kind: str | None = None  # routing index kind learned from receiver pushes

    def roles_for(self, interface: str) -> frozenset[Role]:
        """Roles that implement the given interface of this module."""
        return self.receiver_roles if interface == InterfaceRole.RECEIVER else self.sender_roles


MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec(
            name=ModuleID.LOCATIONS,
            receiver_roles=CPO_DATA_RECEIVERS,
            sender_roles=frozenset({Role.CPO}),
            owner_role=Role.CPO,
            broadcast=True,
            stored=True,
            index_kind="location",
        ),
        ModuleSpec(
            name=ModuleID.TARIFFS,
            receiver_roles=CPO_DATA_RECEIVERS,
            sender_roles=frozenset({Role.CPO}),
            owner_role=Role.CPO,
            broadcast=True,
            stored=True,
        ),
        ModuleSpec(
            name=ModuleID.TOKENS,
            receiver_roles=frozenset({Role.CPO}),
            sender_roles=frozenset({Role.EMSP, Role.OTHER}),
            owner_role=Role.EMSP,
            broadcast=True,
            stored=True,
            index_kind="token",
        ),
        ModuleSpec(
            name=ModuleID.SESSIONS,
            receiver_roles=frozenset({Role.EMSP, Role.SCSP, Role.OTHER}),
            sender_roles=frozenset({Role.CPO}),
            owner_role=Role.CPO,
            stored=True,
            index_kind="session",
        ),
        ModuleSpec(
            name=ModuleID.CDRS,
            receiver_roles=frozenset({Role.EMSP, Role.OTHER}),
            sender_roles=frozenset({Role.CPO}),
            owner_role=Role.CPO,
            stored=True,
        ),
        ModuleSpec(
            name=ModuleID.COMMANDS,
            receiver_roles=frozenset({Role.CPO}),
            sender_roles=frozenset({Role.EMSP, Role.OTHER}),
        ),
        ModuleSpec(
            name=ModuleID.CHARGING_PROFILES,
            receiver_roles=frozenset({Role.CPO}),
            sender_roles=frozenset({Role.EMSP, Role.SCSP, Role.OTHER}),
        ),
    )
}


@dataclass(frozen=True)
class RouteKey:
    """What decides the receiver of an open-routing request."""

    kind: str  # 'party' (value is a PartyRef), or an index kind: location, session, token, reservation
    object_id: str = ""
    party: PartyRef | None = None  # for 'party'; for index kinds, the owner if the URL names it
    want_peer: bool = False  # session: route to the eMSP the session went to, not its CPO owner


@dataclass(frozen=True)
class Direct:
    """TO names a party: forward to it."""

    party: PartyRef


@dataclass(frozen=True)
class Broadcast:
    """A push for everyone: store it and fan it out, one leg per receiving party."""


@dataclass(frozen=True)
class GetAll:
    """A list GET answered from the hub's store with the hub's pagination."""


@dataclass(frozen=True)
class FromStore:
    """A single Location GET addressed to the hub: answered from its copy."""


@dataclass(frozen=True)
class Open:
    """No TO header: the content (``key``) names the receiver."""

    key: RouteKey


Route = Direct | Broadcast | GetAll | FromStore | Open


def decide(
    spec: ModuleSpec,
    interface: str,
    method: str,
    segments: list[str],
    headers: RoutingHeaders,
    hub: PartyRef,
    body: Any,
) -> Route:
    """The one routing decision for a functional-module request (4001 when nothing names a receiver)."""
    if method == "GET" and (
        spec.name == ModuleID.COMMANDS
        or (spec.name == ModuleID.CHARGING_PROFILES and interface == InterfaceRole.SENDER)
    ):
        # mod_commands has no GET on either interface; the chargingprofiles Sender takes only
        # POST (results) and PUT (ActiveChargingProfile): there is nothing to read.
        raise MethodNotAllowed(f"{spec.name} has no GET on its {interface.lower()} interface")
    to = headers.to_party
    if to is not None and not to.same(hub):
        return Direct(to)
    if interface == InterfaceRole.SENDER and method == "GET" and not segments:
        return GetAll()
    pushed_for_all = method in PUSH_METHODS and interface == InterfaceRole.RECEIVER and spec.broadcast
    if to is not None:  # TO = the hub itself
        if pushed_for_all:
            return Broadcast()
        if spec.name == ModuleID.LOCATIONS and interface == InterfaceRole.SENDER and method == "GET":
            return FromStore()
        raise UnknownReceiver(f"{method} {spec.name} cannot be addressed to the hub itself")
    if pushed_for_all:  # open routing of CPO/eMSP data for everyone (transport_and_format, Open Routing)
        return Broadcast()
    key = open_route_key(spec, interface, method, segments, body)
    if key is None:
        raise UnknownReceiver(f"cannot tell the receiver of {method} {spec.name} without OCPI-to headers")
    return Open(key)


def _party_of(value: Any) -> PartyRef | None:
    if isinstance(value, dict):
        country_code, party_id = value.get("country_code"), value.get("party_id")
        if isinstance(country_code, str) and isinstance(party_id, str) and country_code and party_id:
            return PartyRef(country_code, party_id)
    return None


def open_route_key(spec: ModuleSpec, interface: str, method: str, segments: list[str], body: Any) -> RouteKey | None:
    """For a request without TO: the content that names the receiver, or None (4001)."""
    name = spec.name
    if interface == InterfaceRole.RECEIVER:
        if name == ModuleID.SESSIONS and len(segments) >= 3:
            owner = PartyRef(segments[0], segments[1])
            if method == "PUT" and (
                token_owner := _party_of(body.get("cdr_token") if isinstance(body, dict) else None)
            ):
                return RouteKey("party", party=token_owner)
            # PATCH (and PUT without cdr_token owner) goes where the session's PUT went.
            return RouteKey("session", segments[2], party=owner, want_peer=True)
        if name == ModuleID.CDRS and method == "POST" and isinstance(body, dict):
            token_owner = _party_of(body.get("cdr_token"))
            return RouteKey("party", party=token_owner) if token_owner else None
        if name == ModuleID.COMMANDS and method == "POST" and segments and isinstance(body, dict):
            command = segments[0].upper()
            if command in ("START_SESSION", "RESERVE_NOW", "UNLOCK_CONNECTOR") and isinstance(
                body.get("location_id"), str
            ):
                return RouteKey("location", body["location_id"])
            if command == "STOP_SESSION" and isinstance(body.get("session_id"), str):
                return RouteKey("session", body["session_id"])
            if command == "CANCEL_RESERVATION" and isinstance(body.get("reservation_id"), str):
                return RouteKey("reservation", body["reservation_id"])
            return None
        if name == ModuleID.CHARGING_PROFILES and segments:
            return RouteKey("session", segments[0])
        return None
    # SENDER interface
    if not segments:
        return None
    if name == ModuleID.LOCATIONS and method == "GET":
        return RouteKey("location", segments[0])
    if name == ModuleID.TOKENS and method == "POST" and len(segments) >= 2 and segments[1].lower() == "authorize":
        return RouteKey("token", segments[0])
    if name == ModuleID.SESSIONS and method == "PUT" and len(segments) >= 2:
        return RouteKey("session", segments[0])
    if name == ModuleID.CHARGING_PROFILES and method == "PUT":
        return RouteKey("session", segments[0], want_peer=True)
    return None


def pick_target(directory: Directory, party: PartyRef, spec: ModuleSpec, interface: str) -> Target:
    """The platform serving ``party`` with an endpoint for (module, interface).

    4001 when the hub knows no such party in a role implementing the interface (or its platform
    publishes no endpoint for the module); 4003 when it knows it but its platform is not
    connected (SUSPENDED, unregistered, or the party left the platform).
    """
    candidates = directory.parties(party.key, include_left=True)
    if not candidates:
        raise UnknownReceiver(f"unknown receiver {party}")
    # Only a party in a role that implements this interface: a command addressed to an eMSP is
    # not delivered to that eMSP just because its platform also publishes a commands endpoint.
    preferred = [p for p in candidates if p.role in spec.roles_for(interface)]
    if any(p.contested for p in candidates):
        # Held by two platforms (a database from before the one-platform rule): whichever came
        # first must not receive the other's sessions, commands or CDRs (routing/registry/identity.py).
        raise UnknownReceiver(f"receiver {party} is claimed by several platforms; the hub operator must resolve it")
    disconnected = False
    for p in preferred:
        platform = directory.platform(p.platform_id)
        if platform is None or platform.status not in ROUTABLE or not platform.registered or not active(p):
            disconnected = True
            continue
        url = platform.endpoint(spec.name, interface)
        if url is not None:
            return Target(platform, PartyRef(p.country_code, p.party_id), url)
        if platform.version == "2.1.1" and spec.name == ModuleID.CHARGING_PROFILES:
            # 2.1.1 has no charging profiles module: say so rather than "no endpoint".
            raise InvalidParameters(f"receiver {party} speaks OCPI 2.1.1, which has no charging profiles")
    if disconnected:
        raise ConnectionProblem(f"receiver {party} is known but not connected to the hub")
    raise UnknownReceiver(f"receiver {party} has no {spec.name} {interface} endpoint")


def broadcast_targets(directory: Directory, spec: ModuleSpec, *, exclude_platform: int | None) -> list[Target]:
    """Every connected party in a receiving role whose platform has the module's RECEIVER: one leg each.

    A platform hosting two eMSPs gets two requests, TO set to each (transport_and_format,
    Broadcast Push: the hub addresses every receiving party).
    """
    # Broadcast Push goes to the "opposite role" (CPO data to eMSPs, NSPs, OTHER and NAPs): a
    # smart-charging provider takes directed sessions and profiles, not everyone's broadcasts
    # (transport_and_format, Broadcast Push).
    roles = spec.receiver_roles - {Role.SCSP}
    targets: list[Target] = []
    for platform in directory.platforms():
        if platform.id == exclude_platform or platform.status not in ROUTABLE or not platform.registered:
            continue
        url = platform.endpoint(spec.name, InterfaceRole.RECEIVER)
        if url is None:
            continue
        for ref in refs(live_parties(platform, roles)):
            targets.append(Target(platform, ref, url))
    return targets


def caller_party(platform: Platform, headers: RoutingHeaders, roles: frozenset[str] | None) -> PartyRef:
    """The sending party: FROM if given (and an active party of the caller), else the caller's party in the role."""
    if headers.from_party is not None:
        if not serves(platform, headers.from_party):
            raise SpoofedParty(f"OCPI-from {headers.from_party} is not a party of the calling platform")
        return headers.from_party
    matching = live_parties(platform, roles) or live_parties(platform)
    if not matching:
        raise SpoofedParty("the calling platform has no registered party")
    return PartyRef(matching[0].country_code, matching[0].party_id)


def check_owner(platform: Platform, owner: PartyRef, role: str | None) -> None:
    """Anti-spoofing: a caller may only push objects owned by one of its own active parties."""
    if not serves(platform, owner, None if role is None else (role,)):
        raise SpoofedParty(f"party {owner} is not served by the calling platform")
