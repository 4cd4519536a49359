"""Routing of functional-module requests: one decision, then forward, deliver or answer from the store.

Flow: ``handle`` classifies (direct / open / broadcast / get-all), checks that the caller only
speaks for its own parties, updates the store and the routing index in one transaction, then
either relays a synchronous answer or hands pushes to ``Delivery``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from config import Settings
from routing import getall
from routing.client import PeerClient
from routing.clock import Clock, iso
from routing.decide import (
    MODULES,
    PUSH_METHODS,
    Kind,
    ModuleSpec,
    RouteKey,
    Target,
    broadcast_targets,
    caller_party,
    check_owner,
    classify,
    open_route_key,
    pick_target,
)
from routing.delivery import Delivery
from routing.directory import Directory
from routing.errors import InvalidParameters, OcpiError, UnknownReceiver
from routing.forward import Leg, Reply, relay, send_leg
from routing.headers import PartyRef, RoutingHeaders
from routing.objects import ObjectRef, apply_push, canonical_time, check_body_matches, object_ref
from routing.proxies import Proxies
from storage import objects as object_sql
from storage import routing_index as index_sql
from storage.db import Job, Store, SyncTx
from storage.models import Platform

LOGGER = logging.getLogger(__name__)

ID_FIELDS = {"locations": "id", "tariffs": "id", "sessions": "id", "cdrs": "id", "tokens": "uid"}
DATA_MODULES = frozenset(ID_FIELDS)


@dataclass(frozen=True)
class Inbound:
    """One functional-module request as the hub received it."""

    module: str
    interface: str  # the hub interface called: SENDER or RECEIVER
    method: str
    segments: list[str]
    query: dict[str, str]
    query_string: str
    routing: RoutingHeaders
    request_id: str
    correlation_id: str
    caller: Platform
    raw_body: bytes | None = None
    body: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class AlreadyAccepted(Exception):
    """A CDR identical to one already accepted: acknowledge it, deliver nothing (mod_cdrs: immutable)."""


def other_interface(interface: str) -> str:
    """SENDER <-> RECEIVER."""
    return "RECEIVER" if interface == "SENDER" else "SENDER"


def unwrap(body: Any) -> Any:
    """Sloppy peers wrap one object in a list; treat ``[obj]`` as ``obj``."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        return body[0]
    return body


class RoutingService:
    """Routes every functional-module request."""

    def __init__(
        self,
        *,
        store: Store,
        client: PeerClient,
        directory: Directory,
        delivery: Delivery,
        proxies: Proxies,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.client = client
        self.directory = directory
        self.delivery = delivery
        self.proxies = proxies
        self.settings = settings
        self.clock = clock
        self.hub = PartyRef(settings.country_code, settings.party_id)

    def now(self) -> str:
        """The hub's current time as an OCPI DateTime."""
        return iso(self.clock.now())

    def reply(self, data: Any = None, *, status_code: int = 1000, message: str | None = None) -> Reply:
        """An envelope made by the hub."""
        return Reply.envelope(data, status_code=status_code, message=message, timestamp=self.now())

    # ---- entry point -------------------------------------------------------------------------

    async def handle(self, req: Inbound) -> Reply:
        """Route one request and produce the caller's answer."""
        spec = MODULES[req.module]
        if isinstance(req.body, list) and unwrap(req.body) is not req.body:
            # Liberal in what we accept, strict in what we send: forward the object, not [object].
            obj = unwrap(req.body)
            req = replace(req, body=obj, raw_body=json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
        sender = caller_party(req.caller, req.routing, spec.roles_for(other_interface(req.interface)))
        kind = classify(spec, req.interface, req.method, req.segments, req.routing, self.hub)
        if kind is Kind.GET_ALL:
            return await getall.get_all(self, spec, req, sender)
        # Anti-spoofing and URL/body checks come before any receiver is looked up.
        ref = self._owned_ref(spec, req)
        if kind is Kind.OPEN:
            key = open_route_key(spec, req.interface, req.method, req.segments, unwrap(req.body))
            if key is None:
                raise UnknownReceiver(f"cannot tell the receiver of {req.method} {req.module} without OCPI-to headers")
            if isinstance(key, Kind):
                return await self._broadcast(spec, req, sender, ref)
            target = pick_target(self.directory, await self._resolve(key), spec, req.interface)
        elif kind is Kind.BROADCAST:
            return await self._broadcast(spec, req, sender, ref)
        else:
            assert req.routing.to_party is not None
            target = pick_target(self.directory, req.routing.to_party, spec, req.interface)
        return await self._single(spec, req, sender, target, ref)

    async def _resolve(self, key: RouteKey) -> PartyRef:
        if key.kind == "party":
            assert key.party is not None
            return key.party
        owner = key.party.key if key.party is not None else None
        entries = await index_sql.lookup(self.store, key.kind, key.object_id, owner)
        if not entries:
            raise UnknownReceiver(f"no route known for {key.kind} {key.object_id}; send OCPI-to headers")
        if len({(e.country_code, e.party_id) for e in entries}) > 1:
            raise UnknownReceiver(f"{key.kind} {key.object_id} is known at several parties; send OCPI-to headers")
        entry = entries[0]
        if key.want_peer:
            if entry.peer_country_code is None or entry.peer_party_id is None:
                raise UnknownReceiver(f"no receiver known for {key.kind} {key.object_id}; send OCPI-to headers")
            return PartyRef(entry.peer_country_code, entry.peer_party_id)
        return PartyRef(entry.country_code, entry.party_id)

    # ---- pushes: validation and the hub's own copy -----------------------------------------

    def _owned_ref(self, spec: ModuleSpec, req: Inbound) -> ObjectRef | None:
        """For a push of a client owned object: parse the URL, check ownership and the body."""
        if req.interface != "RECEIVER" or req.module not in DATA_MODULES or req.method not in PUSH_METHODS:
            return None
        body = unwrap(req.body)
        if req.module == "cdrs":
            if req.method != "POST":
                raise InvalidParameters("CDRs are immutable: only POST (mod_cdrs)")
            if not isinstance(body, dict):
                raise InvalidParameters("a CDR must be a JSON object")
            cc, pid, cdr_id = body.get("country_code"), body.get("party_id"), body.get("id")
            if not all(isinstance(v, str) and v for v in (cc, pid, cdr_id)):
                raise InvalidParameters("a CDR needs country_code, party_id and id")
            ref = ObjectRef(PartyRef(str(cc), str(pid)), str(cdr_id))
            check_owner(req.caller, ref.owner, spec.owner_role)
            return ref
        ref = object_ref(req.module, req.segments, req.query)
        check_owner(req.caller, ref.owner, spec.owner_role)
        if req.method == "DELETE":
            if req.module != "tariffs":
                raise InvalidParameters(f"{req.module} objects are not deleted; push a status instead")
            return ref
        if req.method == "POST":
            raise InvalidParameters(f"POST is not part of the {req.module} receiver interface")
        if req.module == "tariffs" and req.method == "PATCH":
            raise InvalidParameters("tariffs have no PATCH in 2.2.1 (mod_tariffs)")
        check_body_matches(ref, body, ID_FIELDS[req.module], req.method)
        return ref

    def _remember(self, spec: ModuleSpec, req: Inbound, ref: ObjectRef, target: PartyRef | None) -> Job:
        """A write job updating the routing index and the hub's stored copy (runs with the outbox insert)."""
        now = self.now()
        body = unwrap(req.body)
        # Broadcast data is for everyone; a directed push only for the party it was sent to.
        visible_to = None if target is None else f"{target.key[0]}*{target.key[1]}"
        peer = target.key if target is not None and spec.name == "sessions" else None

        def job(tx: SyncTx) -> None:
            stored = object_sql.load_object(tx, spec.name, ref.key) if spec.stored else None
            if spec.name == "cdrs" and stored is not None:
                # Checked again here, atomically with the insert: two concurrent POSTs of one CDR.
                if json.loads(stored.body) == body:
                    raise AlreadyAccepted(ref.key)
                raise InvalidParameters(f"CDR {ref.object_id} was already accepted with other content (immutable)")
            if spec.index_kind is not None:
                index_sql.remember(tx, spec.index_kind, ref.object_id, ref.owner.key, now=now, peer=peer)
            if not spec.stored:
                return
            if req.method == "DELETE":
                object_sql.delete_object(tx, spec.name, ref.key)
                return
            new = apply_push(spec.name, req.method, ref, json.loads(stored.body) if stored else None, body)
            if new is None:
                return
            object_sql.put_object(
                tx,
                module=spec.name,
                object_key=ref.key,
                country_code=ref.owner.country_code,
                party_id=ref.owner.party_id,
                object_id=ref.object_id,
                body=json.dumps(new, separators=(",", ":"), ensure_ascii=False),
                last_updated=canonical_time(new["last_updated"]) if "last_updated" in new else now,
                visible_to=visible_to,
            )

        return job

    # ---- broadcast ---------------------------------------------------------------------------

    async def _broadcast(self, spec: ModuleSpec, req: Inbound, sender: PartyRef, ref: ObjectRef | None) -> Reply:
        """Store, answer 1000, fan out to every connected receiver with FROM = hub (OCPI-DIGEST 1.9)."""
        if req.method not in PUSH_METHODS or req.interface != "RECEIVER" or not spec.broadcast:
            raise UnknownReceiver(f"{req.method} {req.module} cannot be broadcast")
        assert ref is not None  # a push to a broadcast module's receiver is always a client owned object
        legs = [
            Leg(
                method=req.method,
                url=_join(target.base_url, req.segments, req.query_string),
                platform=target.platform,
                routing=RoutingHeaders(from_party=self.hub, to_party=target.party),
                correlation_id=req.correlation_id,
                body=req.raw_body,
                module=spec.name,
                object_key=ref.key,
            )
            for target in broadcast_targets(self.directory, spec, exclude_platform=req.caller.id)
        ]
        # The stored copy and every leg commit together: the hub's copy and the queue never disagree.
        await self.delivery.enqueue(legs, prepare=self._remember(spec, req, ref, None))
        LOGGER.info("broadcast %s %s %s to %d platforms", req.method, spec.name, ref.key, len(legs))
        answer = self.reply(message=f"accepted; broadcast to {len(legs)} platforms")
        answer.headers.update(RoutingHeaders(from_party=self.hub, to_party=sender).as_headers())
        return answer

    # ---- one receiver ------------------------------------------------------------------------

    async def _single(
        self, spec: ModuleSpec, req: Inbound, sender: PartyRef, target: Target, ref: ObjectRef | None
    ) -> Reply:
        """Direct or open routing to one receiver."""
        routing = RoutingHeaders(from_party=sender, to_party=target.party)
        body = req.raw_body
        query_string = req.query_string
        callback: str | None = None
        if spec.name in ("commands", "chargingprofiles") and req.interface == "RECEIVER":
            body, query_string, callback = await self.proxies.swap_response_url(req, target, sender, routing)
        leg = Leg(
            method=req.method,
            url=_join(target.base_url, req.segments, query_string),
            platform=target.platform,
            routing=routing,
            correlation_id=req.correlation_id,
            body=body,
            module=spec.name,
            object_key=ref.key if ref else "",
        )
        if ref is not None:
            try:
                answer = await self.delivery.relay_push(leg, prepare=self._remember(spec, req, ref, target.party))
            except AlreadyAccepted:
                LOGGER.info("CDR %s posted again with the same content: acknowledged, not redelivered", ref.key)
                answer = self.reply(message="CDR already accepted; not delivered again")
        else:
            timeout = self.settings.command_timeout if spec.name in ("commands", "chargingprofiles") else None
            try:
                answer = relay(await send_leg(self.client, leg, timeout=timeout))
            except OcpiError:
                if callback is not None:  # the requester was told it failed: no late result may follow
                    await self.proxies.discard_callback(callback)
                raise
            if callback is not None:
                await self.proxies.expire_after_answer(callback, answer)
            if spec.name == "commands" and req.segments[0].upper() == "RESERVE_NOW" and _accepted(answer):
                await self._remember_reservation(req, target)
        if spec.name == "cdrs" and ref is not None:
            await self.proxies.rewrite_cdr_location(answer, ref, target, req.caller)
        if "Link" in answer.headers or "link" in answer.headers:
            await self.proxies.rewrite_link(answer, leg, req.caller)
        answer.headers.update(routing.swapped().as_headers())
        return answer

    async def _remember_reservation(self, req: Inbound, target: Target) -> None:
        body = unwrap(req.body)
        reservation = body.get("reservation_id") if isinstance(body, dict) else None
        if isinstance(reservation, str) and reservation:
            now = self.now()
            await self.store.write(
                lambda tx: index_sql.remember(tx, "reservation", reservation, target.party.key, now=now)
            )


def _accepted(answer: Reply) -> bool:
    """Whether a CommandResponse says ACCEPTED."""
    try:
        data = json.loads(answer.body).get("data")
    except (ValueError, AttributeError):
        return False
    return isinstance(data, dict) and data.get("result") == "ACCEPTED"


def _join(base: str, segments: list[str], query_string: str) -> str:
    """Receiver endpoint + the same path suffix + the same query (peers' URLs end with or without '/')."""
    url = base.rstrip("/")
    if segments:
        url += "/" + "/".join(quote(s, safe="") for s in segments)
    if query_string:
        url += "?" + query_string
    return url
