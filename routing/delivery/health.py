"""Receiver health for the delivery worker: OFFLINE after consecutive failures, probing, resuming.

After ``offline_after_failures`` consecutive failed deliveries spanning at least
``offline_after_seconds`` a CONNECTED receiver is marked OFFLINE (the registry's listeners push
HubClientInfo to everyone). The span is the hysteresis: without it a receiver answering 503 to a
third of its calls met five failures in a row every few seconds, and every partner of the
network got OFFLINE and CONNECTED for it again and again (a bench.soak run: 15 HubClientInfo
pushes a minute to each platform, and an ERROR line each time). The worker then stops
delivering to it and only probes its versions endpoint, with backoff up to ``probe_max_backoff``;
it resumes at once when a probe answers or when the platform calls the hub (docs/DESIGN-NOTES.md, Delivery).

Probes and still-alive checks run beside the scheduler, never in its loop (issue 20): each is a
task of its own, at most ``max_probes`` at once, each bounded by ``probe_timeout``. The loop
only starts them; a receiver that holds a probe open delays nobody else's delivery. Whatever
goes wrong inside a probe (a partner's hostile answer, a bug) is that probe's failure: logged,
backed off, and the scheduler is woken to plan its next round (``on_probed``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from config import DeliverySettings
from routing.clock import Clock, parse_iso
from routing.peers.client import PeerClient
from routing.protocol.errors import OcpiError
from routing.registry.directory import Directory
from routing.tasks import report_round_failure
from storage import platforms as platform_sql
from storage.db import Store

LOGGER = logging.getLogger(__name__)

StatusSetter = Callable[[int, str], Awaitable[Any]]
Resumed = Callable[[int], Awaitable[None]]


@dataclass
class _Probe:
    attempt: int
    next_at: float  # clock timestamp (seconds)


@dataclass(kw_only=True, eq=False)
class ReceiverHealth:
    """Consecutive failures per receiver, the OFFLINE set, and its probes."""

    client: PeerClient
    directory: Directory
    settings: DeliverySettings
    clock: Clock
    set_status: StatusSetter
    request_timeout: float
    on_resume: Resumed
    on_probed: Callable[[], None] = lambda: None  # a probe finished: the scheduler plans its next round
    _failures: dict[int, int] = field(init=False, default_factory=lambda: defaultdict(int))
    _streak_since: dict[int, float] = field(init=False, default_factory=dict)  # first failure of the streak
    _offline: dict[int, _Probe] = field(init=False, default_factory=dict)
    generation: int = field(init=False, default=0)  # bumped whenever a receiver goes OFFLINE or comes back
    _last_silence_check: float = field(init=False, default=float("-inf"))
    _probing: dict[int, asyncio.Task[None]] = field(init=False, default_factory=dict)  # probes and checks in flight

    def _ts(self) -> float:
        return self.clock.now().timestamp()

    def load(self) -> None:
        """Platforms stored as OFFLINE (e.g. before a restart) are probed at once."""
        now = self._ts()
        for platform in self.directory.platforms():
            if platform.status == "OFFLINE":
                self._pause(platform.id, now)

    def _pause(self, platform_id: int, first_probe_at: float) -> None:
        """OFFLINE here: no deliveries, only probes, the first at ``first_probe_at`` (clock seconds)."""
        self._offline[platform_id] = _Probe(attempt=0, next_at=first_probe_at)
        self.generation += 1

    def _unpause(self, platform_id: int) -> None:
        """Deliverable again here, with a fresh failure streak."""
        self._offline.pop(platform_id, None)
        self.generation += 1
        self._failures[platform_id] = 0
        self._streak_since.pop(platform_id, None)

    def is_offline(self, platform_id: int) -> bool:
        """Whether deliveries to this receiver are paused for probing."""
        return platform_id in self._offline

    def next_probe_times(self) -> list[float]:
        """When each pending probe not already in flight is due (clock timestamps)."""
        return [p.next_at for platform_id, p in self._offline.items() if platform_id not in self._probing]

    async def quiet(self) -> None:
        """Return once no probe is in flight (each is bounded by its timeout; for tests and idle())."""
        while self._probing:
            await asyncio.wait(list(self._probing.values()))

    async def stop(self) -> None:
        """Cancel the probes in flight (shutdown)."""
        tasks = list(self._probing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def succeeded(self, platform_id: int) -> None:
        """A delivery got a final answer: the failure streak ends."""
        if self._failures.get(platform_id):
            self._failures[platform_id] = 0
            self._streak_since.pop(platform_id, None)

    async def failed(self, platform_id: int) -> None:
        """A delivery failed retryably; mark the receiver OFFLINE once the streak is long enough, in count and time."""
        self._failures[platform_id] += 1
        now = self._ts()
        since = self._streak_since.setdefault(platform_id, now)
        if (
            self._failures[platform_id] < self.settings.offline_after_failures
            or now - since < self.settings.offline_after_seconds
            or platform_id in self._offline
        ):
            return
        self._pause(platform_id, now + self.settings.initial_backoff)
        platform = self.directory.platform(platform_id)
        if platform is not None and platform.status == "CONNECTED":
            LOGGER.error(
                "platform %s is OFFLINE after %d consecutive failures in %.0f s",
                platform_id,
                self._failures[platform_id],
                now - since,
            )
            await self.set_status(platform_id, "OFFLINE")

    async def called_in(self, platform_id: int) -> None:
        """The platform called the hub: it is alive."""
        if platform_id in self._offline or self._failures.get(platform_id):
            await self.resume(platform_id, "it called the hub")

    async def resume(self, platform_id: int, why: str) -> None:
        """Back to CONNECTED; the worker drains its queue (on_resume)."""
        self._unpause(platform_id)
        await self.on_resume(platform_id)
        platform = self.directory.platform(platform_id)
        if platform is not None and platform.status == "OFFLINE":
            LOGGER.info("platform %s is back (%s): resuming its queue", platform_id, why)
            await self.set_status(platform_id, "CONNECTED")

    def sync(self, platform_id: int | None = None) -> int:
        """Follow another process's status change of ``platform_id`` (None: of any platform); how many changed.

        CONNECTED again: resumed here too. OFFLINE: paused here too, and probed on this process's
        own backoff, so no process keeps sending to a receiver another one found down (and if the
        one that marked it stops, the others still find it back).
        """
        changed = 0
        for known in list(self._offline):
            platform = self.directory.platform(known)
            if platform is not None and platform.status == "CONNECTED":
                self._unpause(known)
                changed += 1
        found = self.directory.platforms() if platform_id is None else [self.directory.platform(platform_id)]
        for platform in found:
            if platform is not None and platform.status == "OFFLINE" and platform.id not in self._offline:
                LOGGER.info("platform %s was marked OFFLINE by another process: its queue waits here too", platform.id)
                self._pause(platform.id, self._ts() + self.settings.initial_backoff)
                changed += 1
        return changed

    async def check_silent(self, store: Store) -> None:
        """Still-alive check (mod_hub_client_info): GET the versions of CONNECTED platforms silent too long.

        A platform that answers stays CONNECTED (the call itself counts as traffic); one that does
        not is marked OFFLINE at once, so every other party learns it through HubClientInfo. This
        only reads the platforms and starts the checks as tasks: it never waits for an answer.
        """
        silence = self.settings.silence_check
        now = self._ts()
        if silence <= 0 or now - self._last_silence_check < min(silence, 60.0):
            return
        self._last_silence_check = now
        for platform in await platform_sql.briefs(store):
            if platform.status != "CONNECTED" or not platform.registered or platform.id in self._offline:
                continue
            stamps = (platform.last_seen_in, platform.last_seen_out, platform.updated_at)
            seen = [parse_iso(t).timestamp() for t in stamps if t]
            if seen and now - max(seen) < silence:
                continue
            if not self._start(platform.id, self._still_alive(platform.id, silence)):
                break  # max_probes in flight: the others are checked at a later round

    async def _still_alive(self, platform_id: int, silence: float) -> None:
        if await self._alive(platform_id=platform_id) or platform_id in self._offline:
            return
        LOGGER.error("platform %s did not answer the still-alive check after %.0fs of silence", platform_id, silence)
        self._pause(platform_id, self._ts() + self.settings.initial_backoff)
        await self.set_status(platform_id, "OFFLINE")

    async def _alive(self, *, platform_id: int) -> bool:
        platform = self.directory.platform(platform_id)
        if platform is None or platform.versions_url is None or platform.token_out is None:
            return True  # nothing to check against
        try:
            response = await self.client.send(
                "GET",
                platform.versions_url,
                token=platform.token_out,
                send_base64=platform.send_base64,
                timeout=min(self.request_timeout, self.settings.probe_timeout),
            )
        except OcpiError:
            return False
        return response.is_ocpi and response.status < 500

    def probe_due(self) -> None:
        """Start a probe of every OFFLINE receiver whose probe is due (never waits for one)."""
        now = self._ts()
        for platform_id, probe in list(self._offline.items()):
            if probe.next_at > now or platform_id in self._probing:
                continue
            platform = self.directory.platform(platform_id)
            if platform is None or platform.versions_url is None or platform.token_out is None:
                self._offline.pop(platform_id, None)
                self.generation += 1
                continue
            if not self._start(platform_id, self._probe(platform_id, probe)):
                return  # max_probes in flight: the rest when one of them is done (on_probed)

    async def _probe(self, platform_id: int, probe: _Probe) -> None:
        if await self._alive(platform_id=platform_id):
            if platform_id in self._offline:  # not resumed meanwhile (it may have called in)
                await self.resume(platform_id, "probe answered")
        else:
            self._back_off(probe)

    def _back_off(self, probe: _Probe) -> None:
        probe.attempt += 1
        wait = min(self.settings.probe_max_backoff, self.settings.initial_backoff * 2**probe.attempt)
        probe.next_at = self._ts() + wait

    def _start(self, platform_id: int, work: Coroutine[Any, Any, None]) -> bool:
        """Run a probe or still-alive check as a task of its own; False (nothing started) at max_probes."""
        if len(self._probing) >= self.settings.max_probes:
            work.close()
            return False
        task = asyncio.create_task(self._contained(platform_id, work), name=f"probe-{platform_id}")
        self._probing[platform_id] = task
        task.add_done_callback(lambda _: self._finished(platform_id))
        return True

    async def _contained(self, platform_id: int, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # this receiver's probe only: logged, backed off, nobody else stops
            report_round_failure(LOGGER, f"probe of platform {platform_id}", None, exc)
            probe = self._offline.get(platform_id)
            if probe is not None:
                self._back_off(probe)

    def _finished(self, platform_id: int) -> None:
        self._probing.pop(platform_id, None)
        self.on_probed()
