"""Path segments of a routed request, and the receiver URL built from them (issue 20, path traversal).

The hub appends the caller's path suffix to the receiver's endpoint URL. A suffix that climbs
(``..%2F..%2Fcredentials``, ``%2E%2E/``, ``.%2E/``) would reach the receiver's credentials with
the hub's token, so every segment is read from the *raw* URL, decoded once, and refused (2001)
when it is ``.`` or ``..``, holds an encoded separator (slash or backslash), or anything but
printable ASCII: OCPI ids in URLs are CiStrings, printable ASCII only (types, CiString).
``join`` quotes every segment whole, so what reaches the receiver is exactly one segment per
segment the caller sent, and yarl's dot-segment normalisation has nothing to act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote

from routing.protocol.errors import InvalidParameters

_DOT_SEGMENTS = frozenset({".", ".."})
_SEPARATORS = frozenset("/\\")


def _printable_ascii(value: str) -> bool:
    # Both are C loops; for ASCII, isprintable() is exactly 0x20-0x7E.
    return value.isascii() and value.isprintable()


def check_segment(value: str) -> None:
    """2001 unless ``value`` (a decoded path segment) is a plain, printable-ASCII segment."""
    if value in _DOT_SEGMENTS:
        raise InvalidParameters("a path segment may not be '.' or '..'")
    if not _printable_ascii(value):
        raise InvalidParameters("path segments must be printable ASCII (OCPI ids are CiStrings)")
    if _SEPARATORS.intersection(value):
        raise InvalidParameters("a path segment may not contain an encoded '/' or '\\'")


def decode_segments(raw: Iterable[str]) -> list[str]:
    """The segments of a raw (still percent-encoded) path suffix, decoded once and checked.

    Empty segments (a trailing slash, a doubled one) are dropped, as peers concatenate URLs
    sloppily (docs/DESIGN-NOTES.md, What real peers do).
    """
    out: list[str] = []
    for part in raw:
        if not part:
            continue
        try:
            value = unquote(part, errors="strict") if "%" in part else part
        except UnicodeDecodeError as exc:
            raise InvalidParameters("path segments must be printable ASCII (OCPI ids are CiStrings)") from exc
        check_segment(value)
        out.append(value)
    return out


def join(base: str, segments: list[str], query_string: str) -> str:
    """Receiver endpoint + the caller's path suffix + its raw query, without any normalisation.

    Each segment is checked again (whoever built the list) and quoted whole: no segment can add a
    level or climb one, whatever the receiver's server makes of the URL (peers' URLs end with or
    without '/').
    """
    return attach(base, suffix(segments, query_string))


def attach(base: str, tail: str) -> str:
    """A receiver endpoint with a ``suffix`` appended (peers' URLs end with or without '/')."""
    return base.rstrip("/") + tail


def suffix(segments: list[str], query_string: str) -> str:
    """What ``join`` appends to a receiver endpoint: once per broadcast, not once per receiver."""
    tail = ""
    if segments:
        for segment in segments:
            check_segment(segment)
        tail = "/" + "/".join(quote(s, safe="") for s in segments)
    if query_string:
        tail += "?" + query_string
    return tail
