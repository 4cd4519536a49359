"""The broadcast expander: from one accepted broadcast record to one outbox row per receiver.

A CPO's broadcast push (transport_and_format, Broadcast Push) commits the hub's stored copy and
ONE record (storage/broadcasts.py) and is answered at once (issue 22: building and committing
1,000 legs before the answer made it wait ~260 ms). This task then gives each receiver its leg:
the receivers of the record's module (``targets``, in platform id order, only those the sender
has an agreement with), each in its own OCPI version (routing/versions/wire.py, the request's
Flow replayed from the record), committed ``CHUNK`` receivers at a time with the record's
progress, so a kill -9 mid-expansion neither repeats nor skips a receiver; the event loop gets
a turn between chunks (the hub keeps answering meanwhile). Receivers a version cannot carry the
object to are skipped with their Loss records, reported through ``on_losses`` (the hub puts
them in a traffic record of the message's correlation id, the metric and /status).

Order: records are expanded oldest first, one object's records never side by side (a later one
waits for the earlier: storage/broadcasts.py, claim); a directed push of an object with a
pending record waits for it (routing/delivery/intake.py, push_one). Records left by a crash are
expanded by the first round after start. Several processes (PostgreSQL): a record is leased to
the process that accepted it; another one takes it over once that lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from routing.agreements.book import AgreementBook
from routing.clock import Clock, parse_iso
from routing.decide import MODULES, broadcast_targets
from routing.delivery.intake import Delivery
from routing.leased import LeasedRowsLoop
from routing.messages import Leg, PartyRef, RoutingHeaders, Target
from routing.protocol.paths import attach, suffix
from routing.protocol.vocab import InterfaceRole
from routing.registry.directory import Directory
from routing.versions import Loss
from routing.versions import wire as versions_wire
from storage import broadcasts as broadcast_sql
from storage.broadcasts import Broadcast, LostBroadcast, NewBroadcast
from storage.db import Job, Store, SyncTx

LOGGER = logging.getLogger(__name__)

BROADCAST_CHANNEL = "ocpi_hub_broadcasts"  # NOTIFY: a record was expanded (one behind it may go now)
# Receivers per commit. Each chunk is one job on the writer thread, and a CPO's next broadcast
# push commits behind the job in flight: 100 legs were ~3.5 ms of the writer's CPU but ~18 ms of
# its wall time under a fan-out (waiting for the GIL), so the answer's p99 was 43-66 ms. With the
# own HTTP transport, 50 legs give ~30 % lower answer times at the same deliveries/s (bench.fanout
# alternating, 2026-12-06 05:30: p50 14-20 vs 23-29 ms, p99 30-45 vs 49-56 ms) and a broadcast
# to 1,000 still lands everywhere in 0.57-0.88 s (100: 0.53-0.65 s; goal < 1 s). Without the
# transport, 50 broke that goal (1.09-1.18 s). 25 legs: 10-15 % fewer deliveries/s.
CHUNK = 50
CLAIM = 16  # records read per round

LossReport = Callable[[Broadcast, list[tuple[int | None, Loss]]], None]


@dataclass(kw_only=True, eq=False)
class BroadcastExpander(LeasedRowsLoop):
    """Turns broadcast records into outbox rows; start() with the app, stop() before the worker."""

    TASK_NAME = "broadcast-expander"
    CHANNEL = BROADCAST_CHANNEL
    DONE = "expanded"
    WHAT = "broadcast expansion"

    store: Store
    delivery: Delivery
    directory: Directory
    agreements: AgreementBook
    clock: Clock
    hub: PartyRef
    lease_seconds: float = 30.0
    on_losses: LossReport | None = None
    # Set after each record (waiters re-check), then replaced.
    _expanded: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _targets: dict[str, tuple[int, list[Target]]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._init_loop()
        self.delivery.settled = self.settled
        self.delivery.worker.upstream.append(self.idle)

    # ---- what the routing service asks -------------------------------------------------------

    def targets(self, module: str) -> list[Target]:
        """Every receiving party of ``module``'s broadcasts (all platforms), cached per directory generation."""
        generation = self.directory.generation
        cached = self._targets.get(module)
        if cached is None or cached[0] != generation:
            found = broadcast_targets(self.directory, MODULES[module], exclude_platform=None)
            cached = (generation, sorted(found, key=lambda t: (t.platform.id, t.party.key)))
            self._targets[module] = cached
        return cached[1]

    async def accept(self, record: NewBroadcast, *, prepare: Callable[[SyncTx], None]) -> int:
        """Commit ``prepare`` (the hub's stored copy) and the record in one job; the expansion follows."""
        lease = self.lease_until()

        def job(tx: SyncTx) -> int:
            tx.lock(record.module, record.object_key)  # a directed push of it checks for this record
            prepare(tx)
            return broadcast_sql.add(tx, record, lease_until=lease)

        record_id: int = await self.store.write(job, locks=[(record.module, record.object_key)])
        self.wake()
        return record_id

    async def settled(self, module: str, object_key: str) -> None:
        """Return once the object had no broadcast waiting for expansion (a directed push may follow)."""
        while not self._stopping:
            waiter = self._expanded
            if not await broadcast_sql.pending_read(self.store, module, object_key):
                return
            self.wake()
            # Alone, this process expands it and says so (the timeout only bounds a missed signal);
            # shared, another process may be the one expanding it: poll.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05 if self.store.shared else 1.0):
                    await waiter.wait()

    # ---- the loop's work (routing/leased.py runs it) -----------------------------------------

    async def stop(self) -> None:
        """Stop between chunks; whoever waits in ``settled`` looks again."""
        self._expanded.set()
        await super().stop()

    async def _claim(self, now: str, lease_until: str) -> list[Broadcast]:
        return await broadcast_sql.claim(self.store, now=now, lease_until=lease_until, limit=CLAIM)

    async def _work(self, row: Broadcast) -> None:
        await self._expand(row)

    def _release(self) -> Job:
        return broadcast_sql.release

    def _signal(self) -> None:
        self._expanded.set()
        self._expanded = asyncio.Event()

    async def _expand(self, record: Broadcast) -> None:
        """Every receiver not expanded yet, CHUNK at a time; the last chunk deletes the record."""
        spec = MODULES[record.module]
        sender = PartyRef(record.sender_country_code, record.sender_party_id)
        caller = self.directory.platform(record.sender_platform_id)
        flow = versions_wire.replay(record.origin, caller, self.store)
        accepted = parse_iso(record.created_at)
        todo = [
            t
            for t in self.targets(record.module)
            if t.platform.id > record.done_through
            and t.platform.id != record.sender_platform_id
            # Only the parties the sender has an agreement with (all of them when agreements are open).
            and self.agreements.allows_message(spec, InterfaceRole.RECEIVER, sender, t.party)
        ]
        done = record.done_through
        tail = suffix(record.segments, record.query_string)  # paths.join's tail, once: every receiver's is the same
        try:
            while True:
                chunk = _chunk(todo)
                todo = todo[len(chunk) :]
                legs = [
                    Leg(
                        method=record.method,
                        url=attach(t.base_url, tail),
                        platform=t.platform,
                        routing=RoutingHeaders(from_party=self.hub, to_party=t.party),
                        correlation_id=record.correlation_id,
                        body=record.body,
                        module=record.module,
                        object_key=record.object_key,
                        flow=flow,
                    )
                    for t in chunk
                ]
                ready = await self.delivery.translate(legs, broad=True)
                through = chunk[-1].platform.id if chunk else done
                then = _progress(record.id, done, through, last=not todo, lease_until=self.lease_until())
                try:
                    await self.delivery.enqueue_as_of(ready, accepted, then=then, background=True)
                except LostBroadcast as exc:  # another process took it over (this one stalled): its now
                    LOGGER.warning("broadcast %s left to another process: %s", record.id, exc)
                    return
                done = through
                if not todo:
                    break
                await asyncio.sleep(0)  # the loop's turn: requests keep being answered meanwhile
        finally:
            if flow.losses and self.on_losses is not None:
                self.on_losses(record, list(flow.losses))
            self._signal()


def _chunk(targets: list[Target]) -> list[Target]:
    """The next CHUNK targets, extended to the end of the last platform's parties (progress is by platform)."""
    if len(targets) <= CHUNK:
        return targets
    end = CHUNK
    while end < len(targets) and targets[end].platform.id == targets[end - 1].platform.id:
        end += 1
    return targets[:end]


def _progress(record_id: int, done_from: int, through: int, *, last: bool, lease_until: str) -> Callable[[Any], None]:
    def job(tx: SyncTx) -> None:
        if last:
            broadcast_sql.finish(tx, record_id, done_from=done_from)
        else:
            broadcast_sql.advance(tx, record_id, done_from=done_from, done_through=through, lease_until=lease_until)

    return job
