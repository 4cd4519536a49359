"""Request helpers the pipeline (hub/ocpi/pipeline.py) uses: ids, token parsing, loops.

The admin token and operator logins are checked in one place: hub/admin/accounts.py.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from hub.keys import CLIENT, CORRELATION_ID, REQUEST_ID
from routing.protocol.errors import (
    AuthError,
    LoopDetected,
)
from routing.protocol.ids import new_id
from storage.tokens import token_hash

LOGGER = logging.getLogger(__name__)


async def stamp_ids(request: web.Request, response: web.StreamResponse) -> None:
    """Echo the ids on every response, including errors raised before the context middleware."""
    response.headers["X-Request-ID"] = request.get(REQUEST_ID) or clean_id(request.headers.get("X-Request-ID"))
    response.headers["X-Correlation-ID"] = request.get(CORRELATION_ID) or clean_id(
        request.headers.get("X-Correlation-ID")
    )


def clean_id(value: str | None) -> str:
    """The caller's id when it is sane, else a fresh one (UUID form, as the spec advises)."""
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
    # 2.2.1 says Base64; many peers send the raw token (docs/DESIGN-NOTES.md, Identity and tokens): accept both.
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    # The spec's own examples encoded a trailing newline (docs/DESIGN-NOTES.md, Identity and tokens): tolerate it.
    decoded = decoded.rstrip("\r\n")
    if decoded and decoded.isprintable() and decoded != value:
        candidates.insert(0, decoded)
    return value, candidates


def hash_matches(candidate: str, expected_hash: str) -> bool:
    """Constant-time check of a candidate token against a stored hash."""
    return hmac.compare_digest(token_hash(candidate), expected_hash)


def refuse_loop(request: web.Request) -> None:
    """LoopDetected (508, 4000) when the request carries the hub's own ``Via`` mark: the hub sent it itself.

    It came back through something the SSRF guard cannot recognise (a proxy, a DNS alias, a
    NAT): answered at once, before auth, so the loop ends at its first turn (docs/SECURITY.md).
    """
    own = request.app[CLIENT].own
    if own is not None and own.sent_by_hub(request.headers.getall("Via", [])):
        LOGGER.warning("refused %s %s: it carries this hub's own Via mark (a loop)", request.method, request.path)
        raise LoopDetected()
