"""The one outbound HTTP boundary: every call to a partner goes through ``PeerClient.send``.

Foreign exceptions are translated here and only here (``raise ... from exc``): timeouts become
4002 (ReceiverTimeout), connection failures 4003 (ConnectionProblem), an answer longer than
``max_answer_bytes`` 4000 (AnswerTooLarge). A partner's answer is returned as a
``PeerResponse`` that says whether it is a usable OCPI envelope; mapping the others (HTML,
``{"detail": ...}``, empty bodies, hostile JSON, odd HTTP statuses) is the caller's decision,
made on ``PeerResponse.is_ocpi`` (routing/peers/forward.py ``relay``, routing/delivery/retry.py).

What ``send`` does for every call, whoever makes it (routing, delivery, handshake, probes):
- ``X-Request-ID`` and ``X-Correlation-ID`` on the request, made up when the caller gave none
  (transport_and_format 4.1.1: every request carries both), and ``Via`` with the hub's
  pseudonym, so a request that comes back to the hub is refused there (routing/peers/ssrf.py);
- the URL checked by the SSRF guard (never the hub's own), before the first request and
  before every redirect hop; redirects followed only within the same origin
  (routing/peers/redirects.py), so the token never goes to another origin;
- the answer read up to ``max_answer_bytes`` and no further, parsed by the one parser for
  foreign bytes (routing/peers/foreign.py), which raises nothing but the hub's own error; an
  answer whose HTTP status the hub does not relay (1xx, a 3xx not followed, anything outside
  the registered 2xx/4xx/5xx codes such as 599 or 600) is not an OCPI answer either;
- the answer's ``data`` read in the shape the caller expects (routing/protocol/reader.py), the body
  re-rendered when it had to be normalized, so what the hub relays onward is spec-shaped.
"""

from __future__ import annotations

import base64
import functools
import http
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from routing.messages import Headers
from routing.peers.exchange import Exchange, Observer, PeerResponse
from routing.peers.foreign import read_envelope
from routing.peers.redirects import MAX_REDIRECTS, origin, redirect_target
from routing.peers.slots import Key, Slots
from routing.peers.ssrf import BlockedAddress, HubOrigins, OwnUrlRefused, UrlRefused, check_parsed, check_url, origin_of
from routing.peers.transport import BodyTooLarge, HeaderRefused, Transport, TransportError
from routing.protocol import ids
from routing.protocol.errors import AnswerTooLarge, ConnectionProblem, ReceiverTimeout, RedirectRefused
from routing.protocol.reader import Shape, normalize

LOGGER = logging.getLogger(__name__)

__all__ = ["MAX_REDIRECTS", "PeerClient", "origin"]

DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
# Statuses relayed as they come: registered 2xx/4xx/5xx (RFC 9110 and the IANA registry, as
# Python knows it). 1xx, a 3xx not followed, 599, 600+ are no answer the hub passes on.
_RELAYABLE = frozenset(s.value for s in http.HTTPStatus if s.value // 100 in (2, 4, 5))

# Hop-by-hop and per-connection headers never relayed from one leg to the next.
_HOP_HEADERS = frozenset(
    {"authorization", "host", "content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)


new_id = ids.new_id  # a fresh X-Request-ID / X-Correlation-ID (UUID form, as the spec advises)


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _key(target: URL | str) -> Key:
    """The origin a call's slot is counted against (scheme, host, port)."""
    if isinstance(target, URL):
        return (target.scheme, target.host, target.port)
    return ("", target, None)  # not parsed (refused before any call): counted on its own


@functools.lru_cache(maxsize=4096)
def auth_header(token: str, *, send_base64: bool = True) -> str:
    """``Token <base64>`` for 2.2.1 peers (transport_and_format, Authorization), raw if configured."""
    if send_base64:
        return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return "Token " + token


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Headers
    body: bytes


class PeerClient:
    """Calls partners over one shared keep-alive transport with bounded timeouts."""

    def __init__(
        self,
        transport: Transport,
        *,
        connect_timeout: float,
        request_timeout: float,
        observers: Sequence[Observer] = (),
        allow_private_urls: bool = False,
        own: HubOrigins | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._transport = transport
        # SSRF guard (routing/peers/ssrf.py): False refuses loopback/private/link-local targets.
        self.allow_private_urls = allow_private_urls
        # The hub's own addresses: refused whatever allow_private_urls says; its pseudonym goes in Via.
        self.own = own
        self._via = f"1.1 {own.via}" if own is not None else ""
        self.max_answer_bytes = max_answer_bytes
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        # The wait for a connection comes before the timeout starts (routing/peers/slots.py).
        self.slots = Slots(total=transport.limit, per_origin=transport.limit_per_host)
        # Called synchronously after every exchange, answered or not; they must be cheap and never raise.
        self.observers: list[Observer] = list(observers)

    def check_url(self, url: str) -> None:
        """Raise UrlRefused when the SSRF guard forbids calling this URL (nothing is sent)."""
        check_url(url, allow_private=self.allow_private_urls, own=self.own)

    def _checked(self, url: str) -> URL | str:
        """``check_url``, returning the URL parsed once for the transport too."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            self.check_url(url)  # refuses it with the usual message
            return url  # (unreachable: an unparsable URL is refused) the transport refuses a str
        check_parsed(parsed, url, allow_private=self.allow_private_urls, own=self.own)
        return parsed

    def _notify(self, exchange: Exchange) -> None:
        for observer in self.observers:
            try:
                observer(exchange)
            except Exception:  # an observer bug must never break a delivery
                LOGGER.exception("traffic observer %r failed", observer)

    async def send(
        self,
        method: str,
        url: str,
        *,
        token: str | None,
        send_base64: bool = True,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        timeout: float | None = None,
        expect: Shape | None = None,
        log_context: Mapping[str, Any] | None = None,
    ) -> PeerResponse:
        """Send one request (following safe redirects) and read the whole answer.

        Timeouts are 4002, connect errors 4003, a refused redirect 4001. ``expect`` names the
        shape the spec gives the answer's ``data`` ("object" or "list"); ``log_context``
        (module, platform_id, attempt) is handed to the observers, never sent.
        """
        out: dict[str, str] = {}
        lowered: set[str] = set()
        for k, v in (headers or {}).items():  # one pass: every header name lowered once
            low = k.lower()
            if low not in _HOP_HEADERS:
                out[k] = v
                lowered.add(low)
        if "x-request-id" not in lowered:
            out["X-Request-ID"] = new_id()
        if "x-correlation-id" not in lowered:
            out["X-Correlation-ID"] = new_id()
        if self.own is not None:  # RFC 9110 7.6.3: Via is how a loop back to the sender is recognised
            out["Via"] = self._via
        observed = out.copy()  # what observers see: never the Authorization header
        if token is not None:
            out["Authorization"] = auth_header(token, send_base64=send_base64)
        data: bytes | None = body
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
        if data is not None and "content-type" not in lowered:
            out["Content-Type"] = "application/json"
        total = timeout if timeout is not None else self._request_timeout
        context = dict(log_context or {})
        seen = {url}
        note: str | None = None
        for hop in range(MAX_REDIRECTS + 1):
            started = time.perf_counter()
            answer = await self._exchange(method, url, out, data, total, observed, context, started)
            try:
                target = redirect_target(method, url, answer.status, answer.headers.get("Location"), hop, seen)
            except RedirectRefused as exc:
                elapsed = time.perf_counter() - started
                self._notify(
                    Exchange(
                        method, url, observed, answer.status, None, False, elapsed, "redirect", context, exc.message
                    )
                )
                raise
            if target is None:
                break
            self._notify(
                Exchange(
                    method,
                    url,
                    observed,
                    answer.status,
                    None,
                    False,
                    time.perf_counter() - started,
                    context=context,
                    note=f"redirected to {origin(target)}",
                )
            )
            LOGGER.info(
                "%s %s: HTTP %d, following the redirect to %s", method, origin(url), answer.status, origin(target)
            )
            note = f"followed {hop + 1} redirect(s)"
            url = target
            seen.add(url)
        envelope, problem = read_envelope(answer.body)
        if answer.status not in _RELAYABLE:
            envelope, problem = None, f"HTTP {answer.status} is not a status the hub relays"
        raw = answer.body
        if envelope is not None and expect is not None and "data" in envelope:
            envelope["data"], normalized = normalize(envelope["data"], expect)
            if normalized is not None:
                # Strict in what we send: whoever relays this answer relays the spec shape.
                raw = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
                note = f"{note}; {normalized}" if note else normalized
        response = PeerResponse(
            status=answer.status,
            headers=answer.headers,
            body=raw,
            envelope=envelope,
            latency=time.perf_counter() - started,
            note=note,
            url=url,
            problem=problem,
        )
        self._notify(
            Exchange(
                method,
                url,
                observed,
                response.status,
                response.ocpi_status,
                response.is_ocpi,
                response.latency,
                context=context,
                note=note,
            )
        )
        return response

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        data: bytes | None,
        total: float,
        observed: Mapping[str, str],
        context: Mapping[str, Any],
        started: float,
    ) -> _Answer:
        """One HTTP request and its whole answer; foreign errors mapped to the OCPI error tree."""

        def failed(error: str) -> None:
            self._notify(
                Exchange(
                    method,
                    url,
                    observed,
                    None,
                    None,
                    False,
                    time.perf_counter() - started,
                    error=error,
                    context=context,
                )
            )

        try:
            target = self._checked(url)
        except UrlRefused:
            failed("connection")
            raise
        key = _key(target)
        await self.slots.acquire(key)
        try:
            if not isinstance(target, URL):
                raise ValueError(url)
            answer = await self._transport.request(
                method,
                target,
                headers,
                data,
                total=total,
                connect=min(self._connect_timeout, total),
                max_bytes=self.max_answer_bytes,
            )
            kept: Headers = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS)
            return _Answer(answer.status, kept, answer.body)
        except BodyTooLarge as exc:  # read no further than the cap: declared, chunked or decompressed
            failed("too large")
            raise AnswerTooLarge(
                f"{method} to {origin(url)}: the answer is larger than {_size(self.max_answer_bytes)}"
                " (max_answer_bytes); not read further"
            ) from exc
        except TimeoutError as exc:
            failed("timeout")
            raise ReceiverTimeout(f"{method} to {origin(url)} timed out after {total:g}s") from exc
        except BlockedAddress as exc:  # the resolver refused the host's addresses (DNS rebinding, the hub itself)
            failed("connection")
            refused = OwnUrlRefused if exc.own else UrlRefused
            raise refused(f"{method} to {origin_of(url)} refused: {exc}") from exc
        except HeaderRefused as exc:
            failed("connection")
            raise ConnectionProblem(f"{method} to {origin(url)} not sent: {exc}") from exc
        except TransportError as exc:
            failed("connection")
            raise ConnectionProblem(f"{method} to {origin(url)} failed: {exc}") from exc
        except ValueError as exc:  # yarl rejects malformed URLs with ValueError
            failed("connection")
            raise ConnectionProblem(f"{method} to {origin(url)}: not a usable URL") from exc
        finally:
            self.slots.release(key)
