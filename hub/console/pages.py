"""Console pages: login/logout, overview, platforms (with confirmed actions) and invitations.

Handlers stay thin: every figure and every action comes from the same functions the admin API
and /status use (hub.observe.status.overview, hub.admin.platforms.invite, the Registry, storage queries).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.admin import accounts as operators
from hub.admin import guard as adminguard
from hub.admin import invitations as invitations_api
from hub.admin import platforms as admin
from hub.admin.accounts import TOKEN_ACTOR, Actor
from hub.admin.params import positive_int
from hub.console.agreements import platform_agreements
from hub.console.charts import charts
from hub.console.core import (
    COOKIE,
    LOGGER,
    LOGIN_COOKIE,
    PREFIX,
    ROOT,
    SESSION,
    SESSIONS,
    admin_token_ok,
    audit,
    new_login_token,
    render,
    set_cookie,
)
from hub.keys import CLOCK, REGISTRY, SETTINGS, STORE
from hub.observe import status
from hub.observe.traffic.query import TrafficSearch
from hub.observe.traffic.recorder import TRAFFIC, search
from routing.clock import iso
from routing.protocol.errors import NotFound, OcpiError, RateLimited
from storage import deadletters as deadletters_sql
from storage import platforms as platform_sql
from storage import traffic as traffic_sql
from storage.models import Platform, PlatformBrief

ACTIONS: dict[str, tuple[str, str]] = {
    # action: (verb shown on the button, what it does)
    "suspend": ("Suspend", "Messages to and from this platform are refused until it is resumed."),
    "resume": ("Resume", "The platform is CONNECTED again; queued messages are delivered."),
    "rotate": ("Rotate credentials", "The hub issues a new token and PUTs its credentials to the partner."),
    "unregister": (
        "Unregister",
        "The hub DELETEs its credentials at the partner and revokes every token; what was queued for it "
        "is closed out (discarded, with the reason). The partner needs a new invitation to come back.",
    ),
}

# The actions each platform status allows (what the registry accepts and what makes sense):
# PLANNED has no registration yet (revoke its invitation instead), UNREGISTERED has ended one.
# OFFLINE is the hub's own verdict after failed deliveries: resume retries it now.
VALID_ACTIONS: dict[str, tuple[str, ...]] = {
    "CONNECTED": ("suspend", "rotate", "unregister"),
    "OFFLINE": ("resume", "rotate", "unregister"),
    "SUSPENDED": ("resume", "rotate", "unregister"),
    "PLANNED": (),
    "UNREGISTERED": (),
}


def valid_actions(found: Platform) -> list[str]:
    """The actions the console offers (and accepts) for this platform in its current state."""
    allowed = VALID_ACTIONS.get(found.status, ())
    return [a for a in ACTIONS if a in allowed and (found.registered or a != "rotate")]


async def _checked_action(request: web.Request) -> tuple[str, Platform]:
    """The URL's action and platform; an action its state does not allow is refused (409 page)."""
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise NotFound(f"no action {action[:40]!r}")
    found = await _root(request)[REGISTRY].get(platform_id(request))
    if action not in valid_actions(found):
        raise web.HTTPConflict(text=f"{ACTIONS[action][0]} is not possible for a platform that is {found.status}.")
    return action, found


def _root(request: web.Request) -> web.Application:
    return request.app[ROOT]


platform_id = admin.platform_id  # the {id} of the URL, or a 404 page

# ---- login ------------------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.Response:
    """GET /console/login."""
    token = new_login_token()
    response = render(request, "login.html", {"login_csrf": token, "error": None, "name": ""})
    set_cookie(response, request, LOGIN_COOKIE, token, max_age=3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """POST /console/login: an operator's name and password, or (no name) the admin token, opens a session."""
    form = await request.post()
    presented_csrf = form.get("login_csrf")
    cookie_csrf = request.cookies.get(LOGIN_COOKIE, "")
    if not isinstance(presented_csrf, str) or not cookie_csrf or presented_csrf != cookie_csrf:
        LOGGER.warning("console: login refused: login form token missing or wrong")
        return render(
            request, "error.html", {"status": 403, "title": "Refused", "detail": "Reload the login page."}, status=403
        )
    try:  # the admin login limit per client address holds here too (hub/admin/guard.py)
        address = adminguard.before_check(request)
    except RateLimited as exc:
        detail = f"Too many failed logins from this address; retry in {exc.headers['Retry-After']} s."
        return render(request, "error.html", {"status": 429, "title": "Refused", "detail": detail}, status=429)
    token = form.get("token")
    name = form.get("name")
    name = name.strip() if isinstance(name, str) else ""
    actor: Actor | None = None
    password_hash: str | None = None
    if name:
        found = await operators.authenticate(_root(request), name[:64], token if isinstance(token, str) else "")
        if found is not None:
            actor, password_hash = found[0], found[1].password_hash
        wrong = "Wrong operator name or password."
    else:
        if isinstance(token, str) and admin_token_ok(_root(request)[SETTINGS], token.strip()):
            actor = TOKEN_ACTOR
        wrong = "Wrong admin token."
    adminguard.record(request, address, ok=actor is not None, reason=f"console login: {wrong.lower()}")
    if actor is None:
        fresh = new_login_token()
        context = {"login_csrf": fresh, "error": wrong, "name": name[:64]}
        response = render(request, "login.html", context, status=401)
        set_cookie(response, request, LOGIN_COOKIE, fresh, max_age=3600)
        return response
    session_id, _ = await request.app[SESSIONS].create(actor, password_hash)
    await operators.audit(
        _root(request), actor, via="console", action="console.login", address=adminguard.client_address(request)
    )
    LOGGER.info("console: %s (%s) logged in from %s", actor.name, actor.role, request.remote)
    response = web.HTTPSeeOther(f"{PREFIX}/")
    set_cookie(response, request, COOKIE, session_id, max_age=request.app[SESSIONS].ttl_seconds)
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /console/logout: the session is deleted server-side (its cookie is worthless after)."""
    await request.app[SESSIONS].delete(request.cookies.get(COOKIE))
    await audit(request, "console.logout", None)
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    raise response


# ---- overview ---------------------------------------------------------------------------------


# An open overview polls at most this often, and never more than 1/LIVE_SHARE of the time its
# overview takes to make: at 10,000 platforms one took ~0.1 s of the event loop, and a poll
# every 2 s from each open tab was 5 % of the hub and a 0.1 s stall for every partner.
LIVE_MIN_MS, LIVE_MAX_MS, LIVE_SHARE = 2_000, 60_000, 40


def live_interval_ms(cost: float) -> int:
    """The pause before an open overview's next poll, for an overview that took ``cost`` seconds."""
    return min(LIVE_MAX_MS, max(LIVE_MIN_MS, round(cost * LIVE_SHARE * 1000)))


async def _overview_context(request: web.Request) -> dict[str, Any]:
    root = _root(request)
    started = time.perf_counter()
    body, http_status = await status.overview(root)
    interval = live_interval_ms(time.perf_counter() - started)
    now = root[CLOCK].now()
    await root[TRAFFIC].flush()  # the charts include what happened a moment ago
    figures = await traffic_sql.per_minute(root[STORE], since=iso(now - timedelta(minutes=60)))
    by_status = Counter(p["status"] for p in body["platforms"])
    return {
        "status": body,
        "down": http_status != 200,
        "by_status": sorted(by_status.items()),
        "charts": charts(now, figures),
        "now": iso(now),
        "live_interval_ms": interval,
    }


async def overview(request: web.Request) -> web.Response:
    """GET /console/: status, platforms by status, last hour's charts, dead letters waiting."""
    return render(request, "overview.html", await _overview_context(request))


async def overview_live(request: web.Request) -> web.Response:
    """GET /console/overview/live: the overview's body alone, for polling; X-Console-Poll-Ms: when next."""
    context = await _overview_context(request)
    response = render(request, "_overview.html", context)
    response.headers["X-Console-Poll-Ms"] = str(context["live_interval_ms"])
    return response


# ---- platforms ----------------------------------------------------------------------------------


PLATFORM_ROWS = 100  # platforms per page of /console/platforms


def _matches(platform: PlatformBrief, words: list[str]) -> bool:
    """Whether every search word is in the platform's id, name or one of its parties (CC*PID, role)."""
    text = " ".join(
        [str(platform.id), platform.name.lower(), *(f"{cc}*{pid} {role}".lower() for cc, pid, role in platform.parties)]
    )
    return all(word in text for word in words)


async def platforms(request: web.Request) -> web.Response:
    """GET /console/platforms[?q=words][&page=N]: the platforms with their figures, PLATFORM_ROWS a page.

    A page's figures only: at 10,000 platforms the whole list was ~0.4 s of the event loop and
    3.7 MB of HTML per view.
    """
    root = _root(request)
    words = request.query.get("q", "").strip().lower()[:100].split()
    found = [p for p in await platform_sql.briefs(root[STORE]) if _matches(p, words)]
    pages = max(1, -(-len(found) // PLATFORM_ROWS))
    number = min(positive_int(request.query.get("page", "1")) or 1, pages)
    shown = found[(number - 1) * PLATFORM_ROWS : number * PLATFORM_ROWS]

    def link(page: int) -> str:
        return urlencode({k: v for k, v in (("q", " ".join(words)), ("page", str(page))) if v})

    return render(
        request,
        "platforms.html",
        {
            "platforms": await status.platform_entries(root, shown),
            "q": " ".join(words),
            "total": len(found),
            "page": number,
            "pages": pages,
            "earlier": link(number - 1) if number > 1 else None,
            "later": link(number + 1) if number < pages else None,
        },
    )


async def platform(request: web.Request) -> web.Response:
    """GET /console/platforms/{id}: endpoints, settings, figures, recent traffic, dead letters, actions."""
    root = _root(request)
    number = platform_id(request)
    found = await root[REGISTRY].get(number)
    figures = await status.platform_entry(root, number)  # not the whole overview (10,000 platforms)
    traffic = await search(root, TrafficSearch(platform_id=number, limit=25))
    letters = await deadletters_sql.dead_letters(root[STORE], platform_id=number, limit=500)
    names = {p.id: p.name for p in await platform_sql.briefs(root[STORE])}
    return render(
        request,
        "platform.html",
        {
            "platform": admin.platform_json(found),
            "send_base64": found.send_base64,
            "figures": figures,
            "traffic": list(reversed(traffic)),
            "letters": letters,
            "names": names,
            "actions": {a: ACTIONS[a] for a in valid_actions(found)},
            "agreements": platform_agreements(root, number),
        },
    )


async def confirm(request: web.Request) -> web.Response:
    """GET /console/platforms/{id}/{action}: the confirm step of an action."""
    if not request[SESSION].actor.can_act:
        raise web.HTTPForbidden(text="A read-only operator may look, not change anything.")
    action, found = await _checked_action(request)
    verb, effect = ACTIONS[action]
    return render(
        request,
        "confirm.html",
        {"platform": admin.platform_json(found), "action": action, "verb": verb, "effect": effect},
    )


async def act(request: web.Request) -> web.StreamResponse:
    """POST /console/platforms/{id}/{action}: run a confirmed action, back to the platform page."""
    action, found = await _checked_action(request)
    number = found.id
    registry = _root(request)[REGISTRY]
    session = request[SESSION]
    try:
        if action == "suspend":
            await registry.set_status(number, "SUSPENDED")
        elif action == "resume":
            await registry.set_status(number, "CONNECTED")
        elif action == "rotate":
            await registry.rotate(number)
        else:
            _, answer = await registry.disconnect(number)
            session.flash("ok", f"Platform {number} unregistered (partner answered: {answer}).")
    except NotFound:
        raise
    except OcpiError as exc:
        session.flash("error", f"{ACTIONS[action][0]} failed: {exc.message}")
        await audit(request, f"platform.{action}", f"platform {number}", outcome=f"failed: {exc.message}")
    else:
        if action != "unregister":
            session.flash("ok", f"{ACTIONS[action][0]}: done.")
        await audit(request, f"platform.{action}", f"platform {number}")
    LOGGER.info("console: %s platform %s", action, number)
    raise web.HTTPSeeOther(f"{PREFIX}/platforms/{number}")


# ---- invitations -------------------------------------------------------------------------------


async def _invitations_context(request: web.Request) -> dict[str, Any]:
    # Open invitations only (the admin API's list): an unregistered or hub-initiated platform is none.
    return {"pending": await invitations_api.open_invitations(_root(request)), "created": None, "error": None}


async def invitations(request: web.Request) -> web.Response:
    """GET /console/invitations: the form and the invitations not yet used."""
    return render(request, "invitations.html", await _invitations_context(request))


async def create_invitation(request: web.Request) -> web.Response:
    """POST /console/invitations: token A and versions URL are shown on this answer only."""
    form = await request.post()
    name = form.get("name")
    context = await _invitations_context(request)
    if not isinstance(name, str) or not name.strip():
        context["error"] = "A name is required."
        return render(request, "invitations.html", context, status=400)
    created = await admin.invite(_root(request), name.strip()[:200])
    await audit(request, "invitation.create", f"platform {created['platform_id']} ({name.strip()[:100]})")
    LOGGER.info("console: invitation created for platform %s", created["platform_id"])
    context = await _invitations_context(request)
    context["created"] = {**created, "name": name.strip()[:200]}
    return render(request, "invitations.html", context)


async def revoke_invitation(request: web.Request) -> web.StreamResponse:
    """POST /console/invitations/{id}/revoke: the admin API's revoke (token A stops working at once)."""
    number = await invitations_api.revoke(_root(request), request.match_info["id"])
    await audit(request, "invitation.revoke", f"platform {number}")
    LOGGER.info("console: invitation for platform %s revoked", number)
    request[SESSION].flash("ok", f"Invitation {number} revoked: its token A no longer works.")
    raise web.HTTPSeeOther(f"{PREFIX}/invitations")
