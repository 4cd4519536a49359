"""The console in a real headless Chromium (Playwright driving Debian's ``chromium`` package).

One browser for the module, a fresh context (cookies) per test, one hub with a CPO and an
eMSP for the module. No sleeps: Playwright's waiting assertions, each bounded. Screenshots go
to ``HUB_SCREENSHOTS`` (``make screenshots`` sets docs/screenshots) or a temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.fakes import envelope
from tests.support.hub import ADMIN
from tests.support.live_hub import LiveHub
from tests.support.ops import push_session
from tests.support.waiting import until

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "chromium not found: the console's browser tests need it. Install it with "
    "`apt-get install chromium` (Debian/Ubuntu; .ci/run does this) or set HUB_CHROMIUM=/path/to/chromium."
)
EVIL = "<img src=x onerror=alert(1)>"
WAIT = 10_000  # ms: the bound of every waiting assertion

expect.set_options(timeout=WAIT)


def chromium_path() -> str | None:
    """HUB_CHROMIUM, else chromium on PATH."""
    return os.environ.get("HUB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """Chromium's path; without one: skip with the install hint, or fail under CI=true."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)  # CI must run these tests, never skip them
        pytest.skip(INSTALL_HINT)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # One browser for every test here (the only module that drives one). Module scope, not
    # session: while Playwright's sync API is alive its loop counts as running in this thread,
    # which would break the asyncio tests that pytest runs after this module.
    path = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class Net:
    """The live hub with its CPO (BE*BEC) and eMSP (NL*EXA)."""

    def __init__(self, live: LiveHub, cpo: Any, emsp: Any) -> None:
        self.live, self.cpo, self.emsp = live, cpo, emsp
        self.emsp_down = False

    async def emsp_answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        if self.emsp_down:
            return web.json_response(envelope(status_code=3000, message="down for the test"), status=503)
        return web.json_response(envelope())


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    # One attempt, then dead: a failed push becomes a dead letter at once (no clock to move).
    live = LiveHub(
        tmp_path_factory.mktemp("console"),
        delivery={"max_attempts": 1, "offline_after_failures": 1000, "relay_wait": 2.0},
    ).start()

    try:
        cpo, emsp = live.run(live.pair())
        result = Net(live, cpo, emsp)
        emsp.module_responder = result.emsp_answer
        yield result
    finally:
        live.stop()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("HUB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser: Browser, net: Net) -> Iterator[Page]:
    context = browser.new_context(base_url=net.live.base, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs  # type: ignore[attr-defined]
    yield tab
    context.close()


def login(page: Page, token: str = ADMIN, name: str = "") -> None:
    page.goto("/console/login")
    page.get_by_label("Operator").fill(name)
    page.get_by_label("Password or admin token").fill(token)
    page.get_by_role("button", name="Log in").click()


def shot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_wrong_token_is_refused(page: Page, shots: Path) -> None:
    login(page, "not-the-admin-token")
    expect(page.get_by_role("alert")).to_have_text("Wrong admin token.")
    expect(page).to_have_url("/console/login")
    shot(page, shots, "login")
    page.goto("/console/platforms")
    expect(page).to_have_url("/console/login")  # still no session


def test_login_overview_and_both_platforms(page: Page, net: Net, shots: Path) -> None:
    login(page)
    expect(page).to_have_url("/console/")
    expect(page.locator("#hub-status")).to_have_text("ok")
    expect(page.get_by_role("heading", name="Platforms")).to_be_visible()
    page.get_by_role("link", name="Platforms", exact=True).first.click()
    rows = page.locator("tr.platform-row")
    expect(rows.filter(has_text="NL*EXA EMSP")).to_contain_text("CONNECTED")
    expect(rows.filter(has_text="BE*BEC CPO")).to_contain_text("CONNECTED")
    shot(page, shots, "platforms")
    rows.filter(has_text="NL*EXA EMSP").get_by_role("link").click()
    expect(page.locator("table.endpoints")).to_contain_text("sessions")
    shot(page, shots, "platform")


def test_invitation_token_a_registers_a_new_partner(page: Page, net: Net, shots: Path) -> None:
    login(page)
    page.goto("/console/invitations")
    page.get_by_label("Partner name").fill("Browser Partner")
    page.get_by_role("button", name="Create invitation").click()
    token_a = page.locator("#token-a").inner_text()
    versions_url = page.locator("#versions-url").inner_text()
    assert versions_url == net.live.settings.versions_url and len(token_a) > 20
    expect(page.locator("button.copy")).to_have_count(2)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator("button.copy[data-copy='token-a']")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token_a
    shot(page, shots, "invitation")

    async def register() -> None:
        partner = await net.live.peer(("DE", "BRW", "EMSP"), name="Browser Partner")
        await partner.register_with(versions_url, token_a)

    net.live.run(register())
    page.goto("/console/platforms")
    row = page.locator("tr.platform-row").filter(has_text="DE*BRW EMSP")
    expect(row).to_contain_text("Browser Partner")
    expect(row).to_contain_text("CONNECTED")


def test_find_a_routed_message_by_correlation_id(page: Page, net: Net, shots: Path) -> None:
    assert net.live.hub is not None
    net.live.run(push_session(net.live.hub, net.cpo, "BROWSER-1", correlation_id="browser-corr-1"))
    login(page)
    page.goto("/console/traffic")
    page.get_by_label("Correlation id").fill("browser-corr-1")
    page.get_by_role("button", name="Search").click()
    message = page.locator("table.legs")
    expect(page.locator("table")).to_have_count(1)  # one table, not one per message
    expect(message.locator("tr.leg")).to_have_count(2)
    expect(message.locator("tr.dir-in")).to_contain_text("/ocpi/2.2.1/sessions/receiver/BE/BEC/BROWSER-1")
    expect(message.locator("tr.dir-out")).to_contain_text("200")
    expect(message.locator("tr.dir-out")).to_contain_text("BE*BEC → NL*EXA")
    shot(page, shots, "traffic")
    with page.expect_download() as download:
        page.locator("#csv").click()
    text = Path(download.value.path()).read_text()
    assert text.count("browser-corr-1") == 2 and text.startswith("id,ts,direction")


async def dead_letter(hub: Any, correlation_id: str) -> None:
    """Wait (bounded) until the admin API lists a dead letter with this correlation id."""
    _, letters = await until(
        lambda: hub.admin("GET", "/admin/deadletters"),
        lambda answer: any(m["correlation_id"] == correlation_id for m in answer[1]),
    )
    assert any(m["correlation_id"] == correlation_id for m in letters), f"no dead letter {correlation_id}"


def test_redrive_a_dead_letter_and_see_it_delivered(page: Page, net: Net, shots: Path) -> None:
    assert net.live.hub is not None
    net.emsp_down = True
    try:
        net.live.run(push_session(net.live.hub, net.cpo, "DEAD-1", correlation_id="browser-dead-1"))
        net.live.run(dead_letter(net.live.hub, "browser-dead-1"))
    finally:
        net.emsp_down = False  # the receiver is back; the letter stays dead until re-driven
    login(page)
    page.goto("/console/deadletters")
    row = page.locator("tr.letter").filter(has_text="browser-dead-1")
    expect(row).to_contain_text("503")
    shot(page, shots, "deadletters")
    row.get_by_role("button", name="Re-drive").click()
    expect(page.locator(".flash.ok")).to_have_text("1 dead letter(s) back in the queue.")
    expect(page.locator("tr.letter").filter(has_text="browser-dead-1")).to_have_count(0)
    # The traffic page updates by itself (polling): the delivered leg appears without a reload.
    page.goto("/console/traffic?correlation_id=browser-dead-1")
    page.evaluate("window.__notReloaded = true")
    delivered = page.locator("tr.dir-out").filter(has_text="200")
    expect(delivered).to_have_count(1)
    assert page.evaluate("window.__notReloaded") is True


def test_overview_updates_itself(page: Page, net: Net, shots: Path) -> None:
    assert net.live.hub is not None
    login(page)
    page.evaluate("window.__notReloaded = true")
    live = page.locator("#live")
    expect(live).to_have_attribute("data-updated", re.compile(r"^\d+$"))
    shot(page, shots, "overview")
    assert page.evaluate("window.__notReloaded") is True


def test_suspend_and_resume_with_a_confirm_step(page: Page, net: Net) -> None:
    login(page)
    page.goto("/console/platforms")
    page.locator("tr.platform-row").filter(has_text="BE*BEC CPO").get_by_role("link").click()
    page.get_by_role("link", name="Suspend…").click()
    expect(page.get_by_role("heading")).to_contain_text("Suspend platform")
    page.get_by_role("button", name="Yes, suspend").click()
    expect(page.locator(".flash.ok")).to_have_text("Suspend: done.")
    expect(page.locator("h1 .badge")).to_have_text("SUSPENDED")
    page.get_by_role("link", name="Resume…").click()
    page.get_by_role("button", name="Yes, resume").click()
    expect(page.locator("h1 .badge")).to_have_text("CONNECTED")


def test_a_partner_named_like_html_shows_as_text(page: Page, net: Net) -> None:
    async def evil() -> int:
        assert net.live.hub is not None
        partner = await net.live.peer(("FR", "EVL", "CPO"), name=EVIL)
        status, body = await net.live.hub.admin("POST", "/admin/invitations", {"name": EVIL})
        assert status == 201
        await partner.register_with(net.live.hub.versions_url, body["token_a"])
        await net.live.hub.invite(EVIL)  # a second one, left unused: listed on the invitations page
        return int(body["platform_id"])

    platform_id = net.live.run(evil())
    login(page)
    for path in ("/console/platforms", f"/console/platforms/{platform_id}", "/console/invitations"):
        page.goto(path)
        expect(page.get_by_text(EVIL).first).to_be_visible()
    page.goto(f"/console/platforms/{platform_id}")
    expect(page.locator("#platform-name")).to_have_text(EVIL)
    expect(page.locator("main img")).to_have_count(0)
    assert page.dialogs == []  # type: ignore[attr-defined]


PHONE = {"width": 390, "height": 844}


def test_every_page_fits_a_390_px_phone(browser: Browser, net: Net, shots: Path) -> None:
    assert net.live.hub is not None
    net.live.run(push_session(net.live.hub, net.cpo, "PHONE-1", correlation_id="browser-phone-1"))
    context = browser.new_context(base_url=net.live.base, viewport=PHONE)
    context.set_default_timeout(WAIT)
    try:
        phone = context.new_page()
        login(phone)
        expect(phone).to_have_url("/console/")
        pages = ["/console/", "/console/platforms", "/console/platforms/1", "/console/invitations"]
        pages += ["/console/traffic", "/console/traffic?kind=all", "/console/deadletters"]
        for path in pages:
            phone.goto(path)
            expect(phone.locator("main h1")).to_be_visible()
            width, viewport = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width <= viewport, (path, width, viewport)
            # Every navigation link is on screen (the header wraps instead of running off the right).
            for link in phone.locator("header nav a").all():
                box = link.bounding_box()
                assert box is not None and box["x"] + box["width"] <= viewport, (path, box)
        phone.goto("/console/traffic")
        shot(phone, shots, "traffic-phone")
        phone.goto("/console/")
        shot(phone, shots, "overview-phone")
    finally:
        context.close()


def test_charts_are_readable_with_axes(page: Page, net: Net) -> None:
    login(page)
    chart = page.locator("figure.chart svg").first
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["height"] >= 120  # it was 64 px
    expect(page.locator("figure.chart").first.locator("text.tick.time")).to_have_count(6)
    expect(page.locator("figure.chart").first.locator("text.unit")).to_have_text("requests / min")


def test_chart_labels_stay_readable_on_a_phone(browser: Browser, net: Net) -> None:
    context = browser.new_context(base_url=net.live.base, viewport=PHONE)
    context.set_default_timeout(WAIT)
    try:
        phone = context.new_page()
        login(phone)
        label = phone.locator("figure.chart").first.locator("text.tick.time").first
        expect(label).to_be_visible()
        box = label.bounding_box()
        assert box is not None and box["height"] >= 8  # px on screen (was about 6 at half scale)
    finally:
        context.close()
