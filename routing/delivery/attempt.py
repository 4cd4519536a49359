"""One delivery attempt: send the stored message, classify the answer, record the outcome.

Classification (DESIGN-NOTES "Delivery"): a receiver's OCPI answer under HTTP 5xx/408/429/401/403
or no OCPI answer at all is retryable; any other OCPI answer is final (1xxx delivered and the row
deleted, 2xxx/3xxx kept as "rejected"). A retryable failure schedules a retry with backoff, or
buries the message once ``max_attempts`` or its deadline is reached. Every record is one write
job that joins the next group commit; the waiting sender gets its answer before that commit
(at-least-once: a crash in between only redelivers the message, with the same X-Request-ID).

An unexpected error on one message's path (a bug, whatever a partner answered) stays with that
message: it is logged and recorded as a failed attempt (``UnexpectedFailure``), so the message
is retried with backoff like any other failure and no other message or receiver notices.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from config import DeliverySettings
from routing.clock import Clock, iso, parse_iso
from routing.delivery.fastpath import FastPath
from routing.delivery.health import ReceiverHealth
from routing.delivery.outcome import Sent
from routing.delivery.retry import RetryPolicy, is_retryable, retry_after
from routing.peers.client import PeerClient
from routing.peers.exchange import PeerResponse
from routing.protocol.errors import OcpiError, UnexpectedFailure
from routing.registry.directory import Directory
from storage import outcomes as outcome_sql
from storage.db import Store
from storage.errors import is_storage_outage
from storage.outbox import Message

LOGGER = logging.getLogger(__name__)


class DeliveredRows:
    """Deletes delivered messages in groups: one job per group, joined while the last one commits.

    Each caller still returns only once its own row's deletion is committed; a group is formed
    like a group commit (whatever finished while the previous group's job was queued or
    committing), so a fan-out's thousands of deletions a second cost a few statements each
    commit, not a statement each (issue 22).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[tuple[int, str | None, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def delete(self, message_id: int, request_id: str | None) -> None:
        """Return once the delivered message is deleted (committed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.append((message_id, request_id, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="delivered-rows")
        await done

    async def _drain(self) -> None:
        while self._rows:
            rows, self._rows = self._rows, []
            pairs = [(message_id, request_id) for message_id, request_id, _ in rows]
            try:
                await self.store.write(functools.partial(outcome_sql.delete_delivered, messages=pairs), background=True)
            except Exception as exc:  # each waiting attempt raises it (Attempt.record's contract)
                for *_, done in rows:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for *_, done in rows:
                if not done.done():
                    done.set_result(None)


@dataclass(kw_only=True, eq=False)
class Attempt:
    """Runs attempts (``send`` then ``record``); holds only what every attempt shares."""

    store: Store
    client: PeerClient
    directory: Directory
    settings: DeliverySettings
    clock: Clock
    health: ReceiverHealth
    fastpath: FastPath
    request_timeout: float
    policy: RetryPolicy = field(init=False)
    delivered: DeliveredRows = field(init=False)

    def __post_init__(self) -> None:
        self.policy = RetryPolicy(self.settings)
        self.delivered = DeliveredRows(self.store)

    async def send(self, row: Message) -> Sent | None:
        """Send ``row`` once; None when it must not go out (dropped, or its receiver unregistered)."""
        platform = self.directory.platform(row.receiver_platform_id)
        if self.fastpath.is_dropped(row.request_id):
            return None
        if platform is None or platform.token_out is None:
            return None  # unregistered meanwhile: the message waits (a redrive can send it later)
        try:
            return await self.client.send(
                row.method,
                row.url,
                token=platform.token_out,
                send_base64=platform.send_base64,
                headers=row.headers,
                body=row.body,
                timeout=self.request_timeout,
                log_context={
                    "module": row.module,
                    "platform_id": row.receiver_platform_id,
                    "attempt": row.attempts + 1,
                },
            )
        except OcpiError as exc:
            return exc
        except Exception as exc:  # contained to this message: a failed attempt, never a stuck row
            LOGGER.exception("attempt of message %s to platform %s failed unexpectedly", row.id, platform.id)
            return _unexpected(exc)

    async def record(self, row: Message, sent: Sent) -> bool:
        """Classify what ``send`` got and record it; True when the message got its final answer.

        Never raises for a receiver's failure: that is recorded (retry, dead letter) instead. An
        unexpected error while classifying is recorded as a failed attempt; only the store
        failing to record even that is raised (the row stays pending, as after a crash).
        """
        try:
            return await self._record(row, sent)
        except Exception as exc:
            if is_storage_outage(exc):  # nothing can be recorded now: the row stays pending (scheduler logs it)
                raise
            LOGGER.exception("recording the attempt of message %s failed unexpectedly", row.id)
            await self._failed(row, _unexpected(exc))
            return False

    async def _record(self, row: Message, sent: Sent) -> bool:
        # A connect error or timeout is retryable; a refused redirect is final (never an endless retry).
        retryable = sent.retryable if isinstance(sent, OcpiError) else is_retryable(sent)
        # The sender may have its answer now; the record below needs no fsync of its own first.
        delete_on_failure = self.fastpath.settle(row.request_id, sent)
        if not retryable and isinstance(sent, OcpiError):
            await self._bury(row, sent.message, row.attempts + 1)
            return True
        if not retryable:
            assert isinstance(sent, PeerResponse)
            await self._final(row, sent)
            self.health.succeeded(row.receiver_platform_id)
            return True
        if delete_on_failure:  # fail mode: the sender gets 4002/4003 instead, nothing is kept
            await self.store.write(
                lambda tx: outcome_sql.delete(tx, row.id, request_id=row.request_id), background=True
            )
        else:
            await self._failed(row, sent)
        await self.health.failed(row.receiver_platform_id)
        return False

    async def _final(self, row: Message, response: PeerResponse) -> None:
        code = response.ocpi_status
        state = "delivered" if code is not None and 1000 <= code < 2000 else "rejected"
        if state == "delivered":
            await self.delivered.delete(row.id, row.request_id)
            return
        stamp = iso(self.clock.now())
        await self.store.write(
            lambda tx: outcome_sql.finish(
                tx,
                row.id,
                http_status=response.status,
                ocpi_status=code,
                state=state,
                now=stamp,
                request_id=row.request_id,
            ),
            background=True,
        )
        LOGGER.warning("message %s refused by platform %s: %s", row.id, row.receiver_platform_id, response.describe())

    async def _bury(self, row: Message, error: str, attempt_no: int) -> None:
        stamp, rid = iso(self.clock.now()), row.request_id
        await self.store.write(
            lambda tx: outcome_sql.bury(tx, row.id, error=error, now=stamp, request_id=rid), background=True
        )
        LOGGER.error(
            "dead letter %s: %s %s to platform %s after %d attempts: %s",
            row.id,
            row.method,
            row.module,
            row.receiver_platform_id,
            attempt_no,
            error,
        )

    async def _failed(self, row: Message, sent: Sent) -> None:
        response = sent if isinstance(sent, PeerResponse) else None
        error = sent.describe() if isinstance(sent, PeerResponse) else sent.message
        attempt_no = row.attempts + 1
        now = self.clock.now()
        if attempt_no >= self.settings.max_attempts or now >= parse_iso(row.deadline_at):
            await self._bury(row, error, attempt_no)
            return
        delay = self.policy.delay(attempt_no, retry_after(response, now))
        next_at, status = iso(now + timedelta(seconds=delay)), response.status if response else None
        await self.store.write(
            lambda tx: outcome_sql.retry_later(
                tx, row.id, next_attempt_at=next_at, error=error, http_status=status, request_id=row.request_id
            ),
            background=True,
        )
        LOGGER.warning(
            "attempt %d/%d of message %s to platform %s failed (%s); next in %.1fs",
            attempt_no,
            self.settings.max_attempts,
            row.id,
            row.receiver_platform_id,
            error,
            delay,
        )


def _unexpected(exc: Exception) -> UnexpectedFailure:
    """The failed attempt that stands for an unexpected error (its type and first line, logged in full)."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return UnexpectedFailure(f"unexpected {type(exc).__name__}: {text} (logged)")
