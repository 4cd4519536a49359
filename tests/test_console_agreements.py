"""Console pages for roaming agreements and dead-letter discards, without a browser.

Each change made here must be the admin API's change (GET /admin/agreements sees it) and an
audit-log entry under the operator; a read-only operator sees no control and gets a 403.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.console import Console
from tests.support.fakes import envelope
from tests.support.ops import pair, push_session
from tests.support.waiting import settle

CSV_OK = "country_code_a,party_id_a,role_a,country_code_b,party_id_b,role_b,modules\nBE,BEC,CPO,DE,XYZ,EMSP,sessions\n"


async def _logged_in(hub: Any) -> Console:
    c = Console(hub.base)
    assert await c.login() == 303
    return c


async def _audit(hub: Any) -> list[dict[str, Any]]:
    status, body = await hub.admin("GET", "/admin/audit")
    assert status == 200, body
    return list(body)


def _create_form(c: Console, **extra: Any) -> dict[str, Any]:
    return {"csrf": c.csrf, "party_a": "BE*BEC*CPO", "party_b": "NL*EXA*EMSP", "reference": "contract 7", **extra}


async def test_create_list_matrix_suspend_resume_delete(hub: Any, make_peer: Any) -> None:
    await pair(hub, make_peer)
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/agreements")
        assert status == 200 and "No agreements." in text and 'value="BE*BEC*CPO"' in text
        assert 'href="/console/agreements" class="current"' in text  # in the header nav
        form = aiohttp.FormData(_create_form(c, valid_from="2020-01-01T00:00"))
        form.add_field("modules", "sessions")
        form.add_field("modules", "cdrs")
        status, _, headers = await c.post("/console/agreements", form)
        assert status == 303, headers
        _, listed = await hub.admin("GET", "/admin/agreements")
        assert len(listed) == 1 and listed[0]["modules"] == ["cdrs", "sessions"]
        assert listed[0]["valid_from"] == "2020-01-01T00:00:00.000Z" and listed[0]["reference"] == "contract 7"
        number = listed[0]["id"]
        status, text, _ = await c.get("/console/agreements")
        assert f"Agreement {number} created." in text and f'id="agreement-{number}"' in text
        assert f'href="/console/agreements/{number}/suspend"' in text
        # The matrix: BE*BEC's row, NL*EXA's column (and the other way round), in force.
        status, text, _ = await c.get("/console/agreements/matrix")
        assert status == 200
        cell = re.search(r'data-row="BE\*BEC" data-col="NL\*EXA">(.*?)</td>', text, re.S)
        assert cell and "active · cdrs, sessions · in force" in cell.group(1)
        # The same pair again: the admin API's conflict, on the form, nothing added.
        status, text, _ = await c.post("/console/agreements", _create_form(c))
        assert status == 409 and "exists already" in text and 'id="form-error"' in text
        # A bad window: the admin API's message, the form keeps what was typed.
        bad = _create_form(c, party_b="NL*EXA*EMSP", valid_from="2027-01-02T00:00", valid_to="2027-01-01T00:00")
        status, text, _ = await c.post("/console/agreements", bad)
        assert status == 400 and "valid_to must be later than valid_from" in text and 'value="contract 7"' in text
        # Suspend: a confirm page, then the post.
        status, text, _ = await c.get(f"/console/agreements/{number}/suspend")
        assert status == 200 and "Yes, suspend" in text
        status, _, _ = await c.post(f"/console/agreements/{number}/suspend", {"csrf": c.csrf})
        assert status == 303
        _, got = await hub.admin("GET", f"/admin/agreements/{number}")
        assert got["state"] == "suspended" and got["in_force"] is False
        status, text, _ = await c.get("/console/agreements/matrix?state=suspended")
        assert "suspended · cdrs, sessions · not in force" in text
        status, _, _ = await c.post(f"/console/agreements/{number}/suspend", {"csrf": c.csrf})
        assert status == 409  # suspended already
        status, _, _ = await c.post(f"/console/agreements/{number}/resume", {"csrf": c.csrf})
        assert status == 303
        _, got = await hub.admin("GET", f"/admin/agreements/{number}")
        assert got["state"] == "active"
        # The platform pages list it, with a link to their matrix.
        status, text, _ = await c.get("/console/platforms/2")
        assert "Agreements (1)" in text and 'href="/console/agreements/matrix?platform_id=2"' in text
        status, text, _ = await c.get("/console/agreements/matrix?platform_id=2")
        assert status == 200 and 'data-row="NL*EXA" data-col="BE*BEC"' in text
        status, text, _ = await c.get("/console/agreements?party=de*xyz")
        assert "0 agreement(s)" in text
        status, _, _ = await c.post(f"/console/agreements/{number}/delete", {"csrf": c.csrf})
        assert status == 303
        _, listed = await hub.admin("GET", "/admin/agreements")
        assert listed == []
        actions = [e["action"] for e in await _audit(hub) if e["via"] == "console"]
        for action in ("agreement.create", "agreement.suspend", "agreement.resume", "agreement.delete"):
            assert action in actions, actions
    finally:
        await c.close()


async def test_csv_import_is_all_or_nothing_with_row_errors(hub: Any, make_peer: Any) -> None:
    await pair(hub, make_peer)
    c = await _logged_in(hub)
    try:
        bad = CSV_OK + "BE,BEC,CPO,FR,ABCD,EMSP,\nBE,BEC,CPO,NL,EXA,EMSP,nosuchmodule\n"
        form = aiohttp.FormData({"csrf": c.csrf})
        form.add_field("file", bad.encode(), filename="bad.csv", content_type="text/csv")
        status, text, _ = await c.post("/console/agreements/import", form)
        assert status == 400 and "2 bad row(s); nothing was imported" in text
        assert "row 3: party_id_b must be three letters" in text and "row 4: unknown module(s) nosuchmodule" in text
        _, listed = await hub.admin("GET", "/admin/agreements")
        assert listed == []
        form = aiohttp.FormData({"csrf": c.csrf})
        form.add_field("file", CSV_OK.encode(), filename="ok.csv", content_type="text/csv")
        status, _, _ = await c.post("/console/agreements/import", form)
        assert status == 303
        status, text, _ = await c.get("/console/agreements")
        assert "1 agreement(s) imported." in text and "DE*XYZ EMSP" in text
        entries = [e for e in await _audit(hub) if e["action"] == "agreement.import"]
        assert [e["outcome"].split(":")[0] for e in entries] == ["ok", "failed"]  # newest first
    finally:
        await c.close()


async def _down(request: web.Request, body: Any) -> web.StreamResponse:
    return web.json_response(envelope(status_code=3000, message="down"), status=503)


async def _dead_letters(hub: Any, clock: Any, count: int) -> list[Any]:
    letters: list[Any] = []
    for _ in range(100):  # the worker marks a letter dead after the push was answered, on its clock
        await settle(hub)
        _, letters = await hub.admin("GET", "/admin/deadletters")
        if len(letters) == count:
            return letters
        clock.advance(1)
    raise AssertionError(f"{len(letters)} dead letters, not {count}")


async def test_read_only_operator_sees_no_controls_and_is_refused(start_hub: Any, make_peer: Any, clock: Any) -> None:
    hub = await start_hub(delivery={"max_attempts": 1, "offline_after_failures": 1000})
    cpo, emsp = await pair(hub, make_peer)
    emsp.module_responder = _down
    await push_session(hub, cpo, "RO-1", correlation_id="read-only-1")
    await _dead_letters(hub, clock, 1)  # a dead letter for the eMSP (platform 2): its pages would offer actions
    status, body = await hub.admin(
        "POST", "/admin/operators", {"name": "rita", "role": "read-only", "password": "rita-reads-only-1"}
    )
    assert status == 201, body
    body = {
        "parties": [
            {"country_code": "BE", "party_id": "BEC", "role": "CPO"},
            {"country_code": "NL", "party_id": "EXA", "role": "EMSP"},
        ]
    }
    status, created = await hub.admin("POST", "/admin/agreements", body)
    assert status == 201, created
    c = Console(hub.base)
    assert await c.login("rita-reads-only-1", name="rita") == 303
    try:
        for path in (
            "/console/agreements",
            "/console/agreements/matrix",
            "/console/platforms/2",
            "/console/deadletters",
        ):
            status, text, _ = await c.get(path)
            assert status == 200, path
            main = text.split("<main>", 1)[1]
            assert not any(
                c in main for c in ("discard-one", "discard-reason", "redrive-one", "Suspend…", "Delete…")
            ), path
            assert 'method="post"' not in main and "Create agreement" not in main and "Suspend…" not in main, path
        status, _, _ = await c.get(f"/console/agreements/{created['id']}/suspend")
        assert status == 403
        for path, form in (
            ("/console/agreements", _create_form(c)),
            (f"/console/agreements/{created['id']}/delete", {"csrf": c.csrf}),
            ("/console/agreements/import", {"csrf": c.csrf}),
            ("/console/deadletters/discard", {"csrf": c.csrf, "scope": "platform", "platform_id": "1", "reason": "x"}),
        ):
            status, text, _ = await c.post(path, form)
            assert status == 403 and "read-only" in text, path
        _, listed = await hub.admin("GET", "/admin/agreements")
        assert len(listed) == 1 and listed[0]["state"] == "active"
        refused = {e["action"] for e in await _audit(hub) if e["outcome"] == "refused: read-only operator"}
        assert {"agreement.create", "agreement.delete", "agreement.import", "deadletters.discard"} <= refused
    finally:
        await c.close()


async def test_discard_needs_a_reason_and_lists_what_was_discarded(start_hub: Any, make_peer: Any, clock: Any) -> None:
    hub = await start_hub(delivery={"max_attempts": 1, "offline_after_failures": 1000})
    cpo, emsp = await pair(hub, make_peer)
    emsp.module_responder = _down
    for n in range(3):
        await push_session(hub, cpo, f"X-{n}", correlation_id=f"discard-{n}")
    letters = await _dead_letters(hub, clock, 3)
    c = await _logged_in(hub)
    try:
        status, text, _ = await c.get("/console/deadletters")
        assert status == 200 and text.count('class="discard-one') == 3 and 'id="discard-reason"' in text
        one = str(letters[0]["id"])
        status, _, _ = await c.post("/console/deadletters/discard", {"csrf": c.csrf, "one": one, "reason": "  "})
        assert status == 303
        status, text, _ = await c.get("/console/deadletters")
        assert "Nothing discarded: &#39;reason&#39; is required" in text and text.count('class="letter"') == 3
        status, _, _ = await c.post("/console/deadletters/discard", {"csrf": c.csrf, "one": one, "reason": "dup <b>"})
        status, text, _ = await c.get("/console/deadletters")
        assert "1 dead letter(s) discarded." in text and text.count('class="letter"') == 2
        assert text.count('class="discarded-letter"') == 1 and "dup &lt;b&gt;" in text
        # The platform page's section: all of that platform's, back to the platform page.
        pid = str(letters[0]["platform_id"])
        form = {"csrf": c.csrf, "scope": "platform", "platform_id": pid, "back_platform": pid, "reason": "gone"}
        status, _, headers = await c.post("/console/deadletters/discard", form)
        assert status == 303 and headers["Location"] == f"/console/platforms/{pid}"
        status, text, _ = await c.get(f"/console/platforms/{pid}")
        assert "2 dead letter(s) discarded." in text and "Dead letters (0)" in text
        _, gone = await hub.admin("GET", "/admin/deadletters?state=discarded")
        assert sorted(m["discard_reason"] for m in gone) == ["dup <b>", "gone", "gone"]
        entries = [e for e in await _audit(hub) if e["action"] == "deadletters.discard"]
        assert [e["outcome"] for e in entries] == ["ok: 2 discarded: gone", "ok: 1 discarded: dup <b>"]
    finally:
        await c.close()
