"""Connection slots per partner origin, taken before a call's timeout starts.

A bounded pool that makes calls over its bound wait inside their timeout (aiohttp's connector
did: a delivery queued behind 31 others to one busy receiver spent its whole timeout waiting for
a connection, timed out, and was retried while the receiver had it or got it later, a
duplicate; and 500 waiters in the connector's queue cost the event loop more than the requests
themselves, issue 22: 0.45 -> 0.33 ms of loop time per fan-out delivery with the wait moved
here). Here the wait comes first, FIFO per origin, and the timeout covers only the exchange with
the partner. The bounds are the transport's own (routing/peers/transport.py), so it never has to
wait itself.
"""

from __future__ import annotations

import asyncio
from collections import deque

Key = tuple[str, str | None, int | None]  # scheme, host, port: one origin


class Slots:
    """Up to ``total`` calls at once, ``per_origin`` to one origin; 0 means no bound."""

    def __init__(self, *, total: int, per_origin: int) -> None:
        self.total = total
        self.per_origin = per_origin
        self._busy: dict[Key, int] = {}  # calls in progress per origin (entries only while > 0)
        self._in_use = 0
        self._waiting: dict[Key, deque[asyncio.Future[None]]] = {}

    def _free(self, key: Key) -> bool:
        return (not self.total or self._in_use < self.total) and (
            not self.per_origin or self._busy.get(key, 0) < self.per_origin
        )

    def _take(self, key: Key) -> None:
        self._in_use += 1
        self._busy[key] = self._busy.get(key, 0) + 1

    async def acquire(self, key: Key) -> None:
        """Wait for a slot to ``key`` (first come, first served per origin); pair with ``release``."""
        if self._free(key) and key not in self._waiting:
            self._take(key)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(waiter)
        try:
            await waiter  # set by _wake once a slot was taken on this waiter's behalf
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # the slot was handed over just as the caller gave up
            else:
                self._forget(key, waiter)
            raise

    def release(self, key: Key) -> None:
        """Give back a slot to ``key``; the next waiter that may go now gets it."""
        self._in_use -= 1
        left = self._busy[key] - 1
        if left:
            self._busy[key] = left
        else:
            del self._busy[key]
        self._wake()

    def _forget(self, key: Key, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[key]

    def _wake(self) -> None:
        # The origin whose waiter has waited longest first (dicts keep insertion order; an origin
        # re-enters at the end once its queue empties), skipping origins at their own bound.
        if not self._waiting:
            return
        for key in list(self._waiting):
            if self.total and self._in_use >= self.total:
                return
            queue = self._waiting[key]
            while queue and self._free(key):
                waiter = queue.popleft()
                if waiter.done():  # cancelled meanwhile
                    continue
                self._take(key)
                waiter.set_result(None)
            if not queue:
                del self._waiting[key]

    @property
    def in_use(self) -> int:
        """Calls holding a slot now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return sum(len(queue) for queue in self._waiting.values())
