"""Background tasks: the one way the hub stops one, and the one way a round reports its failure.

Stopping: cancel, then wait for the task to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from storage.errors import is_storage_outage


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and return once it has ended; its cancellation is not an error."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def report_round_failure(logger: logging.Logger, what: str, retry: float | None, exc: BaseException) -> None:
    """Log a failed background round: one line for a full or unreachable database, else a traceback.

    The store logs those states itself, and every loop hits them at once: five tracebacks a second
    during a PostgreSQL restart said nothing the store's WARNING had not. ``retry``: the seconds
    until the next try, when the caller knows them.
    """
    then = f"; retrying in {retry:.0f}s" if retry is not None else ""
    if is_storage_outage(exc):
        logger.warning("%s skipped: %s%s", what, exc, then)
    else:
        logger.error("%s failed%s", what, then, exc_info=exc)
