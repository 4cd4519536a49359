"""One HTTP/1.1 connection to a partner: a request written, its answer parsed by llhttp (httptools).

The pool of these, per origin, and what is written is ``routing/peers/transport.py``; this
module reads answers, with the hub's caps applied while the bytes arrive: the head to
``MAX_HEAD_BYTES`` and ``MAX_HEADERS``, the body (declared, chunked or decompressed) to the
caller's cap, an interim 1xx skipped, a second answer nobody asked for closing the connection.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Any, cast

import httptools
from multidict import CIMultiDict

MAX_HEAD_BYTES = 64 * 1024  # status line and headers of one answer (aiohttp: 8,190 per line)
MAX_HEADERS = 128


class TransportError(Exception):
    """The call failed below HTTP: no connection, the connection dropped, an answer not parsable."""


class BodyTooLarge(Exception):
    """The answer is longer than the caller's ``max_bytes`` (declared or as it arrived)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, its body whole (and decompressed)."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


class Stale(TransportError):
    """A reused connection dropped before any byte of the answer (the partner closed it idle)."""


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.keepalive: float | None = None  # what the partner's last answer announced (Keep-Alive: timeout=N)
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._reset(0)

    def _reset(self, cap: int) -> None:
        self._cap = cap
        self._head = 0
        self._head_fields = 0
        self._headers: list[tuple[str, str]] = []
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._received = False  # any byte of this answer
        self._headers_done = False
        self._until_close = False  # neither Content-Length nor chunked: the body ends with the connection
        self._inflate: Any = None

    # ---- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (uvloop's transports are not asyncio.Transport subclasses: no isinstance)."""
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; anything arriving while no request waits closes the connection."""
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for (a second answer, a late one): never reuse it
            return
        self._received = True
        if not self._headers_done:
            self._head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(TransportError("the partner switched protocols"))
        except httptools.HttpParserCallbackError as exc:
            # httptools wraps what a callback raised; the hub's own reasons are in __context__.
            cause = exc.__context__
            self._fail(cause if isinstance(cause, BodyTooLarge | TransportError) else TransportError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"not a valid HTTP answer ({exc})"))
        else:
            if not self._headers_done and self._head > MAX_HEAD_BYTES:
                self._fail(TransportError(f"the answer's head is longer than {MAX_HEAD_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        """The partner (or we) closed: an answer read until the close is complete now."""
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and self._until_close:
            self._finish()
        elif not self._received:
            waiter.set_exception(Stale("the connection was closed before any answer"))
        else:
            waiter.set_exception(TransportError("the connection was closed in the middle of the answer"))

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A second answer behind the first (smuggled or late) is refused: the connection closes."""
        if self._waiter is None or self._waiter.done():
            raise TransportError("an answer nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header (llhttp may hand a long name or value over in pieces)."""
        self._head_fields += len(name) + len(value)
        if self._head_fields > MAX_HEAD_BYTES:  # however the bytes were split into reads
            raise TransportError(f"the answer's head is longer than {MAX_HEAD_BYTES} bytes")
        if name:
            if len(self._headers) >= MAX_HEADERS:
                raise TransportError(f"the answer has more than {MAX_HEADERS} headers")
            self._headers.append((name.decode("latin-1"), value.decode("latin-1")))
        elif self._headers:  # a continuation of the last value
            last_name, last_value = self._headers[-1]
            self._headers[-1] = (last_name, last_value + value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        """Status and headers known: refuse a declared length over the cap before reading it."""
        self._headers_done = True
        self._status = self._parser.get_status_code()
        length: str | None = None
        chunked = False
        encoding = ""
        for name, value in self._headers:
            low = name.lower()
            if low == "content-length":
                length = value
            elif low == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif low == "content-encoding":
                encoding = value.strip().lower()
        if length is not None and length.strip().isdigit() and int(length) > self._cap:
            raise BodyTooLarge(f"declared {length} bytes")
        self._until_close = length is None and not chunked and self._status >= 200 and self._status not in (204, 304)
        if encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 47: gzip or zlib by the header; a bare deflate stream is tried on the first chunk.
            self._inflate = zlib.decompressobj(47)

    def on_body(self, body: bytes) -> None:
        """A piece of the body: counted (after decompression) against the cap."""
        if self._inflate is not None:
            body = self._inflated(body)
        self._size += len(body)
        if self._size > self._cap:
            raise BodyTooLarge(f"more than {self._cap} bytes")
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        """The whole answer arrived (an interim 1xx is skipped: the final answer follows it)."""
        if 100 <= self._status < 200 and self._status != 101:
            # RFC 9110 15.2: a client must parse 1xx answers it did not expect, and wait on.
            self._reset(self._cap)
            self._received = True
            return
        self._finish()

    # ---- helpers ------------------------------------------------------------------------------

    def _inflated(self, data: bytes) -> bytes:
        room = self._cap + 1 - self._size  # one byte more than allowed is enough to know
        try:
            out: bytes = self._inflate.decompress(data, max(room, 1))
        except zlib.error:
            if self._size == 0 and not self._chunks:  # "deflate" sent raw, as some servers do
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                try:
                    out = self._inflate.decompress(data, max(room, 1))
                except zlib.error as exc:
                    raise TransportError(f"the compressed answer is corrupt ({exc})") from exc
            else:
                raise TransportError("the compressed answer is corrupt") from None
        if self._inflate.unconsumed_tail:  # more output waits than the cap allows
            raise BodyTooLarge(f"more than {self._cap} bytes once decompressed")
        return out

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._inflate is not None:
            try:
                rest = self._inflate.flush()
            except zlib.error as exc:
                waiter.set_exception(TransportError(f"the compressed answer is corrupt ({exc})"))
                return
            if self._size + len(rest) > self._cap:
                waiter.set_exception(BodyTooLarge(f"more than {self._cap} bytes once decompressed"))
                return
            self._chunks.append(rest)
        headers: CIMultiDict[str] = CIMultiDict(self._headers)
        self.keepalive = announced_keepalive(headers.get("Keep-Alive"))
        if self._inflate is not None:
            headers.popall("Content-Encoding", None)  # the body handed on is the decoded one
        if not self._parser.should_keep_alive():
            self.close()  # Connection: close (or HTTP/1.0): no second request here
        waiter.set_result(Answer(self._status, headers, b"".join(self._chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        """Close now; the connection is never reused."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        """Open, idle and in a clean state."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, cap: int) -> asyncio.Future[Answer]:
        """Write one request; the future resolves with its answer."""
        assert self.transport is not None
        self._reset(cap)
        self._parser = httptools.HttpResponseParser(self)
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(data)
        return waiter

    def done(self) -> None:
        """The request is over (answered or not): nothing more may arrive for it."""
        self._waiter = None


def announced_keepalive(value: str | None) -> float | None:
    """``timeout=N`` of a Keep-Alive answer header (RFC 2068 19.7.1.1; Apache sends it), else None."""
    if not value:
        return None
    for part in value.split(","):
        name, _, number = part.strip().partition("=")
        if name.strip().lower() == "timeout":
            try:
                return max(float(number.strip()), 0.0)
            except ValueError:
                return None  # a partner's garbage: our own limit holds
    return None
