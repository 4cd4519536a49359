"""The delivery sweeper: expiry (max_age) and the purge of expired stand-in URLs, in one commit.

Run by the scheduler at most every ``EVERY`` clock seconds. Pending messages past their deadline
become dead letters, attempted or not (messages being sent right now are left to their attempt);
expired stand-in URLs (callbacks, proxied pages) go in the same commit, since nothing else
removes them. Every minute it also has the store refresh the busy tables' statistics
(PostgreSQL: ANALYZE; vacuuming is autovacuum's). Only the process
holding the cluster's maintenance lease sweeps (routing/delivery/scheduler.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from routing.clock import Clock, iso
from storage import outcomes as outcome_sql
from storage import proxies as proxy_sql
from storage.db import Store, SyncTx

LOGGER = logging.getLogger(__name__)

EVERY = 10.0  # clock seconds between sweeps
MAINTAIN_EVERY = 60.0  # clock seconds between refreshes of the planner's statistics (PostgreSQL)


class Sweeper:
    """Expires undelivered messages and purges expired stand-in URLs."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._last = float("-inf")
        self._maintained = float("-inf")

    @property
    def next_at(self) -> float:
        """When the next sweep is due (clock timestamp)."""
        return self._last + EVERY

    def not_leading(self) -> None:
        """Another process sweeps: this one asks for the lease again when its next sweep would be due."""
        if self.clock.now().timestamp() - self._last >= EVERY:
            self._last = self.clock.now().timestamp()

    async def sweep_if_due(self, in_flight: Collection[str]) -> int:
        """Sweep when EVERY seconds passed (``in_flight``: request ids being sent); return how many expired."""
        now = self.clock.now()
        if now.timestamp() - self._last < EVERY:
            return 0
        self._last = now.timestamp()
        stamp, skip = iso(now), list(in_flight)

        def sweep(tx: SyncTx) -> int:
            proxy_sql.purge_expired(tx, stamp)
            return outcome_sql.expire(tx, now=stamp, skip_request_ids=skip)

        count: int = await self.store.write(sweep)
        if count:
            LOGGER.error("%d undelivered message(s) passed max_age and became dead letters", count)
        if self._maintained == float("-inf"):
            self._maintained = now.timestamp()  # not at start: the first refresh a minute in
        elif now.timestamp() - self._maintained >= MAINTAIN_EVERY:
            self._maintained = now.timestamp()
            await self.store.maintain()
        return count
