"""Routing of functional-module requests: one decision, then one action.

``handle`` checks that the caller speaks only for its own parties, asks ``decide`` for the route
and runs it: ``GetAll``/``FromStore`` are answered from the hub's copies, ``Broadcast`` stores the
object and fans it out through the outbox, ``Direct``/``Open`` go to one receiver (pushes through
the outbox, everything else synchronously). The stored copy, the routing index and the outbox
legs of a push commit in one write job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from config import Settings
from routing.agreements.book import AgreementBook
from routing.clock import Clock, iso
from routing.decide import (
    MODULES,
    PUSH_METHODS,
    Broadcast,
    Direct,
    FromStore,
    GetAll,
    ModuleSpec,
    Open,
    RouteKey,
    caller_party,
    check_owner,
    decide,
    pick_target,
)
from routing.delivery.intake import Delivery
from routing.expander import BroadcastExpander
from routing.getall import StoreReader
from routing.messages import Inbound, Leg, PartyRef, Reply, RoutingHeaders, Target
from routing.objects import (
    ObjectRef,
    alt_id,
    apply_push,
    canonical_time,
    check_body_matches,
    object_ref,
    origin_after,
)
from routing.peers.client import PeerClient
from routing.peers.forward import relay, send_leg
from routing.protocol import idrules
from routing.protocol.envelope import dumps
from routing.protocol.errors import InvalidParameters, OcpiError, UnknownReceiver, UnknownToken
from routing.protocol.paths import join
from routing.protocol.reader import Shape, as_object
from routing.protocol.vocab import InterfaceRole, ModuleID, other_interface
from routing.proxies import Proxies
from routing.registry.directory import Directory
from routing.registry.identity import live_parties, refs
from routing.versions import wire as versions_wire
from storage import objects as object_sql
from storage import routing_index as index_sql
from storage.broadcasts import NewBroadcast
from storage.db import Job, Store, SyncTx

LOGGER = logging.getLogger(__name__)

ID_FIELDS: dict[str, str] = {
    ModuleID.LOCATIONS: "id",
    ModuleID.TARIFFS: "id",
    ModuleID.SESSIONS: "id",
    ModuleID.CDRS: "id",
    ModuleID.TOKENS: "uid",
}
DATA_MODULES = frozenset(ID_FIELDS)


class AlreadyAccepted(Exception):
    """A CDR identical to one already accepted: acknowledge it, deliver nothing (mod_cdrs: immutable)."""


def answer_shape(spec: ModuleSpec, req: Inbound) -> Shape | None:
    """The shape 2.2.1 gives the ``data`` of the receiver's answer (None: unspecified, relayed as is)."""
    if req.method == "GET":
        return "object" if req.segments else "list"
    if spec.name in (ModuleID.COMMANDS, ModuleID.CHARGING_PROFILES) and req.interface == InterfaceRole.RECEIVER:
        return "object"  # CommandResponse, ChargingProfileResponse
    if spec.name == ModuleID.TOKENS and req.method == "POST":
        return "object"  # AuthorizationInfo
    return None


@dataclass(kw_only=True, eq=False)
class RoutingService:
    """Routes every functional-module request."""

    store: Store
    client: PeerClient
    directory: Directory
    delivery: Delivery
    proxies: Proxies
    reader: StoreReader
    settings: Settings
    clock: Clock
    agreements: AgreementBook
    expander: BroadcastExpander
    hub: PartyRef = field(init=False)

    def __post_init__(self) -> None:
        self.hub = PartyRef(self.settings.country_code, self.settings.party_id)

    def now(self) -> str:
        """The hub's current time as an OCPI DateTime."""
        return iso(self.clock.now())

    def reply(self, data: Any = None, *, status_code: int = 1000, message: str | None = None) -> Reply:
        """An envelope made by the hub."""
        return Reply.envelope(data, status_code=status_code, message=message, timestamp=self.now())

    def requester(self, req: Inbound) -> PartyRef:
        """Who is asking: the FROM party (checked to be the caller's own) or the caller's party in the role."""
        spec = MODULES[req.module]
        return caller_party(req.caller, req.routing, spec.roles_for(other_interface(req.interface)))

    # ---- entry point -------------------------------------------------------------------------

    async def handle(self, req: Inbound) -> Reply:
        """Route one request and produce the caller's answer."""
        spec = MODULES[req.module]
        obj = as_object(req.body)
        # Ids before anything is decided, stored or sent, in the caller's own version (routing/protocol/idrules.py).
        version = versions_wire.version_of(req.caller)
        idrules.check_path(version, req.module, req.interface, req.segments)
        idrules.check_query(req.module, req.query)
        idrules.check_body(version, req.module, req.interface, req.method, req.segments, obj)
        if obj is not req.body:
            # Liberal in what we accept, strict in what we send: forward the object, not [object].
            req = replace(req, body=obj, raw_body=dumps(obj).encode())
        # The one way in: the caller's version -> 2.2.1 (the receive time only fills a 2.1.1 PATCH).
        req = await versions_wire.inbound(req, self.store, self.now() if version == "2.1.1" else None)
        sender = self.requester(req)
        route = decide(spec, req.interface, req.method, req.segments, req.routing, self.hub, req.body)
        match route:
            case GetAll():
                viewers = self._viewers(req, sender)
                owners = self._owners(spec, req, viewers)
                return await self.reader.page(spec, req.query, sender, viewers, owners, version, flow=req.flow)
            case FromStore():
                viewers = self._viewers(req, sender)
                owners = self._owners(spec, req, viewers)
                return await self.reader.location(req.segments, sender, viewers, owners, flow=req.flow)
            case Broadcast():
                return await self._broadcast(spec, req, sender, self._owned_ref(spec, req))
            case Direct(party):
                ref = self._owned_ref(spec, req)  # anti-spoofing before any receiver is looked up
            case Open(key):
                ref = self._owned_ref(spec, req)
                party = await self._resolve(
                    key, lambda p: self.agreements.allows_message(spec, req.interface, sender, p)
                )
        # Roaming agreements (routing/agreements/book.py): checked when accepted, never when delivered;
        # before the receiver's platform is looked up, so a party without one learns nothing of
        # the receiver's connection (4001 whether it is connected or not).
        self.agreements.require(spec, req.interface, sender, party)
        target = pick_target(self.directory, party, spec, req.interface)
        return await self._single(spec, req, sender, target, ref)

    def _owners(self, spec: ModuleSpec, req: Inbound, viewers: list[PartyRef]) -> set[str] | None:
        """With agreements required: the owners (storage key prefixes) whose stored objects the viewers may read."""
        if not self.agreements.required:
            return None
        roles = spec.roles_for(other_interface(req.interface))
        return self.agreements.partners(viewers, roles, spec.owner_role, spec.name)

    def _viewers(self, req: Inbound, sender: PartyRef) -> list[PartyRef]:
        """Whose copies a GET may read: the FROM party, or every party of the caller in the asking role."""
        if req.routing.from_party is not None:
            return [sender]
        roles = MODULES[req.module].roles_for(other_interface(req.interface))
        return refs(live_parties(req.caller, roles)) or [sender]

    async def _resolve(self, key: RouteKey, agreed: Callable[[PartyRef], bool]) -> PartyRef:
        if key.kind == "party":
            assert key.party is not None
            return key.party
        owner = key.party.key if key.party is not None else None
        entries = await index_sql.lookup(self.store, key.kind, key.object_id, owner)
        if not entries:
            if key.kind == "token":  # mod_tokens, real-time authorization: an unknown Token is 2004
                raise UnknownToken(f"token {key.object_id} is unknown to the hub")
            raise UnknownReceiver(f"no route known for {key.kind} {key.object_id}; send OCPI-to headers")
        if len({(e.country_code, e.party_id) for e in entries}) > 1 and not key.want_peer:
            # Known at several parties: only those the sender has an agreement with count (all, when open).
            entries = [e for e in entries if agreed(PartyRef(e.country_code, e.party_id))] or entries
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
        if req.interface != InterfaceRole.RECEIVER or req.module not in DATA_MODULES or req.method not in PUSH_METHODS:
            return None
        body = req.body
        if req.module == ModuleID.CDRS:
            if req.method != "POST":
                raise InvalidParameters("CDRs are immutable: only POST (mod_cdrs)")
            if not isinstance(body, dict):
                raise InvalidParameters("a CDR must be a JSON object")
            country_code, party_id, cdr_id = body.get("country_code"), body.get("party_id"), body.get("id")
            if not all(isinstance(v, str) and v for v in (country_code, party_id, cdr_id)):
                raise InvalidParameters("a CDR needs country_code, party_id and id")
            ref = ObjectRef(PartyRef(str(country_code), str(party_id)), str(cdr_id))
            check_owner(req.caller, ref.owner, spec.owner_role)
            return ref
        ref = object_ref(req.module, req.segments, req.query)
        check_owner(req.caller, ref.owner, spec.owner_role)
        if req.method == "DELETE":
            if req.module != ModuleID.TARIFFS:
                raise InvalidParameters(f"{req.module} objects are not deleted; push a status instead")
            return ref
        if req.method == "POST":
            raise InvalidParameters(f"POST is not part of the {req.module} receiver interface")
        if req.module == ModuleID.TARIFFS and req.method == "PATCH":
            raise InvalidParameters("tariffs have no PATCH in 2.2.1 (mod_tariffs)")
        check_body_matches(ref, body, ID_FIELDS[req.module], req.method)
        return ref

    def _remember(self, spec: ModuleSpec, req: Inbound, ref: ObjectRef, target: PartyRef | None) -> Job:
        """A write job updating the routing index and the hub's stored copies (runs with the outbox insert).

        A broadcast push changes every copy of the object (each recipient got it); a directed one
        only its recipient's copy, which starts from the broadcast copy when it has none yet.
        """
        now = self.now()
        body = req.body
        sent = versions_wire.origin(req.flow)  # the sender's own version and body, kept beside the 2.2.1 copy
        recipient = object_sql.EVERYONE if target is None else target.recipient
        peer = target.key if target is not None and spec.name == ModuleID.SESSIONS else None
        replaces = not ref.sub and req.method in ("PUT", "POST")

        def job(tx: SyncTx) -> None:
            if spec.name == ModuleID.CDRS:
                # Checked again here, atomically with the insert: two concurrent POSTs of one CDR.
                for accepted in object_sql.load_copies(tx, ModuleID.CDRS, ref.key):
                    if json.loads(accepted.body) == body:
                        raise AlreadyAccepted(ref.key)
                    raise InvalidParameters(f"CDR {ref.object_id} was already accepted with other content (immutable)")
            if spec.index_kind is not None:
                index_sql.remember(tx, spec.index_kind, ref.object_id, ref.owner.key, now=now, peer=peer)
            if not spec.stored:
                return
            if req.method == "DELETE":
                object_sql.delete_copies(tx, spec.name, ref.key, recipient=recipient or None)
                return
            bases: list[tuple[str, object_sql.StoredObject | None]]
            if target is None:  # broadcast: every recipient now holds what was broadcast
                if replaces:  # the broadcast copy is updated in place: it keeps its place in the order
                    object_sql.delete_copies(tx, spec.name, ref.key, directed_only=True)
                    bases = [("", None)]
                else:
                    bases = [(c.recipient, c) for c in object_sql.load_copies(tx, spec.name, ref.key)]
            elif replaces:  # a whole object for one recipient: nothing stored needs reading
                bases = [(recipient, None)]
            else:  # a PATCH or child push: onto its own copy, else onto the broadcast one
                own = object_sql.load_copy(tx, spec.name, ref.key, recipient)
                bases = [(recipient, own or object_sql.load_copy(tx, spec.name, ref.key, object_sql.EVERYONE))]
            for whom, stored in bases:
                new = apply_push(spec.name, req.method, ref, json.loads(stored.body) if stored else None, body)
                if new is None:
                    continue
                kept = origin_after(spec.name, req.method, ref, stored, sent, replaces)
                object_sql.put_copy(
                    tx,
                    module=spec.name,
                    object_key=ref.key,
                    country_code=ref.owner.country_code,
                    party_id=ref.owner.party_id,
                    object_id=ref.object_id.upper(),
                    recipient=whom,
                    body=dumps(new),
                    last_updated=canonical_time(new["last_updated"]) if "last_updated" in new else now,
                    origin_version=kept[0] if kept else None,
                    origin_body=dumps(kept[1]) if kept else None,
                    alt_id=alt_id(spec.name, new),
                )

        return job

    # ---- broadcast ---------------------------------------------------------------------------

    async def _broadcast(self, spec: ModuleSpec, req: Inbound, sender: PartyRef, ref: ObjectRef | None) -> Reply:
        """Store, answer 1000, fan out to every receiving party, FROM = hub (transport_and_format, Broadcast Push).

        The stored copy and ONE broadcast record commit together, then the answer: the expander
        (routing/expander.py) turns the record into a leg per receiver after it (issue 22: the
        1,000 legs of a broadcast cost the sender ~260 ms when committed before the answer).
        """
        assert ref is not None  # a push to a broadcast module's receiver is always a client owned object
        # Only the parties the sender has an agreement with (all of them when agreements are open).
        count = sum(
            1
            for target in self.expander.targets(spec.name)
            if target.platform.id != req.caller.id
            and self.agreements.allows_message(spec, InterfaceRole.RECEIVER, sender, target.party)
        )
        record = NewBroadcast(
            module=spec.name,
            object_key=ref.key,
            method=req.method,
            segments=list(req.segments),
            query_string=req.query_string,
            sender_platform_id=req.caller.id,
            sender_country_code=sender.country_code,
            sender_party_id=sender.party_id,
            correlation_id=req.correlation_id,
            body=req.raw_body,
            origin=versions_wire.flow_origin(req.flow),
            created_at=self.now(),
        )
        # The stored copy and the record commit together: the hub's copy and the queue never disagree.
        await self.expander.accept(record, prepare=self._remember(spec, req, ref, None))
        # A token's key holds its uid, which no log line may carry (docs/SECURITY.md): its owner only.
        what = f"of {ref.owner}" if spec.name == ModuleID.TOKENS else ref.key
        LOGGER.info("broadcast %s %s %s to %d parties", req.method, spec.name, what, count)
        answer = self.reply(message=f"accepted; broadcast to {count} {'party' if count == 1 else 'parties'}")
        answer.headers.update(RoutingHeaders(from_party=self.hub, to_party=sender).as_headers())
        return answer

    # ---- one receiver ------------------------------------------------------------------------

    async def _single(
        self, spec: ModuleSpec, req: Inbound, sender: PartyRef, target: Target, ref: ObjectRef | None
    ) -> Reply:
        """Direct or open routing to one receiver: pushes through the outbox, the rest synchronously."""
        routing = RoutingHeaders(from_party=sender, to_party=target.party)
        body, query_string, callback = req.raw_body, req.query_string, None
        if spec.name in (ModuleID.COMMANDS, ModuleID.CHARGING_PROFILES) and req.interface == InterfaceRole.RECEIVER:
            body, query_string, callback = await self.proxies.swap_response_url(req, target, sender, routing)
        leg = Leg(
            method=req.method,
            url=join(target.base_url, req.segments, query_string),
            platform=target.platform,
            routing=routing,
            correlation_id=req.correlation_id,
            body=body,
            module=spec.name,
            object_key=ref.key if ref else "",
            expect=answer_shape(spec, req),
            flow=req.flow,
        )
        if ref is not None:
            try:
                answer = await self.delivery.relay_push(leg, prepare=self._remember(spec, req, ref, target.party))
            except AlreadyAccepted:
                LOGGER.info("CDR %s posted again with the same content: acknowledged, not redelivered", ref.key)
                answer = self.reply(message="CDR already accepted; not delivered again")
        else:
            timeout = self.settings.command_timeout if callback is not None or spec.name == ModuleID.COMMANDS else None
            try:
                response = await send_leg(self.client, leg, timeout=timeout)
                answer = relay(response)
            except OcpiError:
                if callback is not None:  # the requester was told it failed: no late result may follow
                    await self.proxies.discard_callback(callback)
                raise
            # The answer's data as the client read it (spec-shaped): not parsed again here.
            if callback is not None:
                await self.proxies.expire_after_answer(callback, response.data)
            if spec.name == ModuleID.COMMANDS and req.segments[0].upper() == "RESERVE_NOW" and _accepted(response.data):
                await self._remember_reservation(req, target)
        if spec.name == ModuleID.CDRS and ref is not None:
            await self.proxies.rewrite_cdr_location(answer, ref, target, req.caller, sender)
        if "Link" in answer.headers:
            await self.proxies.rewrite_link(answer, leg, req.caller)
        # An answer the hub made itself (queued, already accepted) comes FROM the hub.
        answer.headers.update((RoutingHeaders(self.hub, sender) if answer.from_hub else routing.swapped()).as_headers())
        return answer

    async def _remember_reservation(self, req: Inbound, target: Target) -> None:
        body = req.body
        reservation = body.get("reservation_id") if isinstance(body, dict) else None
        if isinstance(reservation, str) and reservation:
            now = self.now()
            await self.store.write(
                lambda tx: index_sql.remember(tx, "reservation", reservation, target.party.key, now=now)
            )


def _accepted(data: Any) -> bool:
    """Whether a CommandResponse's data says ACCEPTED."""
    return isinstance(data, dict) and data.get("result") == "ACCEPTED"
