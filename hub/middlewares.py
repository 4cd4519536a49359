"""Request pipeline, outermost first: envelope, request context, auth (DESIGN.md section 5)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.envelope import error_response
from hub.keys import CALLER, CORRELATION_ID, REGISTRY, REQUEST_ID, SETTINGS, TOKEN_A_ROUTES, Caller
from routing.errors import (
    AuthError,
    ClientError,
    MethodNotAllowed,
    NotFound,
    OcpiError,
    PayloadTooLarge,
    ServerError,
)
from routing.ids import new_id
from storage.tokens import token_hash

LOGGER = logging.getLogger(__name__)

_HTTP_TO_ERROR: dict[int, type[OcpiError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error, expected or not, into an OCPI envelope; never leak a traceback."""
    try:
        return await handler(request)
    except OcpiError as exc:
        if exc.status == 200 and isinstance(exc, ClientError) and request.path.startswith("/admin"):
            exc = type(exc)(exc.message, data=exc.data, http_status=400, headers=exc.headers)
        return error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_cls = _HTTP_TO_ERROR.get(exc.status, ClientError if exc.status < 500 else ServerError)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(request, error_cls(exc.reason, http_status=exc.status, headers=headers))
    except Exception:
        LOGGER.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(request, ServerError("internal error; it has been logged"))


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """X-Request-ID and X-Correlation-ID: taken from the caller or created (transport_and_format 4.1.1)."""
    request[REQUEST_ID] = _clean_id(request.headers.get("X-Request-ID"))
    request[CORRELATION_ID] = _clean_id(request.headers.get("X-Correlation-ID"))
    return await handler(request)


async def stamp_ids(request: web.Request, response: web.StreamResponse) -> None:
    """Echo the ids on every response, including errors raised before the context middleware."""
    response.headers["X-Request-ID"] = request.get(REQUEST_ID) or _clean_id(request.headers.get("X-Request-ID"))
    response.headers["X-Correlation-ID"] = request.get(CORRELATION_ID) or _clean_id(
        request.headers.get("X-Correlation-ID")
    )


def _clean_id(value: str | None) -> str:
    # Keep a partner's id when it is sane; otherwise make one (UUIDs advised by the spec).
    if value and len(value) <= 255 and value.isprintable() and "\n" not in value:
        return value.strip() or new_id()
    return new_id()


def token_candidates(header: str | None) -> tuple[str, list[str]]:
    """Parse ``Authorization: Token x``; return the raw value and the candidate tokens (raw, base64-decoded)."""
    if not header:
        raise AuthError("missing Authorization header")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        raise AuthError("Authorization must be 'Token <token>'")
    candidates = [value]
    # 2.2.1 says Base64; many peers send the raw token (OCPI-DIGEST 1.2): accept both.
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    # The spec's own examples encoded a trailing newline (OCPI-DIGEST 1.2): tolerate it.
    decoded = decoded.rstrip("\r\n")
    if decoded and decoded.isprintable() and decoded != value:
        candidates.insert(0, decoded)
    return value, candidates


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """OCPI paths need a token (A only where allowed); /admin and /status need the admin token."""
    match = request.match_info
    if match.http_exception is not None:  # unknown path or method: 404/405 before asking for a token
        raise match.http_exception
    path = request.path
    settings = request.app[SETTINGS]
    if path.startswith("/ocpi"):
        _, candidates = token_candidates(request.headers.get("Authorization"))
        record = await request.app[REGISTRY].authenticate(candidates)
        if record.kind == "A" and match.route.resource not in request.app[TOKEN_A_ROUTES]:
            # Token A is only for versions, version details and credentials (OCPI-DIGEST 1.2).
            raise AuthError("token A may only be used for versions and credentials")
        token = next(c for c in candidates if _hash_matches(c, record.token_hash))
        request[CALLER] = Caller(token=record, raw_token=token)
    elif path.startswith("/admin") or (path == "/status" and not settings.status_public):
        check_admin(request)
    return await handler(request)


def _hash_matches(candidate: str, expected_hash: str) -> bool:
    return hmac.compare_digest(token_hash(candidate), expected_hash)


def check_admin(request: web.Request) -> None:
    """Require ``Authorization: Bearer <admin token>`` (constant-time comparison)."""
    expected = request.app[SETTINGS].admin_token
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if expected is None or scheme.lower() != "bearer" or not value:
        raise AuthError("admin token required: Authorization: Bearer <token>")
    if not hmac.compare_digest(value.strip().encode(), expected.get_secret_value().encode()):
        raise AuthError("wrong admin token")
