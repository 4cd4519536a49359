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


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Really wait."""
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock for tests: time moves only when told to; sleep advances it at once."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance instead of waiting, then yield to the loop once."""
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


def iso(dt: datetime) -> str:
    """OCPI DateTime: RFC 3339 in UTC with 'Z', milliseconds (types.asciidoc, DateTime)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse an OCPI DateTime liberally: 'Z' optional, fractions optional; naive means UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
