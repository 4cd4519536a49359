"""Several hub apps on one database, seen from the wire: /status and /metrics list the processes,
a registration through one process is known to the others at once (NOTIFY), and the embedded
SQLite default shows its one process.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import psycopg
import pytest

from hub.keys import DIRECTORY, STORE, WORKER
from hub.observe.traffic import recorder as hub_traffic
from hub.observe.traffic.recorder import TRAFFIC
from routing.clock import FakeClock
from routing.registry.directory import change_note, noted_platform
from storage import objects as object_sql
from storage import traffic as traffic_sql
from storage.db import RESYNC
from storage.postgres import OWED_MAX, PostgresStore
from tests.support.backends import needs_postgres
from tests.support.console import Console
from tests.support.delivery import FAST, Script, is_queued, sessions_to
from tests.support.fakes import FakePlatform
from tests.support.hub import ADMIN, HubHandle, StartHub, accepted
from tests.support.routing import CPO1, EMSP1, MakePeer, connect, put_session_to, rh, session_for
from tests.support.waiting import settle, until, wait_for


async def test_sqlite_status_and_metrics_show_the_one_process(hub: HubHandle) -> None:
    status, body = await hub.admin("GET", "/status")
    assert status == 200, body
    [process] = body["processes"]
    assert process["pid"] == os.getpid() and process["state"] == "alive"
    assert {"id", "host", "started_at", "last_heartbeat", "delivered", "failed", "in_flight"} <= set(process)
    assert body["cluster"]["processes_alive"] == 1 and body["cluster"]["processes_gone"] == 0
    assert body["database"]["backend"] == "sqlite"
    async with hub.session.get(hub.base + "/metrics", headers={"Authorization": "Bearer " + ADMIN}) as r:
        text = await r.text()
    assert 'ocpi_hub_processes{state="alive"} 1.0' in text
    assert f'ocpi_hub_process_in_flight{{host="{process["host"]}",process="{process["id"]}"}}' in text


@needs_postgres
async def test_a_registration_through_one_process_routes_through_another(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    first = await start_hub(database=shared_database)
    second = await start_hub(database=shared_database)
    reloads = second.app[DIRECTORY].reloaded_at
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    emsp = await connect(first, make_peer, EMSP1, name="eMSP one")
    # The second process heard of both registrations (NOTIFY): the CPO's token works there and
    # the eMSP is a known receiver, without a restart.
    session = session_for(CPO1, EMSP1, "X1")
    status, body, _ = await until(
        lambda: second.call(
            "PUT", "/ocpi/2.2.1/sessions/receiver/BE/BEC/X1", token=cpo.hub_token, json=session, headers=rh(CPO1, EMSP1)
        ),
        accepted,
    )
    assert (status, body["status_code"]) == (200, 1000), body
    await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/X1") for r in emsp.received))
    # From the invitation on, it re-read the one platform each change named, never all of them.
    assert second.app[DIRECTORY].reloaded_at == reloads

    # Both processes in /status, whichever answers.
    status, body = await second.admin("GET", "/status")
    assert status == 200, body
    assert body["database"]["backend"] == "postgresql"
    assert [p["state"] for p in body["processes"]] == ["alive", "alive"]
    assert body["cluster"]["processes_alive"] == 2
    assert body["cluster"]["delivered"] >= 1  # the session, delivered by the second process

    # A clean stop is shown as stopped, not gone.
    await second.server.close()
    status, body = await first.admin("GET", "/status")
    assert sorted(p["state"] for p in body["processes"]) == ["alive", "stopped"]


@needs_postgres
async def test_an_unregistered_token_stops_working_in_every_process(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    first = await start_hub(database=shared_database)
    second = await start_hub(database=shared_database)
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    # The second process caches the token once it authenticated it.
    status, _, _ = await until(
        lambda: second.call("GET", "/ocpi/versions", token=cpo.hub_token), lambda answer: answer[0] == 200
    )
    assert status == 200
    status, body, _ = await first.call("DELETE", "/ocpi/2.2.1/credentials", token=cpo.hub_token)
    assert status == 200, body
    # NOTIFY empties the second process's token cache.
    status, _, _ = await until(
        lambda: second.call("GET", "/ocpi/versions", token=cpo.hub_token), lambda answer: answer[0] == 401
    )
    assert status == 401


@needs_postgres
async def test_a_suspension_in_one_process_holds_in_another_which_rereads_only_that_platform(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    first, second, cpo, emsp, emsp_id = await _two_processes(shared_database, start_hub, make_peer)
    directory = second.app[DIRECTORY]
    reloads = directory.reloaded_at

    status, body = await first.admin("POST", f"/admin/platforms/{emsp_id}/suspend")
    assert (status, body["status"]) == (200, "SUSPENDED"), body
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "SUSPENDED")

    # The second process refuses pushes to the suspended eMSP, then routes them once it is resumed.
    async def push() -> tuple[int, int]:
        status, body = await put_session_to(second, cpo, EMSP1, "S1")
        return status, body["status_code"]

    assert await push() == (200, 4003)
    status, body = await first.admin("POST", f"/admin/platforms/{emsp_id}/resume")
    assert (status, body["status"]) == (200, "CONNECTED"), body
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "CONNECTED")
    assert await push() == (200, 1000)
    await wait_for(lambda: any(r.path.endswith("/sessions/receiver/BE/BEC/S1") for r in emsp.received))
    # Each change re-read that one platform in the second process, never all of them.
    assert directory.reloaded_at == reloads


@needs_postgres
async def test_a_receiver_one_process_found_offline_waits_in_the_others_until_it_is_back(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    """OFFLINE is followed by every process: the second does not keep sending to an eMSP the
    first found down (it queues, as the first does), and both resume when it is back."""
    delivery = {**FAST, "offline_after_failures": 2, "concurrency_per_receiver": 1}
    first = await start_hub(database=shared_database, delivery=delivery)
    second = await start_hub(database=shared_database, delivery=delivery)
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    emsp = await connect(first, make_peer, EMSP1, name="eMSP one")
    script = Script(mode="down")
    emsp.module_responder = script
    directory = second.app[DIRECTORY]
    await wait_for(
        lambda: any(p.versions_url == emsp.versions_url and p.status == "CONNECTED" for p in directory.platforms())
    )
    [emsp_id] = [p.id for p in directory.platforms() if p.versions_url == emsp.versions_url]

    for session_id in ("F1", "F2"):
        assert is_queued(*(await put_session_to(first, cpo, EMSP1, session_id))), session_id
    await wait_for(lambda: script.failed >= 2)
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "OFFLINE")
    assert second.app[WORKER].is_paused(emsp_id)
    tried = len(sessions_to(emsp))
    status, body = await put_session_to(second, cpo, EMSP1, "S1")
    assert is_queued(status, body) and "unavailable" in body["status_message"], body
    await settle(second)
    assert len(sessions_to(emsp)) == tried  # the second process did not try the receiver itself

    # The eMSP calls the hub (through the first process): it is back, and every queue drains.
    script.mode = "ok"
    status, _, _ = await first.call("GET", "/ocpi/2.2.1/locations/sender/", token=emsp.hub_token)
    assert status == 200
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "CONNECTED")
    await wait_for(lambda: {r.path.rsplit("/", 1)[-1] for r in script.accepted} >= {"F1", "F2", "S1"})
    assert not second.app[WORKER].is_paused(emsp_id)


@needs_postgres
async def test_what_a_process_missed_while_its_listen_connection_was_down_is_reread(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    """NOTIFY reaches only who listens at that moment: a change made while the second process's
    LISTEN connection was down would stay unknown there. When it is back, it re-reads all."""
    first, second, _, _, emsp_id = await _two_processes(shared_database, start_hub, make_peer)
    directory = second.app[DIRECTORY]
    store = second.app[STORE]
    # The second process's LISTEN connection is cut, and its way back held until the change is made.
    back = asyncio.Event()
    listen_to_new = store._listen_to_new  # type: ignore[attr-defined]

    async def held(conn: Any) -> None:
        await back.wait()
        await listen_to_new(conn)

    store._listen_to_new = held  # type: ignore[attr-defined]
    pid = store._listen_conn.info.backend_pid  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(shared_database, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await wait_for(lambda: not store.listening.is_set())  # type: ignore[attr-defined]

    status, body = await first.admin("POST", f"/admin/platforms/{emsp_id}/suspend")
    assert (status, body["status"]) == (200, "SUSPENDED"), body
    await settle(second)
    assert (p := directory.platform(emsp_id)) is not None and p.status == "CONNECTED"  # its NOTIFY was missed
    back.set()
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "SUSPENDED")


@needs_postgres
async def test_a_notify_that_cannot_be_sent_does_not_fail_the_change_it_follows(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer, caplog: pytest.LogCaptureFixture
) -> None:
    """The change is committed before its NOTIFY: a failed NOTIFY is a WARNING, not a 500."""
    first = await start_hub(database=shared_database)
    await connect(first, make_peer, CPO1, name="CPO one")
    store = first.app[STORE]

    def refused(channel: str) -> str:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    store._scoped = refused  # type: ignore[attr-defined]
    status, platforms = await first.admin("GET", "/admin/platforms")
    assert status == 200, platforms
    status, body = await first.admin("POST", f"/admin/platforms/{platforms[0]['id']}/suspend")
    assert (status, body["status"]) == (200, "SUSPENDED"), body
    assert any("not sent" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


@needs_postgres
async def test_a_notify_that_could_not_be_sent_is_sent_once_the_database_answers(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer, caplog: pytest.LogCaptureFixture
) -> None:
    """A suspension whose NOTIFY failed reaches the other process late, with no other change."""
    first, second, _, _, emsp_id = await _two_processes(shared_database, start_hub, make_peer)
    directory = second.app[DIRECTORY]
    store = first.app[STORE]
    scoped = store._scoped  # type: ignore[attr-defined]

    def refused(channel: str) -> str:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    store._scoped = refused  # type: ignore[attr-defined]
    status, body = await first.admin("POST", f"/admin/platforms/{emsp_id}/suspend")
    assert (status, body["status"]) == (200, "SUSPENDED"), body
    await settle(second)
    assert (p := directory.platform(emsp_id)) is not None and p.status == "CONNECTED"  # not told yet
    store._scoped = scoped  # type: ignore[attr-defined]
    await wait_for(lambda: (p := directory.platform(emsp_id)) is not None and p.status == "SUSPENDED")
    # The sender logs once its NOTIFY returns; the other process (same event loop here) may act on
    # it before that coroutine runs again.
    await wait_for(lambda: any("sent late" in r.getMessage() for r in caplog.records))


def test_notes_owed_past_the_bound_become_one_resync_per_channel() -> None:
    """A long outage keeps at most OWED_MAX notes; beyond, every listener re-reads everything."""
    store = PostgresStore("postgresql://127.0.0.1:5432/test")  # never opened: no connection is made
    store._owe("cache", "platform:1")  # type: ignore[attr-defined]
    for n in range(OWED_MAX):
        store._owe("outbox", f"enqueued {n}")  # type: ignore[attr-defined]
    assert list(store._owed) == [("cache", RESYNC), ("outbox", RESYNC)]  # type: ignore[attr-defined]


async def test_a_process_that_does_not_lead_the_sweeps_stays_idle(
    shared_database: str, start_hub: StartHub, clock: FakeClock
) -> None:
    first = await start_hub(database=shared_database)
    second = await start_hub(database=shared_database)
    await settle(first)
    # A non-leader that spins (its never-run sweep looking due every round) never idles: its next
    # wake-up is never later than now on the fake clock, so settle() runs out of time.
    await settle(second)
    store = second.app[STORE]
    before = store.commits
    for _ in range(5):  # the clock moves on: a round now and then at most, not one after another
        clock.advance(1.0)
        await settle(second)
    assert store.commits - before <= 2


@needs_postgres
async def test_one_process_of_a_cluster_trims_the_traffic_table(
    shared_database: str, start_hub: StartHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the process holding the trim lease deletes old traffic rows; it trims what others wrote."""
    monkeypatch.setattr(hub_traffic, "TRIM_INTERVAL", 3600.0)  # no background trims: the test calls it
    first = await start_hub(database=shared_database, traffic_log_rows=5)
    assert await first.app[STORE].try_lead(hub_traffic.TRIM_ROLE)
    second = await start_hub(database=shared_database, traffic_log_rows=5)
    for _ in range(8):  # refused calls are traffic too
        status, _, _ = await second.call("GET", "/ocpi/versions", token="not-a-token")
        assert status == 401
    await second.app[TRAFFIC].flush()
    store = second.app[STORE]
    assert await traffic_sql.count(store) >= 8  # the second process wrote them and left them
    assert not await second.app[TRAFFIC].trim_if_leading()
    assert await traffic_sql.count(store) >= 8
    assert await first.app[TRAFFIC].trim_if_leading()
    assert await traffic_sql.count(store) == 5
    await first.call("GET", "/ocpi/versions", token="not-a-token")
    await first.app[TRAFFIC].flush()  # the trimming process trims in its own batches too
    assert await traffic_sql.count(store) == 5


@needs_postgres
async def test_concurrent_patches_through_two_processes_lose_no_update(
    shared_database: str, start_hub: StartHub, make_peer: MakePeer
) -> None:
    """Each PATCH appends a charging period to the hub's stored session: none may be lost, none refused.

    The two processes read and rewrite the stored copy in their own transactions, serialized by
    the object lock (storage/outbox.py lock_object; the interleaving itself is forced in
    tests/test_cluster_storage.py, here the batches rarely overlap).
    """
    first = await start_hub(database=shared_database)
    second = await start_hub(database=shared_database)
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    await connect(first, make_peer, EMSP1, name="eMSP one")
    path = "/ocpi/2.2.1/sessions/receiver/BE/BEC/LU1"
    session = session_for(CPO1, EMSP1, "LU1") | {"charging_periods": []}
    status, body, _ = await until(
        lambda: second.call("PUT", path, token=cpo.hub_token, json=session, headers=rh(CPO1, EMSP1)), accepted
    )
    assert (status, body["status_code"]) == (200, 1000), body
    starts = [f"2026-11-29T12:{minute:02d}:00Z" for minute in range(16)]
    answers = await asyncio.gather(
        *(
            (first, second)[n % 2].call(
                "PATCH",
                path,
                token=cpo.hub_token,
                json={
                    "charging_periods": [{"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": 1.0}]}],
                    "last_updated": start,
                },
                headers=rh(CPO1, EMSP1),
            )
            for n, start in enumerate(starts)
        )
    )
    assert [(status, body["status_code"]) for status, body, _ in answers] == [(200, 1000)] * len(starts)
    stored = await object_sql.get_any(first.app[STORE], "sessions", "BE/BEC/LU1")
    assert stored is not None
    periods = json.loads(stored.body)["charging_periods"]
    assert sorted(period["start_date_time"] for period in periods) == starts


@needs_postgres
async def test_a_console_login_holds_in_every_process_and_a_logout_everywhere(
    shared_database: str, start_hub: StartHub
) -> None:
    """Behind `serve --workers N` a browser's requests land on any process: the session is in the database."""
    first = await start_hub(database=shared_database)
    second = await start_hub(database=shared_database)
    on_first, on_second = Console(first.base), Console(second.base)
    try:
        assert await on_first.login() == 303
        cookie = on_first.cookie()
        assert cookie is not None
        on_second.adopt(cookie)
        status, text, _ = await on_second.get("/console/deadletters")
        assert status == 200, text
        # A form posted to one process; its message is shown by the other (post/redirect/get).
        status, _, headers = await on_first.post("/console/deadletters/redrive", {"csrf": on_first.csrf})
        assert (status, headers["Location"]) == (303, "/console/deadletters")
        status, text, _ = await on_second.get("/console/deadletters")
        assert status == 200 and "Nothing chosen: tick dead letters or pick a platform." in text
        status, text, _ = await on_first.get("/console/deadletters")
        assert "Nothing chosen" not in text  # shown once, wherever it was shown
        status, _, _ = await on_second.post("/console/logout", {"csrf": on_first.csrf})
        assert status == 303
        status, _, headers = await on_first.get("/console/")
        assert (status, headers["Location"]) == (303, "/console/login")
    finally:
        await on_first.close()
        await on_second.close()


def test_a_change_note_names_one_platform_and_a_bare_one_means_all() -> None:
    assert noted_platform(change_note(12)) == 12
    assert noted_platform("registry") is None  # a hub of the previous version: re-read everything
    for odd in ("registry:", "registry:x", "registry:²", "registry:-1"):
        assert noted_platform(odd) is None  # not understood: the safe full re-read


async def _two_processes(
    database: str, start_hub: StartHub, make_peer: MakePeer
) -> tuple[HubHandle, HubHandle, FakePlatform, FakePlatform, int]:
    """Two hub processes on one database; a CPO and an eMSP registered through the first, and the
    eMSP's id once the second knows it CONNECTED."""
    first = await start_hub(database=database)
    second = await start_hub(database=database)
    cpo = await connect(first, make_peer, CPO1, name="CPO one")
    emsp = await connect(first, make_peer, EMSP1, name="eMSP one")
    directory = second.app[DIRECTORY]
    await wait_for(
        lambda: any(p.versions_url == emsp.versions_url and p.status == "CONNECTED" for p in directory.platforms())
    )
    [emsp_id] = [p.id for p in directory.platforms() if p.versions_url == emsp.versions_url]
    return first, second, cpo, emsp, emsp_id
