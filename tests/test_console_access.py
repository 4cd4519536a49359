"""The console's doors without a browser: sessions, CSRF, logout, expiry, headers, HTML errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.console.core import PUBLIC_ROUTES, ROOT
from tests.support.console import Console
from tests.support.hub import ADMIN, HubHandle

# Every console route that needs a session, with a sample path (platform 1 exists in these tests).
ROUTES: dict[str, tuple[str, str]] = {
    "bare": ("GET", "/console"),
    "overview": ("GET", "/console/"),
    "overview_live": ("GET", "/console/overview/live"),
    "platforms": ("GET", "/console/platforms"),
    "platform": ("GET", "/console/platforms/1"),
    "confirm": ("GET", "/console/platforms/1/suspend"),
    "act": ("POST", "/console/platforms/1/suspend"),
    "invitations": ("GET", "/console/invitations"),
    "invite": ("POST", "/console/invitations"),
    "revoke_invitation": ("POST", "/console/invitations/1/revoke"),
    "traffic": ("GET", "/console/traffic?correlation_id=x"),
    "traffic_live": ("GET", "/console/traffic/live"),
    "traffic_csv": ("GET", "/console/traffic.csv"),
    "deadletters": ("GET", "/console/deadletters"),
    "audit": ("GET", "/console/audit"),
    "redrive": ("POST", "/console/deadletters/redrive"),
    "discard": ("POST", "/console/deadletters/discard"),
    "agreements": ("GET", "/console/agreements"),
    "agreement_matrix": ("GET", "/console/agreements/matrix"),
    "agreement_confirm": ("GET", "/console/agreements/1/suspend"),
    "agreement_create": ("POST", "/console/agreements"),
    "agreement_import": ("POST", "/console/agreements/import"),
    "agreement_act": ("POST", "/console/agreements/1/suspend"),
    "logout": ("POST", "/console/logout"),
    "not_found": ("GET", "/console/no-such-page"),
}
FORM = {"name": "forged", "scope": "platform", "platform_id": "1", "one": "1", "reason": "forged"}


def _console_app(hub: HubHandle) -> Any:
    return next(r._app for r in hub.app.router.resources() if getattr(r, "_app", None) is not None)


@pytest.fixture
async def console(hub: HubHandle) -> AsyncIterator[Callable[[], Awaitable[Console]]]:
    made: list[Console] = []

    async def make() -> Console:
        c = Console(hub.base)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def test_the_route_table_covers_every_console_route(hub: HubHandle) -> None:
    app = _console_app(hub)
    assert app[ROOT] is hub.app
    names = {r.name for r in app.router.routes() if r.name}
    assert names - PUBLIC_ROUTES == set(ROUTES)


async def _refused(c: Console, method: str, path: str, form: dict[str, str] | None = None) -> None:
    if method == "GET":
        status, text, headers = await c.get(path)
        assert status == 303 and headers["Location"] == "/console/login", (path, status, text[:200])
        status, text, headers = await c.get(path, headers={"X-Console-Live": "1"})
        assert status == 401 and "text/html" in headers["Content-Type"], (path, status)
    else:
        status, text, headers = await c.post(path, form or FORM)
        assert status == 401 and "text/html" in headers["Content-Type"], (path, status, text[:200])
        assert "Log in first" in text


async def _state(hub: HubHandle) -> tuple[Any, Any, Any, Any]:
    _, platforms = await hub.admin("GET", "/admin/platforms")
    _, letters = await hub.admin("GET", "/admin/deadletters")
    _, discarded = await hub.admin("GET", "/admin/deadletters?state=discarded")
    _, agreements = await hub.admin("GET", "/admin/agreements")
    return platforms, letters, discarded, agreements


async def test_every_route_refuses_a_missing_wrong_or_logged_out_session(
    hub: HubHandle, console: Callable[[], Awaitable[Console]]
) -> None:
    await hub.invite("first")  # platform 1
    before = await _state(hub)
    anonymous = await console()
    for method, path in ROUTES.values():
        await _refused(anonymous, method, path)
    wrong = await console()
    wrong.session.cookie_jar.update_cookies({"hub_console": "not-a-session"}, aiohttp.client.URL(hub.base + "/console"))
    for method, path in ROUTES.values():
        await _refused(wrong, method, path)
    # Log in, keep the cookie, log out: the old cookie (and its CSRF token) opens nothing.
    c = await console()
    assert await c.login() == 303
    old_cookie, old_csrf = c.cookie(), c.csrf
    assert old_cookie
    status, _, headers = await c.post("/console/logout", {"csrf": c.csrf})
    assert status == 303 and headers["Location"] == "/console/login"
    replay = await console()
    replay.session.cookie_jar.update_cookies({"hub_console": old_cookie}, aiohttp.client.URL(hub.base + "/console"))
    for method, path in ROUTES.values():
        await _refused(replay, method, path, {**FORM, "csrf": old_csrf})
    assert await _state(hub) == before  # nothing was suspended, invited or re-driven


async def test_every_action_refuses_a_forged_or_missing_csrf_token(
    hub: HubHandle, console: Callable[[], Awaitable[Console]]
) -> None:
    await hub.invite("first")
    before = await _state(hub)
    c = await console()
    assert await c.login() == 303
    posts = [path for method, path in ROUTES.values() if method == "POST"]
    for path in posts:
        for forged in ({**FORM, "csrf": "forged"}, FORM, {**FORM, "csrf": c.csrf[:-1]}):
            status, text, _ = await c.post(path, forged)
            assert status == 403 and "CSRF" in text, (path, status)
    assert await _state(hub) == before
    status, _, _ = await c.get("/console/")
    assert status == 200  # the forged posts did not log the operator out either
    # The real token works: an action with it changes the hub (the invitation is revoked).
    status, _, _ = await c.post("/console/invitations/1/revoke", {"csrf": c.csrf})
    assert status == 303
    _, body = await hub.admin("GET", "/admin/invitations")
    assert body == []


async def test_wrong_token_and_forged_login_form_are_refused(
    hub: HubHandle, console: Callable[[], Awaitable[Console]]
) -> None:
    c = await console()
    assert await c.login("wrong-" + ADMIN) == 401
    assert c.cookie() is None
    assert await c.login("") in (400, 401)
    status, _, _ = await c.post("/console/login", {"token": ADMIN})  # no login-form token
    assert status == 403 and c.cookie() is None
    other = await console()
    status, _text, _ = await other.post("/console/login", {"token": ADMIN, "login_csrf": "guessed"})
    assert status == 403 and other.cookie() is None


async def test_console_login_shares_the_admin_login_limit_per_address(
    start_hub: Callable[..., Awaitable[HubHandle]], tmp_path: Path
) -> None:
    # The console is the most privileged door: guessing the admin token there is limited like
    # on the admin API (hub/admin/guard.py), and the two count together.
    hub = await start_hub(admin_auth_max_failures=3, database=tmp_path / "limited.sqlite3")
    c = Console(hub.base)
    try:
        assert [await c.login("wrong-" + ADMIN) for _ in range(3)] == [401, 401, 401]
        assert await c.login(ADMIN) == 429  # even the right token, until the window has passed
        status, _ = await hub.admin("GET", "/admin/platforms")
        assert status == 429
        assert c.cookie() is None
    finally:
        await c.close()


async def test_session_expires_by_the_hub_clock(
    hub: HubHandle, console: Callable[[], Awaitable[Console]], clock: Any
) -> None:
    c = await console()
    assert await c.login() == 303
    clock.advance(hub.settings.console_session_ttl - 5)
    assert (await c.get("/console/"))[0] == 200
    clock.advance(10)
    status, _, headers = await c.get("/console/")
    assert status == 303 and headers["Location"] == "/console/login"


async def test_a_restart_keeps_the_login_and_a_new_admin_token_ends_it(
    start_hub: Callable[..., Awaitable[HubHandle]],
) -> None:
    """Sessions are in the database: a restart keeps operators logged in; rotating the admin
    token (which needs a restart) logs every operator out, as an in-memory store used to."""

    async def visit(hub: HubHandle, cookie: str) -> tuple[int, str]:
        c = Console(hub.base)
        try:
            c.adopt(cookie)
            status, _, headers = await c.get("/console/")
            return status, headers.get("Location", "")
        finally:
            await c.close()

    first = await start_hub()
    c = Console(first.base)
    try:
        assert await c.login() == 303
        cookie = c.cookie()
        assert cookie is not None
    finally:
        await c.close()
    await first.server.close()
    again = await start_hub()  # same database, same admin token
    assert await visit(again, cookie) == (200, "")
    await again.server.close()
    rotated = await start_hub(admin_token="a-new-admin-token")
    assert await visit(rotated, cookie) == (303, "/console/login")


async def test_cookie_flags_and_security_headers(
    start_hub: Callable[..., Awaitable[HubHandle]], console: Callable[[], Awaitable[Console]], tmp_path: Path
) -> None:
    # A second hub needs its own database: one hub per database (storage/files.py lock).
    hub = await start_hub(trust_proxy=True, database=tmp_path / "proxied.sqlite3")
    c = Console(hub.base)
    try:
        status, text, headers = await c.get("/console/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', text)
        assert token
        status, _, headers = await c.post(
            "/console/login", {"login_csrf": token.group(1), "token": ADMIN}, headers={"X-Forwarded-Proto": "https"}
        )
        assert status == 303
        cookie = headers.getall("Set-Cookie")[0]
        assert "hub_console=" in cookie
        for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/console", "Max-Age=28800"):
            assert flag in cookie, cookie
    finally:
        await c.close()
    plain = await console()
    status, text, headers = await plain.get("/console/login")
    assert "Secure" not in headers["Set-Cookie"]  # plain HTTP, no trusted proxy: a Secure cookie would be lost
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"


async def test_pages_have_no_inline_script_and_errors_are_html(
    hub: HubHandle, console: Callable[[], Awaitable[Console]]
) -> None:
    await hub.invite("first")
    c = await console()
    assert await c.login() == 303
    for name, (method, path) in ROUTES.items():
        if method != "GET" or name == "traffic_csv":
            continue
        status, text, headers = await c.get(path)
        if name == "bare":
            assert status == 303
            continue
        assert "text/html" in headers["Content-Type"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path  # every script is a file
        assert not re.search(r"\son[a-z]+\s*=", text), path  # no inline event handlers
        assert "style=" not in text, path
        # Platform 1 is an unused invitation: the confirm page refuses Suspend for it (PLANNED).
        # There is no agreement 1: its confirm page is a 404.
        assert status == {"not_found": 404, "confirm": 409, "agreement_confirm": 404}.get(name, 200), (path, status)
    status, text, headers = await c.get("/console/platforms/999")
    assert status == 404 and "text/html" in headers["Content-Type"] and "does not exist" in text
    status, text, _ = await c.get("/console/traffic?http_status=abc")
    assert status == 400 and "http_status" in text
    status, text, headers = await c.post("/console/overview/live", {"csrf": c.csrf})
    assert "text/html" in headers["Content-Type"] and status in (404, 405)
