"""The outbox worker: delivers committed pushes in order, retries, dead-letters, watches receiver health.

One loop picks the due head of every order chain (storage.outbox.due_heads) and runs each
delivery as its own task, at most ``concurrency_per_receiver`` per receiver, so one slow
receiver never delays the others. Each attempt reuses the message's X-Request-ID. Receivers
that keep failing go OFFLINE and are probed instead (routing/health.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict, defaultdict, deque
from datetime import timedelta
from typing import Any

from config import DeliverySettings
from routing.client import PeerClient, PeerResponse
from routing.clock import Clock, iso, parse_iso
from routing.directory import Directory
from routing.errors import OcpiError
from routing.health import ReceiverHealth, StatusSetter
from routing.retry import RetryPolicy, is_retryable, retry_after
from storage import outbox as outbox_sql
from storage import proxies as proxy_sql
from storage.db import Store, SyncTx
from storage.outbox import Message

LOGGER = logging.getLogger(__name__)

_ATTEMPTED_MEMORY = 100_000  # request ids remembered (far more than a backlog can hold)


# The loop looks at the queue at least this often (clock seconds) even when nothing woke it: a
# missed wake-up (e.g. a platform resumed with nobody to notify) and max_age expiry need a round.
_MAX_IDLE = 60.0
_EXPIRE_EVERY = 10.0
Outcome = PeerResponse | OcpiError


class DeliveryWorker:
    """Background delivery of the outbox; start() in the app's cleanup context, stop() on shutdown."""

    def __init__(
        self,
        *,
        store: Store,
        client: PeerClient,
        directory: Directory,
        settings: DeliverySettings,
        clock: Clock,
        set_status: StatusSetter,
        request_timeout: float,
    ) -> None:
        self.store = store
        self.client = client
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.set_status = set_status
        self.request_timeout = request_timeout
        self.policy = RetryPolicy(settings)
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Due chain heads read by the last round but not started yet (their receiver was full):
        # a finished delivery starts the next one at once instead of querying the outbox again.
        self._backlog: dict[int, deque[Message]] = {}
        # Attempts made per X-Request-ID (recent ones): a copy of a row read before its latest
        # attempt is stale and must not start (it would resend out of order or before its backoff).
        self._attempted: OrderedDict[str, int] = OrderedDict()
        self._per_receiver: dict[int, int] = defaultdict(int)
        self.health = ReceiverHealth(
            client=client,
            directory=directory,
            settings=settings,
            clock=clock,
            set_status=set_status,
            request_timeout=request_timeout,
            on_resume=self._resumed,
        )
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._fail_fast: set[str] = set()
        # X-Request-IDs (unique, unlike row ids, which SQLite reuses after deletes) of messages
        # being sent right now, and of messages a fail-mode sender abandoned: never send those.
        self._sending: set[str] = set()
        self._dropped: set[str] = set()
        self._last_expiry = float("-inf")
        self.delivered = 0
        self.retried = 0
        self.dead = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop; OFFLINE platforms found in the store are probed at once."""
        self.health.load()
        self._loop_task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop picking messages, let in-flight attempts finish within shutdown_grace, cancel the rest."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for fut in self._waiters.values():
            if not fut.done():
                fut.cancel()

    def wake(self) -> None:
        """New work or a freed slot: run a round now."""
        self._wake.set()

    def refresh(self) -> None:
        """The queue changed behind the worker's back (redrive): forget what was read, re-read."""
        self._backlog.clear()
        self._attempted.clear()  # re-driven letters start again from attempt 0
        self._wake.set()

    def expect(self, request_id: str, *, fail_fast: bool) -> asyncio.Future[Outcome]:
        """A future resolved with the first attempt's outcome of the message with this X-Request-ID."""
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = fut
        if fail_fast:
            self._fail_fast.add(request_id)
        return fut

    def forget(self, request_id: str, *, abandon: bool) -> None:
        """The fast path stopped waiting; with ``abandon`` a retryable failure drops the message."""
        self._waiters.pop(request_id, None)
        if not abandon:
            self._fail_fast.discard(request_id)

    async def abandon(self, message_id: int, request_id: str) -> None:
        """on_receiver_down = "fail" and the sender got an error: the message must not go out later.

        Not sent yet: it is removed now. On the wire already: it cannot be taken back, but a
        retryable failure of that attempt removes it instead of scheduling a retry.
        """
        self._waiters.pop(request_id, None)
        if request_id in self._sending:
            self._fail_fast.add(request_id)
            return
        self._fail_fast.discard(request_id)
        if len(self._dropped) > 10_000:
            self._dropped.clear()
        self._dropped.add(request_id)  # before the delete: a round reading the queue meanwhile skips it
        await self.store.write(lambda tx: outbox_sql.delete(tx, message_id))

    def is_paused(self, platform_id: int) -> bool:
        """True when the receiver cannot be delivered to now (OFFLINE, suspended, unregistered)."""
        platform = self.directory.platform(platform_id)
        return (
            platform is None
            or self.health.is_offline(platform.id)
            or platform.status not in ("CONNECTED", "OFFLINE")
            or not platform.registered
        )

    async def called_in(self, platform_id: int) -> None:
        """An OFFLINE platform called the hub: it is alive, resume its queue at once."""
        await self.health.called_in(platform_id)

    async def _resumed(self, platform_id: int) -> None:
        # It answers again: drain its queue now rather than after each message's remaining backoff.
        stamp = iso(self.clock.now())
        await self.store.write(lambda tx: outbox_sql.reschedule_now(tx, platform_id, now=stamp))
        self._backlog.pop(platform_id, None)
        self._wake.set()

    # ---- the loop ----------------------------------------------------------------------------

    def _ts(self) -> float:
        return self.clock.now().timestamp()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.health.probe_due()
                await self.health.check_silent(self.store)
                await self._expire_due()
                started = await self._dispatch()
                if started:
                    continue
                wake_at = await self._next_wake_at()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("outbox worker round failed; retrying in 1s")
                wake_at = self._ts() + 1.0
            await self._idle(wake_at)

    async def _sleep_until(self, timestamp: float) -> None:
        # The delay is taken when the sleep starts, not when the time was computed: an injected
        # clock may have moved in between, and the worker must wake at the due time, not later.
        await self.clock.sleep(max(timestamp - self._ts(), 0.0))

    async def _idle(self, wake_at: float | None) -> None:
        waiter = asyncio.create_task(self._wake.wait())
        tasks: set[asyncio.Task[Any]] = {waiter}
        if wake_at is not None:
            tasks.add(asyncio.create_task(self._sleep_until(wake_at)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _paused_receivers(self) -> list[int]:
        full = [pid for pid, n in self._per_receiver.items() if n >= self.settings.concurrency_per_receiver]
        paused = [p.id for p in self.directory.platforms() if self.is_paused(p.id)]
        return sorted(set(full) | set(paused))

    async def _dispatch(self) -> int:
        started = self._start_backlog()
        if started:
            return started
        skip = self._paused_receivers()
        rows = await outbox_sql.due_heads(
            self.store,
            now=iso(self.clock.now()),
            limit=self.settings.batch_size,
            skip_receivers=skip,
            skip_ids=list(self._in_flight),
        )
        backlog: dict[int, deque[Message]] = {}
        for row in rows:
            backlog.setdefault(row.receiver_platform_id, deque()).append(row)
        self._backlog = backlog
        return self._start_backlog()

    def _start_backlog(self) -> int:
        started = 0
        for pid in list(self._backlog):
            rows = self._backlog[pid]
            if self.is_paused(pid):
                rows.clear()
            while rows and self._per_receiver[pid] < self.settings.concurrency_per_receiver:
                started += self._start(rows.popleft())
            if not rows:
                del self._backlog[pid]
        return started

    def _start(self, row: Message) -> bool:
        """Start one attempt unless the message is already on its way, dropped, or its receiver is full."""
        pid = row.receiver_platform_id
        request_id = row.headers.get("X-Request-ID", "")
        if request_id in self._dropped or row.attempts < self._attempted.get(request_id, 0):
            return False
        if row.id in self._in_flight or self._per_receiver[pid] >= self.settings.concurrency_per_receiver:
            return False
        self._per_receiver[pid] += 1
        task = asyncio.create_task(self._attempt(row), name=f"deliver-{row.id}")
        self._in_flight[row.id] = task
        task.add_done_callback(functools.partial(self._done, row.id, pid))
        return True

    def submit(self, row: Message) -> None:
        """Fast path: a just-committed message that heads its chain is sent now (or by the next round)."""
        if self._stopping or self.is_paused(row.receiver_platform_id) or not self._start(row):
            self._wake.set()

    def _done(self, message_id: int, platform_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(message_id, None)
        self._per_receiver[platform_id] -= 1
        rows = self._backlog.get(platform_id)
        while rows and not self._stopping and not self.is_paused(platform_id):
            if self._start(rows.popleft()):
                return  # the freed slot is used again; no round (and no query) needed
        self._wake.set()

    async def _expire_due(self) -> None:
        now = self._ts()
        if now - self._last_expiry < _EXPIRE_EVERY:
            return
        self._last_expiry = now
        stamp, skip = iso(self.clock.now()), list(self._in_flight)

        def sweep(tx: SyncTx) -> int:
            # Expired stand-in URLs (callbacks, pages) go in the same commit: nothing else removes
            # them, and the table would only grow.
            proxy_sql.purge_expired(tx, stamp)
            return outbox_sql.expire(tx, now=stamp, skip_ids=skip)

        count = await self.store.write(sweep)
        if count:
            self._backlog.clear()
            self.dead += count
            LOGGER.error("%d undelivered message(s) passed max_age and became dead letters", count)

    async def _next_wake_at(self) -> float:
        candidates: list[float] = self.health.next_probe_times()
        candidates.append(self._ts() + _MAX_IDLE)
        next_due = await outbox_sql.next_due_at(self.store, skip_receivers=self._paused_receivers())
        if next_due is not None:
            candidates.append(parse_iso(next_due).timestamp())
        return min(candidates)

    # ---- one attempt -------------------------------------------------------------------------

    async def _attempt(self, row: Message) -> None:
        platform = self.directory.platform(row.receiver_platform_id)
        request_id = row.headers.get("X-Request-ID", "")
        if request_id in self._dropped:
            return
        if platform is None or platform.token_out is None:
            return  # unregistered meanwhile: the message waits (a redrive can send it later)
        response: PeerResponse | None = None
        outcome: Outcome
        self._sending.add(request_id)
        try:
            response = await self.client.send(
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
            outcome = response
            retryable = is_retryable(response)
            error = response.describe()
        except OcpiError as exc:
            outcome = exc
            retryable = exc.retryable  # a refused redirect is final: never an endless retry
            error = exc.message
        finally:
            self._sending.discard(request_id)
        attempt_no = row.attempts + 1
        self._attempted[request_id] = attempt_no
        self._attempted.move_to_end(request_id)
        if len(self._attempted) > _ATTEMPTED_MEMORY:
            self._attempted.popitem(last=False)
        now = self.clock.now()
        fail_fast = request_id in self._fail_fast
        self._fail_fast.discard(request_id)
        # The sender may have its answer now; recording the outcome below needs no fsync of its
        # own before that (at-least-once: a crash in between only redelivers this message).
        fut = self._waiters.pop(request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)
        if not retryable and response is None:
            stamp = iso(now)
            await self.store.write(lambda tx: outbox_sql.bury(tx, row.id, error=error, now=stamp))
            self.dead += 1
            LOGGER.error(
                "dead letter %s: %s %s to platform %s: %s",
                row.id,
                row.method,
                row.module,
                row.receiver_platform_id,
                error,
            )
        elif not retryable:
            assert response is not None
            await self._final(row, response)
        elif fail_fast:
            # on_receiver_down = "fail": the sender gets 4002/4003 instead, nothing is kept.
            await self.store.write(lambda tx: outbox_sql.delete(tx, row.id))
        elif attempt_no >= self.settings.max_attempts or now >= parse_iso(row.deadline_at):
            stamp = iso(now)
            await self.store.write(lambda tx: outbox_sql.bury(tx, row.id, error=error, now=stamp))
            self.dead += 1
            LOGGER.error(
                "dead letter %s: %s %s to platform %s after %d attempts: %s",
                row.id,
                row.method,
                row.module,
                row.receiver_platform_id,
                attempt_no,
                error,
            )
        else:
            delay = self.policy.delay(attempt_no, retry_after(response, now))
            next_at, status = iso(now + timedelta(seconds=delay)), response.status if response else None
            await self.store.write(
                lambda tx: outbox_sql.retry_later(tx, row.id, next_attempt_at=next_at, error=error, http_status=status)
            )
            self.retried += 1
            LOGGER.warning(
                "attempt %d/%d of message %s to platform %s failed (%s); next in %.1fs",
                attempt_no,
                self.settings.max_attempts,
                row.id,
                row.receiver_platform_id,
                error,
                delay,
            )
        if retryable:
            await self.health.failed(row.receiver_platform_id)
        elif response is not None:
            self.health.succeeded(row.receiver_platform_id)

    async def _final(self, row: Message, response: PeerResponse) -> None:
        code = response.ocpi_status
        state = "delivered" if code is not None and 1000 <= code < 2000 else "rejected"
        stamp = iso(self.clock.now())
        await self.store.write(
            lambda tx: outbox_sql.finish(
                tx, row.id, http_status=response.status, ocpi_status=code, state=state, now=stamp
            )
        )
        self.delivered += 1
        if state == "rejected":
            LOGGER.warning(
                "message %s refused by platform %s: %s", row.id, row.receiver_platform_id, response.describe()
            )
