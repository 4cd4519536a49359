"""The delivery scheduler: one loop, a ready queue per receiver, bounded concurrency per receiver.

Committed messages reach an attempt (routing/delivery/attempt.py) three ways: the fast path
hands over a just-committed chain head (``submit``); a broadcast's or notification's
just-committed chain heads are handed over too (``offer``; on a shared database leased to this
process like the fast path's, so no other process sends them while it lives); and the loop reads
the due head of every order chain from the outbox (``storage.claims.claim_heads``) when something
may wait there unread (``wake``; a timer wake-up always reads). All land in the receiver's ready
queue, which starts at most ``concurrency_per_receiver`` attempts at once, so one slow receiver
never delays another; a finished attempt starts the next ready message at once, without a query. The ready
queue is bounded (``max_queue_per_receiver``): ``has_room`` tells the fast path to refuse a push
(503) rather than let latency climb. All receivers together send at most ``max_in_flight`` at once,
and a round reads no more than there is room for: a fan-out to 10,000 platforms (a registration's
HubClientInfo) waits in the outbox, not as 10,000 attempts holding their bodies and sockets in
memory (issue 22, goal 4). Receivers that keep failing go OFFLINE and are probed
(routing/delivery/health.py: the loop starts probes and still-alive checks as tasks of their own and
never waits for one); expiry and stand-in URL purges are the sweeper's (routing/delivery/sweeper.py).

Several processes on one database: each runs this scheduler over the shared outbox. A claimed
row is leased to the process (renewed by its heartbeat, routing/jobs/cluster.py), so two processes
never send one message at once; the still-alive checks and the sweeps run only in the process
holding the cluster's "maintenance" lease (``store.try_lead``).

What the scheduler remembers between rounds (ready rows, slots held, request ids in flight,
attempts made, why a round must look again) is routing/delivery/receiverqueue.py's, one queue per receiver.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from config import DeliverySettings
from routing.clock import Clock, iso, parse_iso
from routing.delivery.attempt import Attempt
from routing.delivery.fastpath import FastPath
from routing.delivery.health import ReceiverHealth, StatusSetter
from routing.delivery.receiverqueue import ReceiverQueues
from routing.delivery.sweeper import Sweeper
from routing.peers.client import PeerClient
from routing.registry.directory import Directory
from routing.tasks import cancel_and_wait, report_round_failure
from storage import claims as claims_sql
from storage import outcomes as outcome_sql
from storage.db import Store
from storage.errors import is_storage_outage
from storage.models import Platform
from storage.outbox import Message

LOGGER = logging.getLogger(__name__)

# The loop looks at the queue at least this often (clock seconds) even when nothing woke it: a
# missed wake-up (a bug; a resumed or newly registered platform wakes it, platform_changed) and
# max_age expiry need a round.
_MAX_IDLE = 60.0
_MIN_PER_RECEIVER = 8  # due rows read per receiver and round, at least (storage/claims.py)
_STARTS_PER_TURN = 16  # attempts started per turn of the event loop (each turn answers requests too)


class DeliveryWorker:
    """The scheduler; start() in the app's cleanup context, stop() on shutdown."""

    def __init__(
        self,
        *,
        store: Store,
        client: PeerClient,
        directory: Directory,
        settings: DeliverySettings,
        clock: Clock,
        set_status: StatusSetter,
        request_timeout: float,
        lease_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.fastpath = FastPath()
        self.health = ReceiverHealth(
            client=client,
            directory=directory,
            settings=settings,
            clock=clock,
            set_status=set_status,
            request_timeout=request_timeout,
            on_resume=self._resumed,
            on_probed=self.wake,
        )
        self.attempt = Attempt(
            store=store,
            client=client,
            directory=directory,
            settings=settings,
            clock=clock,
            health=self.health,
            fastpath=self.fastpath,
            request_timeout=request_timeout,
        )
        self.sweeper = Sweeper(store, clock)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._wake_at: float | None = None
        # Whether the outbox may hold due rows the ready queues do not (a round must read it). Every
        # wake() says so; handing over committed heads (offer) does not: during a fan-out the
        # rounds found nothing new, and each one's two skip-scans over 1,000 receivers were the
        # reader thread's ~13 % of the samples (issue 22). A timer wake-up always reads.
        self._unread = True
        self._due_at: float | None = None  # the earliest due head the last read found
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._queues: ReceiverQueues[Message] = ReceiverQueues(
            cap=settings.concurrency_per_receiver,
            max_queue=settings.max_queue_per_receiver,
            max_in_flight=settings.max_in_flight,
            dropped=self.fastpath.is_dropped,
        )
        self._tasks: set[asyncio.Task[bool]] = set()  # the attempts in flight, to wait for at stop()
        # The last round or start found max_in_flight sending: a round waits until a chunk is free.
        self._capped = False
        self._paused_key: tuple[int, int] | None = None
        self._paused: list[int] = []
        self._readable = 1  # receivers a round may read: known, not paused
        # Ready rows a receiver may be handed without a round (see offer): what one round could read
        # for it, and never more than half its queue bound.
        self._offer_limit = max(1, min(settings.batch_size, settings.max_queue_per_receiver // 2))
        # What feeds the outbox after an answer: the broadcast expander, the ClientInfo pushes of a
        # registration (routing/registry/clientinfo.py). idle() waits for each of them too.
        self.upstream: list[Callable[[], Awaitable[None]]] = []

    # ---- lifecycle and what others may ask -----------------------------------------------------

    def start(self) -> None:
        """Start the loop; OFFLINE platforms found in the store are probed at once."""
        self.health.load()
        self._loop_task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop picking messages, let in-flight attempts finish within shutdown_grace, cancel the rest."""
        self._stopping = True
        self._wake.set()
        self._idle.set()
        await cancel_and_wait(self._loop_task)
        await self.health.stop()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.fastpath.cancel_all()

    async def idle(self) -> None:
        """Return once nothing is in flight and nothing is due at the clock's current time (for tests)."""
        while not self._stopping:
            for feeder in self.upstream:  # accepted but not in the outbox yet counts as work too
                await feeder()
            await self.health.quiet()  # probes in flight count as work (each is bounded by its timeout)
            wake_at = self._wake_at
            if self._idle.is_set() and (wake_at is None or wake_at > self._ts()):
                return
            if self._idle.is_set():  # the clock passed the loop's wake-up time: a round is coming
                self._idle.clear()
            await self._idle.wait()

    def wake(self) -> None:
        """New work or a freed slot: run a round now (it reads the outbox)."""
        self._unread = True
        self._nudge()

    def _nudge(self) -> None:
        """Start what the ready queues hold; the outbox has nothing they miss."""
        self._idle.clear()
        self._wake.set()

    def refresh(self) -> None:
        """The queue changed behind the scheduler's back (redrive): forget what was read, re-read."""
        self._queues.drop_all_ready()
        self._queues.forget_attempts()  # re-driven letters start again from attempt 0
        self.wake()

    @property
    def in_flight(self) -> int:
        """Attempts running now."""
        return self._queues.in_flight

    def is_paused(self, platform_id: int) -> bool:
        """True when the receiver cannot be delivered to now (OFFLINE, suspended, unregistered)."""
        platform = self.directory.platform(platform_id)
        return (
            platform is None
            or self.health.is_offline(platform_id)
            or platform.status not in ("CONNECTED", "OFFLINE")
            or not platform.registered
        )

    def has_room(self, platform_id: int) -> bool:
        """Whether the receiver's ready queue (waiting + in flight) is below max_queue_per_receiver."""
        return self._queues.has_room(platform_id)

    def submit(self, row: Message) -> None:
        """Fast path: a just-committed chain head is started now, or queued for its receiver's next slot."""
        platform_id = row.receiver_platform_id
        if self._stopping or self.is_paused(platform_id):
            self.wake()
            return
        if self._queues.submit(row):
            self._launch(row)
        elif self._queues.room <= 0:
            self._capped = True  # queued for want of room: a freed slot must go to it (_release)

    def offer(self, rows: list[Message]) -> None:
        """Just-committed chain heads no other process sends (alone, or leased): ready at once, started paced.

        A receiver takes at most ``_offer_limit`` ready rows this way; the rest wait in the outbox
        for a round, as before the hand-over. A CPO's bulk PUT of 100,000 Locations would
        otherwise hold 100,000 rows per eMSP in memory, and fill the receiver's ready queue up to
        ``max_queue_per_receiver`` (its directed pushes answered 503).
        """
        if self._stopping:
            return
        left = False
        for row in rows:
            platform_id = row.receiver_platform_id
            if self.is_paused(platform_id):  # a paused receiver's rows wait in the outbox (its resume wakes)
                continue
            if self._queues.waiting(platform_id) >= self._offer_limit:
                left = True
                continue
            self._queues.offer_head(row)
        if left:
            self.wake()  # a round reads what was left in the outbox
        else:
            self._nudge()

    def queued_behind(self, platform_id: int, module: str, object_key: str) -> None:
        """A message was committed behind an earlier one of its object: a round must follow that one."""
        self._queues.queued_behind(platform_id, module, object_key)
        self.wake()

    async def platform_changed(self, platform: Platform, status: str, registered: bool = False) -> None:
        """Registry listener, after the directory's: a receiver that can take messages now gets a round.

        An operator's resume, a registration: what waits for it in the outbox (retries come due
        while it was suspended; ClientInfo legs committed before this process's directory knew it
        as routable, which ``offer`` left there) goes now, not at the next timed look (60 s).
        """
        self.health.sync(platform.id)  # an OFFLINE receiver resumed by the operator is resumed here too
        if not self.is_paused(platform.id):
            self.wake()

    async def called_in(self, platform_id: int) -> None:
        """An OFFLINE platform called the hub: it is alive, resume its queue at once."""
        await self.health.called_in(platform_id)

    async def _resumed(self, platform_id: int) -> None:
        # It answers again: drain its queue now rather than after each message's remaining backoff.
        stamp = iso(self.clock.now())
        await self.store.write(lambda tx: outcome_sql.reschedule_now(tx, platform_id, now=stamp))
        self._queues.drop_ready(platform_id)
        self.wake()

    # ---- the loop ----------------------------------------------------------------------------

    def _ts(self) -> float:
        return self.clock.now().timestamp()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                self.health.probe_due()  # starts probe tasks; never waits for one
                if await self.store.try_lead("maintenance"):  # once per cluster
                    await self.health.check_silent(self.store)
                    if await self.sweeper.sweep_if_due(self._queues.in_flight_ids):
                        self._queues.drop_all_ready()
                        self._unread = True
                else:
                    self.sweeper.not_leading()  # else its never-run sweep looks due at once, every round
                read = self._unread
                if await self._dispatch():
                    continue
                # At the cap a finished attempt wakes the loop: no query for a due time. Nothing read
                # since the last query: its answer still holds (whatever changes it wakes the loop).
                if self._capped:
                    wake_at = self._idle_until()
                elif read:
                    wake_at = await self._next_wake_at()
                else:
                    wake_at = min(self._idle_until(), self._due_at if self._due_at is not None else float("inf"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report_round_failure(LOGGER, "outbox worker round", 1.0, exc)
                wake_at = self._ts() + 1.0
            await self._wait(wake_at)

    async def _wait(self, wake_at: float) -> None:
        self._wake_at = wake_at
        if not self._queues.in_flight and not self._wake.is_set():
            self._idle.set()
        waiter = asyncio.create_task(self._wake.wait())
        # An absolute time, not a delay: a delay taken here would be counted from when the task
        # starts, and an injected clock may move in between (a test's advance() in the same loop
        # iteration), leaving idle() waiting for a round that comes that much too late.
        sleeper = asyncio.create_task(self.clock.sleep_until(datetime.fromtimestamp(wake_at, UTC)))
        tasks: set[asyncio.Task[Any]] = {waiter, sleeper}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if sleeper in done:  # its time came: retries may be due
                self._unread = True
        finally:
            self._idle.clear()
            self._wake_at = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _paused_receivers(self) -> list[int]:
        """Receivers paused now (OFFLINE, suspended, unregistered), recomputed only when that can change."""
        # One pass over the directory per change of it or of the OFFLINE set, not one per round:
        # 10,000 platforms and many rounds a second (issue 22, goal 4).
        key = (self.directory.generation, self.health.generation)
        if key != self._paused_key:
            self._paused = [p.id for p in self.directory.platforms() if self.is_paused(p.id)]
            self._readable = max(1, sum(1 for _ in self.directory.platforms()) - len(self._paused))
            self._paused_key = key
        return self._paused

    def _blocked_receivers(self) -> list[int]:
        return self._queues.blocked(self._paused_receivers())

    def _chunk(self) -> int:
        # A round reads at least this much room: at the cap, one query per freed slot would cost more
        # than the deliveries it feeds.
        return max(1, min(self.settings.batch_size, self.settings.max_in_flight // 4))

    async def _dispatch(self) -> int:
        started = await self._start_ready()
        if started:
            return started
        room = self._queues.room  # attempts that may still start, all receivers together
        if self._queues.sending and room < self._chunk():
            self._capped = True  # a finished attempt wakes the loop once a chunk is free (_done)
            return 0
        self._capped = False
        if not self._unread:
            return 0
        self._unread = False  # a wake-up during the read below asks for another one
        skip = self._blocked_receivers()
        self._queues.skipped(skip)
        now = self.clock.now()
        # The batch shared among the receivers read: with 1,000 of them, each with a queue, reading
        # a whole batch of each to keep the oldest batch_size would read 1,000 batches (issue 22).
        self._paused_receivers()
        readable = max(1, self._readable - (len(skip) - len(self._paused)))  # full receivers aren't read either
        rows = await claims_sql.claim_heads(
            self.store,
            now=iso(now),
            lease_until=iso(now + timedelta(seconds=self.lease_seconds)),
            limit=min(self.settings.batch_size, room),
            skip_receivers=skip,
            skip_request_ids=list(self._queues.in_flight_ids),
            per_receiver=max(_MIN_PER_RECEIVER, -(-min(self.settings.batch_size, room) // readable)),
        )
        self._queues.refill(rows, kept=skip)  # full receivers were not read again: keep their rows
        return await self._start_ready()

    async def _start_ready(self) -> int:
        """Start what the ready queues hold; the loop gets a turn every _STARTS_PER_TURN starts.

        An attempt's first step (building and writing its request) runs in the loop turn after
        its start: 500 started at once (a round after a broadcast to 1,000) made one turn of
        ~75 ms, and every request to the hub (a CPO's next push) waited for it (issue 22).
        """
        started = 0
        while (now := self._start_some(_STARTS_PER_TURN)) > 0:
            started += now
            if now < _STARTS_PER_TURN:
                break
            await asyncio.sleep(0)
        return started

    def _start_some(self, limit: int) -> int:
        """Start up to ``limit`` ready rows, receivers in the order their rows came; how many started."""
        started = 0
        for platform_id in self._queues.waiting_receivers():
            if self.is_paused(platform_id):
                self._queues.drop_ready(platform_id)
            while started < limit and (row := self._queues.take_ready(platform_id)) is not None:
                self._launch(row)
                started += 1
            if self._queues.room <= 0:
                self._capped = True
                break
            if started >= limit:
                break
        return started

    def _launch(self, row: Message) -> None:
        """Run the attempt of ``row``, which the queues just admitted (it holds a receiver slot)."""
        self._idle.clear()
        task = asyncio.create_task(self._deliver(row), name=f"deliver-{row.id}")
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._done, row))

    async def _deliver(self, row: Message) -> bool:
        sent = await self.attempt.send(row)
        # The receiver's slot is free once it answered: the next ready message goes out while this
        # one's record waits for its commit (the row stays in flight, so no round reads it again).
        self._release(row)
        return sent is not None and await self.attempt.record(row, sent)

    def _release(self, row: Message) -> int:
        """Free the receiver slot ``row`` held (once); start the next ready message; return how many started."""
        platform_id = row.receiver_platform_id
        if not self._queues.release(row) or self._stopping:
            return 0
        following = None if self.is_paused(platform_id) else self._queues.take_ready(platform_id)
        if following is not None:
            self._launch(following)
            return 1
        if self._capped and self._queues.has_waiting():
            return self._start_some(self._queues.room)  # the freed room goes to another receiver's ready row
        return 0

    def _done(self, row: Message, task: asyncio.Task[bool]) -> None:
        platform_id = row.receiver_platform_id
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:  # the store failed to record it
            if is_storage_outage(error):  # the store logs the state: no traceback
                LOGGER.warning("message %s: outcome not recorded (%s): it stays queued, may go twice", row.id, error)
            else:
                LOGGER.error("delivery of message %s failed", row.id, exc_info=error)
        finished = not task.cancelled() and task.exception() is None and task.result()
        # A round reads the outbox (two queries): needed unless this was a fast-path message that
        # got its final answer, with nothing committed behind it and no unread rows for its receiver,
        # or while the receiver's ready queue still holds what the last round read.
        needs_round = self._queues.done(row, finished=finished)
        started = self._release(row)  # when cancelled or failed before it could (shutdown)
        if self._capped:  # rows may wait unread for want of room: a round once a chunk is free
            if self._queues.room >= self._chunk():
                self.wake()
        elif needs_round and not started and (not self._queues.waiting(platform_id) or self.is_paused(platform_id)):
            self._queues.round_coming(platform_id)
            self.wake()
        elif not self._queues.in_flight and self._wake_at is not None and not self._wake.is_set():
            self._idle.set()  # the loop is waiting and nothing is left in flight

    def _idle_until(self) -> float:
        return min([*self.health.next_probe_times(), self._ts() + _MAX_IDLE, self.sweeper.next_at])

    async def _next_wake_at(self) -> float:
        candidates: list[float] = [self._idle_until()]
        next_due = await claims_sql.next_due_at(
            self.store, skip_receivers=self._blocked_receivers(), skip_request_ids=list(self._queues.in_flight_ids)
        )
        self._due_at = parse_iso(next_due).timestamp() if next_due is not None else None
        if self._due_at is not None:
            candidates.append(self._due_at)
        return min(candidates)
