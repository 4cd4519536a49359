"""The hub's processes: heartbeat, lease renewal, and the cluster's view for /status and /metrics.

Every ``heartbeat_interval`` the process writes its row in hub_processes (host, pid, start, its
own counters) and extends the leases on the outbox rows it claimed, in one commit. A process
that dies stops both: /status shows it as gone after ``gone_after`` seconds, and its claimed
messages are claimable by the others once ``lease_seconds`` pass (storage/claims.py). On a
clean stop the row is marked stopped. With SQLite (one process) the same row simply shows the
one process.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from config import ClusterSettings
from routing.clock import Clock, iso, parse_iso
from routing.jobs.periodic import Periodic
from storage import claims as claims_sql
from storage import processes as process_sql
from storage.db import Store, SyncTx

LOGGER = logging.getLogger(__name__)

KEEP_GONE = timedelta(days=1)  # rows of processes gone longer than this are dropped
CACHE_CHANNEL = "ocpi_hub_cache"  # NOTIFY: platforms, tokens or interop settings changed
OUTBOX_CHANNEL = "ocpi_hub_outbox"  # NOTIFY: messages any process may deliver were committed
PER_PLATFORM = "platforms"  # heartbeat figure: {platform id: [delivered, failed]} of that process


@dataclass(frozen=True)
class ProcessView:
    """One process in /status and /metrics."""

    id: str
    host: str
    os_pid: int  # the operating system's process id ("pid" in /status and the table)
    started_at: str
    last_heartbeat: str
    state: str  # alive, gone (no heartbeat within gone_after), stopped (clean shutdown)
    figures: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The /status entry."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.os_pid,
            "started_at": self.started_at,
            "last_heartbeat": self.last_heartbeat,
            "state": self.state,
            # The per-platform split stays out of /status's process list (cluster_by_platform sums it).
            **{k: v for k, v in self.figures.items() if k != PER_PLATFORM},
        }


def cluster_by_platform(processes: list[ProcessView]) -> dict[int, tuple[int, int]]:
    """(delivered, failed) per platform summed over every process's last heartbeat (the cluster's counts)."""
    sums: dict[int, tuple[int, int]] = {}
    for process in processes:
        split = process.figures.get(PER_PLATFORM)
        if not isinstance(split, dict):
            continue  # a process of an older build: its totals still count, not its split
        for key, pair in split.items():
            if not (isinstance(key, str) and key.isdigit() and isinstance(pair, list) and len(pair) == 2):
                continue
            delivered, failed = sums.get(int(key), (0, 0))
            sums[int(key)] = (delivered + int(pair[0]), failed + int(pair[1]))
    return sums


class Cluster:
    """Heartbeat of this process and the list of all of them."""

    def __init__(
        self, store: Store, settings: ClusterSettings, clock: Clock, figures: Callable[[], dict[str, Any]]
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.figures = figures  # this process's counters (delivered, failed, in flight...)
        self.process_id = store.process_id
        self.host = socket.gethostname()
        self.os_pid = os.getpid()
        self.started_at = iso(clock.now())
        self.task = Periodic("heartbeat", self.beat, lambda: self.settings.heartbeat_interval, clock)

    async def beat(self) -> None:
        """Write this process's row and renew its leases (one commit)."""
        now = self.clock.now()
        stamp, until = iso(now), iso(now + timedelta(seconds=self.settings.lease_seconds))
        figures = json.dumps(self.figures())
        forget = iso(now - KEEP_GONE)

        def job(tx: SyncTx) -> int:
            process_sql.beat(
                tx,
                process_id=self.process_id,
                host=self.host,
                os_pid=self.os_pid,
                started_at=self.started_at,
                now=stamp,
                figures=figures,
            )
            process_sql.forget_before(tx, before=forget)
            return claims_sql.renew_leases(tx, lease_until=until)

        await self.store.write(job)

    async def stop(self) -> None:
        """Stop beating and mark the row stopped (best effort: the store may be going away)."""
        await self.task.stop()
        stamp, figures = iso(self.clock.now()), json.dumps(self.figures())
        try:
            await self.store.write(
                lambda tx: process_sql.stopped(tx, process_id=self.process_id, now=stamp, figures=figures)
            )
        except Exception as exc:  # shutting down: a missing "stopped" only shows the process as gone later
            LOGGER.warning("could not mark this process stopped: %s", exc)

    async def processes(self) -> list[ProcessView]:
        """Every process the database knows, this one with its live figures."""
        now = self.clock.now().timestamp()
        out: list[ProcessView] = []
        for row in await process_sql.list_processes(self.store):
            mine = row.id == self.process_id
            if row.stopped_at is not None:
                state = "stopped"
            elif mine or now - parse_iso(row.heartbeat_at).timestamp() <= self.settings.gone_after:
                state = "alive"
            else:
                state = "gone"
            out.append(
                ProcessView(
                    id=row.id,
                    host=row.host,
                    os_pid=row.os_pid,
                    started_at=row.started_at,
                    last_heartbeat=row.heartbeat_at,
                    state=state,
                    figures=self.figures() if mine else row.figures,
                )
            )
        return out
