"""The scheduler's bookkeeping (routing/delivery/receiverqueue.py): its invariants, unit by unit and as a state machine.

Never more rows sending than the cap, a request id never handed out twice while in flight,
rows of one receiver handed out first in first out, stale, dropped and forgotten rows never
handed out, counts never negative. The scheduler itself is exercised end to end by
tests/test_delivery*.py; here the bookkeeping runs alone, without tasks or a clock.
"""

from __future__ import annotations

from collections import deque

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from routing.delivery.receiverqueue import Admit, ReceiverQueues
from storage.outbox import Message


def _row(receiver: int, request_id: str, *, attempts: int = 0, key: str = "obj") -> Message:
    return Message(
        id=1,
        receiver_platform_id=receiver,
        module="locations",
        object_key=key,
        method="PUT",
        url="http://127.0.0.1:1/x",
        request_id=request_id,
        headers={},
        body=None,
        state="PENDING",
        attempts=attempts,
        created_at="2026-01-01T00:00:00Z",
        next_attempt_at="2026-01-01T00:00:00Z",
        deadline_at="2026-01-02T00:00:00Z",
        last_error=None,
        last_http_status=None,
        last_ocpi_status=None,
    )


def _queues(cap: int = 2, max_queue: int = 10, dropped: frozenset[str] = frozenset()) -> ReceiverQueues[Message]:
    return ReceiverQueues(cap=cap, max_queue=max_queue, dropped=dropped.__contains__)


def _drain(queues: ReceiverQueues[Message], receiver: int) -> list[str]:
    out = []
    while (row := queues.take_ready(receiver)) is not None:
        out.append(row.request_id)
    return out


def test_admit_starts_up_to_the_cap_then_says_full() -> None:
    queues = _queues(cap=2)
    assert [queues.admit(_row(1, f"r{i}")) for i in range(3)] == [Admit.STARTED, Admit.STARTED, Admit.FULL]
    assert queues.in_flight == 2 and queues.of(1).sending == 2 and queues.of(1).full
    assert queues.admit(_row(2, "other")) is Admit.STARTED  # one full receiver never blocks another


def test_ready_rows_go_out_first_in_first_out_as_slots_free() -> None:
    queues = _queues(cap=1)
    for i in range(3):
        queues.offer(_row(1, f"r{i}"))
    assert _drain(queues, 1) == ["r0"]  # one slot
    assert queues.take_ready(1) is None and queues.waiting(1) == 2
    assert queues.release(_row(1, "r0")) and not queues.release(_row(1, "r0"))  # a slot is freed once
    assert _drain(queues, 1) == ["r1"]


def test_a_request_id_in_flight_is_never_handed_out_again() -> None:
    queues = _queues(cap=3)
    assert queues.admit(_row(1, "r")) is Admit.STARTED
    queues.offer(_row(1, "r"))  # a copy read by a round while the first is still being recorded
    queues.release(_row(1, "r"))
    assert queues.admit(_row(1, "r")) is Admit.DISCARD
    assert _drain(queues, 1) == [] and queues.waiting(1) == 0  # the copy is discarded, not kept


def test_a_stale_copy_is_discarded_and_a_fresh_one_starts() -> None:
    queues = _queues()
    assert queues.admit(_row(1, "r", attempts=0)) is Admit.STARTED
    queues.release(_row(1, "r"))
    queues.done(_row(1, "r"), finished=False)  # retry due later: attempts is 1 in the outbox now
    queues.offer(_row(1, "r", attempts=0))  # read before that attempt
    queues.offer(_row(1, "r", attempts=1))
    assert _drain(queues, 1) == ["r"]
    assert list(queues.in_flight_ids) == ["r"]
    queues.forget_attempts()  # a redrive starts the letter again from attempt 0
    queues.release(_row(1, "r"))
    queues.done(_row(1, "r", attempts=1), finished=False)
    queues.forget_attempts()
    assert queues.admit(_row(1, "r", attempts=0)) is Admit.STARTED


def test_a_dropped_message_never_goes_out() -> None:
    queues = _queues(dropped=frozenset({"gone"}))
    queues.offer(_row(1, "gone"))
    queues.offer(_row(1, "kept"))
    assert _drain(queues, 1) == ["kept"]


def test_a_full_receiver_queues_the_submitted_row_and_counts_it_against_max_queue() -> None:
    queues = _queues(cap=1, max_queue=3)
    assert queues.submit(_row(1, "a")) and not queues.submit(_row(1, "b"))
    assert queues.waiting(1) == 1 and queues.has_room(1)  # 1 sending + 1 waiting < 3
    queues.offer(_row(1, "c"))
    assert not queues.has_room(1) and queues.has_room(2)


def test_refill_replaces_ready_rows_except_the_kept_receivers() -> None:
    queues = _queues(cap=1)
    queues.admit(_row(1, "busy"))
    queues.offer(_row(1, "r1"))
    queues.offer(_row(2, "old"))
    queues.refill([_row(3, "new3"), _row(2, "new2")], kept=queues.blocked(paused=[]))
    assert queues.blocked(paused=[5]) == [1, 5]
    assert queues.waiting_receivers() == [1, 3, 2]  # kept first, then in the order the round read
    assert _drain(queues, 2) == ["new2"] and queues.waiting(1) == 1


def test_dropped_ready_rows_of_a_paused_receiver_are_never_handed_out() -> None:
    queues = _queues()
    queues.offer(_row(1, "a"))
    queues.offer(_row(2, "b"))
    queues.drop_ready(1)
    assert _drain(queues, 1) == [] and _drain(queues, 2) == ["b"]
    queues.offer(_row(1, "c"))
    queues.drop_all_ready()
    assert queues.waiting_receivers() == []


def test_a_fast_path_row_needs_no_round_unless_something_asks_for_one() -> None:
    queues = _queues(cap=1)
    assert queues.submit(_row(1, "a", key="x"))
    queues.release(_row(1, "a", key="x"))
    assert not queues.done(_row(1, "a", key="x"), finished=True)
    assert queues.submit(_row(1, "b", key="x"))
    assert queues.done(_row(1, "b", key="x"), finished=False)  # a retry is due: a round must read it
    queues.release(_row(1, "b", key="x"))
    assert queues.admit(_row(1, "c", key="y")) is Admit.STARTED
    assert queues.done(_row(1, "c", key="y"), finished=True)  # read by a round, not submitted
    queues.release(_row(1, "c", key="y"))
    assert queues.submit(_row(1, "d", key="x"))
    queues.queued_behind(1, "locations", "x")
    assert queues.done(_row(1, "d", key="x"), finished=True)  # its successor waits in the outbox


def test_a_receiver_skipped_while_busy_asks_for_a_round_until_one_is_coming() -> None:
    queues = _queues(cap=1)
    queues.skipped([1, 2])  # neither busy: nothing to remember (and no queue is made)
    assert queues.submit(_row(1, "a"))
    queues.skipped(queues.blocked(paused=[]))
    queues.release(_row(1, "a"))
    assert queues.done(_row(1, "a"), finished=True)
    assert queues.submit(_row(1, "b"))
    queues.release(_row(1, "b"))
    assert queues.done(_row(1, "b"), finished=True)  # still asking: no round was promised
    queues.round_coming(1)
    assert queues.submit(_row(1, "c"))
    queues.release(_row(1, "c"))
    assert not queues.done(_row(1, "c"), finished=True)


def test_attempt_memory_is_bounded_oldest_first() -> None:
    queues = ReceiverQueues[Message](cap=1, max_queue=10, memory=2)
    for rid in ("a", "b", "c"):
        queues.admit(_row(1, rid))
        queues.release(_row(1, rid))
        queues.done(_row(1, rid), finished=False)
    assert queues.admit(_row(1, "a", attempts=0)) is Admit.STARTED  # "a" was forgotten
    queues.release(_row(1, "a"))
    assert queues.admit(_row(1, "c", attempts=0)) is Admit.DISCARD


RECEIVERS = st.integers(min_value=1, max_value=3)


class QueuesMachine(RuleBasedStateMachine):
    """Random offers, rounds, submits, answers and records against a model of what may go out."""

    CAP = 2

    def __init__(self) -> None:
        super().__init__()
        self.dropped: set[str] = set()
        self.queues = ReceiverQueues[Message](cap=self.CAP, max_queue=6, dropped=self.dropped.__contains__)
        self.next_id = 0
        self.ready: dict[int, deque[Message]] = {1: deque(), 2: deque(), 3: deque()}  # model, in offer order
        self.sending: dict[str, Message] = {}
        self.recording: dict[str, Message] = {}
        self.attempts: dict[str, int] = {}  # attempts made per request id (the outbox's view)

    def _new(self, receiver: int) -> Message:
        self.next_id += 1
        return _row(receiver, f"m{self.next_id}")

    def _may_go(self, row: Message) -> bool:
        rid = row.request_id
        fresh = row.attempts >= self.attempts.get(rid, 0)
        return fresh and rid not in self.dropped and rid not in self.sending and rid not in self.recording

    def _handed_out(self, row: Message) -> None:
        rid = row.request_id
        assert rid not in self.sending and rid not in self.recording, "handed out twice while in flight"
        assert rid not in self.dropped, "a dropped message went out"
        assert row.attempts >= self.attempts.get(rid, 0), "a stale copy went out"
        self.sending[rid] = row

    def _offer(self, row: Message) -> None:
        self.queues.offer(row)
        self.ready[row.receiver_platform_id].append(row)

    @rule(receiver=RECEIVERS)
    def offer_new(self, receiver: int) -> None:
        self._offer(self._new(receiver))

    @rule(receiver=RECEIVERS)
    def offer_committed_head(self, receiver: int) -> None:
        row = self._new(receiver)  # a chain head handed over as committed: queued like a round's row
        self.queues.offer_head(row)
        self.ready[receiver].append(row)

    @rule(receiver=RECEIVERS)
    def submit_new(self, receiver: int) -> None:
        row = self._new(receiver)
        full = self.queues.of(receiver).full
        if self.queues.submit(row):
            assert not full
            self._handed_out(row)
        else:
            assert full
            self.ready[receiver].append(row)

    @rule(receiver=RECEIVERS)
    def take(self, receiver: int) -> None:
        full = self.queues.of(receiver).full
        row = self.queues.take_ready(receiver)
        model = self.ready[receiver]
        if full:
            assert row is None, "a full receiver got one more row"
            return
        while model and not self._may_go(model[0]):  # discarded on the way
            model.popleft()
        if not model:
            assert row is None
            return
        assert row is model.popleft(), "rows of one receiver went out of order"
        self._handed_out(row)

    @precondition(lambda self: self.sending)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.sending)))
        row = self.sending.pop(rid)
        assert self.queues.release(row)
        assert not self.queues.release(row)
        self.recording[rid] = row

    @precondition(lambda self: self.recording)
    @rule(data=st.data(), finished=st.booleans(), stale=st.booleans(), retry=st.booleans())
    def record(self, data: st.DataObject, finished: bool, stale: bool, retry: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.recording)))
        row = self.recording.pop(rid)
        self.queues.done(row, finished=finished)
        self.attempts[rid] = row.attempts + 1
        if stale:  # a round read a copy made before this attempt: it must never go out
            self._offer(row)
        if retry:  # the copy a round reads once the retry is due
            self._offer(_row(row.receiver_platform_id, rid, attempts=row.attempts + 1))

    @precondition(lambda self: self.sending or self.recording)
    @rule(data=st.data())
    def copy_in_flight(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted([*self.sending, *self.recording])))
        row = self.sending.get(rid) or self.recording[rid]
        assert self.queues.admit(row) in (Admit.DISCARD, Admit.FULL)
        self._offer(row)  # a round read it meanwhile: it must not go out while in flight

    @precondition(lambda self: any(self.ready.values()))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted({r.request_id for q in self.ready.values() for r in q})))
        self.dropped.add(rid)

    @rule(receiver=RECEIVERS)
    def pause(self, receiver: int) -> None:
        self.queues.drop_ready(receiver)
        self.ready[receiver].clear()

    @rule(receivers=st.lists(RECEIVERS, max_size=3))
    def round(self, receivers: list[int]) -> None:
        skip = self.queues.blocked(paused=[])
        new = [self._new(pid) for pid in receivers if pid not in skip]
        for pid, queue in self.ready.items():
            if pid not in skip:
                queue.clear()
        self.queues.refill(new, kept=skip)
        for row in new:
            self.ready[row.receiver_platform_id].append(row)

    @invariant()
    def never_more_than_the_cap_sending(self) -> None:
        for pid in self.ready:
            queue = self.queues.of(pid)
            mine = sum(1 for r in self.sending.values() if r.receiver_platform_id == pid)
            assert queue.sending == mine <= self.CAP
            assert queue.full == (mine >= self.CAP)
            assert (pid in self.queues.blocked(paused=[])) == queue.full  # kept as slots come and go

    @invariant()
    def counts_match_and_are_never_negative(self) -> None:
        assert self.queues.in_flight == len(self.sending) + len(self.recording) >= 0
        assert sorted(self.queues.in_flight_ids) == sorted([*self.sending, *self.recording])
        for pid, model in self.ready.items():
            assert self.queues.waiting(pid) == len(model) >= 0
            assert self.queues.has_room(pid) == (len(model) + self.queues.of(pid).sending < 6)

    @invariant()
    def waiting_receivers_are_those_with_ready_rows_in_the_order_their_rows_came(self) -> None:
        having = {pid for pid, model in self.ready.items() if model}
        listed = self.queues.waiting_receivers()
        assert set(listed) == having and len(listed) == len(having)
        assert self.queues.has_waiting() == bool(having)
        # The order the queues themselves keep (each moved last when it became non-empty).
        assert listed == [pid for pid, queue in self.queues._queues.items() if queue.waiting]


QueuesMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_receiver_queues_state_machine = QueuesMachine.TestCase
