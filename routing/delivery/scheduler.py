"""The delivery scheduler: one loop, a ready queue per receiver, bounded concurrency per receiver.

Committed messages reach an attempt (routing/delivery/attempt.py) two ways: the fast path hands over a
just-committed chain head (``submit``), and the loop reads the due head of every order chain
from the outbox (``storage.claims.claim_heads``). Both land in the receiver's ready queue, which
starts at most ``concurrency_per_receiver`` attempts at once, so one slow receiver never delays
another; a finished attempt starts the next ready message at once, without a query. The ready
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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict, defaultdict, deque
from datetime import timedelta
from typing import Any

from config import DeliverySettings
from routing.clock import Clock, iso, parse_iso
from routing.delivery.attempt import Attempt
from routing.delivery.fastpath import FastPath
from routing.delivery.health import ReceiverHealth, StatusSetter
from routing.delivery.sweeper import Sweeper
from routing.peers.client import PeerClient
from routing.registry.directory import Directory
from storage import claims as claims_sql
from storage import outbox as outbox_sql
from storage.db import Store
from storage.outbox import Message

LOGGER = logging.getLogger(__name__)

_ATTEMPTED_MEMORY = 100_000  # request ids remembered (far more than a backlog can hold)
# The loop looks at the queue at least this often (clock seconds) even when nothing woke it: a
# missed wake-up (e.g. a platform resumed with nobody to notify) and max_age expiry need a round.
_MAX_IDLE = 60.0
_MIN_PER_RECEIVER = 8  # due rows read per receiver and round, at least (storage/claims.py)


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
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        # Attempts running, by X-Request-ID (row ids are reused after deletes: a new message may get
        # the id of one whose record is still being committed).
        self._in_flight: dict[str, asyncio.Task[bool]] = {}
        self._per_receiver: dict[int, int] = defaultdict(int)  # receiver slots held (a send in progress)
        self._holding: set[str] = set()  # request ids holding a slot
        # Ready messages per receiver not started yet (their receiver was full).
        self._ready: dict[int, deque[Message]] = {}
        # Attempts made per X-Request-ID (recent ones): a copy of a row read before its latest
        # attempt is stale and must not start (it would resend out of order or before its backoff).
        self._attempted: OrderedDict[str, int] = OrderedDict()
        # What tells a finished fast-path attempt whether a round (two queries) is needed at all:
        # rows handed over by submit(), chains with a message committed behind one in flight, and
        # receivers a round skipped because they were full (due rows of theirs may wait unread).
        self._submitted: set[str] = set()
        self._behind: set[tuple[int, str, str]] = set()
        self._skipped_full: set[int] = set()
        # The last round or start found max_in_flight sending: a round waits until a chunk is free.
        self._capped = False

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
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.health.stop()
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.fastpath.cancel_all()

    async def idle(self) -> None:
        """Return once nothing is in flight and nothing is due at the clock's current time (for tests)."""
        while not self._stopping:
            await self.health.quiet()  # probes in flight count as work (each is bounded by its timeout)
            wake_at = self._wake_at
            if self._idle.is_set() and (wake_at is None or wake_at > self._ts()):
                return
            if self._idle.is_set():  # the clock passed the loop's wake-up time: a round is coming
                self._idle.clear()
            await self._idle.wait()

    def wake(self) -> None:
        """New work or a freed slot: run a round now."""
        self._idle.clear()
        self._wake.set()

    def refresh(self) -> None:
        """The queue changed behind the scheduler's back (redrive): forget what was read, re-read."""
        self._ready.clear()
        self._attempted.clear()  # re-driven letters start again from attempt 0
        self.wake()

    @property
    def in_flight(self) -> int:
        """Attempts running now."""
        return len(self._in_flight)

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
        waiting = len(self._ready.get(platform_id, ()))
        return waiting + self._per_receiver.get(platform_id, 0) < self.settings.max_queue_per_receiver

    def submit(self, row: Message) -> None:
        """Fast path: a just-committed chain head is started now, or queued for its receiver's next slot."""
        pid = row.receiver_platform_id
        if self._stopping or self.is_paused(pid):
            self.wake()
            return
        self._submitted.add(row.request_id)
        if not self._start(row):
            self._ready.setdefault(pid, deque()).append(row)

    def queued_behind(self, platform_id: int, module: str, object_key: str) -> None:
        """A message was committed behind an earlier one of its object: a round must follow that one."""
        self._behind.add((platform_id, module, object_key))
        self.wake()

    async def called_in(self, platform_id: int) -> None:
        """An OFFLINE platform called the hub: it is alive, resume its queue at once."""
        await self.health.called_in(platform_id)

    async def _resumed(self, platform_id: int) -> None:
        # It answers again: drain its queue now rather than after each message's remaining backoff.
        stamp = iso(self.clock.now())
        await self.store.write(lambda tx: outbox_sql.reschedule_now(tx, platform_id, now=stamp))
        self._ready.pop(platform_id, None)
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
                    if await self.sweeper.sweep_if_due(self._in_flight):
                        self._ready.clear()
                else:
                    self.sweeper.not_leading()  # else its never-run sweep looks due at once, every round
                if await self._dispatch():
                    continue
                # At the cap a finished attempt wakes the loop: no query for a due time.
                wake_at = self._idle_until() if self._capped else await self._next_wake_at()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("outbox worker round failed; retrying in 1s")
                wake_at = self._ts() + 1.0
            await self._wait(wake_at)

    async def _wait(self, wake_at: float) -> None:
        self._wake_at = wake_at
        if not self._in_flight and not self._wake.is_set():
            self._idle.set()
        waiter = asyncio.create_task(self._wake.wait())
        # The delay is taken when the sleep starts: an injected clock may have moved meanwhile.
        sleeper = asyncio.create_task(self.clock.sleep(max(wake_at - self._ts(), 0.0)))
        tasks: set[asyncio.Task[Any]] = {waiter, sleeper}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._idle.clear()
            self._wake_at = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _blocked_receivers(self) -> list[int]:
        full = [pid for pid, n in self._per_receiver.items() if n >= self.settings.concurrency_per_receiver]
        paused = [p.id for p in self.directory.platforms() if self.is_paused(p.id)]
        return sorted(set(full) | set(paused))

    def _room(self) -> int:
        """Attempts that may still start before max_in_flight are sending (all receivers together)."""
        return self.settings.max_in_flight - len(self._holding)

    def _chunk(self) -> int:
        # A round reads at least this much room: at the cap, one query per freed slot would cost more
        # than the deliveries it feeds.
        return max(1, min(self.settings.batch_size, self.settings.max_in_flight // 4))

    async def _dispatch(self) -> int:
        started = self._start_ready()
        if started:
            return started
        room = self._room()
        if self._holding and room < self._chunk():
            self._capped = True  # a finished attempt wakes the loop once a chunk is free (_done)
            return 0
        self._capped = False
        skip = self._blocked_receivers()
        self._skipped_full.update(pid for pid in skip if self._per_receiver.get(pid, 0))
        now = self.clock.now()
        # The batch shared among the receivers read: with 1,000 of them, each with a queue, reading
        # a whole batch of each to keep the oldest batch_size would read 1,000 batches (issue 22).
        readable = max(1, sum(1 for _ in self.directory.platforms()) - len(skip))
        rows = await claims_sql.claim_heads(
            self.store,
            now=iso(now),
            lease_until=iso(now + timedelta(seconds=self.lease_seconds)),
            limit=min(self.settings.batch_size, room),
            skip_receivers=skip,
            skip_request_ids=list(self._in_flight),
            per_receiver=max(_MIN_PER_RECEIVER, -(-min(self.settings.batch_size, room) // readable)),
        )
        # Full receivers were not read again: keep what their queues hold.
        ready = {pid: queue for pid, queue in self._ready.items() if pid in set(skip)}
        for row in rows:
            ready.setdefault(row.receiver_platform_id, deque()).append(row)
        self._ready = ready
        return self._start_ready()

    def _start_ready(self) -> int:
        before = len(self._in_flight)
        limit = self.settings.concurrency_per_receiver
        for pid in list(self._ready):
            queue = self._ready[pid]
            if self.is_paused(pid):
                queue.clear()
            while queue and self._per_receiver[pid] < limit and self._room() > 0:
                self._start(queue.popleft())
            if not queue:
                del self._ready[pid]
            if self._room() <= 0:
                self._capped = True
                break
        return len(self._in_flight) - before

    def _start(self, row: Message) -> bool:
        """Start an attempt unless the receiver is full (False: keep the row for later).

        A stale copy (read before its latest attempt), a dropped message or a copy already on its
        way is discarded (True): starting it would resend out of order or twice.
        """
        pid = row.receiver_platform_id
        if self._per_receiver[pid] >= self.settings.concurrency_per_receiver:
            return False
        if self._room() <= 0:
            self._capped = True
            return False
        rid = row.request_id
        if self.fastpath.is_dropped(rid) or row.attempts < self._attempted.get(rid, 0) or rid in self._in_flight:
            return True
        self._per_receiver[pid] += 1
        self._holding.add(rid)
        self._idle.clear()
        task = asyncio.create_task(self._deliver(row), name=f"deliver-{row.id}")
        self._in_flight[rid] = task
        task.add_done_callback(functools.partial(self._done, row))
        return True

    async def _deliver(self, row: Message) -> bool:
        sent = await self.attempt.send(row)
        # The receiver's slot is free once it answered: the next ready message goes out while this
        # one's record waits for its commit (the row stays in flight, so no round reads it again).
        self._release(row)
        return sent is not None and await self.attempt.record(row, sent)

    def _release(self, row: Message) -> int:
        """Free the receiver slot ``row`` held (once); start ready messages; return how many started."""
        if row.request_id not in self._holding:
            return 0
        self._holding.discard(row.request_id)
        pid = row.receiver_platform_id
        self._per_receiver[pid] -= 1
        queue = self._ready.get(pid)
        before = len(self._in_flight)
        while queue and len(self._in_flight) == before and not self._stopping and not self.is_paused(pid):
            self._start(queue.popleft())
        if len(self._in_flight) == before and self._capped and self._ready and not self._stopping:
            self._start_ready()  # the freed room goes to another receiver's ready message
        return len(self._in_flight) - before

    def _done(self, row: Message, task: asyncio.Task[bool]) -> None:
        pid = row.receiver_platform_id
        self._in_flight.pop(row.request_id, None)
        if not task.cancelled() and task.exception() is not None:  # the store failed to record it
            LOGGER.error("delivery of message %s failed", row.id, exc_info=task.exception())
        self._attempted[row.request_id] = row.attempts + 1
        self._attempted.move_to_end(row.request_id)
        if len(self._attempted) > _ATTEMPTED_MEMORY:
            self._attempted.popitem(last=False)
        started = self._release(row)  # when cancelled or failed before it could (shutdown)
        chain = (pid, row.module, row.object_key)
        finished = not task.cancelled() and task.exception() is None and task.result()
        # A round reads the outbox (two queries): needed unless this was a fast-path message that
        # got its final answer, with nothing committed behind it and no unread rows for its receiver,
        # or while the receiver's ready queue still holds what the last round read.
        needs_round = (
            row.request_id not in self._submitted or not finished or chain in self._behind or pid in self._skipped_full
        )
        self._submitted.discard(row.request_id)
        self._behind.discard(chain)
        if self._capped:  # rows may wait unread for want of room: a round once a chunk is free
            if self._room() >= self._chunk():
                self.wake()
        elif needs_round and not started and (not self._ready.get(pid) or self.is_paused(pid)):
            self._skipped_full.discard(pid)
            self.wake()
        elif not self._in_flight and self._wake_at is not None and not self._wake.is_set():
            self._idle.set()  # the loop is waiting and nothing is left in flight

    def _idle_until(self) -> float:
        return min([*self.health.next_probe_times(), self._ts() + _MAX_IDLE, self.sweeper.next_at])

    async def _next_wake_at(self) -> float:
        candidates: list[float] = [self._idle_until()]
        next_due = await claims_sql.next_due_at(
            self.store, skip_receivers=self._blocked_receivers(), skip_request_ids=list(self._in_flight)
        )
        if next_due is not None:
            candidates.append(parse_iso(next_due).timestamp())
        return min(candidates)
