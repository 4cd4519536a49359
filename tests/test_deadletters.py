"""Dead letters (docs/DESIGN-NOTES.md, Delivery): after max_attempts or max_age (cdr_max_age for CDRs) a message
is dead, listed by GET /admin/deadletters and `ocpi-hub redrive --list`, and re-driven (all, one
platform's, or by id) by POST /admin/deadletters/redrive or `ocpi-hub redrive`, then delivered.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.cli.main import main
from hub.keys import STORE
from storage import deadletters as deadletters_sql
from tests.support.delivery import (
    Script,
    a_cdr,
    delivery_net,
    is_queued,
    outbox_rows,
    post_cdr,
    put_session,
    sessions_to,
    tick,
)
from tests.support.routing import CPO1, EMSP2, answers, module_requests, rh, session_for
from tests.support.waiting import advance_until

pytestmark = pytest.mark.both_backends

NO_OFFLINE = {"offline_after_failures": 1000}


async def _dead(net, **query) -> list[dict]:
    path = "/admin/deadletters" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, body = await net.hub.admin("GET", path)
    assert status == 200, body
    return list(body)


async def test_dead_after_max_attempts_then_redriven_and_delivered(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, max_attempts=3, **NO_OFFLINE)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    status, body, raw = await put_session(net, "d1", 1, X_Correlation_ID="corr-dead")
    assert is_queued(status, body), body
    await advance_until(net.hub, clock, lambda: script.failed == 3, step=10)
    await tick(net.hub, clock, 60, 10)
    assert script.failed == 3  # no fourth attempt

    (letter,) = await _dead(net)
    pid = await net.platform_id(net.emsp1)
    assert letter["platform_id"] == pid and letter["module"] == "sessions" and letter["method"] == "PUT"
    assert letter["attempts"] == 3 and letter["last_http_status"] == 503
    assert "503" in letter["last_error"] and letter["correlation_id"] == "corr-dead"
    assert letter["url"].endswith("/sessions/receiver/BE/BEC/d1")
    assert "body" not in letter and "token" not in json.dumps(letter).lower()
    assert letter["request_id"] == sessions_to(net.emsp1)[0].headers["X-Request-ID"]
    assert await _dead(net, platform_id=pid + 100) == []
    # Listings never read a body (1,000 of up to max_body_bytes each); the re-drive sends it all the same.
    (listed,) = await deadletters_sql.dead_letters(net.hub.app[STORE])
    assert listed.body is None and listed.id == letter["id"]

    script.mode = "ok"
    status, body = await net.hub.admin("POST", "/admin/deadletters/redrive", {})
    assert (status, body) == (200, {"redriven": 1})
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 1, step=1)
    assert script.accepted[0].raw == raw
    assert script.accepted[0].headers["X-Request-ID"] == letter["request_id"]  # the same message
    assert await _dead(net) == [] and await outbox_rows(net.hub, "module='sessions'") == []


async def test_dead_after_max_age_and_cdrs_get_cdr_max_age(start_hub, make_peer, clock) -> None:
    net = await delivery_net(start_hub, make_peer, max_attempts=1000, max_age=3600, cdr_max_age=7200, **NO_OFFLINE)
    script = Script(mode="down")
    net.emsp1.module_responder = script
    assert is_queued(*(await put_session(net, "aged", 1))[:2])
    assert is_queued(*await post_cdr(net, a_cdr("CDR-OLD")))
    await tick(net.hub, clock, 30, 118)  # 3540 s: still trying
    assert await _dead(net) == []
    await tick(net.hub, clock, 30, 4)  # past max_age
    assert [m["module"] for m in await _dead(net)] == ["sessions"]
    await tick(net.hub, clock, 60, 62)  # past cdr_max_age
    assert sorted(m["module"] for m in await _dead(net)) == ["cdrs", "sessions"]
    assert await outbox_rows(net.hub, "state='pending' AND module IN ('cdrs', 'sessions')") == []

    # Re-driven, a CDR gets cdr_max_age again (not max_age): it outlives the session once more.
    status, body = await net.hub.admin("POST", "/admin/deadletters/redrive")
    assert (status, body) == (200, {"redriven": 2})
    await tick(net.hub, clock, 60, 62)
    assert [m["module"] for m in await _dead(net)] == ["sessions"]
    script.mode = "ok"
    await advance_until(net.hub, clock, lambda: len(script.accepted) == 1, step=10)
    assert json.loads(script.accepted[0].raw)["id"] == "CDR-OLD"


async def _two_receivers_with_dead_letters(start_hub, make_peer, clock):
    net = await delivery_net(start_hub, make_peer, max_attempts=1, **NO_OFFLINE)
    s1, s2 = Script(mode="down"), Script(mode="down")
    net.emsp1.module_responder, net.emsp2.module_responder = s1, s2
    for n in range(2):
        assert is_queued(*(await put_session(net, f"one{n}", 1))[:2])
        status, body, _ = await net.call(
            "PUT",
            f"/ocpi/2.2.1/sessions/receiver/BE/BEC/two{n}",
            net.cpo1,
            json=session_for(CPO1, EMSP2, f"two{n}"),
            headers=rh(CPO1, EMSP2),
        )
        assert is_queued(status, body), body
    await advance_until(net.hub, clock, lambda: s1.failed == 2 and s2.failed == 2, step=5)
    await tick(net.hub, clock, 5, 2)
    s1.mode = s2.mode = "ok"
    return net, s1, s2


async def test_redrive_one_platform_or_some_ids(start_hub, make_peer, clock) -> None:
    net, s1, s2 = await _two_receivers_with_dead_letters(start_hub, make_peer, clock)
    pid1, pid2 = await net.platform_id(net.emsp1), await net.platform_id(net.emsp2)
    assert len(await _dead(net)) == 4 and len(await _dead(net, platform_id=pid2)) == 2

    status, body = await net.hub.admin("POST", "/admin/deadletters/redrive", {"platform_id": pid2})
    assert (status, body) == (200, {"redriven": 2})
    await advance_until(net.hub, clock, lambda: len(s2.accepted) == 2, step=1)
    assert s1.accepted == []
    letters = await _dead(net)
    assert {m["platform_id"] for m in letters} == {pid1}

    status, body = await net.hub.admin("POST", "/admin/deadletters/redrive", {"ids": [letters[1]["id"]]})
    assert (status, body) == (200, {"redriven": 1})
    await advance_until(net.hub, clock, lambda: len(s1.accepted) == 1, step=1)
    assert s1.accepted[0].path.endswith("/one1")
    assert [m["id"] for m in await _dead(net)] == [letters[0]["id"]]

    for bad in ({"ids": "7"}, {"ids": [True]}, {"platform_id": "x"}, [1]):
        status, body = await net.hub.admin("POST", "/admin/deadletters/redrive", bad)
        assert status == 400 and body["status_code"] == 2001, (bad, body)


async def test_cli_lists_and_redrives(start_hub, make_peer, clock, monkeypatch, capsys) -> None:
    net, s1, s2 = await _two_receivers_with_dead_letters(start_hub, make_peer, clock)
    monkeypatch.setenv("HUB_HOST", "127.0.0.1")
    monkeypatch.setenv("HUB_PORT", str(net.hub.settings.port))
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "admin-secret-token")
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["redrive", "--list"]) == 0
    out = capsys.readouterr().out
    assert "4 dead letter(s)" in out and "/sessions/receiver/BE/BEC/one0" in out

    pid2 = await net.platform_id(net.emsp2)
    assert await asyncio.to_thread(main, ["redrive", "--list", "--json", "--platform", str(pid2)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 2 and {m["platform_id"] for m in listed} == {pid2}

    assert await asyncio.to_thread(main, ["redrive", "--platform", str(pid2)]) == 0
    assert "re-driven: 2 message(s)" in capsys.readouterr().out
    await advance_until(net.hub, clock, lambda: len(s2.accepted) == 2, step=1)

    first = (await _dead(net))[0]["id"]
    assert await asyncio.to_thread(main, ["redrive", "--json", str(first)]) == 0
    assert json.loads(capsys.readouterr().out) == {"redriven": 1}
    assert await asyncio.to_thread(main, ["redrive"]) == 0
    assert "re-driven: 1 message(s)" in capsys.readouterr().out
    await advance_until(net.hub, clock, lambda: len(s1.accepted) == 2, step=1)
    assert sorted(r.path.rsplit("/", 1)[1] for r in s1.accepted) == ["one0", "one1"]
    # Nothing left: said on stderr, exit 3 (README, CLI exit codes).
    assert await asyncio.to_thread(main, ["redrive", "--list"]) == 3
    assert capsys.readouterr().err == "ocpi-hub: no dead letters\n"
    assert module_requests(net.emsp2, "cdrs") == []


async def _status(net) -> dict:
    status, body = await net.hub.admin("GET", "/status")
    assert status == 200, body
    return dict(body)


async def test_discard_closes_dead_letters_out_with_the_reason(start_hub, make_peer, clock) -> None:
    """Discarded: kept with the operator's reason, never sent again, and /status returns to ok."""
    net, s1, s2 = await _two_receivers_with_dead_letters(start_hub, make_peer, clock)
    pid1, pid2 = await net.platform_id(net.emsp1), await net.platform_id(net.emsp2)
    assert (await _status(net))["status"] == "degraded"
    letters = await _dead(net, platform_id=pid1)

    body = {"reason": "partner confirmed it resent these", "ids": [letters[0]["id"]]}
    assert await net.hub.admin("POST", "/admin/deadletters/discard", body) == (200, {"discarded": 1})
    body = {"reason": "EMSP2 rebuilt its store", "platform_id": pid2}
    assert await net.hub.admin("POST", "/admin/deadletters/discard", body) == (200, {"discarded": 2})
    assert [m["id"] for m in await _dead(net)] == [letters[1]["id"]]
    closed = await _dead(net, state="discarded")
    assert [(m["platform_id"], m["discard_reason"]) for m in closed] == [
        (pid2, "EMSP2 rebuilt its store"),
        (pid2, "EMSP2 rebuilt its store"),
        (pid1, "partner confirmed it resent these"),
    ]
    assert {m["state"] for m in closed} == {"discarded"} and all(m["last_error"] for m in closed)
    status = await _status(net)
    assert status["status"] == "degraded" and status["totals"]["dead_letters"] == 1

    # A re-drive of everything brings back only the one still dead; discarded ones are never sent.
    assert await net.hub.admin("POST", "/admin/deadletters/redrive", {}) == (200, {"redriven": 1})
    await advance_until(net.hub, clock, lambda: len(s1.accepted) == 1, step=1)
    await tick(net.hub, clock, 60, 5)
    assert [r.path.rsplit("/", 1)[1] for r in s1.accepted] == ["one1"] and s2.accepted == []
    status = await _status(net)
    assert (status["status"], status["reasons"], status["totals"]["dead_letters"]) == ("ok", [], 0)


async def test_discard_refuses_unclear_requests_and_changes_nothing(start_hub, make_peer, clock) -> None:
    net, _s1, _s2 = await _two_receivers_with_dead_letters(start_hub, make_peer, clock)
    for bad, says in (
        ({"all": True}, "'reason' is required"),
        ({"reason": "  ", "all": True}, "'reason' is required"),
        ({"reason": 7, "all": True}, "'reason' is required"),
        ({"reason": "x" * 501, "all": True}, "at most 500"),
        ({"reason": "two\nlines", "all": True}, "printable"),
        ({"reason": "no selection"}, "choose what to discard"),
        ({"reason": "no selection", "all": False}, "choose what to discard"),
        ({"reason": "r", "all": "yes"}, "'all' must be true or false"),
        ({"reason": "r", "ids": "7"}, "'ids'"),
        ({"reason": "r", "platform_id": "x"}, "platform_id"),
        (["reason"], "JSON object"),
    ):
        status, body = await net.hub.admin("POST", "/admin/deadletters/discard", bad)
        assert (status, body["status_code"]) == (400, 2001), (bad, body)
        assert says in body["status_message"], (bad, body)
    status, body = await net.hub.admin("GET", "/admin/deadletters?state=gone")
    assert (status, body["status_code"]) == (400, 2001)
    assert len(await _dead(net)) == 4 and await _dead(net, state="discarded") == []
    reason = {"reason": "all of them", "all": True}
    assert await net.hub.admin("POST", "/admin/deadletters/discard", reason) == (200, {"discarded": 4})


async def test_cli_discards_and_lists_what_was_discarded(start_hub, make_peer, clock, monkeypatch, capsys) -> None:
    net, _s1, _s2 = await _two_receivers_with_dead_letters(start_hub, make_peer, clock)
    monkeypatch.setenv("HUB_HOST", "127.0.0.1")
    monkeypatch.setenv("HUB_PORT", str(net.hub.settings.port))
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "admin-secret-token")
    pid2 = await net.platform_id(net.emsp2)
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["discard", "--platform", str(pid2)]) == 2
    assert "--reason" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["discard", "--reason", "offboarding EMSP2"]) == 2
    assert "choose what to discard" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["discard", "--reason", "offboarding EMSP2", "--platform", str(pid2)]) == 0
    assert capsys.readouterr().out == "discarded: 2 dead letter(s)\n"
    assert await asyncio.to_thread(main, ["discard", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.count("discarded: offboarding EMSP2") == 2 and "2 discarded message(s)" in out
    assert await asyncio.to_thread(main, ["discard", "--reason", "the rest", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"discarded": 2}
    assert await asyncio.to_thread(main, ["discard", "--reason", "again", "--all"]) == 3
    assert capsys.readouterr().err == "ocpi-hub: no dead letters matched the selection\n"
    assert await asyncio.to_thread(main, ["redrive", "--list"]) == 3


async def test_a_push_the_receiver_refuses_is_listed_as_rejected_with_its_status(start_hub, make_peer, clock) -> None:
    # An OCPI error is the receiver's final word (2001: invalid or missing parameters): never
    # retried, kept, and listed for the operator with the codes it came with.
    net = await delivery_net(start_hub, make_peer, **NO_OFFLINE)
    net.emsp1.module_responder = answers(status_code=2001, message="unknown location")
    status, body, _ = await put_session(net, "r1", 1, X_Correlation_ID="corr-rejected")
    assert status == 200 and body["status_code"] == 2001, body  # relayed as the receiver said it
    await tick(net.hub, clock, 600, 60)
    assert len(sessions_to(net.emsp1)) == 1  # a final answer: never sent again
    (row,) = await _dead(net, state="rejected")
    assert row["state"] == "rejected" and row["last_ocpi_status"] == 2001 and row["last_http_status"] == 200
    assert row["correlation_id"] == "corr-rejected" and row["url"].endswith("/sessions/receiver/BE/BEC/r1")
    assert await _dead(net) == [] and await _dead(net, state="discarded") == []
    status, refused = await net.hub.admin("GET", "/admin/deadletters?state=delivered")
    assert status == 400 and "'rejected'" in refused["status_message"], refused
