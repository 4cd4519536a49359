"""routing/clock.py: absolute sleeps that hold however far an injected clock moved before they start.

The delivery worker sleeps until its next due time with ``sleep_until``. It used to compute a
delay when it created its sleeping task and start counting it when the task first ran; a test's
``advance()`` in between (same loop iteration) pushed the wake-up that much later, and the
test's ``settle()`` waited 10 s for a round that was not coming (two flaky failures in full
runs: test_429_retry_after_is_honoured and test_deeply_nested_probe_answer_does_not_stop_delivery).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from routing.clock import FakeClock, SystemClock


async def test_sleep_until_ends_when_the_clock_passed_its_time_before_it_started() -> None:
    clock = FakeClock()
    due = clock.now() + timedelta(seconds=5)
    task = asyncio.create_task(clock.sleep_until(due))  # not started yet
    clock.advance(30)  # the same loop iteration: the task has not registered its wake-up
    await asyncio.wait_for(task, 5)  # ends at once, not 30 s of fake time later
    assert task.done()


async def test_sleep_until_waits_for_its_time_and_no_longer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep_until(clock.now() + timedelta(seconds=10)))
    await asyncio.sleep(0)
    clock.advance(9)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    await asyncio.wait_for(task, 5)


async def test_a_relative_sleep_counts_from_when_it_starts() -> None:
    """``sleep(seconds)`` keeps its meaning: the periodic jobs' intervals count from their start."""
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    clock.advance(4)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    await asyncio.wait_for(task, 5)
    assert clock.slept == [5]


async def test_the_system_clock_sleeps_until_a_time_and_returns_at_once_for_a_past_one() -> None:
    clock = SystemClock()
    await asyncio.wait_for(clock.sleep_until(clock.now() - timedelta(seconds=60)), 1)
    start = asyncio.get_running_loop().time()
    await asyncio.wait_for(clock.sleep_until(clock.now() + timedelta(milliseconds=50)), 5)
    assert asyncio.get_running_loop().time() - start >= 0.04  # waited (the bound above is generous)
