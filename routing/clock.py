"""Injectable time: tests swap the clock and the sleep so retries and expiry are instant."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the hub needs of time."""

    def now(self) -> datetime:
        """Current UTC time (timezone-aware)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait (or pretend to)."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Wait until ``when`` (at once if it has passed)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Really wait."""
        await asyncio.sleep(seconds)

    async def sleep_until(self, when: datetime) -> None:
        """Really wait until ``when``."""
        await asyncio.sleep(max((when - self.now()).total_seconds(), 0.0))


class FakeClock:
    """A clock for tests: time moves only when the test advances it.

    ``sleep`` waits until the fake time reaches its end, so a retry scheduled in 30 s happens
    the moment a test calls ``advance(30)``: instant, and deterministic (time never races ahead
    on its own, so expiry tests stay exact while the delivery worker is idle).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose time has come."""
        self._now += timedelta(seconds=seconds)
        still: list[tuple[datetime, asyncio.Future[None]]] = []
        for until, fut in self._sleepers:
            if until <= self._now:
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                still.append((until, fut))
        self._sleepers = still

    async def sleep(self, seconds: float) -> None:
        """Wait until the fake time has advanced by ``seconds``."""
        self.slept.append(seconds)
        await self._until(self._now + timedelta(seconds=seconds))

    async def sleep_until(self, when: datetime) -> None:
        """Wait until the fake time reaches ``when``, however far it moved before this started."""
        await self._until(when)

    async def _until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, fut))
        await fut


def iso(dt: datetime) -> str:
    """OCPI DateTime: RFC 3339 in UTC with 'Z', milliseconds (types.asciidoc, DateTime)."""
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    # isoformat is C code (strftime was ~2 % of the hub's samples: called several times per push);
    # in UTC it ends in "+00:00", cut off instead of a naive copy made first.
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"


def iso_or_none(dt: datetime | None) -> str | None:
    """``iso`` of a nullable timestamp (a platform never seen: null in JSON)."""
    return None if dt is None else iso(dt)


def parse_iso(value: str) -> datetime:
    """Parse an OCPI DateTime liberally: 'Z' optional, fractions optional; naive means UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
