"""The request pipeline as one middleware (docs/DESIGN-NOTES.md, Request pipeline): one pass, not six.

In order: request ids (taken from the caller or made, transport_and_format 4.1.1), admission
(at most ``max_requests_in_progress`` OCPI requests at once, else 503 + Retry-After), auth (OCPI
token, or the admin token for /admin and a private /status), the per-platform rate limit and
in-progress bound (429 + Retry-After), the body read within ``body_read_timeout`` (408) while
the request holds only its platform's slot, the handler, then every error rendered as an OCPI
envelope (never a traceback), and one traffic record with the status actually answered; the
request's translation Flow, if its handler opened one, is closed with that same status
(hub/ocpi/versioned.py). Six stacked middlewares cost six coroutine frames and six try blocks
per request; what they did is unchanged.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from hub.admin.accounts import check_admin_request, run_audited
from hub.keys import CALLER, CLOCK, CORRELATION_ID, REGISTRY, REQUEST_ID, SETTINGS, TOKEN_A_ROUTES, Caller
from hub.observe.traffic.recorder import TRAFFIC, ocpi_status_of
from hub.observe.traffic.records import module_of, redact_path
from hub.ocpi import versioned
from hub.ocpi.envelope import error_response
from hub.ocpi.limits import ADMISSION, ERROR_LOG, LIMITER, Admission, check_rate, read_body
from hub.ocpi.middlewares import clean_id, hash_matches, refuse_loop, token_candidates
from routing.protocol.errors import (
    AuthError,
    BodyTimeout,
    ClientError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    OcpiError,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    ServerError,
)
from storage.errors import StorageFull, StorageUnavailable

LOGGER = logging.getLogger(__name__)
# A full database is freed by its operator, not in a second: partners come back in half a minute.
FULL_RETRY_AFTER = "30"
UNAVAILABLE_RETRY_AFTER = "5"

_HTTP_TO_ERROR: dict[int, type[OcpiError]] = {
    400: ClientError,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    429: RateLimited,
}


async def _authenticate(request: web.Request) -> None:
    """OCPI paths need a token (A only where allowed); /admin and a private /status the admin token."""
    match = request.match_info
    if match.http_exception is not None:  # unknown path or method: 404/405 before asking for a token
        raise match.http_exception
    path = request.path
    app = request.app
    if path.startswith("/ocpi"):
        header = request.headers.get("Authorization")
        registry = app[REGISTRY]
        known = registry.cached_caller(header) if header else None
        if known is None:
            _, candidates = token_candidates(header)
            record = await registry.authenticate(candidates)
            token = next(c for c in candidates if hash_matches(c, record.token_hash))
            if header:
                registry.remember_caller(header, record, token)
        else:
            record, token = known
        if record.kind == "A" and match.route.resource not in app[TOKEN_A_ROUTES]:
            # Token A is only for versions, version details and credentials (docs/DESIGN-NOTES.md, Identity and tokens).
            raise AuthError("token A may only be used for versions and credentials")
        request[CALLER] = Caller(token=record, raw_token=token)
        check_rate(app[LIMITER], record.platform_id)
    elif path.startswith("/admin") or (path == "/status" and not app[SETTINGS].status_public):
        await check_admin_request(request)  # the admin token or an operator (hub/admin/accounts.py)


def _report(request: web.Request, exc: BaseException) -> None:
    """One WARNING line for an unexpected error, rate limited per platform or address (issue 20).

    No traceback and no exception text above DEBUG: a partner repeating a request that breaks
    something must not flood the log, and the text could hold what the request carried (a token
    uid). The path is redacted like the traffic log's; where it broke is named by file and line.
    """
    caller = request.get(CALLER)
    who = f"platform {caller.token.platform_id}" if caller is not None else f"address {request.remote}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    path = redact_path(request.path, module=module_of(request.path))
    allowance = request.app[ERROR_LOG]
    left_before = allowance.take(who, request.app[CLOCK].now())
    if left_before is None:
        return
    LOGGER.warning(
        "unexpected error on %s %s from %s: %s at %s; answered 3000%s",
        request.method,
        path,
        who,
        type(exc).__name__,
        where,
        allowance.suffix(left_before),
    )
    LOGGER.debug("the unexpected error on %s %s", request.method, path, exc_info=exc)


def _as_ocpi_error(request: web.Request, exc: BaseException) -> OcpiError | None:
    """The OcpiError an exception stands for (None: a redirect, let aiohttp send it)."""
    if isinstance(exc, OcpiError):
        return exc
    if isinstance(exc, StorageFull):  # the store logged it once at ERROR; /status names it
        return Overloaded(
            "the hub's database is full: nothing was stored; retry later", headers={"Retry-After": FULL_RETRY_AFTER}
        )
    if isinstance(exc, StorageUnavailable):  # a restart or failover, usually seconds; the store logs it
        return Overloaded(
            "the hub's database is unavailable: nothing was changed; retry later",
            headers={"Retry-After": UNAVAILABLE_RETRY_AFTER},
        )
    if isinstance(exc, RequestPayloadError):  # an undecodable body (bogus Content-Encoding, broken chunks)
        return ClientError(f"request body could not be read: {str(exc).splitlines()[-1].strip()[:120]}")
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            return None
        error_cls = _HTTP_TO_ERROR.get(exc.status, ClientError if exc.status < 500 else ServerError)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_cls(exc.reason, headers=headers)
    _report(request, exc)
    return ServerError("internal error; it has been logged")


async def _admitted(request: web.Request, handler: Handler, admission: Admission) -> web.StreamResponse:
    """An OCPI request within the hub-wide and its platform's in-progress bounds (issue 20, item 4).

    Its body is read before the handler runs, within ``body_read_timeout``, while it holds only its
    platform's slot: a partner trickling bodies in takes its own share, never the hub's.
    """
    admission.enter()  # first: refusing overload must cost as little as possible
    in_hub = True
    platform_id: int | None = None
    try:
        if "Via" in request.headers:
            refuse_loop(request)  # a request this hub sent came back to it (issue 20)
        await _authenticate(request)
        caller = request.get(CALLER)
        if caller is not None:
            admission.enter_platform(caller.token.platform_id)
            platform_id = caller.token.platform_id
            if request.body_exists:
                admission.leave()
                in_hub = False
                await read_body(request, request.app[SETTINGS].body_read_timeout)
                admission.enter()
                in_hub = True
        return await handler(request)
    finally:
        if in_hub:
            admission.leave()
        if platform_id is not None:
            admission.leave_platform(platform_id)


def _record(request: web.Request, status: int, ocpi_status: int | None, started: float) -> None:
    """The request's outcome, once: its translation Flow closed and its traffic record written."""
    versioned.finish(request, status, ocpi_status)
    request.app[TRAFFIC].inbound(request, status, ocpi_status, started)


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ids, auth, rate limit, handler, errors as envelopes, one traffic record: one pass."""
    started = time.perf_counter()
    headers = request.headers
    request[REQUEST_ID] = clean_id(headers.get("X-Request-ID"))
    request[CORRELATION_ID] = clean_id(headers.get("X-Correlation-ID"))
    try:
        if request.path.startswith("/ocpi"):
            response = await _admitted(request, handler, request.app[ADMISSION])
        else:
            await _authenticate(request)
            response = await run_audited(request, handler)  # admin API changes go to the audit log
    except Exception as exc:
        error = _as_ocpi_error(request, exc)
        if error is None:
            assert isinstance(exc, web.HTTPException)
            _record(request, exc.status, None, started)
            raise
        response = error_response(request, error)  # the HTTP status for this API (OCPI or admin)
        if isinstance(error, BodyTimeout):
            response.force_close()  # the rest of that body must not be read as the next request
        _record(request, response.status, error.status_code, started)
        return response
    _record(request, response.status, ocpi_status_of(response), started)
    return response
