"""Which partner redirects the hub follows (issues 11 and 20): the same origin only, never the token elsewhere.

Real partners publish ``.../cdrs`` and their framework answers ``307`` to ``.../cdrs/``, so the
hub follows a redirect when all of this holds, and refuses it (``RedirectRefused``, 4001,
final, never retried) otherwise:

- the status is 301/302/303/307/308 with a ``Location`` (any other 3xx is an answer, which the
  client maps: routing/peers/client.py);
- the target is the same origin as the request: scheme, host and port equal (RFC 6454). The
  request carries the receiver's token in ``Authorization``; a hop to another origin would
  hand it to whoever that is, so it is refused rather than followed without the token (the
  other origin would refuse us anyway, and the partner should publish its real URL);
- 307/308 keep method and body (RFC 9110 15.4.8/15.4.9); 301/302/303 only for a GET, which
  they would otherwise turn into one;
- at most ``MAX_REDIRECTS`` hops, and never a URL seen before (a loop).

Each hop followed is checked by the SSRF guard again before it is sent (``PeerClient._exchange``).
"""

from __future__ import annotations

import yarl

from routing.protocol.errors import RedirectRefused

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_KEEP_METHOD = frozenset({307, 308})


def origin(url: str) -> str:
    """Scheme, host and port of a URL: safe for messages and logs (paths may hold token uids)."""
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        return "an invalid URL"
    if not parsed.host:
        return "an invalid URL"
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.explicit_port}" if parsed.explicit_port else "")


def same_origin(a: str, b: str) -> bool:
    """RFC 6454: scheme, host (case-insensitive, without a trailing dot) and port (default ones filled in) equal."""
    try:
        x, y = yarl.URL(a), yarl.URL(b)
        return (
            x.scheme.lower() == y.scheme.lower()
            and (x.host or "").rstrip(".").lower() == (y.host or "").rstrip(".").lower()
            and x.port == y.port
            and x.host is not None
        )
    except (ValueError, TypeError):
        return False


def redirect_target(method: str, url: str, status: int, location: str | None, hop: int, seen: set[str]) -> str | None:
    """Where to follow a redirect (None: not a redirect to follow); RedirectRefused when it may not be followed."""
    if status not in REDIRECTS or not location:
        return None  # an answer like any other (not OCPI, or an odd status: the client maps it)
    try:
        target = str(yarl.URL(url).join(yarl.URL(location)))
    except (ValueError, TypeError):
        target = ""
    why = None
    if not target.startswith(("http://", "https://")):
        why = "its Location is not a usable URL"
    elif not same_origin(target, url):
        why = (
            f"it leads to another origin ({origin(target)}); the hub follows redirects only within the same"
            " origin and never sends its token elsewhere: the partner must publish its real URL"
        )
    elif status not in _KEEP_METHOD and method != "GET":
        why = f"HTTP {status} would turn the {method} into a GET"
    elif hop >= MAX_REDIRECTS:
        why = f"more than {MAX_REDIRECTS} redirects"
    elif target in seen:
        why = "it is a redirect loop"
    if why is not None:
        raise RedirectRefused(f"{method} to {origin(url)} answered HTTP {status}; not followed: {why}")
    return target
