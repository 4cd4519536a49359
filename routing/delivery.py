"""The one function through which every push reaches its receiver: commit first, then deliver.

``Delivery.push`` writes each leg to the outbox in one transaction, so when it returns the
message is durable and the hub may answer "accepted" (docs/DESIGN-NOTES.md, Delivery). With ``wait`` it
then gives the fast path up to ``relay_wait`` for the receiver's own answer; a message behind a
queued one of the same object, or for a paused receiver, is answered "queued" at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import timedelta

from config import DeliverySettings
from routing.clock import Clock, iso
from routing.errors import ConnectionProblem, OcpiError, ReceiverTimeout
from routing.forward import Leg, Reply, relay
from routing.retry import is_retryable
from routing.versions import wire as versions_wire
from routing.worker import DeliveryWorker, Outcome
from storage import outbox as outbox_sql
from storage.db import Job, Store, SyncTx
from storage.outbox import NewMessage

LOGGER = logging.getLogger(__name__)

_STATUS_FIELDS = frozenset({"status", "last_updated", "status_schedule"})


class Queued:
    """Outcome of a push that was committed but not (yet) answered by its receiver."""

    def __init__(self, message_id: int, reason: str) -> None:
        self.message_id = message_id
        self.reason = reason


PushOutcome = Outcome | Queued


class Delivery:
    """Commits pushes to the outbox and waits (briefly) for the fast path."""

    def __init__(self, store: Store, worker: DeliveryWorker, settings: DeliverySettings, clock: Clock) -> None:
        self.store = store
        self.worker = worker
        self.settings = settings
        self.clock = clock

    def _max_age(self, leg: Leg, status_patch: bool) -> float:
        if leg.module == "cdrs":
            return self.settings.cdr_max_age
        return self.settings.status_max_age if status_patch else self.settings.max_age

    @staticmethod
    def _is_status_patch(leg: Leg) -> bool:
        """An EVSE/connector PATCH carrying only a status: stale fast, and coalesced when repeated."""
        if leg.module != "locations" or leg.method != "PATCH":
            return False
        try:
            body = json.loads(leg.body or b"{}")
        except ValueError:
            return False
        return isinstance(body, dict) and bool(body) and set(body) <= _STATUS_FIELDS

    async def push(self, legs: Sequence[Leg], *, wait: bool, prepare: Job | None = None) -> list[PushOutcome]:
        """Commit every leg (and ``prepare``, atomically); with ``wait``, the one leg's outcome.

        The outcome is the receiver's answer, an error, or Queued.
        """
        # Each receiver gets its own OCPI version (routing/versions/wire.py), before anything is kept.
        legs = [await versions_wire.outbound(leg) for leg in legs]
        now = self.clock.now()
        # Broadcast legs share one body: decide once whether it is a status-only PATCH.
        status_patch = self._is_status_patch(legs[0]) if legs else False
        messages = [
            (
                NewMessage(
                    receiver_platform_id=leg.platform.id,
                    module=leg.module,
                    object_key=leg.object_key or leg.request_id,
                    method=leg.method,
                    url=leg.url,
                    headers=leg.headers(),
                    body=leg.body,
                    created_at=iso(now),
                    deadline_at=iso(now + timedelta(seconds=self._max_age(leg, status_patch))),
                ),
                status_patch,
            )
            for leg in legs
        ]

        def job(tx: SyncTx) -> list[tuple[int, bool]]:
            if prepare is not None:
                prepare(tx)
            return [outbox_sql.enqueue(tx, message, coalesce=coalesce) for message, coalesce in messages]

        if wait and len(legs) != 1:
            raise ValueError("wait=True takes exactly one leg")
        fail_fast = self.settings.on_receiver_down == "fail"
        # Listen before committing: once committed, the worker may deliver the message before this
        # coroutine runs again, and an answer with nobody waiting would leave us waiting relay_wait.
        future = self.worker.expect(legs[0].request_id, fail_fast=fail_fast) if wait else None
        try:
            # One write job, group-committed with concurrent pushes: durable before anyone answers.
            ids = await self.store.write(job)
        except BaseException:
            if future is not None:
                self.worker.forget(legs[0].request_id, abandon=False)
            raise
        if future is None:
            if ids:
                self.worker.wake()
            return []
        leg, (message_id, blocked) = legs[0], ids[0]
        paused = self.worker.is_paused(leg.platform.id)
        if fail_fast and paused:
            # "fail" answers like a plain hub: the receiver is down (OFFLINE), so 4003 now and
            # nothing kept for later (the sender owns the retry).
            self.worker.forget(leg.request_id, abandon=False)
            await self.worker.abandon(message_id, leg.request_id)
            return [ConnectionProblem(f"receiver platform {leg.platform.id} is unavailable")]
        if not fail_fast and (blocked or paused):
            self.worker.forget(leg.request_id, abandon=False)
            self.worker.wake()
            return [Queued(message_id, "behind earlier messages" if blocked else "receiver unavailable")]
        # A fail-mode message behind an earlier one of its object waits its turn within relay_wait.
        if blocked:
            self.worker.wake()
        else:  # the head of its chain: send it now rather than waiting for the worker's next round
            self.worker.submit(messages[0][0].stored(message_id))
        try:
            return [await asyncio.wait_for(asyncio.shield(future), self.settings.relay_wait)]
        except TimeoutError:
            if fail_fast:
                await self.worker.abandon(message_id, leg.request_id)
                return [ReceiverTimeout(f"no answer within {self.settings.relay_wait:g}s")]
            self.worker.forget(leg.request_id, abandon=False)
            return [Queued(message_id, f"no answer within {self.settings.relay_wait:g}s")]

    async def relay_push(self, leg: Leg, *, prepare: Job | None = None) -> Reply:
        """Push one leg and turn the outcome into the caller's answer."""
        (outcome,) = await self.push([leg], wait=True, prepare=prepare)
        if isinstance(outcome, Queued):
            LOGGER.info("message %s queued (%s)", outcome.message_id, outcome.reason)
            return Reply.envelope(
                message=f"accepted; queued for delivery ({outcome.reason})", timestamp=iso(self.clock.now())
            )
        if isinstance(outcome, OcpiError):
            if self.settings.on_receiver_down == "queue" and outcome.retryable:
                # Connect error or timeout: the worker keeps the message and retries it. Answering
                # 4002/4003 here would make the sender push again while the first copy is on its way.
                LOGGER.info("%s message for platform %s queued (%s)", leg.module, leg.platform.id, outcome.message)
                return Reply.envelope(
                    message=f"accepted; queued for delivery ({outcome.message})", timestamp=iso(self.clock.now())
                )
            raise outcome
        if self.settings.on_receiver_down == "queue" and is_retryable(outcome):
            # The worker keeps the message (non-OCPI answer, 5xx, 429...): the sender's push is safe.
            return Reply.envelope(message="accepted; queued for delivery", timestamp=iso(self.clock.now()))
        return relay(outcome)
