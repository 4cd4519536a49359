"""Operator roles in a real headless Chromium: a read-only operator looks, an admin operator acts.

Its own hub (a CPO and an eMSP) and its own browser for the module, like tests/test_console_browser.py
(whose helpers it uses). No sleeps: Playwright's waiting assertions, each bounded.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.live_hub import LiveHub
from tests.test_console_browser import WAIT, browser, login, shot, shots

__all__ = ["browser", "shots"]  # module fixtures used from tests/test_console_browser.py

READER = ("rita", "rita-reads-only-1")
ADMIN_OPERATOR = ("otto", "otto-acts-too-12")


class Net:
    """The live hub with its CPO and eMSP and two operators."""

    def __init__(self, live: LiveHub) -> None:
        self.live = live


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    live = LiveHub(tmp_path_factory.mktemp("operators")).start()

    async def setup() -> None:
        await live.pair()
        await live.operators(READER, ADMIN_OPERATOR)

    try:
        live.run(setup())
        yield Net(live)
    finally:
        live.stop()


@pytest.fixture
def page(browser: Browser, net: Net) -> Iterator[Page]:
    context = browser.new_context(base_url=net.live.base, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT)
    yield context.new_page()
    context.close()


def _status(net: Net, platform_id: int) -> str:
    assert net.live.hub is not None
    _, body = net.live.run(net.live.hub.admin("GET", f"/admin/platforms/{platform_id}"))
    return str(body["status"])


def test_read_only_operator_sees_no_action_and_is_refused(page: Page, net: Net, shots: Path) -> None:
    login(page, READER[1], name=READER[0])
    expect(page).to_have_url("/console/")
    expect(page.locator("#whoami")).to_have_text("rita · read-only")
    page.goto("/console/platforms/1")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("section.actions a.button")).to_have_count(0)
    expect(page.get_by_role("link", name="Suspend…")).to_have_count(0)
    shot(page, shots, "platform-read-only")
    for path in ("/console/invitations", "/console/deadletters", "/console/platforms/2"):
        page.goto(path)
        # The only form that posts is the logout in the header.
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.get_by_role("button", name="Create invitation")).to_have_count(0)
    # A POST made by hand from the operator's own page (with its CSRF token) is a 403.
    answer = page.evaluate(
        """async () => {
            const csrf = document.querySelector("header input[name=csrf]").value;
            const r = await fetch("/console/platforms/1/suspend", {method: "POST", body: new URLSearchParams({csrf})});
            return [r.status, await r.text()];
        }"""
    )
    assert answer[0] == 403 and "read-only" in answer[1]
    answer = page.request.post("/console/invitations", form={"csrf": "x", "name": "n"})
    assert answer.status == 403
    assert _status(net, 1) == "CONNECTED"
    # The admin API says the same to the same operator.
    token = base64.b64encode(f"{READER[0]}:{READER[1]}".encode()).decode()
    api = page.request.post("/admin/platforms/1/suspend", headers={"Authorization": f"Basic {token}"})
    assert api.status == 403
    assert page.request.get("/admin/platforms", headers={"Authorization": f"Basic {token}"}).status == 200
    # The audit log (readable by a read-only operator) lists the refusals under its name.
    page.goto("/console/audit?actor=rita")
    refused = page.locator("tr.audit-entry").filter(has_text="refused: read-only operator")
    expect(refused).to_have_count(2)
    expect(refused.filter(has_text="platform.suspend")).to_have_count(1)  # the console's post
    expect(refused.filter(has_text="POST /admin/platforms/{id}/suspend")).to_have_count(1)  # the admin API's


def test_admin_operator_acts_and_the_audit_log_shows_it(page: Page, net: Net, shots: Path) -> None:
    login(page, ADMIN_OPERATOR[1], name=ADMIN_OPERATOR[0])
    expect(page.locator("#whoami")).to_have_text("otto · admin")
    page.goto("/console/platforms/2")
    page.get_by_role("link", name="Suspend…").click()
    page.get_by_role("button", name="Yes, suspend").click()
    expect(page.locator(".flash.ok")).to_have_text("Suspend: done.")
    expect(page.locator("h1 .badge")).to_have_text("SUSPENDED")
    page.get_by_role("link", name="Resume…").click()
    page.get_by_role("button", name="Yes, resume").click()
    expect(page.locator("h1 .badge")).to_have_text("CONNECTED")
    page.goto("/console/invitations")
    page.get_by_label("Partner name").fill("Audited Partner")
    page.get_by_role("button", name="Create invitation").click()
    expect(page.locator("#token-a")).to_be_visible()
    page.get_by_role("link", name="Audit").click()
    entries = page.locator("tr.audit-entry")
    expect(entries.first).to_contain_text("otto")
    expect(entries.first).to_contain_text("invitation.create")
    mine = entries.filter(has_text="otto")
    for action in ("invitation.create", "platform.resume", "platform.suspend", "console.login"):
        expect(mine.filter(has_text=action)).to_have_count(1)
    expect(mine.filter(has_text="platform.suspend")).to_contain_text("platform 2")
    shot(page, shots, "audit")
    assert _status(net, 2) == "CONNECTED"


def test_a_wrong_operator_password_is_refused(page: Page, net: Net) -> None:
    login(page, "not-" + ADMIN_OPERATOR[1], name=ADMIN_OPERATOR[0])
    expect(page.get_by_role("alert")).to_have_text("Wrong operator name or password.")
    expect(page.get_by_label("Operator")).to_have_value(ADMIN_OPERATOR[0])
    page.goto("/console/")
    expect(page).to_have_url("/console/login")
