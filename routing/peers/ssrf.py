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
   IPv4-mapped IPv6 and the short or numeric forms ``127.1``/``2130706433`` that the system
   resolver reads as addresses) and names that always mean "this machine" or "the metadata
   service".
2. ``GuardedResolver`` wraps the connector's resolver: every address a hostname resolves to is
   checked at connect time, and the connection is refused if any of them is not allowed.
   aiohttp connects only to addresses the resolver returned, so the checked address is the
   address used.

The hub's own URL is refused always, even with ``allow_private_urls`` (``HubOrigins``): a
partner whose endpoints lead back to the hub, holding another platform's token, would make a
push loop through the hub forever (issue 20). Both layers check it: the public base URL's
host and port, and the listening port on the listening address or any loopback/unspecified
address (``localhost``, 127/8, ``::1``, ``0.0.0.0``). A loop through a proxy or a DNS alias the
hub cannot recognise ends at the hub's door instead: ``PeerClient`` marks what it sends with
``Via: 1.1 <HubOrigins.via>`` and the pipeline refuses a request carrying that mark (508).

Redirects: ``PeerClient`` sends with ``allow_redirects=False`` and follows a 301/302/303/307/308
itself, only to the same origin (scheme, host, port), at most ``MAX_REDIRECTS`` hops, each hop
checked here again before it is sent (routing/peers/client.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from routing.protocol.errors import OwnUrlRefused, UrlRefused  # re-exported: the guard raises them

if TYPE_CHECKING:
    from config import Settings

__all__ = [
    "BlockedAddress",
    "GuardedResolver",
    "HubOrigins",
    "OwnUrlRefused",
    "UrlRefused",
    "address_refusal",
    "check_url",
    "refusal",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that mean this machine or a cloud metadata service whatever DNS says.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class BlockedAddress(OSError):
    """Raised by GuardedResolver when a hostname resolves to a refused address (``own``: to the hub itself)."""

    def __init__(self, reason: str, *, own: bool = False) -> None:
        super().__init__(reason)
        self.own = own


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


_NUMERIC_HOST = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}$")


def _literal(host: str) -> IpAddress | None:
    """The address a host stands for without DNS: an IP literal, or a numeric form inet_aton reads."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):  # "127.1", "0x7f.1", "2130706433": the system resolver reads these as IPv4
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _local(address: IpAddress) -> bool:
    """Whether an address is this machine whatever its interfaces: loopback or unspecified (also IPv4-mapped)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class HubOrigins:
    """The hub's own addresses: a partner URL that points at one of them would loop back into the hub."""

    listen_host: str
    listen_port: int
    public_host: str
    public_port: int
    via: str  # the pseudonym in the hub's Via header: the same for every process of one hub

    @classmethod
    def from_settings(cls, settings: Settings) -> HubOrigins:
        """The listening address and the public base URL of these settings."""
        public = URL(settings.public_url)
        digest = hashlib.sha256(settings.public_url.encode("utf-8")).hexdigest()[:16]
        return cls(
            listen_host=_host(settings.host),
            listen_port=settings.port,
            public_host=_host(public.host or ""),
            public_port=public.port or 0,
            via=f"ocpi-hub-{digest}",
        )

    def _is_listening_address(self, host: str, address: IpAddress | None) -> bool:
        if host == self.listen_host or host in _LOCAL_NAMES or host.endswith(".localhost"):
            return True
        if address is None:
            return False
        listen = _literal(self.listen_host)
        return _local(address) or (listen is not None and address == listen)

    def refusal(self, url: str | URL) -> str | None:
        """Why this URL is the hub itself (lexically: no DNS), or None."""
        try:
            parsed = url if isinstance(url, URL) else URL(url)
            host, port = _host(parsed.host or ""), parsed.port
        except (ValueError, TypeError):
            return None  # not a URL at all: the caller's own check refuses it
        if not host or port is None:
            return None
        if host == self.public_host and port == self.public_port:
            return f"it is the hub's own public URL ({self.public_host}:{port})"
        if port == self.listen_port and self._is_listening_address(host, _literal(host)):
            return f"it is the hub's own listening address ({host}:{port})"
        return None

    def address_refusal(self, host: str, address: IpAddress, port: int) -> str | None:
        """Why connecting to ``address:port`` (``host`` resolved) reaches the hub itself, or None."""
        if port == self.listen_port and self._is_listening_address(_host(host), address):
            return f"{host} resolves to {address}, the hub's own listening address (port {port})"
        public = _literal(self.public_host)
        if public is not None and address == public and port == self.public_port:
            return f"{host} resolves to {address}, the hub's own public address"
        return None

    def sent_by_hub(self, via_headers: list[str]) -> bool:
        """Whether ``Via`` header values name this hub: the request is one the hub sent itself."""
        for value in via_headers:
            for hop in value.split(","):
                parts = hop.split()
                if len(parts) >= 2 and parts[1] == self.via:
                    return True
        return False


def refusal(url: str, *, allow_private: bool, own: HubOrigins | None = None) -> str | None:
    """Why the hub may not call this URL (checked before connecting), or None when it may."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return "not a valid URL"
    return url_refusal(parsed, allow_private=allow_private, own=own)


def url_refusal(parsed: URL, *, allow_private: bool, own: HubOrigins | None = None) -> str | None:
    """``refusal`` for a URL parsed already (the client sends the same object: one parse per call)."""
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not an absolute http(s) URL"
    if own is not None:
        why = own.refusal(parsed)
        if why is not None:
            return why
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


def check_url(url: str, *, allow_private: bool, own: HubOrigins | None = None) -> None:
    """Raise UrlRefused (OwnUrlRefused for the hub itself) when the hub may not call this URL."""
    if own is not None and (why := own.refusal(url)) is not None:
        raise OwnUrlRefused(f"URL refused ({why}): {origin_of(url)}")
    reason = refusal(url, allow_private=allow_private)
    if reason is not None:
        raise UrlRefused(f"URL refused ({reason}): {origin_of(url)}")


def check_parsed(parsed: URL, url: str, *, allow_private: bool, own: HubOrigins | None = None) -> None:
    """``check_url`` for a URL parsed already (the same checks and messages, one parse per call)."""
    if own is not None and (why := own.refusal(parsed)) is not None:
        raise OwnUrlRefused(f"URL refused ({why}): {origin_of(url)}")
    reason = url_refusal(parsed, allow_private=allow_private)
    if reason is not None:
        raise UrlRefused(f"URL refused ({reason}): {origin_of(url)}")


def origin_of(url: str) -> str:
    """Only the scheme, host and port of a URL, for messages: its path may hold a token uid (docs/SECURITY.md)."""
    try:
        parsed = URL(url)
        return str(parsed.origin()) if parsed.absolute else "(not an absolute URL)"
    except (ValueError, TypeError):
        return "(unparsable URL)"


class GuardedResolver(AbstractResolver):
    """Resolve with an inner resolver, refusing a host if any of its addresses is not allowed.

    With ``allow_private`` only the hub's own addresses (``own``) are refused: a DNS alias of
    the hub, or a name for 127.0.0.1, on its listening port.
    """

    def __init__(self, inner: AbstractResolver, *, allow_private: bool = False, own: HubOrigins | None = None) -> None:
        self._inner = inner
        self._allow_private = allow_private
        self._own = own

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; BlockedAddress if any resolved address is refused."""
        if not self._allow_private:
            reason = refusal(f"http://{host}/", allow_private=False) if _literal(host) is None else None
            if reason is not None:
                raise BlockedAddress(reason)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = _literal(str(result["host"]))
            if address is None:
                raise BlockedAddress(f"{host} resolves to an unparsable address {result['host']!r}")
            if self._own is not None and (why := self._own.address_refusal(host, address, port)) is not None:
                raise BlockedAddress(why, own=True)
            if not self._allow_private and (why := address_refusal(address)) is not None:
                raise BlockedAddress(f"{host} resolves to a {why}")
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()
