"""Agreements and dead-letter discards in a real headless Chromium, as an admin and a read-only operator.

Its own hub (a CPO and an eMSP, an eMSP that can be made to fail) and its own browser for the
module, like tests/test_console_browser_operators.py. No sleeps: Playwright's waiting assertions
and the bounded wait for a dead letter of tests/test_console_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect

from tests.support.fakes import FakePlatform, envelope
from tests.support.live_hub import LiveHub
from tests.support.ops import push_session
from tests.test_console_browser import PHONE, WAIT, browser, dead_letter, login, shot, shots

__all__ = ["browser", "shots"]  # module fixtures used from tests/test_console_browser.py

READER = ("rosa", "rosa-reads-only-1")
ADMIN_OPERATOR = ("olga", "olga-acts-too-12")


class Net:
    """The live hub with its CPO (BE*BEC, platform 1), eMSP (NL*EXA, platform 2) and two operators."""

    def __init__(self, live: LiveHub, cpo: Any, emsp: Any) -> None:
        self.live, self.cpo, self.emsp = live, cpo, emsp
        self.emsp_down = False

    async def emsp_answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        if self.emsp_down:
            return web.json_response(envelope(status_code=3000, message="down for the test"), status=503)
        return web.json_response(envelope())

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        assert self.live.hub is not None
        status, answer = self.live.run(self.live.hub.admin(method, path, body))
        assert status < 300, answer
        return answer


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    # One attempt, then dead: a failed push becomes a dead letter at once.
    live = LiveHub(
        tmp_path_factory.mktemp("agreements"),
        delivery={"max_attempts": 1, "offline_after_failures": 1000, "relay_wait": 2.0},
    ).start()

    async def setup() -> tuple[FakePlatform, FakePlatform]:
        cpo, emsp = await live.pair()
        await live.operators(READER, ADMIN_OPERATOR)
        return cpo, emsp

    try:
        cpo, emsp = live.run(setup())
        result = Net(live, cpo, emsp)
        emsp.module_responder = result.emsp_answer
        yield result
    finally:
        live.stop()


@pytest.fixture
def page(browser: Browser, net: Net) -> Iterator[Page]:
    context = browser.new_context(base_url=net.live.base, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT)
    yield context.new_page()
    context.close()


def test_admin_operator_creates_sees_in_the_matrix_and_suspends(page: Page, net: Net, shots: Path) -> None:
    login(page, ADMIN_OPERATOR[1], name=ADMIN_OPERATOR[0])
    page.get_by_role("link", name="Agreements").click()
    expect(page.locator("main h1")).to_have_text("Roaming agreements")
    form = page.locator("#create-agreement")
    form.get_by_label("Party A").select_option("BE*BEC*CPO")
    form.get_by_label("Party B").select_option("NL*EXA*EMSP")
    form.get_by_label("sessions").check()
    form.get_by_label("cdrs").check()
    form.get_by_label("Valid from (UTC)").fill("2020-01-01T00:00")
    form.get_by_label("Reference").fill("Contract 2026-17")
    form.get_by_role("button", name="Create agreement").click()
    expect(page.locator(".flash.ok")).to_have_text("Agreement 1 created.")
    row = page.locator("tr.agreement#agreement-1")
    expect(row).to_contain_text("Contract 2026-17")
    expect(row.locator("td.force")).to_have_text("yes")
    shot(page, shots, "agreements")
    page.locator("#matrix-link").click()
    cell = page.locator('td.cell[data-row="BE*BEC"][data-col="NL*EXA"] a.ag')
    expect(cell).to_have_text("active · cdrs, sessions · in force")
    expect(cell).to_have_class("ag in-force")
    shot(page, shots, "agreements-matrix")
    # From the eMSP's platform page: its section and its filtered matrix.
    page.goto("/console/platforms/2")
    expect(page.locator("h2#agreements")).to_have_text("Agreements (1)")
    page.locator("#platform-matrix").click()
    expect(page.locator('td.cell[data-row="NL*EXA"][data-col="BE*BEC"] a.ag')).to_contain_text("in force")
    page.goto("/console/agreements")
    page.locator("#agreement-1").get_by_role("link", name="Suspend…").click()
    page.get_by_role("button", name="Yes, suspend").click()
    expect(page.locator(".flash.ok")).to_have_text("Agreement 1: suspend done.")
    expect(page.locator("#agreement-1 td.state")).to_have_text("suspended")
    page.locator("#matrix-link").click()
    expect(cell).to_have_text("suspended · cdrs, sessions · not in force")
    assert net.admin("GET", "/admin/agreements/1")["state"] == "suspended"
    page.goto("/console/audit?actor=olga")
    entries = page.locator("tr.audit-entry")
    expect(entries.filter(has_text="agreement.create")).to_have_count(1)
    expect(entries.filter(has_text="agreement.suspend")).to_contain_text("agreement 1")


def test_read_only_operator_sees_no_controls_and_a_forged_post_is_refused(page: Page, net: Net) -> None:
    net.admin(
        "POST",
        "/admin/agreements",
        {
            "parties": [
                {"country_code": "BE", "party_id": "BEC", "role": "CPO"},
                {"country_code": "DE", "party_id": "RDO", "role": "EMSP"},
            ]
        },
    )
    before = net.admin("GET", "/admin/agreements")
    login(page, READER[1], name=READER[0])
    expect(page.locator("#whoami")).to_have_text("rosa · read-only")
    for path in ("/console/agreements", "/console/agreements/matrix", "/console/platforms/1", "/console/deadletters"):
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.get_by_role("button", name="Create agreement")).to_have_count(0)
        expect(page.locator("main a.button")).to_have_count(0)
    page.goto("/console/agreements")
    expect(page.locator("tr.agreement")).to_have_count(len(before))
    number = before[-1]["id"]
    answer = page.evaluate(
        """async (number) => {
            const csrf = document.querySelector("header input[name=csrf]").value;
            const body = new URLSearchParams({csrf});
            const r = await fetch(`/console/agreements/${number}/delete`, {method: "POST", body});
            return [r.status, await r.text()];
        }""",
        number,
    )
    assert answer[0] == 403 and "read-only" in answer[1]
    assert net.admin("GET", "/admin/agreements") == before


def test_discard_with_a_reason_from_the_dead_letters_page(page: Page, net: Net, shots: Path) -> None:
    assert net.live.hub is not None
    net.emsp_down = True
    try:
        for n in (1, 2):
            net.live.run(push_session(net.live.hub, net.cpo, f"GONE-{n}", correlation_id=f"browser-gone-{n}"))
            net.live.run(dead_letter(net.live.hub, f"browser-gone-{n}"))
    finally:
        net.emsp_down = False
    login(page)
    page.goto("/console/deadletters")
    row = page.locator("tr.letter").filter(has_text="browser-gone-1")
    # No reason: the browser will not send the form (the field is required), nothing is discarded.
    row.get_by_role("button", name="Discard").click()
    expect(page.locator("tr.letter").filter(has_text="browser-gone-1")).to_have_count(1)
    assert page.locator("#discard-reason").evaluate("e => e.validity.valueMissing") is True
    page.get_by_label("Reason to discard").fill("duplicate of session GONE-2")
    row.get_by_role("button", name="Discard").click()
    expect(page.locator(".flash.ok")).to_have_text("1 dead letter(s) discarded.")
    expect(page.locator("tr.letter").filter(has_text="browser-gone-1")).to_have_count(0)
    expect(page.locator("tr.letter").filter(has_text="browser-gone-2")).to_have_count(1)
    gone = page.locator("tr.discarded-letter")
    expect(gone).to_have_count(1)
    expect(gone.locator("td.reason")).to_have_text("duplicate of session GONE-2")
    shot(page, shots, "deadletters-discarded")
    discarded = net.admin("GET", "/admin/deadletters?state=discarded")
    assert [m["discard_reason"] for m in discarded] == ["duplicate of session GONE-2"]
    # Re-drive needs no reason (the field does not stop it).
    page.locator("tr.letter").filter(has_text="browser-gone-2").get_by_role("button", name="Re-drive").click()
    expect(page.locator(".flash.ok")).to_have_text("1 dead letter(s) back in the queue.")


def test_csv_upload_lists_each_bad_row_then_imports_a_good_file(page: Page, net: Net) -> None:
    header = "country_code_a,party_id_a,role_a,country_code_b,party_id_b,role_b,modules\n"
    good = "NL,EXA,EMSP,IT,CSV,CPO,locations;tariffs\n"
    before = len(net.admin("GET", "/admin/agreements"))
    login(page, ADMIN_OPERATOR[1], name=ADMIN_OPERATOR[0])
    page.goto("/console/agreements")
    upload = page.locator("#import-agreements")
    bad = header + good + "NL,EXA,EMSP,IT,TOOLONG,CPO,\n"
    upload.get_by_label("CSV file").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad.encode()}]
    )
    upload.get_by_role("button", name="Import").click()
    expect(page.locator("#form-error")).to_contain_text("1 bad row(s); nothing was imported")
    expect(page.locator("#row-errors li")).to_have_text(
        ["row 3: party_id_b must be three letters or digits (CiString(3))"]
    )
    assert len(net.admin("GET", "/admin/agreements")) == before
    files = [{"name": "good.csv", "mimeType": "text/csv", "buffer": (header + good).encode()}]
    page.locator("#import-agreements").get_by_label("CSV file").set_input_files(files=files)
    page.locator("#import-agreements").get_by_role("button", name="Import").click()
    expect(page.locator(".flash.ok")).to_have_text("1 agreement(s) imported.")
    expect(page.locator("tr.agreement").filter(has_text="IT*CSV CPO")).to_contain_text("locations, tariffs")
    assert len(net.admin("GET", "/admin/agreements")) == before + 1


def test_agreement_pages_fit_a_390_px_phone(browser: Browser, net: Net) -> None:
    sides = [
        {"country_code": "BE", "party_id": "BEC", "role": "CPO"},
        {"country_code": "FR", "party_id": "PHO", "role": "EMSP"},
    ]
    number = net.admin("POST", "/admin/agreements", {"parties": sides, "reference": "a long reference " * 8})["id"]
    context = browser.new_context(base_url=net.live.base, viewport=PHONE)
    context.set_default_timeout(WAIT)
    try:
        phone = context.new_page()
        login(phone)
        expect(phone).to_have_url("/console/")
        pages = ["/console/agreements", "/console/agreements/matrix", "/console/agreements/matrix?platform_id=1"]
        pages += ["/console/platforms/1", "/console/deadletters", f"/console/agreements/{number}/delete"]
        for path in pages:
            answer = phone.goto(path)
            assert answer is not None and answer.status == 200, path
            expect(phone.locator("main h1")).to_be_visible()
            width, viewport = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width <= viewport, (path, width, viewport)
            for link in phone.locator("header nav a").all():
                box = link.bounding_box()
                assert box is not None and box["x"] + box["width"] <= viewport, (path, box)
    finally:
        context.close()
