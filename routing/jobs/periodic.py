"""One background task that runs a job now and then every ``interval`` seconds on the injected clock.

Used by the hub's periodic work outside the delivery worker (the retention sweep, the pull of
pull-only CPOs): a failing round is logged and retried at the next interval, never the end of
the task; tests move the fake clock to run a round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from routing.clock import Clock
from routing.tasks import cancel_and_wait, report_round_failure

LOGGER = logging.getLogger(__name__)


class Periodic:
    """``job()`` at start, then every ``interval`` seconds; ``start``/``stop`` from a cleanup context."""

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[Any]],
        interval: Callable[[], float],
        clock: Clock,
        *,
        lead: Callable[[str], Awaitable[bool]] | None = None,
    ):
        self.name = name
        # Work done once per cluster: a round runs only in the process holding the lease for ``name``
        # (store.try_lead); if the leader dies, the next process to ask takes over.
        self._lead = lead
        self._job = job
        self._interval = interval  # read each round: settings may say otherwise meanwhile
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it; a round in flight is abandoned."""
        self._stopping = True
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        # The flag, not only the cancel, ends the loop: a cancel that lands in a library call can
        # be lost (Python 3.11's wait_for race, gh-86296), and the round then went on to a sleep
        # nothing would end. Seen as 30 s hangs of a hub's shutdown on PostgreSQL (try_lead).
        while not self._stopping:
            try:
                if self._lead is None or await self._lead(self.name):
                    await self._job()
            except Exception as exc:  # a failed round is retried next interval; the hub keeps serving
                report_round_failure(LOGGER, self.name, self._interval(), exc)
            if self._stopping:
                return
            await self._clock.sleep(self._interval())
