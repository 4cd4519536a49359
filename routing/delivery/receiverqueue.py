"""The scheduler's bookkeeping: one ReceiverQueue per receiver, kept together in ReceiverQueues.

A message row handed to the scheduler (routing/delivery/scheduler.py) goes through three states here:

- ready: offered (``offer``, ``refill``) and waiting in its receiver's queue, first in first out,
  because the receiver had no free slot when the row arrived;
- sending: handed out (``take_ready``, ``submit``) and holding one of the receiver's ``cap`` slots
  until the receiver answered (``release``);
- recording: still in flight until its outcome is committed (``done``), so that no round reads
  and starts a copy of it meanwhile.

The invariants the scheduler relies on, each kept by one method below and checked by
tests/test_receiver_queue.py: a receiver never has more than ``cap`` rows sending; a request id
is never handed out while it is in flight; rows of one receiver are handed out in the order
they were offered; a copy read before the latest attempt of its message (stale) and a message
the fast path dropped (fail mode) are never handed out; counts never go negative.

Nothing here does I/O or knows about tasks, the clock or the directory: the scheduler decides
when a receiver is paused and starts the attempts; this module only says which row may go.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from typing import Generic, Protocol, TypeVar

_ATTEMPTED_MEMORY = 100_000  # request ids remembered (far more than a backlog can hold)


class Row(Protocol):
    """What the bookkeeping reads of an outbox row (storage.outbox.Message has it)."""

    @property
    def receiver_platform_id(self) -> int:
        """The receiver's platform id."""

    @property
    def request_id(self) -> str:
        """The message's X-Request-ID (unique, unlike row ids, which are reused after deletes)."""

    @property
    def attempts(self) -> int:
        """Attempts made before this copy was read."""

    @property
    def module(self) -> str:
        """The OCPI module: with object_key it names the row's order chain."""

    @property
    def object_key(self) -> str:
        """The object the row is about: one chain per receiver, module and object."""


R = TypeVar("R", bound=Row)


_UNBOUNDED = 1 << 30  # room when max_in_flight is None


class Admit(enum.Enum):
    """What admitting a row to its receiver decided."""

    STARTED = "started"  # in flight now, holding one of the receiver's slots
    FULL = "full"  # every slot taken: keep the row for later
    DISCARD = "discard"  # stale, dropped or already in flight: starting it would resend


class ReceiverQueue(Generic[R]):
    """One receiver: ready rows in order, the request ids holding its slots, why a round must look again."""

    def __init__(self, receiver_id: int, cap: int) -> None:
        self.receiver_id = receiver_id
        self.cap = cap
        self._ready: deque[R] = deque()
        self._sending: set[str] = set()  # request ids holding a slot (a send in progress)
        # What tells a finished fast-path attempt whether a round (two queries) is needed at all:
        # rows handed over by submit(), chains with a message committed behind one in flight, and
        # whether a round skipped this receiver while it was busy (due rows may wait unread).
        self._submitted: set[str] = set()
        self._behind: set[tuple[str, str]] = set()
        self._skipped_busy = False

    @property
    def waiting(self) -> int:
        """Ready rows not handed out yet."""
        return len(self._ready)

    @property
    def sending(self) -> int:
        """Slots held (never more than cap)."""
        return len(self._sending)

    @property
    def full(self) -> bool:
        """Whether every slot is held (no row may be handed out)."""
        return len(self._sending) >= self.cap

    def offer(self, row: R) -> None:
        """Queue ``row`` behind the ready rows (first in, first out)."""
        self._ready.append(row)

    def pop_ready(self) -> R | None:
        """The oldest ready row if a slot is free, else None (the row is not admitted yet)."""
        if self.full or not self._ready:
            return None
        return self._ready.popleft()

    def drop_ready(self) -> None:
        """Forget the ready rows (a round reads them again from the outbox)."""
        for row in self._ready:  # a copy read again is no longer the one handed over
            self._submitted.discard(row.request_id)
        self._ready.clear()

    def hold(self, request_id: str) -> None:
        """Take a slot for ``request_id`` (the caller checked ``full``)."""
        self._sending.add(request_id)

    def release(self, request_id: str) -> bool:
        """Free the slot ``request_id`` held; False when it held none (released already)."""
        if request_id not in self._sending:
            return False
        self._sending.discard(request_id)
        return True

    def mark_submitted(self, request_id: str) -> None:
        """The fast path handed this row over (its end needs no round unless something else says so)."""
        self._submitted.add(request_id)

    def mark_behind(self, module: str, object_key: str) -> None:
        """A message was committed behind this chain's head: a round must follow the head's end."""
        self._behind.add((module, object_key))

    def mark_skipped(self) -> None:
        """A round did not read this receiver; if it is busy, its end must bring a round."""
        if self._sending:
            self._skipped_busy = True

    def round_coming(self) -> None:
        """A round will read this receiver again: a past skip no longer asks for one."""
        self._skipped_busy = False

    def finish(self, row: R, *, finished: bool) -> bool:
        """The attempt of ``row`` ended (``finished``: with its final answer); True when a round is needed."""
        chain = (row.module, row.object_key)
        needs_round = (
            row.request_id not in self._submitted or not finished or chain in self._behind or self._skipped_busy
        )
        self._submitted.discard(row.request_id)
        self._behind.discard(chain)
        return needs_round


class ReceiverQueues(Generic[R]):
    """Every receiver's queue, the request ids in flight and the attempts made per request id."""

    def __init__(
        self,
        *,
        cap: int,
        max_queue: int,
        max_in_flight: int | None = None,
        dropped: Callable[[str], bool] = lambda _: False,
        memory: int = _ATTEMPTED_MEMORY,
    ) -> None:
        self.cap = cap
        self.max_queue = max_queue
        # All receivers together hold at most this many slots (issue 22, goal 4: a fan-out to
        # 10,000 platforms waits in the outbox, not as 10,000 attempts holding bodies in memory).
        self.max_in_flight = max_in_flight
        self._holding = 0  # slots held, all receivers together
        # Receivers whose every slot is held, kept as slots are taken and freed: a round asks for
        # them, and walking 1,000 queues per round was 3.6 % of a fan-out's samples (py-spy).
        self._full: set[int] = set()
        self._dropped = dropped
        self._memory = memory
        # In order of last becoming non-empty: receivers are served in the order their rows came.
        self._queues: dict[int, ReceiverQueue[R]] = {}
        # The receivers with ready rows, in the order their rows came (a dict as an ordered set): a
        # fan-out to 1,000 receivers must not walk every queue each time an attempt ends.
        self._ready: dict[int, None] = {}
        # Attempts running or being recorded, by X-Request-ID (row ids are reused after deletes: a
        # new message may get the id of one whose record is still being committed).
        self._in_flight: set[str] = set()
        # Attempts made per X-Request-ID (recent ones): a copy of a row read before its latest
        # attempt is stale and must not start (it would resend out of order or before its backoff).
        self._attempted: OrderedDict[str, int] = OrderedDict()

    # ---- reading -----------------------------------------------------------------------------

    def of(self, receiver_id: int) -> ReceiverQueue[R]:
        """The receiver's queue (made empty on first use)."""
        queue = self._queues.get(receiver_id)
        if queue is None:
            queue = self._queues[receiver_id] = ReceiverQueue(receiver_id, self.cap)
        return queue

    @property
    def in_flight(self) -> int:
        """Attempts running or being recorded."""
        return len(self._in_flight)

    @property
    def sending(self) -> int:
        """Slots held, all receivers together (never more than max_in_flight)."""
        return self._holding

    @property
    def room(self) -> int:
        """Slots that may still be taken before max_in_flight are held (unbounded: a large number)."""
        if self.max_in_flight is None:
            return _UNBOUNDED
        return self.max_in_flight - self._holding

    @property
    def in_flight_ids(self) -> AbstractSet[str]:
        """Request ids in flight, a live read-only view (a round must not read them)."""
        return self._in_flight

    def has_room(self, receiver_id: int) -> bool:
        """Whether the receiver's rows waiting and sending are below max_queue."""
        queue = self._queues.get(receiver_id)
        return queue is None or queue.waiting + queue.sending < self.max_queue

    def waiting(self, receiver_id: int) -> int:
        """Ready rows of the receiver not handed out yet."""
        queue = self._queues.get(receiver_id)
        return 0 if queue is None else queue.waiting

    def waiting_receivers(self) -> list[int]:
        """Receivers with ready rows, in the order their rows came."""
        return [platform_id for platform_id in self._ready if self._queues[platform_id].waiting]

    def has_waiting(self) -> bool:
        """Whether any receiver has ready rows not handed out yet."""
        return any(self._queues[platform_id].waiting for platform_id in self._ready)

    def blocked(self, paused: Iterable[int]) -> list[int]:
        """Receivers a round must not read, sorted: the full ones and ``paused``."""
        return sorted(self._full.union(paused))

    # ---- rows in -----------------------------------------------------------------------------

    def offer(self, row: R) -> None:
        """Queue ``row`` behind its receiver's ready rows."""
        platform_id = row.receiver_platform_id
        queue = self.of(platform_id)
        if not queue.waiting:  # served after the receivers whose rows came earlier
            self._queues[platform_id] = self._queues.pop(platform_id)
            self._ready.pop(platform_id, None)
            self._ready[platform_id] = None
        queue.offer(row)

    def offer_head(self, row: R) -> None:
        """A just-committed chain head handed over like ``submit``'s, but queued: the scheduler starts it."""
        self.of(row.receiver_platform_id).mark_submitted(row.request_id)
        self.offer(row)

    def refill(self, rows: Sequence[R], *, kept: Iterable[int]) -> None:
        """A round read ``rows``: they replace the ready rows of every receiver but the ``kept`` ones."""
        keep = set(kept)
        for platform_id, queue in self._queues.items():
            if platform_id not in keep:
                queue.drop_ready()
        self._ready = {platform_id: None for platform_id in self._ready if platform_id in keep}
        for row in rows:
            self.offer(row)

    def drop_ready(self, receiver_id: int) -> None:
        """Forget the receiver's ready rows (paused, or its queue was rescheduled)."""
        queue = self._queues.get(receiver_id)
        if queue is not None:
            queue.drop_ready()
        self._ready.pop(receiver_id, None)

    def drop_all_ready(self) -> None:
        """Forget every ready row (the outbox changed behind the scheduler's back)."""
        for queue in self._queues.values():
            queue.drop_ready()
        self._ready.clear()

    def forget_attempts(self) -> None:
        """Forget the attempts made (re-driven letters start again from attempt 0)."""
        self._attempted.clear()

    # ---- rows out ----------------------------------------------------------------------------

    def admit(self, row: R) -> Admit:
        """Start ``row`` if its receiver has a free slot and it is neither stale, dropped nor in flight."""
        queue = self.of(row.receiver_platform_id)
        if queue.full or self.room <= 0:
            return Admit.FULL
        rid = row.request_id
        if self._dropped(rid) or row.attempts < self._attempted.get(rid, 0) or rid in self._in_flight:
            return Admit.DISCARD
        queue.hold(rid)
        self._holding += 1
        if queue.full:
            self._full.add(queue.receiver_id)
        self._in_flight.add(rid)
        return Admit.STARTED

    def submit(self, row: R) -> bool:
        """Fast path: start ``row`` now (True) or queue it for its receiver's next slot."""
        self.of(row.receiver_platform_id).mark_submitted(row.request_id)
        admitted = self.admit(row)
        if admitted is Admit.FULL:
            self.offer(row)
        return admitted is Admit.STARTED

    def take_ready(self, receiver_id: int) -> R | None:
        """The receiver's oldest ready row that may start, now in flight; None when full or none is left.

        Stale, dropped and in-flight copies met on the way are discarded.
        """
        queue = self._queues.get(receiver_id)
        try:
            while queue is not None and self.room > 0 and (row := queue.pop_ready()) is not None:
                if self.admit(row) is Admit.STARTED:
                    return row
            return None
        finally:
            if queue is not None and not queue.waiting:
                self._ready.pop(receiver_id, None)

    def release(self, row: R) -> bool:
        """The receiver answered ``row``: free its slot (once); False when it held none."""
        queue = self.of(row.receiver_platform_id)
        released = queue.release(row.request_id)
        if released:
            self._holding -= 1
            if not queue.full:
                self._full.discard(queue.receiver_id)
        return released

    def done(self, row: R, *, finished: bool) -> bool:
        """The attempt of ``row`` is recorded: no longer in flight; True when a round must follow.

        ``finished``: it got its final answer. The slot is freed by ``release``, not here.
        """
        rid = row.request_id
        self._in_flight.discard(rid)
        self._attempted[rid] = row.attempts + 1
        self._attempted.move_to_end(rid)
        if len(self._attempted) > self._memory:
            self._attempted.popitem(last=False)
        return self.of(row.receiver_platform_id).finish(row, finished=finished)

    # ---- why a round must look again ---------------------------------------------------------

    def queued_behind(self, receiver_id: int, module: str, object_key: str) -> None:
        """A message was committed behind an earlier one of its object: a round must follow that one."""
        self.of(receiver_id).mark_behind(module, object_key)

    def skipped(self, receiver_ids: Iterable[int]) -> None:
        """A round did not read these receivers: the end of a send of theirs must bring a round."""
        for platform_id in receiver_ids:
            queue = self._queues.get(platform_id)
            if queue is not None:
                queue.mark_skipped()

    def round_coming(self, receiver_id: int) -> None:
        """A round will read the receiver again: a past skip no longer asks for one."""
        self.of(receiver_id).round_coming()
