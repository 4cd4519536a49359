"""The one outbound HTTP boundary: every call to a partner goes through ``PeerClient.send``.

Foreign exceptions are translated here and only here (``raise ... from exc``): timeouts become
4002 (ReceiverTimeout), connection failures 4003 (ConnectionProblem). A partner's answer is
returned as a ``PeerResponse`` that says whether it is a real OCPI envelope; mapping
non-OCPI answers (HTML, ``{"detail": ...}``, empty bodies) is the caller's decision, made on
``PeerResponse.is_ocpi``.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl

from routing.errors import ConnectionProblem, ReceiverTimeout
from routing.ssrf import UrlRefused, blocked_cause, check_url, url_refusal

LOGGER = logging.getLogger(__name__)

# Hop-by-hop and per-connection headers never relayed from one leg to the next.
_HOP_HEADERS = frozenset(
    {"authorization", "host", "content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)


def origin(url: str) -> str:
    """Scheme, host and port of a URL: safe for messages and logs (paths may hold token uids)."""
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        return "an invalid URL"
    if not parsed.host:
        return "an invalid URL"
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.explicit_port}" if parsed.explicit_port else "")


@functools.lru_cache(maxsize=4096)
def auth_header(token: str, *, send_base64: bool = True) -> str:
    """``Token <base64>`` for 2.2.1 peers (transport_and_format, Authorization), raw if configured."""
    if send_base64:
        return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return "Token " + token


@dataclass(frozen=True)
class PeerResponse:
    """A partner's answer: HTTP status, headers, raw body and the parsed OCPI envelope if any."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    envelope: dict[str, Any] | None = None
    latency: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ocpi(self) -> bool:
        """True when the body is a JSON object with an integer status_code."""
        return self.envelope is not None

    @property
    def ocpi_status(self) -> int | None:
        """The envelope's status_code, if it is an OCPI answer."""
        return int(self.envelope["status_code"]) if self.envelope is not None else None

    @property
    def data(self) -> Any:
        """The envelope's data (None when absent or not OCPI)."""
        return self.envelope.get("data") if self.envelope is not None else None

    def describe(self) -> str:
        """Short text for logs and error messages (never the whole body)."""
        if self.envelope is not None:
            return f"HTTP {self.status}, OCPI {self.ocpi_status} {self.envelope.get('status_message') or ''}".strip()
        snippet = self.body[:80].decode("utf-8", "replace").replace("\n", " ")
        return f"HTTP {self.status}, not an OCPI answer: {snippet!r}"


@dataclass(frozen=True)
class Exchange:
    """One finished outbound call as observers see it: no token, no body (traffic log, metrics, status)."""

    method: str
    url: str
    headers: Mapping[str, str]  # what was sent, minus Authorization
    status: int | None  # None when no HTTP answer came (timeout, connection problem)
    ocpi_status: int | None
    is_ocpi: bool
    latency: float  # seconds
    error: str | None = None  # "timeout" or "connection" when no answer came
    context: Mapping[str, Any] = field(default_factory=dict)  # module, platform_id, attempt (if the caller said)


Observer = Callable[[Exchange], None]


def parse_envelope(body: bytes) -> dict[str, Any] | None:
    """Parse bytes as an OCPI envelope; None if it is anything else."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(parsed, dict):
        return None
    code = parsed.get("status_code")
    # Some peers send the code as a string ("1000"); accept digits, refuse anything else.
    if isinstance(code, str) and code.isascii() and code.isdigit():  # "²".isdigit() is True, int("²") fails
        parsed["status_code"] = int(code)
    elif not isinstance(code, int) or isinstance(code, bool):
        return None
    return parsed


class PeerClient:
    """Calls partners over one shared ClientSession with bounded timeouts."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        connect_timeout: float,
        request_timeout: float,
        observers: Sequence[Observer] = (),
        allow_private_urls: bool = False,
    ) -> None:
        self._session = session
        # SSRF guard (routing/ssrf.py): False refuses loopback/private/link-local targets.
        self.allow_private_urls = allow_private_urls
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        # Called synchronously after every call, answered or not; they must be cheap and never raise.
        self.observers: list[Observer] = list(observers)

    def _notify(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        response: PeerResponse | None,
        started: float,
        error: str | None,
        log_context: Mapping[str, Any] | None,
    ) -> None:
        if not self.observers:
            return
        exchange = Exchange(
            method=method,
            url=url,
            headers={k: v for k, v in headers.items() if k != "Authorization"},  # send() names it so
            status=response.status if response is not None else None,
            ocpi_status=response.ocpi_status if response is not None else None,
            is_ocpi=response.is_ocpi if response is not None else False,
            latency=response.latency if response is not None else time.perf_counter() - started,
            error=error,
            context=log_context or {},
        )
        for observer in self.observers:
            try:
                observer(exchange)
            except Exception:  # an observer bug must never break a delivery
                LOGGER.exception("traffic observer %r failed", observer)

    def check_url(self, url: str) -> None:
        """Raise UrlRefused when the SSRF guard forbids calling this URL (nothing is sent)."""
        check_url(url, allow_private=self.allow_private_urls)

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
        log_context: Mapping[str, Any] | None = None,
    ) -> PeerResponse:
        """Send one request and read the whole answer; maps timeouts to 4002, connect errors to 4003.

        ``log_context`` (module, platform_id, attempt) is handed to the observers, never sent.
        """
        out_headers: dict[str, str] = {k: v for k, v in (headers or {}).items() if k.lower() not in _HOP_HEADERS}
        if token is not None:
            out_headers["Authorization"] = auth_header(token, send_base64=send_base64)
        data: bytes | None = body
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
        if data is not None:
            out_headers.setdefault("Content-Type", "application/json")
        total = timeout if timeout is not None else self._request_timeout
        client_timeout = self._timeouts.get(total)
        if client_timeout is None:
            client_timeout = aiohttp.ClientTimeout(total=total, connect=min(self._connect_timeout, total))
            if len(self._timeouts) < 64:
                self._timeouts[total] = client_timeout
        started = time.perf_counter()
        try:
            target = yarl.URL(url)
            reason = url_refusal(target, allow_private=self.allow_private_urls)
        except (ValueError, TypeError):
            reason = "not a valid URL"
        if reason is not None:
            self._notify(method, url, out_headers, None, started, "connection", log_context)
            raise UrlRefused(f"URL refused ({reason}): {url[:200]}")
        try:
            async with self._session.request(
                method, target, data=data, headers=out_headers, timeout=client_timeout, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                resp_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS}
                status = resp.status
        except TimeoutError as exc:
            self._notify(method, url, out_headers, None, started, "timeout", log_context)
            raise ReceiverTimeout(f"{method} to {origin(url)} timed out after {total:g}s") from exc
        except aiohttp.ClientError as exc:
            self._notify(method, url, out_headers, None, started, "connection", log_context)
            blocked = blocked_cause(exc)
            if blocked is not None:  # the resolver refused the host's addresses (DNS rebinding)
                raise UrlRefused(f"{method} {url} refused: {blocked}") from exc
            raise ConnectionProblem(f"{method} to {origin(url)} failed: {type(exc).__name__}") from exc
        except ValueError as exc:  # yarl/aiohttp reject malformed URLs with ValueError
            self._notify(method, url, out_headers, None, started, "connection", log_context)
            raise ConnectionProblem(f"{method} to {origin(url)}: not a usable URL") from exc
        response = PeerResponse(
            status=status,
            headers=resp_headers,
            body=raw,
            envelope=parse_envelope(raw),
            latency=time.perf_counter() - started,
        )
        self._notify(method, url, out_headers, response, started, None, log_context)
        return response
