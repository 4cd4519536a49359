"""HTTP/1.1 to partners: keep-alive connections per origin (each one a routing/peers/http1.py).

``PeerClient`` (routing/peers/client.py) decides what is sent and what an answer means; this
module only moves bytes. It replaces aiohttp's client session on the hub's hottest path: a
delivery through aiohttp's client cost ~120-155 us of CPU, through this ~30 us (bench/RESULTS.md,
issue 22), with what the hub needs and nothing it must not do:

- no cookie jar, no proxy from the environment, no automatic redirects (PeerClient follows them
  within one origin), no ``Expect: 100-continue``;
- every name resolved through the hub's guarded resolver (routing/peers/ssrf.py: DNS rebinding
  to a refused address fails at connect time), cached ``dns_ttl`` seconds; literal addresses are
  checked by the URL guard before the call, as with aiohttp;
- TLS with certificate and host name verification (the system's trust store);
- the answer read up to ``max_bytes`` and no further (declared, chunked or decompressed), and
  its head to 64 KiB (http1.py): a hostile partner can exhaust neither memory nor the loop;
- header values with a line break or another control character refused before anything is
  sent (a raw token from a partner's credentials must not inject a header);
- a keep-alive connection is kept idle ``keepalive`` seconds at most, and a second less than a
  partner announces (``Keep-Alive: timeout=N``), so its close and our next request rarely cross;
  one that the partner closed while it was idle is replaced once, for the idempotent methods
  only (RFC 9110 9.2.2), as aiohttp does: a POST is never sent twice;
- at most ``max_idle`` idle connections over all partners (the least recently used closed first),
  so 10,000 partners cannot exhaust the process's open files;
- a connection that timed out, was cancelled or answered unexpectedly is closed, never reused.
Concurrency is bounded by ``routing/peers/slots.py`` before a call gets here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from ipaddress import ip_address

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from routing.peers.http1 import Answer, BodyTooLarge, Connection, Stale, TransportError
from routing.peers.ssrf import BlockedAddress

__all__ = ["Answer", "BodyTooLarge", "HeaderRefused", "Transport", "TransportError"]

LOGGER = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_NEEDS_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # an empty body is still declared (some servers 411)
_BAD_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but TAB: never on the wire


class HeaderRefused(ValueError):
    """A header name or value the hub will not put on the wire (a line break: header injection)."""


Key = tuple[str, str, int]  # scheme, host, port


class Transport:
    """Keep-alive HTTP/1.1 connections to partners, by origin."""

    def __init__(
        self,
        resolver: AbstractResolver,
        *,
        limit: int = 256,
        limit_per_host: int = 32,
        max_idle: int = 256,
        keepalive: float = 15.0,
        dns_ttl: float = 300.0,
        user_agent: str = "ocpi-hub",
        ssl_context: ssl.SSLContext | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self._monotonic = monotonic  # injectable: idle limits are tested without waiting
        self.limit = limit  # read by routing/peers/slots.py: the calls in flight are bounded there
        self.limit_per_host = limit_per_host
        self._keepalive = keepalive
        self._dns_ttl = dns_ttl
        self._ua = user_agent
        self._ssl = ssl_context
        self._idle: dict[Key, list[Connection]] = {}
        # Every idle connection, least recently released first: at most ``max_idle`` of them over
        # all partners. One kept per partner would be 10,000 sockets with 10,000 partners, and a
        # service's open-file limit is often 1,024: connecting would fail for everyone.
        self._lru: dict[Connection, Key] = {}
        self._max_idle = max_idle
        self._dns: dict[tuple[str, int], tuple[float, list[ResolveResult]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    # ---- the call -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        total: float,
        connect: float,
        max_bytes: int,
    ) -> Answer:
        """Send one request and read its whole answer within ``total`` seconds (TimeoutError)."""
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise TransportError(f"{url.scheme or 'no'} scheme or no host: not an HTTP URL")
        if method == "HEAD":
            raise TransportError("HEAD is not sent to partners")  # its answer has no body to frame by
        head = self._head(method, url, headers, body)
        key: Key = (url.scheme, url.raw_host, url.port or (443 if url.scheme == "https" else 80))
        async with asyncio.timeout(total):
            for fresh in (False, True):  # the second time on a new connection, never another idle one
                conn, reused = await self._connection(key, min(connect, total), fresh=fresh)
                answer_or_stale = await self._exchange(conn, head, body, max_bytes)
                if isinstance(answer_or_stale, Answer):
                    self._release(key, conn)
                    return answer_or_stale
                if not reused or method not in IDEMPOTENT:
                    raise answer_or_stale
                LOGGER.debug("%s %s://%s: idle connection was closed by the partner; once more", method, *key[:2])
        raise TransportError("the connection was closed before any answer")  # (the loop returns or raises)

    async def _exchange(self, conn: Connection, head: bytes, body: bytes | None, cap: int) -> Answer | Stale:
        """One request on one connection; the connection is closed unless it ends cleanly."""
        ok = False
        try:
            answer = await conn.send(head + body if body else head, cap)
            ok = True
            return answer
        except Stale as stale:
            return stale
        finally:
            conn.done()
            if not ok:
                conn.close()  # timed out, cancelled, refused or broken: never reused

    def _head(self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None) -> bytes:
        host = url.raw_host or ""
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        if url.explicit_port is not None and not url.is_default_port():
            host = f"{host}:{url.port}"
        lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"Host: {host}"]
        given = set()
        for name, value in headers.items():
            given.add(name.lower())
            lines.append(f"{name}: {value}")
        if _BAD_HEADER.search("".join(lines[2:])):  # one scan of every name and value, not one per header
            bad = next(n for n, v in headers.items() if _BAD_HEADER.search(f"{n}{v}") or ":" in n or not n)
            raise HeaderRefused(f"the {bad!r} header holds a line break or another control character")
        if any(":" in name or not name for name in given):
            raise HeaderRefused("a header name is empty or holds a colon")
        if "user-agent" not in given:
            lines.append(f"User-Agent: {self._ua}")
        if "accept-encoding" not in given:
            lines.append("Accept-Encoding: gzip, deflate")
        if body or method in _NEEDS_LENGTH:
            lines.append(f"Content-Length: {len(body) if body else 0}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    # ---- connections --------------------------------------------------------------------------

    async def _connection(self, key: Key, timeout: float, *, fresh: bool = False) -> tuple[Connection, bool]:
        idle = None if fresh else self._idle.get(key)
        now = self._monotonic()
        while idle:
            conn = idle.pop()
            self._lru.pop(conn, None)
            if conn.reusable and now - conn.idle_since < self._idle_limit(conn):
                return conn, True
            conn.close()
        async with asyncio.timeout(timeout):
            return await self._connect(key), False

    async def _connect(self, key: Key) -> Connection:
        scheme, host, port = key
        addresses = [host] if _is_address(host) else [str(r["host"]) for r in await self._resolve(host, port)]
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl if self._ssl is not None else _default_tls()
        last: OSError | None = None
        for address in addresses:  # each in turn, as aiohttp does (no happy eyeballs)
            try:
                _, conn = await loop.create_connection(
                    Connection, address, port, ssl=tls, server_hostname=host if tls is not None else None
                )
            except OSError as exc:  # ssl.SSLError is an OSError too
                last = exc
                continue
            return conn  # (asyncio and uvloop set TCP_NODELAY on TCP transports)
        raise TransportError(f"cannot connect to {host}:{port} ({_reason(last)})") from last

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        """The guarded resolver's answer, cached ``dns_ttl`` seconds (refusals are not cached)."""
        now = self._monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            results = await self.resolver.resolve(host, port, family=socket.AF_UNSPEC)
        except BlockedAddress:
            raise  # the SSRF guard's refusal, told apart by the caller
        except OSError as exc:
            raise TransportError(f"cannot resolve {host} ({_reason(exc)})") from exc
        if not results:
            raise TransportError(f"cannot resolve {host} (no address)")
        if len(self._dns) > 10_000:  # a bounded cache, even with 10,000 partners' names
            self._dns.clear()
        self._dns[(host, port)] = (now + self._dns_ttl, results)
        return results

    def _release(self, key: Key, conn: Connection) -> None:
        if self._closed or not conn.reusable:
            conn.close()
            return
        conn.idle_since = self._monotonic()
        self._idle.setdefault(key, []).append(conn)
        self._lru[conn] = key
        while len(self._lru) > self._max_idle:  # the least recently used goes, whoever's it is
            oldest, its_key = next(iter(self._lru.items()))
            self._forget_idle(oldest, its_key)
            oldest.close()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive, self._sweep)

    def _forget_idle(self, conn: Connection, key: Key) -> None:
        del self._lru[conn]
        conns = self._idle[key]
        conns.remove(conn)
        if not conns:
            del self._idle[key]

    def _sweep(self) -> None:
        """Close connections idle longer than ``keepalive`` (a partner's sockets are not held forever)."""
        self._sweeper = None
        now = self._monotonic()
        for conn, key in list(self._lru.items()):
            if not (conn.reusable and now - conn.idle_since < self._idle_limit(conn)):
                self._forget_idle(conn, key)
                conn.close()
        self._idle = {key: conns for key, conns in self._idle.items() if conns}  # taken to the last one
        if self._lru and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive, self._sweep)

    def _idle_limit(self, conn: Connection) -> float:
        """How long ``conn`` may wait idle: ours, or less when the partner announced less."""
        if conn.keepalive is None:
            return self._keepalive
        # A second before the partner's own limit: its close and our next request must not cross.
        return min(self._keepalive, conn.keepalive - 1.0)

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for their next request."""
        return len(self._lru)

    async def __aenter__(self) -> Transport:
        """``async with Transport(...) as t``: closed on the way out."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close it."""
        await self.close()

    async def close(self) -> None:
        """Close every idle connection (calls in flight close theirs when they end)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._lru:
            conn.close()
        self._idle.clear()
        self._lru.clear()
        await self.resolver.close()


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "no address"
    # A refused certificate says why (expired, wrong name, unknown issuer); a socket error its errno text.
    return getattr(exc, "verify_message", None) or getattr(exc, "strerror", None) or type(exc).__name__


_TLS: ssl.SSLContext | None = None


def _default_tls() -> ssl.SSLContext:
    """The system's trust store, certificate and host name verified (built once: it is costly)."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS
