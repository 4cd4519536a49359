"""routing/jobs/periodic.py: rounds on the injected clock, and a stop that holds even when a cancel is lost."""

from __future__ import annotations

import asyncio
import contextlib

from routing.clock import FakeClock
from routing.jobs.periodic import Periodic


async def test_a_round_at_start_then_one_per_interval_of_the_clock() -> None:
    clock, rounds = FakeClock(), []

    async def job() -> None:
        rounds.append(clock.now())

    task = Periodic("test-rounds", job, lambda: 60.0, clock)
    task.start()
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(rounds) == 1
    clock.advance(59)
    await asyncio.sleep(0)
    assert len(rounds) == 1
    clock.advance(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(rounds) == 2
    await asyncio.wait_for(task.stop(), 5)


async def test_stop_ends_the_loop_even_when_the_round_loses_the_cancel() -> None:
    """A library call that swallows the CancelledError (Python 3.11's wait_for race) must not
    leave the loop asleep on a clock nobody advances: the hub's shutdown hung 30 s on that."""
    clock, entered = FakeClock(), asyncio.Event()

    async def job() -> None:
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # lost, as by the library
            await asyncio.sleep(10)

    task = Periodic("test-lost-cancel", job, lambda: 3600.0, clock)
    task.start()
    await asyncio.wait_for(entered.wait(), 5)
    # Not wait_for(stop()): its timeout would cancel stop(), and that second cancel would end the loop.
    stopping = asyncio.create_task(task.stop())
    done, _ = await asyncio.wait([stopping], timeout=5)
    if not done:
        stopping.cancel()
    assert done, "stop() did not return: the loop went to sleep after the lost cancel"


async def test_a_failing_round_is_logged_and_the_next_one_runs(caplog) -> None:
    clock, calls = FakeClock(), []

    async def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first round fails")

    task = Periodic("test-failing", job, lambda: 10.0, clock)
    task.start()
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(calls) == 2
    assert "test-failing failed; retrying in 10s" in caplog.text
    await asyncio.wait_for(task.stop(), 5)
