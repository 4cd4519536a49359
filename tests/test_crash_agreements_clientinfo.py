"""Crash safety of the HubClientInfo owed by agreement changes (routing/agreements/changes.py): the hub
as a real process with agreements required and 2,000 seeded eMSPs, one CPO registered through
the real handshake. An import of 1,000 agreements (CPO with each of 1,000 eMSPs: 2,000 PUTs owed)
is answered, then `kill -9` at once; a second import, `kill -9` once its fan-out's first chunks
are committed; restarted on the same database and port each time. Every eMSP with an agreement
hears of the CPO and the CPO of each of them, each once (a redelivery with the same X-Request-ID
aside); the eMSPs without one hear nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from bench.seed import seed_platforms
from tests.support.agreements import CSV_HEADER
from tests.support.crash_clientinfo import DRILL_SETTINGS, INFO, Sink, act_then_kill, fan_outs
from tests.support.fakes import FakePlatform
from tests.support.ports import free_port
from tests.support.processes import HubProcess

ADMIN = "crash-agreements-admin-token"
SEEDED = 2000
HALF = 1000  # agreements per import
CPO = ("FR", "CPX", "CPO")


def _csv(seeded: list[tuple[str, str, str]]) -> str:
    rows = [f"{CPO[0]},{CPO[1]},CPO,{c},{p},EMSP,*,active,,," for c, p, _ in seeded]
    return "\n".join([CSV_HEADER, *rows]) + "\n"


def _agreement_rows(db: Path) -> int:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        return int(conn.execute("SELECT count(*) FROM agreements").fetchone()[0])


async def _import_then_kill(
    session: aiohttp.ClientSession, hub: HubProcess, db: Path, text: str, *, mid_way: bool
) -> None:
    """Import the agreements of ``text``; kill -9 at once, or (``mid_way``) once a chunk of the fan-out is committed."""

    async def import_them() -> None:
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "text/csv"}
        async with session.post(hub.base + "/admin/agreements/import", data=text.encode(), headers=headers) as r:
            assert r.status == 201, await r.text()

    await act_then_kill(session, hub, db, import_them, mid_way=mid_way)


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_kill_9_after_an_agreement_import_answer_loses_no_clientinfo(tmp_path: Path) -> None:
    db = tmp_path / "crash-agreements.sqlite3"
    sink = Sink()
    await sink.start()
    seeded = await asyncio.to_thread(seed_platforms, db, SEEDED, receiver_base=sink.base)
    hub = HubProcess(
        str(db),
        free_port(),
        admin_token=ADMIN,
        HUB_AGREEMENTS="required",
        **DRILL_SETTINGS,
    )
    cpo = FakePlatform(roles=[CPO], name="crash CPO")
    await cpo.start()
    session = aiohttp.ClientSession()
    partners = seeded[: 2 * HALF - 200]  # the last 200 eMSPs have no agreement
    tokens = {f"out-{token}": (c, p) for c, p, token in seeded}
    try:
        await hub.start(session)
        invite = await hub.admin(session, "POST", "/admin/invitations", {"name": cpo.name})
        await cpo.register_with(hub.base + "/ocpi/versions", invite["token_a"])
        await _import_then_kill(session, hub, db, _csv(partners[:HALF]), mid_way=False)
        await _import_then_kill(session, hub, db, _csv(partners[HALF:]), mid_way=True)
        assert hub.kills == 2 and _agreement_rows(db) == len(partners)
        about_cpo = f"{INFO}{CPO[0]}/{CPO[1]}"
        partner_tokens = {t for t, party in tokens.items() if party in {(c, p) for c, p, _ in partners}}
        expected_paths = {f"{INFO}{c}/{p}" for c, p, _ in partners}

        def told_cpo() -> set[str]:
            return {t for t, got in sink.got.items() if got.get(about_cpo)}

        def cpo_heard() -> dict[str, set[str]]:
            by_path: dict[str, set[str]] = defaultdict(set)
            for r in cpo.received:
                if r.method == "PUT" and r.path.startswith(INFO):
                    by_path[r.path].add(r.headers.get("X-Request-ID", ""))
            return by_path

        for _ in range(600):  # bounded: ~60 s
            if told_cpo() == partner_tokens and set(cpo_heard()) == expected_paths:
                break
            await asyncio.sleep(0.1)
        missing = partner_tokens - told_cpo()
        assert not missing, f"{len(missing)} eMSPs with an agreement never heard of the CPO"
        assert set(cpo_heard()) == expected_paths, f"the CPO never heard of {len(expected_paths - set(cpo_heard()))}"
        await asyncio.sleep(0.5)  # anything sent twice, or to someone without an agreement, arrives by now
        assert told_cpo() == partner_tokens, "an eMSP without an agreement was told of the CPO"
        twice = [t for t in partner_tokens if len(sink.got[t][about_cpo]) > 1]
        assert twice == [], f"told twice of the CPO (two X-Request-IDs): {twice[:5]} ({len(twice)})"
        assert [p for p, ids in cpo_heard().items() if len(ids) > 1] == []
        statuses = {r.body["status"] for r in cpo.received if r.method == "PUT" and r.path.startswith(INFO)}
        assert statuses == {"CONNECTED"}
        hub.stop()
        assert fan_outs(db) == []
    finally:
        hub.stop()
        await session.close()
        await cpo.close()
        await sink.close()
