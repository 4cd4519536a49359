"""SSRF guard: partner-supplied URLs may not point the hub at its own network (docs/SECURITY.md).

Partners hand the hub URLs it will call: versions URLs in the credentials handshake, every
endpoint in their version details, ``response_url`` in commands and charging profiles, ``Link``
and ``Location`` headers. A hostile partner could aim those at loopback, the cloud metadata
service or the operator's private network. Unless ``allow_private_urls`` is set (tests, local
runs), the hub refuses every URL whose host is, or resolves to, an address that is not globally
routable: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with
the metadata service, fe80::/10), shared (100.64/10), unspecified, multicast or reserved.

Two layers, so that DNS rebinding cannot slip through:

1. ``refusal`` checks a URL lexically before any connection: scheme, IP literals (also
   IPv4-mapped IPv6) and names that always mean "this machine" or "the metadata service".
2. ``GuardedResolver`` wraps the connector's resolver: every address a hostname resolves to is
   checked at connect time, and the connection is refused if any of them is not allowed.
   aiohttp connects only to addresses the resolver returned, so the checked address is the
   address used.

Redirects are never followed (``PeerClient`` sends with ``allow_redirects=False``).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from routing.errors import ConnectionProblem

__all__ = [
    "BlockedAddress",
    "GuardedResolver",
    "UrlRefused",
    "address_refusal",
    "blocked_cause",
    "check_url",
    "refusal",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that mean this machine or a cloud metadata service whatever DNS says.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class UrlRefused(ConnectionProblem):
    """A partner URL the SSRF guard refuses; the hub never connects to it (4003 at the client boundary)."""

    default_message = "URL refused: it points at a non-public address"


class BlockedAddress(OSError):
    """Raised by GuardedResolver when a hostname resolves to a refused address."""


def address_refusal(address: IpAddress) -> str | None:
    """Why an IP address may not be called, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_refusal(mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local (metadata service range)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address {address}"
    if not address.is_global:  # shared 100.64/10, documentation ranges, ...
        return f"non-global address {address}"
    return None


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why the hub may not call this URL (checked before connecting), or None when it may."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "not a valid URL"
    return url_refusal(parsed, allow_private=allow_private)


def url_refusal(parsed: URL, *, allow_private: bool) -> str | None:
    """``refusal`` for a URL parsed already (the client sends the same object: one parse per call)."""
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not an absolute http(s) URL"
    if allow_private:
        return None
    host = parsed.host.rstrip(".").lower()
    address = _literal(host)
    if address is not None:
        return address_refusal(address)
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"host {host!r} is this machine"
    if host in _METADATA_NAMES:
        return f"host {host!r} is a metadata service"
    return None


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UrlRefused when the hub may not call this URL."""
    reason = refusal(url, allow_private=allow_private)
    if reason is not None:
        raise UrlRefused(f"URL refused ({reason}): {_shorten(url)}")


def _shorten(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


class GuardedResolver(AbstractResolver):
    """Resolve with an inner resolver, refusing a host if any of its addresses is not allowed."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; BlockedAddress if any resolved address is refused."""
        reason = refusal(f"http://{host}/", allow_private=False) if _literal(host) is None else None
        if reason is not None:
            raise BlockedAddress(reason)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = _literal(str(result["host"]))
            why = address_refusal(address) if address is not None else f"unparsable address {result['host']!r}"
            if why is not None:
                raise BlockedAddress(f"{host} resolves to a {why}")
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def blocked_cause(exc: BaseException) -> BlockedAddress | None:
    """The BlockedAddress behind an aiohttp connection error, if that is what it was."""
    seen: set[int] = set()
    current: Any = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BlockedAddress):
            return current
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, BlockedAddress):
            return os_error
        current = current.__cause__ or current.__context__
    return None
