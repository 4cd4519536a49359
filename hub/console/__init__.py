"""The operator console: server-rendered pages at /console on the hub itself (issue 13).

Jinja2 templates with autoescape, a small hand-written script for polling, copy buttons and
select-all (no framework, no build step, no CDN: everything ships in this package), a session
cookie from a login (an operator's name and password, or the admin token), CSRF tokens on every
form, a strict CSP; read-only operators see no action and may post nothing but their logout.
Pages: overview, platforms, agreements (hub/console/agreements.py), invitations, traffic, dead
letters, audit.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hub.console import agreements, audit, ops, pages
from hub.console.core import PREFIX, ROOT, SESSIONS, TEMPLATES, console_middleware, security_headers, templates
from hub.console.sessions import SessionStore
from hub.keys import CLOCK, SETTINGS, STORE

STATIC = Path(__file__).resolve().parent / "static"


async def _not_found(request: web.Request) -> web.StreamResponse:
    # Matches every other /console path so that the console, not the root app, answers (HTML 404).
    raise web.HTTPNotFound(text="No such console page.")


async def _to_overview(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{PREFIX}/")


def setup(app: web.Application) -> None:
    """Mount the console sub-app at /console (call after CLOCK and SETTINGS are set)."""
    console = web.Application(middlewares=[console_middleware])
    console[ROOT] = app
    settings = app[SETTINGS]
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token is not None else ""
    console[SESSIONS] = SessionStore(lambda: app[STORE], app[CLOCK], settings.console_session_ttl, admin_token)
    console[TEMPLATES] = templates()
    console.on_response_prepare.append(security_headers)
    r = console.router
    r.add_get("", _to_overview, name="bare")
    r.add_get("/login", pages.login_form, name="login")
    r.add_post("/login", pages.login, name="login_post")
    r.add_post("/logout", pages.logout, name="logout")
    r.add_get("/", pages.overview, name="overview")
    r.add_get("/overview/live", pages.overview_live, name="overview_live")
    r.add_get("/platforms", pages.platforms, name="platforms")
    r.add_get("/platforms/{id}", pages.platform, name="platform")
    r.add_get("/platforms/{id}/{action}", pages.confirm, name="confirm")
    r.add_post("/platforms/{id}/{action}", pages.act, name="act")
    r.add_get("/invitations", pages.invitations, name="invitations")
    r.add_post("/invitations", pages.create_invitation, name="invite")
    r.add_post("/invitations/{id}/revoke", pages.revoke_invitation, name="revoke_invitation")
    r.add_get("/traffic", ops.traffic, name="traffic")
    r.add_get("/traffic/live", ops.traffic_live, name="traffic_live")
    r.add_get("/traffic.csv", ops.traffic_csv, name="traffic_csv")
    r.add_get("/audit", audit.audit_page, name="audit")
    r.add_get("/deadletters", ops.deadletters, name="deadletters")
    r.add_post("/deadletters/redrive", ops.redrive, name="redrive")
    r.add_post("/deadletters/discard", ops.discard, name="discard")
    r.add_get("/agreements", agreements.agreements_page, name="agreements")
    r.add_post("/agreements", agreements.create, name="agreement_create")
    r.add_get("/agreements/matrix", agreements.matrix, name="agreement_matrix")
    r.add_post("/agreements/import", agreements.import_csv, name="agreement_import")
    r.add_get("/agreements/{id}/{action}", agreements.confirm, name="agreement_confirm")
    r.add_post("/agreements/{id}/{action}", agreements.act, name="agreement_act")
    r.add_static("/static", STATIC, name="static")
    r.add_route("*", "/{tail:.*}", _not_found, name="not_found")
    app.add_subapp(PREFIX, console)
