"""Waiting in tests: for a condition, for an answer, for the hub's worker under the fake clock.

Every wait is bounded in real time and fails with what it waited for; a sleep appears only
inside a poll of a condition, never as a stand-in for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from hub.keys import WORKER
from routing.clock import FakeClock
from tests.support.hub import HubHandle

T = TypeVar("T")
STEP = 0.01  # seconds between two looks at a condition


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll a condition in small steps; fail after ``timeout`` seconds."""
    for _ in range(int(timeout / STEP)):
        if predicate():
            return
        await asyncio.sleep(STEP)
    raise AssertionError(f"not met in time: {what}")


async def until(
    call: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float = 5.0, step: float = 0.1
) -> T:
    """Repeat an async call until ``done(answer)``; return the last answer (checked by the caller)."""
    answer = await call()
    for _ in range(int(timeout / step)):
        if done(answer):
            break
        await asyncio.sleep(step)
        answer = await call()
    return answer


async def settle(hub: HubHandle) -> None:
    """Let the worker finish what the current (fake) time allows: nothing in flight, nothing due (bounded)."""
    await asyncio.wait_for(hub.app[WORKER].idle(), 10)


async def advance_until(
    hub: HubHandle, clock: FakeClock, done: Callable[[], bool], *, step: float = 30.0, rounds: int = 200
) -> int:
    """Advance the fake clock in steps, letting the worker run after each, until ``done()``; the steps taken."""
    for n in range(rounds):
        await settle(hub)
        if done():
            return n
        clock.advance(step)
    await settle(hub)
    assert done(), "not done after advancing the clock"
    return rounds
