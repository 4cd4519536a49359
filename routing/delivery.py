"""The one function through which every push reaches its receiver.

``Delivery.push`` takes the legs of one accepted message. With ``wait`` it returns the
receiver's answer (or the error standing for it); without, it delivers in the background with
bounded concurrency and returns at once. The durable outbox replaces the internals of this
module, not its callers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from routing.client import PeerClient, PeerResponse
from routing.errors import OcpiError
from routing.forward import Leg, send_leg

LOGGER = logging.getLogger(__name__)

Outcome = PeerResponse | OcpiError


class Delivery:
    """Delivers legs; background work is tracked and bounded, and cancelled on close."""

    def __init__(self, client: PeerClient, *, concurrency: int = 32, timeout: float | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._semaphore = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[Outcome]] = set()

    async def _deliver(self, leg: Leg) -> Outcome:
        async with self._semaphore:
            try:
                response = await send_leg(self._client, leg, timeout=self._timeout)
            except OcpiError as exc:
                LOGGER.warning(
                    "delivery %s %s to platform %s failed: %s", leg.method, leg.url, leg.platform.id, exc.message
                )
                return exc
            LOGGER.info("delivered %s %s to platform %s: %s", leg.method, leg.url, leg.platform.id, response.describe())
            return response

    async def push(self, legs: Sequence[Leg], *, wait: bool) -> list[Outcome]:
        """Deliver the legs; with ``wait`` return each outcome, else schedule and return []."""
        if wait:
            return list(await asyncio.gather(*(self._deliver(leg) for leg in legs)))
        for leg in legs:
            task = asyncio.create_task(self._deliver(leg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return []

    async def close(self) -> None:
        """Cancel background deliveries still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
