"""The loop of the tasks that work off leased rows: the broadcast expander and the ClientInfo pusher.

A row committed before the answer (a broadcast record, routing/expander.py; a ClientInfo fan-out,
routing/registry/clientinfo.py) is worked off by a task after it, oldest first; rows a crash left
are taken by the first round after start. On a shared database (PostgreSQL) a row is leased to
one process and taken over by another once that lease runs out, so rounds look again every
``IDLE_SHARED`` seconds and say (NOTIFY) when they got rows done: the row behind may be another
process's turn now. It sits at the top of routing/ because it calls down into both.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from routing.clock import Clock, iso
from routing.tasks import cancel_and_wait, report_round_failure
from storage.db import Job, Store

LOGGER = logging.getLogger(__name__)

IDLE_ALONE = 60.0  # clock seconds between rounds with nothing to do (alone, every row is our own)
IDLE_SHARED = 1.0  # shared: rows of a process that died become ours when their lease runs out
RETRY = 1.0  # after a failed round


class LeasedRowsLoop(ABC):
    """Claims leased rows and works each off, one round after another; start() with the app, stop() before the worker.

    A subclass names its task, its NOTIFY channel and what it does (for logs), and implements
    ``_claim`` and ``_work``; ``_release`` hands its leases over at stop (shared database).
    """

    TASK_NAME: ClassVar[str]
    CHANNEL: ClassVar[str]  # NOTIFY after a round that got rows done
    DONE: ClassVar[str]  # its payload
    WHAT: ClassVar[str]  # "broadcast expansion", for log lines

    store: Store
    clock: Clock
    lease_seconds: float
    _wake: asyncio.Event
    _idle: asyncio.Event
    _stopping: bool
    _task: asyncio.Task[None] | None

    def _init_loop(self) -> None:
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._stopping = False
        self._task = None

    @abstractmethod
    async def _claim(self, now: str, lease_until: str) -> Sequence[Any]:
        """The rows this round works off, oldest first (leased to this process when shared)."""

    @abstractmethod
    async def _work(self, row: Any) -> None:
        """Work one row off (in chunks, each committed with the row's progress)."""

    @abstractmethod
    def _release(self) -> Job:
        """The write job giving this process's leases back (stop on a shared database)."""

    def lease_until(self) -> str:
        """Until when a row this process claims or accepts is its own (shared database)."""
        return iso(self.clock.now() + timedelta(seconds=self.lease_seconds))

    def start(self) -> None:
        """Start the task; its first round takes what a crash left."""
        self._task = asyncio.create_task(self._run(), name=self.TASK_NAME)

    async def stop(self) -> None:
        """Stop between chunks (a row half done goes on at the next start, from its progress)."""
        self._stopping = True
        self._wake.set()
        await cancel_and_wait(self._task)
        if self.store.shared:  # what this process accepted or claimed is the others' to work off now
            try:
                await self.store.write(self._release())
            except Exception:  # a database gone at shutdown: the leases run out instead
                LOGGER.warning("could not hand this process's %s rows over; their leases will run out", self.WHAT)

    def wake(self) -> None:
        """A row was committed (here) or worked off (NOTIFY, elsewhere): a round now."""
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Return once a round found nothing to do (the scheduler waits for this too; tests)."""
        while (
            self._task is not None
            and not self._task.done()
            and not self._stopping
            and not (self._idle.is_set() and not self._wake.is_set())
        ):
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._idle.clear()  # idle() again only once a round found nothing (a woken round may find a row)
            delay = IDLE_SHARED if self.store.shared else IDLE_ALONE
            try:
                now = self.clock.now()
                rows = await self._claim(iso(now), iso(now + timedelta(seconds=self.lease_seconds)))
                for row in rows:
                    if self._stopping:
                        return
                    await self._work(row)
                if rows:
                    await self.store.notify(self.CHANNEL, self.DONE)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                report_round_failure(LOGGER, f"{self.WHAT} round", RETRY, exc)
                delay = RETRY
            self._idle.set()
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        waiter = asyncio.create_task(self._wake.wait())
        sleeper = asyncio.create_task(self.clock.sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)
