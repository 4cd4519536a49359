"""The way in to delivery: commit first, then deliver (docs/DESIGN-NOTES.md, Delivery).

Two entry points, one per kind of push:

* ``enqueue(legs, prepare=...)``: broadcasts and notifications. Every leg is committed to the
  outbox in one write job, atomically with ``prepare`` (the routing service's update of the
  hub's stored copy); the scheduler delivers them. The caller answers "accepted" at once.
* ``push_one(leg, prepare=...)``: a directed push, the fast path. Committed the same way, then
  sent at once; the sender waits up to ``relay_wait`` for the receiver's own answer and gets an
  ``Outcome``: ``Answered``, ``Queued`` or ``Failed``. ``relay_push`` renders it as the reply.

Nothing is answered before its COMMIT. A receiver whose ready queue is full (more than it can
take) gets no new directed push: the sender gets HTTP 503 with Retry-After, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from config import DeliverySettings
from routing.clock import Clock, iso
from routing.delivery.outcome import Answered, Failed, Outcome, Queued, Sent
from routing.delivery.retry import is_retryable
from routing.delivery.scheduler import DeliveryWorker
from routing.jobs.cluster import OUTBOX_CHANNEL
from routing.messages import Leg, Reply
from routing.peers.forward import relay
from routing.protocol.errors import ConnectionProblem, OcpiError, Overloaded, ReceiverTimeout, Unrepresentable
from routing.protocol.vocab import ModuleID
from routing.versions import wire as versions_wire
from storage import broadcasts as broadcast_sql
from storage import outbox as outbox_sql
from storage import outcomes as outcome_sql
from storage.db import Job, Store, SyncTx
from storage.outbox import NewMessage

LOGGER = logging.getLogger(__name__)

_STATUS_FIELDS = frozenset({"status", "last_updated", "status_schedule"})
_RETRY_AFTER = {"Retry-After": "1"}
_BROADCAST_TRIES = 20  # waits for a broadcast of the object to be expanded before a directed push gives up (503)


class BroadcastPending(Exception):
    """A broadcast of this object is not in the outbox yet: a directed push must wait for it."""


class Delivery:
    """Commits pushes to the outbox; the fast path waits (briefly) for the receiver's answer."""

    def __init__(
        self,
        store: Store,
        worker: DeliveryWorker,
        settings: DeliverySettings,
        clock: Clock,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.worker = worker
        self.fastpath = worker.fastpath
        self.settings = settings
        self.clock = clock
        self.fail_mode = settings.on_receiver_down == "fail"
        self.lease_seconds = lease_seconds
        # Set by the broadcast expander (routing/expander.py): wait until an object has no pending broadcast.
        self.settled: Callable[[str, str], Awaitable[None]] | None = None

    # ---- enqueue: commit, the scheduler delivers ---------------------------------------------

    async def enqueue(self, legs: Sequence[Leg], *, prepare: Job | None = None) -> None:
        """Commit every leg (and ``prepare``) in one write job; the scheduler delivers them."""
        # Each receiver gets its own OCPI version (routing/versions/wire.py), before anything is kept.
        # An unpublished Location is not broadcast to a 2.1.1 partner (routing/versions/visibility.py).
        # One a version cannot carry as a valid object is skipped, with its Loss records
        # (routing/versions/validate.py); the others still go.
        await self.enqueue_as_of(await self.translate(legs), self.clock.now(), prepare=prepare)

    async def translate(self, legs: Sequence[Leg], *, broad: bool = False) -> list[Leg]:
        """Each leg in its receiver's version; legs a receiver must not or cannot get are left out.

        ``broad``: any OCPI error of one receiver's translation skips that receiver (a broadcast
        expanded after its answer has nobody left to tell; the others still go).
        """
        ready: list[Leg] = []
        for leg in legs:
            if await versions_wire.withheld(leg):
                continue
            try:
                ready.append(await versions_wire.outbound(leg, checked=True))
            except Unrepresentable as exc:
                LOGGER.info("not delivered to platform %s: %s", leg.platform.id, exc.message)
            except OcpiError as exc:
                if not broad:
                    raise
                LOGGER.warning("not delivered to platform %s: %s", leg.platform.id, exc.message)
        return ready

    async def enqueue_as_of(
        self,
        legs: Sequence[Leg],
        now: datetime,
        *,
        prepare: Job | None = None,
        then: Job | None = None,
        background: bool = False,
    ) -> None:
        """Commit translated legs accepted at ``now`` (with ``prepare`` before, ``then`` after) in one job.

        ``background``: the legs of an accepted message (a broadcast's expansion): no partner waits.
        """
        # Broadcast legs share one body: decide once whether it is a status-only PATCH.
        status_patch = _is_status_patch(legs[0]) if legs else False
        created = iso(now)  # once, not per leg: a broadcast's 1,000 legs share their timestamps
        deadlines: dict[float, str] = {}
        messages = []
        for leg in legs:
            max_age = self._max_age(leg.module, status_patch)
            deadline = deadlines.get(max_age)
            if deadline is None:
                deadline = deadlines[max_age] = iso(now + timedelta(seconds=max_age))
            messages.append(self._message(leg, created, deadline))

        # The chain heads go to this process's scheduler as committed, without a round reading
        # them back (a broadcast to 1,000: the reader thread's claims were 15 % of the fan-out's
        # samples, issue 22). Shared, they are leased to this process for it, as the fast path's
        # are (its heartbeat renews the lease; if it dies, another process takes them over).
        ids: dict[str, int] = {}
        lease = iso(self.clock.now() + timedelta(seconds=self.lease_seconds)) if self.store.shared else None

        def job(tx: SyncTx) -> list[bool]:
            for message in messages:  # before ``prepare`` reads the stored copies it will change
                outbox_sql.lock_object(tx, message.module, message.object_key)
            if prepare is not None:
                prepare(tx)
            ids.clear()  # a job that raised may be retried
            blocked = outbox_sql.enqueue_many(tx, messages, coalesce=status_patch, ids=ids, lease_until=lease)
            if then is not None:
                then(tx)
            return blocked

        locks = [(m.module, m.object_key) for m in messages]
        blocked: list[bool] = await self.store.write(job, locks=locks, background=background)
        heads = []
        for message, behind in zip(messages, blocked, strict=True):
            if behind:
                self.worker.queued_behind(message.receiver_platform_id, message.module, message.object_key)
            elif (message_id := ids.get(message.request_id)) is not None:
                heads.append(message.stored(message_id))
        if heads:
            self.worker.offer(heads)
        if len(heads) < len(messages) - sum(blocked):  # a head not handed over: a round reads it
            self.worker.wake()
        if messages:
            await self.store.notify(OUTBOX_CHANNEL, "enqueued")  # other processes' schedulers may help

    # ---- push one and wait: the fast path ------------------------------------------------------

    async def push_one(self, leg: Leg, *, prepare: Job | None = None) -> Outcome:
        """Commit one leg (and ``prepare``), send it now, wait up to relay_wait for its first attempt."""
        leg = await versions_wire.outbound(leg)  # in the receiver's OCPI version, before it is kept
        platform_id, request_id = leg.platform.id, leg.request_id
        if not self.worker.has_room(platform_id):
            raise Overloaded(headers=dict(_RETRY_AFTER))
        now = self.clock.now()
        # The fast path stays in this process: leased to it, so no other process's scheduler takes it.
        message = self._message(
            leg,
            iso(now),
            iso(now + timedelta(seconds=self._max_age(leg.module, False))),
            lease_until=iso(now + timedelta(seconds=self.lease_seconds)),
        )

        def job(tx: SyncTx) -> tuple[int, bool]:
            outbox_sql.lock_object(tx, message.module, message.object_key)  # before ``prepare`` reads copies
            if self.settled is not None and broadcast_sql.pending(tx, message.module, message.object_key):
                raise BroadcastPending(message.module)  # nothing of this job is kept
            if prepare is not None:
                prepare(tx)
            return outbox_sql.enqueue(tx, message)

        # Listen before committing: once committed, the scheduler may deliver the message before
        # this coroutine runs again, and an answer with nobody waiting would cost us relay_wait.
        answer = self.fastpath.expect(request_id, fail_fast=self.fail_mode)
        try:
            message_id, blocked = await self._commit_after_broadcasts(job, message)
        except BaseException:
            self.fastpath.stop_waiting(request_id)
            raise
        paused = self.worker.is_paused(platform_id)
        if paused and self.fail_mode:
            # "fail" answers like a plain hub: the receiver is down, so 4003 now, nothing kept.
            await self._drop(message_id, request_id)
            return Failed(ConnectionProblem(f"receiver platform {platform_id} is unavailable"))
        if blocked:
            self.worker.queued_behind(platform_id, message.module, message.object_key)
        if paused or (blocked and not self.fail_mode):
            self.fastpath.stop_waiting(request_id)
            self.worker.wake()
            return Queued(message_id, "behind earlier messages" if blocked else "receiver unavailable")
        if not blocked:  # the head of its chain: to the scheduler now, not at its next round
            self.worker.submit(message.stored(message_id))
        # (fail mode, blocked: it waits its turn behind the earlier message, within relay_wait)
        try:
            # No shield: a cancelled waiter is harmless, the attempt settles only futures not done.
            async with asyncio.timeout(self.settings.relay_wait):
                sent = await answer
        except TimeoutError:
            if self.fail_mode:
                await self._drop(message_id, request_id)
                return Failed(ReceiverTimeout(f"no answer within {self.settings.relay_wait:g}s"))
            self.fastpath.stop_waiting(request_id)
            return Queued(message_id, f"no answer within {self.settings.relay_wait:g}s")
        return self._judge(message_id, sent)

    def _judge(self, message_id: int, sent: Sent) -> Outcome:
        """What the first attempt means for the sender (queue mode keeps retryable failures)."""
        if isinstance(sent, OcpiError):
            # A connect error or timeout is retried (queue mode); a refused redirect is final.
            return Queued(message_id, sent.message) if sent.retryable and not self.fail_mode else Failed(sent)
        if not self.fail_mode and is_retryable(sent):
            # The scheduler keeps the message (non-OCPI answer, 5xx, 429...): the sender's push is safe.
            return Queued(message_id, f"receiver answered {sent.describe()}")
        return Answered(sent)

    async def relay_push(self, leg: Leg, *, prepare: Job | None = None) -> Reply:
        """Push one leg and render its outcome as the caller's answer."""
        match await self.push_one(leg, prepare=prepare):
            case Answered(response):
                return relay(response)
            case Queued(message_id, reason):
                # Answering 4002/4003 here would make the sender push again while the first copy is
                # on its way: "accepted" is the truth (the message is committed).
                LOGGER.info("message %s queued (%s)", message_id, reason)
                return Reply.envelope(
                    message=f"accepted; queued for delivery ({reason})", timestamp=iso(self.clock.now())
                )
            case Failed(error):
                raise error

    # ---- helpers ---------------------------------------------------------------------------------

    async def _commit_after_broadcasts(self, job: Job, message: NewMessage) -> tuple[int, bool]:
        """Commit ``job`` once no broadcast of the message's object waits to be expanded.

        A broadcast is answered before its legs are in the outbox (routing/expander.py); a directed
        push of the same object committed meanwhile would get an earlier outbox id than the
        broadcast's leg to its receiver, and overtake it. So it waits for the expansion (checked
        in the job, under the object's lock) and tries again; past _BROADCAST_TRIES, 503.
        """
        locks = [(message.module, message.object_key)]
        for _ in range(_BROADCAST_TRIES):
            try:
                result: tuple[int, bool] = await self.store.write(job, locks=locks)
                return result
            except BroadcastPending:
                assert self.settled is not None
                await self.settled(message.module, message.object_key)
        raise Overloaded(headers=dict(_RETRY_AFTER))

    async def _drop(self, message_id: int, request_id: str) -> None:
        """Fail mode: the sender got an error, so the message must never go out later."""
        self.fastpath.drop(request_id)
        await self.store.write(lambda tx: outcome_sql.delete(tx, message_id, request_id=request_id))

    def _max_age(self, module: str, status_patch: bool) -> float:
        """Seconds a message of this kind may wait before it is stale (CDRs keep longest)."""
        if module == ModuleID.CDRS:
            return self.settings.cdr_max_age
        return self.settings.status_max_age if status_patch else self.settings.max_age

    def _message(self, leg: Leg, created: str, deadline: str, lease_until: str | None = None) -> NewMessage:
        return NewMessage(
            receiver_platform_id=leg.platform.id,
            module=leg.module,
            object_key=leg.object_key or leg.request_id,
            method=leg.method,
            url=leg.url,
            headers=leg.headers(),
            body=leg.body,
            created_at=created,
            deadline_at=deadline,
            request_id=leg.request_id,
            lease_until=lease_until,
        )


def _is_status_patch(leg: Leg) -> bool:
    """An EVSE/connector PATCH carrying only a status: stale fast, and coalesced when repeated."""
    if leg.module != ModuleID.LOCATIONS or leg.method != "PATCH":
        return False
    try:
        body = json.loads(leg.body or b"{}")
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body) and set(body) <= _STATUS_FIELDS
