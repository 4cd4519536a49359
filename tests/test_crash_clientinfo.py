"""Crash safety of the HubClientInfo fan-out (routing/registry/clientinfo.py): the hub as a real
process with 2,000 seeded platforms, `kill -9` right after a new platform's registration was
answered (before the ~4,000 ClientInfo PUTs it owes are committed), and again for a second
newcomer once the first chunks of its PUTs were committed (between two chunks); restarted on the
same database and port each time. Every platform hears of each newcomer and each newcomer of
every party, each once (a redelivery with the same X-Request-ID aside: at-least-once), as if
nothing had happened.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest

from bench.seed import seed_platforms
from tests.support.crash_clientinfo import DRILL_SETTINGS, INFO, Sink, act_then_kill, fan_outs
from tests.support.fakes import FakePlatform
from tests.support.ports import free_port
from tests.support.processes import HubProcess

ADMIN = "crash-admin-token"
SEEDED = 2000
NEWCOMERS = [("FR", "NEW", "EMSP"), ("FR", "NXT", "CPO")]


async def _register_then_kill(
    session: aiohttp.ClientSession, hub: HubProcess, db: Path, newcomer: FakePlatform, *, mid_way: bool
) -> None:
    """Register ``newcomer``; kill -9 at once, or (``mid_way``) once a chunk of its fan-out is committed."""

    async def register() -> None:
        invite = await hub.admin(session, "POST", "/admin/invitations", {"name": newcomer.name})
        await newcomer.register_with(hub.base + "/ocpi/versions", invite["token_a"])

    await act_then_kill(session, hub, db, register, mid_way=mid_way)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_kill_9_after_a_registration_answer_loses_no_clientinfo(tmp_path: Path) -> None:
    db = tmp_path / "crash-clientinfo.sqlite3"
    sink = Sink()
    await sink.start()
    seeded = await asyncio.to_thread(seed_platforms, db, SEEDED, receiver_base=sink.base)
    hub = HubProcess(
        str(db),
        free_port(),
        admin_token=ADMIN,
        **DRILL_SETTINGS,
    )
    newcomers = [FakePlatform(roles=[party], name=f"crash newcomer {party[1]}") for party in NEWCOMERS]
    for peer in newcomers:
        await peer.start()
    session = aiohttp.ClientSession()
    tokens = [f"out-{token}" for _, _, token in seeded]
    try:
        await hub.start(session)
        # Killed right after the answer (nothing of the fan-out committed yet, as a rule), then
        # between two of its chunks.
        await _register_then_kill(session, hub, db, newcomers[0], mid_way=False)
        await _register_then_kill(session, hub, db, newcomers[1], mid_way=True)
        assert hub.kills == 2
        parties = {f"{INFO}{c}/{p}" for c, p, _ in seeded}
        expected = {
            newcomers[0].name: parties | {f"{INFO}{NEWCOMERS[1][0]}/{NEWCOMERS[1][1]}"},
            newcomers[1].name: parties | {f"{INFO}{NEWCOMERS[0][0]}/{NEWCOMERS[0][1]}"},
        }

        def told(party: tuple[str, str, str]) -> int:
            about = f"{INFO}{party[0]}/{party[1]}"
            return sum(1 for t in tokens if sink.got[t].get(about))

        def backfilled(peer: FakePlatform) -> dict[str, set[str]]:
            by_path: dict[str, set[str]] = defaultdict(set)
            for r in peer.received:
                if r.method == "PUT" and r.path.startswith(INFO):
                    by_path[r.path].add(r.headers.get("X-Request-ID", ""))
            return by_path

        def complete() -> bool:
            return all(told(party) == SEEDED for party in NEWCOMERS) and all(
                set(backfilled(peer)) == expected[peer.name] for peer in newcomers
            )

        for _ in range(600):  # bounded: ~60 s
            if complete():
                break
            await asyncio.sleep(0.1)
        for party in NEWCOMERS:
            assert told(party) == SEEDED, f"{SEEDED - told(party)} seeded platforms never heard of {party}"
        for peer in newcomers:
            assert set(backfilled(peer)) == expected[peer.name], peer.name
        await asyncio.sleep(0.5)  # anything sent twice would arrive by now
        for party in NEWCOMERS:
            about = f"{INFO}{party[0]}/{party[1]}"
            twice = [t for t in tokens if len(sink.got[t][about]) > 1]
            assert twice == [], f"told twice of {party} (two X-Request-IDs): {twice[:5]} ({len(twice)})"
        for peer in newcomers:
            assert [p for p, ids in backfilled(peer).items() if len(ids) > 1] == [], peer.name
        hub.stop()
        assert fan_outs(db) == []
    finally:
        hub.stop()
        await session.close()
        for peer in newcomers:
            await peer.close()
        await sink.close()
