"""The fast path's waiters: pushes waiting for the first attempt of their message, by X-Request-ID.

A directed push is committed, then sent at once; its sender waits up to ``relay_wait`` for that
first attempt (``expect``), which the attempt resolves (``settle``). In fail mode
(``on_receiver_down = "fail"``) the sender is told of a failure instead of the message being
kept, so a failed or abandoned message must never go out later (``drop``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from routing.delivery.outcome import Sent

_DROPPED_MEMORY = 10_000  # abandoned ids remembered (a stale copy of the row may still be read)


class FastPath:
    """Waiters keyed by X-Request-ID (unique, unlike row ids, which SQLite reuses after deletes)."""

    def __init__(self) -> None:
        self._waiters: dict[str, asyncio.Future[Sent]] = {}
        self._fail_fast: set[str] = set()
        self._dropped: OrderedDict[str, None] = OrderedDict()

    def expect(self, request_id: str, *, fail_fast: bool) -> asyncio.Future[Sent]:
        """Listen for the first attempt of this message (call before committing it)."""
        fut: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        if fail_fast:
            self._fail_fast.add(request_id)
        return fut

    def stop_waiting(self, request_id: str) -> None:
        """The sender got its answer another way (queued, error): the message stays as it is."""
        self._waiters.pop(request_id, None)
        self._fail_fast.discard(request_id)

    def drop(self, request_id: str) -> None:
        """Fail mode gave up on this message: never send it again; an attempt in flight deletes it."""
        self._waiters.pop(request_id, None)
        self._fail_fast.discard(request_id)
        self._dropped[request_id] = None
        if len(self._dropped) > _DROPPED_MEMORY:
            self._dropped.popitem(last=False)

    def is_dropped(self, request_id: str) -> bool:
        """Whether fail mode gave up on this message (the scheduler must not start it)."""
        return request_id in self._dropped

    def settle(self, request_id: str, sent: Sent) -> bool:
        """An attempt finished: hand its result to the waiting sender, if any.

        Returns True when a retryable failure of this attempt must delete the message instead of
        scheduling a retry (fail mode: the sender is told of the failure).
        """
        fut = self._waiters.pop(request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(sent)
        if request_id in self._fail_fast:
            self._fail_fast.discard(request_id)
            return True
        return request_id in self._dropped

    def cancel_all(self) -> None:
        """Shutdown: nobody waits any longer."""
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()
        self._waiters.clear()
