"""Where the routing core meets the translation: the way in, the way out, and the answers.

``inbound`` (called once, at the top of ``RoutingService.handle``) turns a partner's request
body into 2.2.1 for the hub's decisions and its store, and describes the request on its Flow
(routing/versions/flow.py: what the caller sent, in which version; opened by the handler with
``open_flow`` and carried on ``Inbound.flow``). ``outbound`` (called once per leg, where every
leg leaves: ``Delivery.push`` and ``send_leg``; the Flow rides on ``Leg.flow``) gives each receiver its own version: the
caller's original bytes when both speak the same version (never re-encoded, so 2.3.0
extensions pass between 2.3.0 partners), the 2.2.1 body when it speaks 2.2.1, a translation
otherwise; toward 2.1.1 the routing headers are stripped and charging profiles refused.
routing/versions/answers.py does the same for the data of synchronous answers (CommandResponse,
AuthorizationInfo, GET results). After every translation the object is validated against the
receiver version's model (routing/versions/validate.py): what cannot be derived is refused
with a Loss record. Every Loss is kept on the Flow for the traffic record, the
metric and ``/status``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from routing.messages import Inbound, Leg
from routing.protocol.errors import InvalidParameters, Unrepresentable
from routing.registry.identity import live_parties
from routing.versions import CORE, MODULE_OF, Context, Loss, Untranslatable, from_core, to_core, validate, visibility
from routing.versions.flow import Flow
from storage.db import Store
from storage.models import Platform

_COMMANDS = {
    "START_SESSION": "StartSession",
    "STOP_SESSION": "StopSession",
    "RESERVE_NOW": "ReserveNow",
    "UNLOCK_CONNECTOR": "UnlockConnector",
    "CANCEL_RESERVATION": "CancelReservation",
}
_MAIN_KIND = {"tariffs": "Tariff", "tokens": "Token", "sessions": "Session", "cdrs": "CDR"}
# Location, EVSE, Connector by the number of object ids in the path (after the receiver URL's
# country_code/party_id, mod_locations 8.2.1 and 8.2.2: the Sender URL has none).
_LOCATION_LEVEL = {1: "Location", 2: "EVSE", 3: "Connector"}


# What a translator raises on JSON that is not an object of the expected shape (a string where
# an object belongs...): the caller gets 2001, never a 500.
SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError)


def version_of(platform: Platform | None) -> str:
    """A platform's OCPI version (2.2.1 until registered)."""
    return (platform.version if platform is not None else None) or CORE


def kinds(module: str, interface: str, method: str, segments: list[str]) -> tuple[str | None, bool, str | None]:
    """(request body kind, is a PATCH body, answer data kind) of one request shape."""
    upper = segments[0].upper() if segments else ""
    if module == "commands":
        return (_COMMANDS.get(upper), False, "CommandResponse") if interface == "RECEIVER" else (None, False, None)
    if module == "chargingprofiles":
        if interface == "SENDER":  # the CPO's PUT {url}/{session_id} (mod_chargingprofiles 10.2.2.1)
            return ("ActiveChargingProfile" if method == "PUT" else None), False, None
        return ("SetChargingProfile" if method == "PUT" else None), False, "ChargingProfileResponse"
    if module == "tokens" and segments and segments[-1].lower() == "authorize":
        return "LocationReferences", False, "AuthorizationInfo"
    if module == "sessions" and segments and segments[-1].lower() == "charging_preferences":
        # mod_sessions 9.2.1.2: the body is ChargingPreferences, the answer a ChargingPreferencesResponse.
        return ("ChargingPreferences" if method == "PUT" else None), False, None
    if module == "locations":
        ids = len(segments) - (2 if interface == "RECEIVER" else 0)
        kind: str | None = _LOCATION_LEVEL.get(ids, "Location")
    else:
        kind = _MAIN_KIND.get(module)
    if method in ("PUT", "PATCH", "POST"):
        return kind, method == "PATCH", None
    return None, False, kind if method == "GET" else None


def translated_module(kind: str) -> str:
    """The module an object kind belongs to (for a Loss record)."""
    return MODULE_OF.get(kind, kind)


def context_of(platform: Platform | None) -> Context:
    """What the translators know of a platform: its one party and its version."""
    party = next(iter(live_parties(platform)), None) if platform is not None else None
    origin = version_of(platform) if platform is not None else ""
    return Context(party.country_code, party.party_id, origin=origin) if party else Context(origin=origin)


def open_flow(caller: Platform) -> Flow:
    """A request's Flow, opened where it enters: the caller's version and party, nothing sent yet."""
    return Flow(caller, version_of(caller), None, None, False, None, context_of(caller))


def dumps_json(data: Any) -> bytes:
    """Compact UTF-8 JSON, as the hub sends it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def inbound(req: Inbound, store: Store | None = None, now: str | None = None) -> Inbound:
    """The way in: the request body as 2.2.1, and the request described on its Flow (``req.flow``).

    Each version's own rules apply before translation: a 2.1.1 PATCH need not carry
    ``last_updated`` (2.1.1 mod_locations 2.2.3 example: ``{"status": "CHARGING"}``), 2.2.1
    requires it (transport_and_format, PATCH), so the 2.2.1 side gets the hub's receive time
    ``now``, recorded as approximated.
    """
    flow = req.flow
    version = flow.version
    kind, partial, answer_kind = kinds(req.module, req.interface, req.method, req.segments)
    flow.raw, flow.kind, flow.partial, flow.answer_kind, flow.store = req.raw_body, kind, partial, answer_kind, store
    if answer_kind == "AuthorizationInfo" and req.segments:
        flow.object_id, flow.token_type = req.segments[0], (req.query.get("type") or "RFID").upper()
    if answer_kind in ("EVSE", "Connector") and req.interface == "SENDER":
        flow.object_id = req.segments[0]  # the Location whose publish flag hides its EVSEs too
    if version == CORE or kind is None or req.body is None:
        return req
    if version == "2.1.1" and kind in ("Session", "CDR") and store is not None:
        flow.ctx = await _with_token(flow.ctx, store, req.body)
    try:
        translated = to_core(version, kind, req.body, flow.ctx, partial)
    except SHAPE_ERRORS as exc:  # a body that is not an OCPI object of its kind at all
        raise InvalidParameters(f"body is not an OCPI {version} {kind}: {type(exc).__name__}") from exc
    flow.losses += [(None, loss) for loss in translated.losses]
    data = translated.data
    if version == "2.1.1" and partial and isinstance(data, dict) and "last_updated" not in data and now:
        data = {**data, "last_updated": now}
        loss = Loss(translated_module(kind), "last_updated", "approximated", "2.1.1 PATCH without it: hub receive time")
        flow.losses.append((None, loss))
        return replace(req, body=data, raw_body=dumps_json(data))
    return replace(req, body=translated.data, raw_body=dumps_json(translated.data))


def inbound_callback(flow: Flow, module: str, raw_body: bytes) -> bytes:
    """The way in for a result posted to a hub callback URL (CommandResult and the like)."""
    version = flow.version
    kind = "CommandResult" if module == "commands" else None
    flow.raw, flow.kind = raw_body, kind
    if version == CORE or kind is None:
        return raw_body
    try:
        body = json.loads(raw_body)
    except ValueError:
        return raw_body
    try:
        translated = to_core(version, kind, body, flow.ctx)
    except SHAPE_ERRORS as exc:
        raise InvalidParameters(f"body is not an OCPI {version} {kind}: {type(exc).__name__}") from exc
    flow.losses += [(None, loss) for loss in translated.losses]
    return dumps_json(translated.data)


def open_answer(flow: Flow, module: str, kind: str | None = None) -> None:
    """The Flow of a GET the hub relays outside the routed handler (a proxied next page or CDR).

    Its answer data is translated like a routed GET's: from the receiver's version to 2.2.1
    (``answer_in``) and on to the caller's (``answer_out``).
    """
    flow.answer_kind = kind or ("Location" if module == "locations" else _MAIN_KIND.get(module))


async def withheld(leg: Leg) -> bool:
    """Whether this push must not reach its receiver: an unpublished Location toward 2.1.1."""
    flow = leg.flow
    if version_of(leg.platform) != "2.1.1" or leg.module != "locations" or leg.method == "GET":
        return False
    if flow is None or flow.store is None or leg.body is None:
        return False
    try:
        body = json.loads(leg.body) if flow.kind == "Location" else {}  # EVSE/Connector: the stored copy
    except ValueError:
        return False
    visible, loss = await visibility.location_verdict(flow.store, leg.platform, body, leg.object_key)
    if loss is not None:
        flow.losses.append((leg.platform.id, loss))
    return not visible


async def outbound(leg: Leg, *, checked: bool = False) -> Leg:
    """The way out: this leg in its receiver's version (no routing headers toward 2.1.1).

    ``checked``: the caller already asked ``withheld`` (a broadcast skips such legs instead).
    """
    receiver = version_of(leg.platform)
    routing = None if receiver == "2.1.1" else leg.routing
    if receiver == "2.1.1" and leg.module == "chargingprofiles":
        raise InvalidParameters(f"platform {leg.platform.name} speaks OCPI 2.1.1, which has no charging profiles")
    if not checked and await withheld(leg):
        raise InvalidParameters(f"platform {leg.platform.name} speaks OCPI 2.1.1: an unpublished Location is withheld")
    flow = leg.flow
    if flow is not None:
        flow.receiver_version = receiver  # whose answer is relayed: what answer_out starts from
    if flow is None or leg.body is None or flow.kind is None:
        return replace(leg, routing=routing) if routing is not leg.routing else leg
    body = leg.body
    if receiver == flow.version and flow.version != CORE and flow.raw is not None:
        body = _same_version_body(flow.raw, leg.body)
    elif receiver != flow.version:
        data = json.loads(leg.body)
        if receiver != CORE:
            ctx = flow.ctx
            if receiver == "2.1.1" and flow.kind in ("Session", "CDR") and flow.store is not None:
                ctx = await with_location(ctx, flow.store, data)
            try:
                translated = from_core(receiver, flow.kind, data, ctx, flow.partial)
            except SHAPE_ERRORS as exc:
                raise InvalidParameters(f"body is not an OCPI 2.2.1 {flow.kind}: {type(exc).__name__}") from exc
            except Untranslatable as exc:
                message = f"platform {leg.platform.name} speaks OCPI {receiver}: {exc}"
                raise InvalidParameters(message) from exc
            flow.losses += [(leg.platform.id, loss) for loss in translated.losses]
            data = translated.data
            body = dumps_json(data)
        refuse_invalid(flow, leg.platform, receiver, flow.kind, data)
    if body is leg.body and routing is leg.routing:  # most legs: the same version, routing headers kept
        return leg
    return replace(leg, body=body, routing=routing)


def refuse_invalid(flow: Flow, platform: Platform | None, version: str, kind: str, data: Any) -> None:
    """Unrepresentable (with a Loss per field) when a translation of a valid object is invalid in ``version``."""
    bad = (validate.patch_problems if flow.partial else validate.problems)(version, kind, data)
    if not bad or not flow.source_valid():
        return
    module = translated_module(kind)
    detail = f"required or invalid in OCPI {version} and not derivable: not delivered"
    flow.losses += [(platform.id if platform else None, Loss(module, path, "dropped", detail)) for path in bad]
    who = f"platform {platform.name}" if platform is not None else "the caller"
    named = ", ".join(bad[: validate.MAX_NAMED])
    raise Unrepresentable(f"{who} speaks OCPI {version}: the {kind} would lack or break {named}")


def _same_version_body(original: bytes, core: bytes) -> bytes:
    """The caller's own bytes; only a response_url the hub swapped for its callback changes."""
    try:
        sent, now = json.loads(original), json.loads(core)
    except ValueError:
        return original
    if isinstance(sent, dict) and isinstance(now, dict) and sent.get("response_url") != now.get("response_url"):
        return dumps_json({**sent, "response_url": now.get("response_url")})
    return original


async def _with_token(ctx: Context, store: Store, body: Any) -> Context:
    """2.1.1 names the token by auth_id (2.2.1 contract_id): the hub's stored Token, if it has one."""
    from storage import objects as object_sql  # storage stays out of this module's import time

    auth_id = body.get("auth_id") if isinstance(body, dict) else None
    if not isinstance(auth_id, str) or not auth_id:
        return ctx
    found = [json.loads(b) for b in await object_sql.find_by_alt_id(store, "tokens", auth_id)]
    token = found[0] if len(found) == 1 or len({(t.get("country_code"), t.get("uid")) for t in found}) == 1 else None
    return replace(ctx, token_lookup=lambda wanted: token if wanted == auth_id else None)


def origin(flow: Flow) -> tuple[str, Any] | None:
    """(version, body) the caller sent, when it is not 2.2.1: what the hub keeps beside its copy."""
    if flow.version == CORE or flow.kind is None or flow.raw is None:
        return None
    try:
        return flow.version, json.loads(flow.raw)
    except ValueError:
        return None


def identity(obj: Any) -> tuple[str, ...]:
    """What names a stored object across versions: owner and id (or uid)."""
    if not isinstance(obj, dict):
        return ()
    ident = obj.get("id", obj.get("uid"))
    return tuple(str(obj.get(k) or "").upper() for k in ("country_code", "party_id")) + (str(ident or "").upper(),)


def keep_originals(flow: Flow, copies: list[tuple[Any, str | None, Any]]) -> None:
    """Stored (2.2.1 copy, sender's version, sender's body): the caller's own version is served as sent."""
    for core, version, sent in copies:
        if version == flow.version and sent is not None:
            flow.originals[identity(core)] = sent


async def with_location(ctx: Context, store: Store, session: Any) -> Context:
    """2.1.1 Sessions and CDRs embed their Location: fetch it from the hub's store."""
    from storage import objects as object_sql  # storage stays out of this module's import time

    if not isinstance(session, dict):
        return ctx
    stored = await object_sql.get_any(store, "locations", location_key(session))
    return located(ctx, json.loads(stored.body) if stored is not None else None)


def location_key(session: dict[str, Any]) -> str:
    """The store key of the Location a 2.2.1 Session (``location_id``) or CDR (``cdr_location``) names."""
    key = "/".join(str(session.get(k, "")) for k in ("country_code", "party_id", "location_id")).upper()
    if isinstance(session.get("cdr_location"), dict):  # a CDR names its Location in cdr_location
        where = (session.get("country_code"), session.get("party_id"), session["cdr_location"].get("id"))
        key = "/".join(str(k or "") for k in where).upper()
    return key


def located(ctx: Context, found: Any) -> Context:
    """``ctx`` whose Location lookup answers ``found`` (the one Location a Session or CDR embeds)."""
    return replace(ctx, location_lookup=lambda country_code, party_id, location_id: found)


def flow_origin(flow: Flow | None) -> dict[str, Any]:
    """What the way out needs of a request's Flow, as JSON: kept with a broadcast record (storage/broadcasts.py)."""
    if flow is None:
        return {}
    raw = flow.raw.decode("utf-8", "surrogateescape") if flow.raw is not None else None
    return {
        "version": flow.version,
        "raw": raw,
        "kind": flow.kind,
        "partial": flow.partial,
        "country_code": flow.ctx.country_code,
        "party_id": flow.ctx.party_id,
    }


def replay(origin: dict[str, Any], caller: Platform | None, store: Store | None) -> Flow:
    """The Flow of a request accepted earlier, from its ``flow_origin``: each leg's ``outbound`` as then."""
    raw = origin.get("raw")
    version = str(origin.get("version") or CORE)
    ctx = Context(str(origin.get("country_code") or ""), str(origin.get("party_id") or ""), origin=version)
    return Flow(
        caller,
        version,
        raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else None,
        origin.get("kind"),
        bool(origin.get("partial")),
        None,
        ctx,
        store,
    )
