"""The retention sweep: stored copies, finished messages and the audit log do not grow without bound.

Sessions, CDRs and tokens are removed ``retention.<module>`` seconds after their last update;
locations and tariffs when their owner's platform is no longer registered (unregistered or
deleted); dead, rejected and discarded outbox messages ``retention.dead_letters`` seconds after
they finished (never a pending one, never one a process holds); audit entries
``retention.audit_log`` seconds after they were written. Rows go in small batches
(``retention.batch_size``), each its own short write, so pushes queue behind at most one
batch; freed pages go back to the file system with
``PRAGMA incremental_vacuum`` so a hub that runs for years stays the size of its window.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from config import RetentionSettings
from routing.clock import Clock, iso
from routing.jobs.periodic import Periodic
from routing.protocol.vocab import ModuleID
from storage import retention as retention_sql
from storage.db import Store, SyncTx

LOGGER = logging.getLogger(__name__)

AGED: tuple[str, ...] = (ModuleID.SESSIONS, ModuleID.CDRS, ModuleID.TOKENS)
OWNED: tuple[str, ...] = (ModuleID.LOCATIONS, ModuleID.TARIFFS)
_VACUUM_PAGES = 2000  # per step: a few MB, a short write


@dataclass
class SweepResult:
    """What one sweep removed, per module, and the pages it gave back."""

    removed: dict[str, int] = field(default_factory=dict)
    messages_removed: dict[str, int] = field(default_factory=dict)  # per outbox state
    audit_removed: int = 0
    pages_freed: int = 0


class RetentionSweeper:
    """Runs a sweep at start and then every ``sweep_interval`` seconds (on the injected clock)."""

    def __init__(self, store: Store, settings: RetentionSettings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.sweeps = 0  # completed sweeps (tests wait on it)
        self.last: SweepResult | None = None
        self.task = Periodic(
            "retention-sweep", self._round, lambda: self.settings.sweep_interval, clock, lead=store.try_lead
        )

    async def _round(self) -> None:
        await self.sweep()

    async def sweep(self) -> SweepResult:
        """Remove what is past retention, batch by batch, then vacuum the freed pages."""
        result = SweepResult()
        now = self.clock.now()
        for module in AGED:
            keep = getattr(self.settings, module)
            if keep > 0:
                result.removed[module] = await self._expire(module, iso(now - timedelta(seconds=keep)))
        for module, country_code, party_id in await retention_sql.owners(self.store, OWNED):
            if not await retention_sql.owner_is_live(self.store, country_code, party_id):
                removed = await self._orphans(module, country_code, party_id)
                result.removed[module] = result.removed.get(module, 0) + removed
        if self.settings.dead_letters > 0:
            before = iso(now - timedelta(seconds=self.settings.dead_letters))
            for state in retention_sql.FINISHED_STATES:
                result.messages_removed[state] = await self._finished(state, before, iso(now))
        if self.settings.audit_log > 0:
            result.audit_removed = await self._audit(iso(now - timedelta(seconds=self.settings.audit_log)))
        result.pages_freed = await self._vacuum()
        if any(result.removed.values()) or any(result.messages_removed.values()) or result.audit_removed:
            LOGGER.info(
                "retention sweep removed %s, finished messages %s, audit entries %d; %d pages freed",
                result.removed,
                result.messages_removed,
                result.audit_removed,
                result.pages_freed,
            )
        if result.messages_removed.get("dead"):
            # Nobody re-drove or discarded them within the window: say so apart from the routine figures.
            LOGGER.warning(
                "retention sweep removed %d dead letter(s) undecided for %g days (retention.dead_letters)",
                result.messages_removed["dead"],
                self.settings.dead_letters / 86400,
            )
        self.last = result
        self.sweeps += 1
        return result

    async def _in_chunks(
        self, read: Callable[[int], Awaitable[list[int]]], delete: Callable[[list[int]], Callable[[SyncTx], int]]
    ) -> int:
        """Read up to batch_size keys, delete them in one short write, again; how many went.

        Bounded: each step deletes what it read, or stops (a short read is the last one).
        """
        removed = 0
        size = self.settings.batch_size
        while keys := await read(size):
            done = await self.store.write(delete(keys))
            removed += done
            if len(keys) < size or done == 0:
                break
        return removed

    async def _expire(self, module: str, before: str) -> int:
        return await self._in_chunks(
            lambda n: retention_sql.expired_seqs(self.store, module, before=before, limit=n),
            lambda seqs: functools.partial(retention_sql.delete_expired, seqs=seqs, before=before),
        )

    async def _orphans(self, module: str, country_code: str, party_id: str) -> int:
        return await self._in_chunks(
            lambda n: retention_sql.owned_seqs(self.store, module, country_code, party_id, limit=n),
            lambda seqs: functools.partial(
                retention_sql.delete_orphaned, seqs=seqs, country_code=country_code, party_id=party_id
            ),
        )

    async def _finished(self, state: str, before: str, now: str) -> int:
        return await self._in_chunks(
            lambda n: retention_sql.finished_ids(self.store, state, before=before, now=now, limit=n),
            lambda ids: functools.partial(retention_sql.delete_finished, ids=ids, state=state, before=before, now=now),
        )

    async def _audit(self, before: str) -> int:
        return await self._in_chunks(
            lambda n: retention_sql.audit_ids(self.store, before=before, limit=n),
            lambda ids: functools.partial(retention_sql.delete_audit, ids=ids, before=before),
        )

    async def _vacuum(self) -> int:
        freed = 0
        for _ in range(10_000):  # bounded; each step frees up to _VACUUM_PAGES
            free = (await retention_sql.database_figures(self.store)).freelist_count
            if free == 0:
                break
            step = min(free, _VACUUM_PAGES)
            await self.store.write(functools.partial(retention_sql.incremental_vacuum, pages=step))
            after = (await retention_sql.database_figures(self.store)).freelist_count
            freed += free - after
            if after >= free:  # auto_vacuum not INCREMENTAL (cannot shrink): nothing more to do
                break
        return freed
