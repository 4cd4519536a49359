"""The answer side of the translation: a receiver's answer data in, the caller's version out.

``answer_in`` (where the leg's answer arrives, routing/peers/forward.py) turns a receiver's
synchronous answer data (CommandResponse, AuthorizationInfo, GET results) into 2.2.1 and fills
what its version lacks but 2.2.1 requires: a 2.1.1 AuthorizationInfo has no ``token``, taken
from the hub's Token store. ``answer_for_caller`` (in the handler, before the answer is sent)
hides unpublished Locations from 2.1.1 callers (routing/versions/visibility.py), translates to
the caller's version and validates: an answer object invalid for the caller is refused (list
items dropped), with Loss records, when the receiver's own answer was valid.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from routing.messages import Leg
from routing.peers.exchange import PeerResponse
from routing.protocol.errors import UnknownLocation, UnusableAnswer
from routing.registry.identity import live_parties
from routing.versions import CORE, Loss, Untranslatable, from_core, to_core, validate, visibility
from routing.versions.flow import Flow
from routing.versions.wire import (
    SHAPE_ERRORS,
    context_of,
    dumps_json,
    identity,
    located,
    location_key,
    translated_module,
    version_of,
    with_location,
)
from storage.db import Store


async def _stored_token(store: Store, owner: tuple[str, str], uid: str, token_type: str) -> dict[str, Any] | None:
    """The hub's 2.2.1 copy of a Token (pushed or pulled), by owner, uid and type."""
    from storage import objects as object_sql  # storage stays out of this module's import time

    stored = await object_sql.get_any(store, "tokens", "/".join((*owner, uid, token_type)).upper())
    return json.loads(stored.body) if stored is not None else None


async def _fill_authorization(flow: Flow, leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
    """2.2.1 AuthorizationInfo requires the Token; 2.1.1's has none: the hub's stored copy."""
    if "token" in data or flow.store is None or flow.object_id is None:
        return data
    ctx = context_of(leg.platform)
    token = await _stored_token(flow.store, (ctx.country_code, ctx.party_id), flow.object_id, flow.token_type)
    if token is None:
        return data  # validation refuses it below, naming the field
    flow.losses.append((None, Loss("tokens", "token", "approximated", "2.1.1 answer has none: the hub's copy")))
    return {**data, "token": token}


async def answer_in(leg: Leg, response: PeerResponse) -> PeerResponse:
    """A receiver's synchronous answer data as 2.2.1 (its CommandResponse, AuthorizationInfo...)."""
    flow = leg.flow
    receiver = version_of(leg.platform)
    if flow is None or flow.answer_kind is None or receiver == CORE or response.envelope is None:
        return response
    data = response.envelope.get("data")
    if not isinstance(data, dict | list):
        return response
    if receiver == flow.version:
        return response  # same version both ends: relayed as received
    try:
        translated = to_core(receiver, flow.answer_kind, data, context_of(leg.platform))
    except SHAPE_ERRORS:
        return response  # an answer of another shape is relayed as it came
    flow.losses += [(None, loss) for loss in translated.losses]
    core = translated.data
    if flow.answer_kind == "AuthorizationInfo" and isinstance(core, dict):
        core = await _fill_authorization(flow, leg, core)
    envelope = {**response.envelope, "data": core}
    flow.receiver_version = CORE
    flow.answer_origin = receiver
    flow.answer_source_ok = validate.valid(receiver, flow.answer_kind, data)
    return replace(response, body=dumps_json(envelope), envelope=envelope)


async def answer_for_caller(flow: Flow, status: int, body: bytes) -> bytes:
    """The answer body for the caller: visible to it, in its version, valid for it."""
    if flow.answer_kind is None or status >= 300 or flow.answer_ready:
        return body
    translate = flow.version != CORE and flow.receiver_version != flow.version
    if not translate and not flow.answer_origin and not (flow.version == "2.1.1" and flow.store):
        return body
    try:
        envelope = json.loads(body)
    except ValueError:
        return body
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, dict | list):
        return body
    if flow.version == "2.1.1" and flow.store is not None and flow.caller:
        if flow.answer_kind == "Location":
            data = await _visible(flow, data)
        elif flow.answer_kind in ("EVSE", "Connector") and flow.object_id:
            await _parent_visible(flow, flow.object_id)
    if translate or flow.answer_origin:
        items = [await _for_caller(flow, item, translate, isinstance(data, dict)) for item in _items(data)]
        data = items[0] if isinstance(data, dict) else [i for i in items if i is not _DROP]
    return dumps_json({**envelope, "data": data})


_DROP: Any = object()


async def _parent_visible(flow: Flow, location_id: str) -> None:
    """An EVSE or Connector of an unpublished Location is as hidden from 2.1.1 as the Location (2003)."""
    from storage import objects as object_sql  # storage stays out of this module's import time

    assert flow.store is not None and flow.caller is not None
    viewers = [f"{p.country_code}*{p.party_id}".upper() for p in live_parties(flow.caller)]
    for copy in await object_sql.find(flow.store, "locations", location_id, viewers=viewers):
        if not (await visibility.location_verdict(flow.store, flow.caller, json.loads(copy.body)))[0]:
            raise UnknownLocation("no such location is published to this platform")


def _items(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


WITHHELD: Any = _DROP  # a stored list item the caller does not get (for_reader)


async def for_reader(flow: Flow, items: list[Any]) -> list[tuple[Any, list[tuple[int | None, Loss]]]]:
    """Stored 2.2.1 list items as the caller gets them (or WITHHELD), each with its Loss records.

    A GET-all page for a reader on another version is cut from what it actually gets
    (routing/getall.py), so every item is judged here first, as ``answer_for_caller`` would:
    hidden from 2.1.1 (unpublished Location), translated, validated. The lookups are read
    once per batch, not once per item: the Tokens unpublished Locations name, the Locations
    2.1.1 Sessions and CDRs embed. The caller keeps the Loss records of what it serves
    (``answer_ready`` then passes the page through ``answer_for_caller`` untouched).
    """
    from storage import objects as object_sql  # storage stays out of this module's import time

    kind, store, caller = flow.answer_kind, flow.store, flow.caller
    assert kind is not None
    known_tokens: dict[str, str] = {}
    locations: dict[str, str] | None = None
    hide = flow.version == "2.1.1" and kind == "Location" and store is not None and caller is not None
    if hide:
        assert store is not None and caller is not None
        wanted = [k for item in items for k in visibility.own_token_keys(caller, item)]
        known_tokens = await object_sql.get_many(store, "tokens", wanted)
    if flow.version == "2.1.1" and kind in ("Session", "CDR") and store is not None:
        keys = [location_key(item) for item in items if isinstance(item, dict)]
        locations = await object_sql.get_many(store, "locations", keys)
    translate = flow.version != CORE and flow.receiver_version != flow.version
    out: list[tuple[Any, list[tuple[int | None, Loss]]]] = []
    for item in items:
        if hide:
            assert caller is not None
            listed = any(k in known_tokens for k in visibility.own_token_keys(caller, item))
            if not visibility.verdict(item, listed)[0]:
                out.append((WITHHELD, []))  # as answer_for_caller: no Loss for a list item left out
                continue
        before = len(flow.losses)
        served = await _for_caller(flow, item, translate, False, locations)
        out.append((served, flow.losses[before:]))
        del flow.losses[before:]
    return out


async def _for_caller(
    flow: Flow, item: Any, translate: bool, single: bool, locations: dict[str, str] | None = None
) -> Any:
    """One answer object in the caller's version (refused: _DROP in a list, 4000 for one).

    A stored copy whose sender spoke the caller's version is served as sent; anything else is
    translated and validated. ``locations``: the Locations 2.1.1 Sessions and CDRs embed, read
    already (by store key); None: read here.
    """
    kind = flow.answer_kind
    assert kind is not None
    sent = flow.originals.get(identity(item)) if flow.originals else None
    if sent is not None:
        return sent
    if translate:
        ctx = replace(flow.ctx, origin=flow.answer_origin)
        if flow.version == "2.1.1" and kind in ("Session", "CDR") and isinstance(item, dict) and locations is not None:
            found = locations.get(location_key(item))
            ctx = located(ctx, json.loads(found) if found is not None else None)
        elif flow.version == "2.1.1" and kind in ("Session", "CDR") and flow.store is not None:
            ctx = await with_location(ctx, flow.store, item)  # 2.1.1 embeds the Location
        try:
            result = from_core(flow.version, kind, item, ctx)
        except (Untranslatable, *SHAPE_ERRORS):
            return item  # an answer of another shape is relayed as it came
        flow.losses += [(flow.caller.id if flow.caller else None, loss) for loss in result.losses]
        source_ok = flow.answer_source_ok if flow.answer_origin else validate.valid(CORE, kind, item)
        item = result.data
    else:
        source_ok = flow.answer_source_ok
    bad = validate.problems(flow.version, kind, item) if source_ok else []
    if not bad:
        return item
    to = flow.caller.id if flow.caller else None
    detail = f"required or invalid in OCPI {flow.version} and not derivable: not delivered"
    flow.losses += [(to, Loss(translated_module(kind), path, "dropped", detail)) for path in bad]
    if single:
        named = ", ".join(bad[: validate.MAX_NAMED])
        raise UnusableAnswer(f"the answer cannot be given as a valid OCPI {flow.version} {kind}: {named} missing")
    return _DROP


async def _visible(flow: Flow, data: Any) -> Any:
    """Unpublished Locations a 2.1.1 caller may not see: left out of a list, 2003 for one."""
    assert flow.store is not None and flow.caller is not None
    if isinstance(data, dict):
        visible, _ = await visibility.location_verdict(flow.store, flow.caller, data)
        if not visible:
            raise UnknownLocation("no such location is published to this platform")
        return data
    return [d for d in data if (await visibility.location_verdict(flow.store, flow.caller, d))[0]]
