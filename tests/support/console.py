"""A console client for tests without a browser: its own cookie jar, login, form posts with CSRF."""

from __future__ import annotations

import html
import re
from typing import Any

import aiohttp
from yarl import URL

from tests.support.hub import ADMIN

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


class Console:
    """One browser-like visitor of /console (cookies kept, redirects not followed)."""

    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe=True: keep cookies for an IP-address host (127.0.0.1).
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kw: Any) -> tuple[int, str, Any]:
        async with self.session.get(self.base + path, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r.headers

    async def post(self, path: str, data: Any, **kw: Any) -> tuple[int, str, Any]:
        async with self.session.post(self.base + path, data=data, allow_redirects=False, **kw) as r:
            return r.status, await r.text(), r.headers

    async def login(self, token: str = ADMIN, name: str = "") -> int:
        """Log in with the admin token, or as operator ``name`` with password ``token``."""
        status, text, _ = await self.get("/console/login")
        assert status == 200, text
        match = LOGIN_CSRF.search(text)
        assert match
        form = {"login_csrf": match.group(1), "token": token, "name": name}
        status, text, _headers = await self.post("/console/login", form)
        if status == 303:
            page_status, text, _ = await self.get("/console/")
            assert page_status == 200, text
            found = CSRF.search(text)
            assert found
            self.csrf = html.unescape(found.group(1))
        return status

    def adopt(self, cookie: str) -> None:
        """Present another visitor's session cookie from now on (the same browser, another process)."""
        self.session.cookie_jar.update_cookies({"hub_console": cookie}, response_url=URL(self.base + "/console/"))

    def cookie(self) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == "hub_console":
                return cookie.value
        return None
