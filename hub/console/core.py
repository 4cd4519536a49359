"""Console plumbing: keys, template rendering, security headers, the session/CSRF middleware.

The console is an aiohttp sub-app at /console. Its middleware runs inside the root app's
(envelope, ids, traffic, auth) and renders its own HTML error pages, so no console error
reaches the root envelope middleware (which would answer with an OCPI JSON envelope).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from config import Settings
from hub.admin import accounts as operators
from hub.admin import guard as adminguard
from hub.admin.accounts import ACTOR, TOKEN_ACTOR
from hub.console.sessions import Session, SessionStore
from hub.keys import SETTINGS
from routing.protocol.errors import NotFound, OcpiError
from storage.errors import StorageFull, StorageUnavailable

LOGGER = logging.getLogger("hub.console")

PREFIX = "/console"
COOKIE = "hub_console"
LOGIN_COOKIE = "hub_console_login"  # double-submit CSRF token of the login form (no session yet)
PUBLIC_ROUTES = frozenset({"login", "login_post", "static"})
READ_ONLY_POSTS = frozenset({"logout"})  # the only form a read-only operator may post

ROOT = web.AppKey("console_root", web.Application)
SESSIONS = web.AppKey("console_sessions", SessionStore)
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
SESSION = web.RequestKey("console_session", Session)

# No inline script or style anywhere: pages load /console/static/* only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def templates() -> jinja2.Environment:
    """Jinja2 with autoescape on for every template: partner-controlled values are escaped."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hub.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["prefix"] = PREFIX  # macros imported without context see it too
    return env


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """Render a page with the common context (session, CSRF token, flashes, current path)."""
    session = request.get(SESSION)
    base: dict[str, Any] = {
        "csrf": session.csrf if session is not None else "",
        "logged_in": session is not None,
        "actor": session.actor if session is not None else None,
        # Read-only operators see no buttons that change anything (and their posts get a 403).
        "can_act": session is not None and session.actor.can_act,
        "flashes": session.take_flashes() if session is not None and not name.startswith("_") else [],
        "path": request.path,
    }
    html = request.app[TEMPLATES].get_template(name).render({**base, **context})
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


# Route name -> the action the audit log names (the handlers use the same names when they succeed).
_ACTIONS = {
    "invite": "invitation.create",
    "revoke_invitation": "invitation.revoke",
    "redrive": "deadletters.redrive",
    "discard": "deadletters.discard",
    "agreement_create": "agreement.create",
    "agreement_import": "agreement.import",
}
_KINDS = {"revoke_invitation": "invitation", "agreement_act": "agreement"}  # what the URL's {id} names


def _action(request: web.Request) -> str:
    route = str(request.match_info.route.name)
    if route in ("act", "agreement_act"):
        kind = "platform" if route == "act" else "agreement"
        return f"{kind}.{request.match_info.get('action', '')[:40]}"
    return _ACTIONS.get(route, f"console.{route}")


def _target(request: web.Request) -> str | None:
    found = request.match_info.get("id")
    kind = _KINDS.get(str(request.match_info.route.name), "platform")
    return None if found is None else f"{kind} {found[:40]}"


async def audit(request: web.Request, action: str, target: str | None, *, outcome: str = "ok") -> None:
    """Append a console change to the audit log, as the session's operator (hub/admin/accounts.py)."""
    session = request.get(SESSION)
    actor = session.actor if session is not None else TOKEN_ACTOR
    address = adminguard.client_address(request)
    await operators.audit(
        request.app[ROOT], actor, via="console", action=action, target=target, outcome=outcome, address=address
    )


def is_secure(request: web.Request, settings: Settings) -> bool:
    """Served over TLS: directly, or behind a proxy we were told to trust."""
    if request.secure:
        return True
    if settings.trust_proxy:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, *, max_age: int) -> None:
    """HttpOnly, SameSite=Strict, path /console, Secure over TLS."""
    settings = request.config_dict[SETTINGS]
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, settings),
    )


def admin_token_ok(settings: Settings, presented: str) -> bool:
    """Constant-time comparison with the admin token (no token configured: nobody gets in)."""
    expected = settings.admin_token
    if expected is None or not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())


def new_login_token() -> str:
    """A fresh login-form CSRF token."""
    return secrets.token_urlsafe(32)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CSP and friends on every console answer; pages are never cached (they show live data)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith(PREFIX + "/static/"):
        response.headers["Cache-Control"] = "no-store"


def _error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status=status)


def _refuse(request: web.Request, status: int, detail: str) -> web.StreamResponse:
    # Page loads go to the login form; live fragments and form posts get a plain refusal.
    if status == 401 and request.method in ("GET", "HEAD") and "X-Console-Live" not in request.headers:
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    return _error_page(request, status, "Not allowed", detail)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session and CSRF checks, then the handler; the session's messages are kept when it ends."""
    try:
        return await _checked(request, handler)
    finally:
        # Also after a redirect (HTTPSeeOther is how a form post ends): its message is for the next page.
        session = request.get(SESSION)
        if session is not None:
            await request.app[SESSIONS].save(session)


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session and CSRF checks, then the handler; every error becomes an HTML page here."""
    try:
        route = request.match_info.route.name
        if route not in PUBLIC_ROUTES:
            session = await request.app[SESSIONS].get(request.cookies.get(COOKIE))
            if session is None:
                return _refuse(request, 401, "Log in first: no valid console session.")
            request[SESSION] = session
            request[ACTOR] = session.actor
            if request.method not in ("GET", "HEAD"):
                form = await request.post()
                token = form.get("csrf")
                if not session.csrf_ok(token if isinstance(token, str) else None):
                    LOGGER.warning("console: refused %s %s: bad CSRF token", request.method, request.path)
                    return _error_page(request, 403, "Refused", "The form's CSRF token is missing or wrong.")
                if not session.actor.can_act and route not in READ_ONLY_POSTS:
                    await audit(request, _action(request), _target(request), outcome="refused: read-only operator")
                    detail = f"Operator {session.actor.name} is read-only: it may look, not change anything."
                    return _error_page(request, 403, "Not allowed", detail)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_page(request, exc.status, exc.reason, exc.text or exc.reason)
    except NotFound as exc:
        return _error_page(request, 404, "Not found", exc.message)
    except OcpiError as exc:
        return _error_page(request, 400 if exc.status < 500 else exc.status, "Refused", exc.message)
    except StorageFull:  # the store logged it at ERROR once; /status names it
        detail = "The hub's database is full: nothing was changed. Free space; writes resume by themselves."
        return _error_page(request, 503, "Database full", detail)
    except StorageUnavailable:  # a server restart or failover; the store logs it
        detail = "The hub's database cannot be reached: nothing was changed. Try again in a few seconds."
        return _error_page(request, 503, "Database unavailable", detail)
    except Exception:
        LOGGER.exception("console: unexpected error on %s %s", request.method, request.path)
        return _error_page(request, 500, "Internal error", "Something went wrong; it has been logged.")
