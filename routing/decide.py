"""Pure routing decisions (DESIGN.md section 6): no I/O, tested without HTTP.

``classify`` reads the routing headers; ``open_route_key`` says what content decides the
receiver when TO is absent (open routing); ``pick_target`` turns a party into a platform and
endpoint, or refuses with 4001.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from routing.directory import ROUTABLE, Directory
from routing.errors import InvalidParameters, UnknownReceiver
from routing.headers import PartyRef, RoutingHeaders
from storage.models import Platform

PUSH_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
CPO_DATA_RECEIVERS = frozenset({"EMSP", "NSP", "OTHER", "SCSP"})


@dataclass(frozen=True)
class ModuleSpec:
    """What routing must know of one functional module."""

    name: str
    receiver_roles: frozenset[str]  # party roles implementing the module's RECEIVER interface
    sender_roles: frozenset[str]  # party roles implementing its SENDER interface
    owner_role: str | None = None  # data owner whose ids appear in receiver URLs (client owned objects)
    broadcast: bool = False  # pushes meant for everyone (mod_*: Locations, Tariffs, Tokens)
    stored: bool = False  # pushes kept for GET-all
    index_kind: str | None = None  # routing index kind learned from receiver pushes

    def roles_for(self, interface: str) -> frozenset[str]:
        """Roles that implement the given interface of this module."""
        return self.receiver_roles if interface == "RECEIVER" else self.sender_roles


MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in (
        ModuleSpec("locations", CPO_DATA_RECEIVERS, frozenset({"CPO"}), "CPO", True, True, "location"),
        ModuleSpec("tariffs", CPO_DATA_RECEIVERS, frozenset({"CPO"}), "CPO", True, True),
        ModuleSpec("tokens", frozenset({"CPO"}), frozenset({"EMSP", "OTHER"}), "EMSP", True, True, "token"),
        ModuleSpec("sessions", frozenset({"EMSP", "SCSP", "OTHER"}), frozenset({"CPO"}), "CPO", False, True, "session"),
        ModuleSpec("cdrs", frozenset({"EMSP", "OTHER"}), frozenset({"CPO"}), "CPO", False, True),
        ModuleSpec("commands", frozenset({"CPO"}), frozenset({"EMSP", "OTHER"})),
        ModuleSpec("chargingprofiles", frozenset({"CPO"}), frozenset({"EMSP", "SCSP", "OTHER"})),
    )
}


class Kind(Enum):
    """How a request is routed."""

    DIRECT = "direct"
    OPEN = "open"
    BROADCAST = "broadcast"
    GET_ALL = "get-all"


@dataclass(frozen=True)
class RouteKey:
    """What decides the receiver of an open-routing request."""

    kind: str  # 'party' (value is a PartyRef), or an index kind: location, session, token, reservation
    object_id: str = ""
    party: PartyRef | None = None  # for 'party'; for index kinds, the owner if the URL names it
    want_peer: bool = False  # session: route to the eMSP the session went to, not its CPO owner


def classify(
    spec: ModuleSpec, interface: str, method: str, segments: list[str], headers: RoutingHeaders, hub: PartyRef
) -> Kind:
    """Direct, broadcast, get-all or open routing, from the headers and the method."""
    is_list = interface == "SENDER" and method == "GET" and not segments
    to = headers.to_party
    if to is not None and not to.same(hub):
        return Kind.DIRECT
    if is_list:
        return Kind.GET_ALL
    if to is not None:  # TO = the hub itself
        if method in PUSH_METHODS and interface == "RECEIVER" and spec.broadcast:
            return Kind.BROADCAST
        raise UnknownReceiver(f"{method} {spec.name} cannot be addressed to the hub itself")
    return Kind.OPEN


def _party_of(value: Any) -> PartyRef | None:
    if isinstance(value, dict):
        cc, pid = value.get("country_code"), value.get("party_id")
        if isinstance(cc, str) and isinstance(pid, str) and cc and pid:
            return PartyRef(cc, pid)
    return None


def open_route_key(
    spec: ModuleSpec, interface: str, method: str, segments: list[str], body: Any
) -> RouteKey | Kind | None:
    """For a request without TO: the content that names the receiver, BROADCAST, or None (4001)."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    name = spec.name
    if interface == "RECEIVER":
        if spec.broadcast and method in PUSH_METHODS:
            return Kind.BROADCAST
        if name == "sessions" and len(segments) >= 3:
            owner = PartyRef(segments[0], segments[1])
            if method == "PUT" and (
                token_owner := _party_of(body.get("cdr_token") if isinstance(body, dict) else None)
            ):
                return RouteKey("party", party=token_owner)
            # PATCH (and PUT without cdr_token owner) goes where the session's PUT went.
            return RouteKey("session", segments[2], party=owner, want_peer=True)
        if name == "cdrs" and method == "POST" and isinstance(body, dict):
            token_owner = _party_of(body.get("cdr_token"))
            return RouteKey("party", party=token_owner) if token_owner else None
        if name == "commands" and method == "POST" and segments and isinstance(body, dict):
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
        if name == "chargingprofiles" and segments:
            return RouteKey("session", segments[0])
        return None
    # SENDER interface
    if not segments:
        return None
    if name == "locations" and method == "GET":
        return RouteKey("location", segments[0])
    if name == "tokens" and method == "POST" and len(segments) >= 2 and segments[1].lower() == "authorize":
        return RouteKey("token", segments[0])
    if name == "sessions" and method == "PUT" and len(segments) >= 2:
        return RouteKey("session", segments[0])
    if name == "chargingprofiles" and method == "PUT":
        return RouteKey("session", segments[0], want_peer=True)
    return None


@dataclass(frozen=True)
class Target:
    """One receiver: platform, the party addressed, and the endpoint base URL."""

    platform: Platform
    party: PartyRef
    base_url: str


def pick_target(
    directory: Directory, party: PartyRef, spec: ModuleSpec, interface: str, *, sync: bool = False
) -> Target:
    """The platform serving ``party`` with an endpoint for (module, interface); 4001 otherwise."""
    candidates = directory.parties(party.key)
    if not candidates:
        raise UnknownReceiver(f"unknown receiver {party}")
    roles = spec.roles_for(interface)
    # Only a party in a role that implements this interface: a command addressed to an eMSP is
    # not delivered to that eMSP just because its platform also publishes a commands endpoint.
    preferred = [p for p in candidates if p.role in roles]
    for p in preferred:
        platform = directory.platform(p.platform_id)
        if platform is None or platform.status not in ROUTABLE or not platform.registered:
            continue
        url = platform.endpoint(spec.name, interface)
        if url is not None:
            return Target(platform, PartyRef(p.country_code, p.party_id), url)
        if platform.version == "2.1.1" and spec.name == "chargingprofiles":
            # 2.1.1 has no charging profiles module: say so rather than "no endpoint".
            raise InvalidParameters(
                f"receiver {party} speaks OCPI 2.1.1, which has no charging profiles", http_status=200
            )
    raise UnknownReceiver(f"receiver {party} is not connected or has no {spec.name} {interface} endpoint")


def broadcast_targets(directory: Directory, spec: ModuleSpec, *, exclude_platform: int) -> list[Target]:
    """Every connected platform with a RECEIVER for the module and a party in the opposite role."""
    targets: list[Target] = []
    for platform in directory.platforms():
        if platform.id == exclude_platform or platform.status not in ROUTABLE or not platform.registered:
            continue
        url = platform.endpoint(spec.name, "RECEIVER")
        party = next((p for p in platform.parties if p.role in spec.receiver_roles), None)
        if url is not None and party is not None:
            # One leg per platform: it stores the data once, TO names one of its receiving parties.
            targets.append(Target(platform, PartyRef(party.country_code, party.party_id), url))
    return targets


def caller_party(platform: Platform, headers: RoutingHeaders, roles: frozenset[str] | None) -> PartyRef:
    """The sending party: FROM if given (and the caller's own), else the caller's party in the role."""
    own = {p.key for p in platform.parties}
    if headers.from_party is not None:
        if headers.from_party.key not in own:
            raise InvalidParameters(
                f"OCPI-from {headers.from_party} is not a party of the calling platform", http_status=403
            )
        return headers.from_party
    matching = [p for p in platform.parties if roles is None or p.role in roles] or list(platform.parties)
    if not matching:
        raise InvalidParameters("the calling platform has no registered party", http_status=403)
    return PartyRef(matching[0].country_code, matching[0].party_id)


def check_owner(platform: Platform, owner: PartyRef, role: str | None) -> None:
    """Anti-spoofing: a caller may only push objects owned by one of its own parties."""
    own = {p.key for p in platform.parties if role is None or p.role == role}
    if owner.key not in own:
        raise InvalidParameters(f"party {owner} is not served by the calling platform", http_status=403)
