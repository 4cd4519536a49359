"""What a partner answered, and one finished exchange as observers see it.

The values the one outbound boundary (routing/peers/client.py) hands back and to its observers
(traffic log, metrics): kept apart so readers of answers need not import the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.messages import Headers
from routing.peers.foreign import read_envelope


@dataclass(frozen=True)
class PeerResponse:
    """A partner's answer: HTTP status, headers, raw body and the parsed OCPI envelope if any.

    ``headers`` is case-insensitive (partners send ``link``, ``Link`` or ``LINK``). When the
    envelope's ``data`` had to be normalized, ``body`` is the re-rendered, spec-shaped envelope
    and ``note`` says what was changed.
    """

    status: int
    headers: Headers
    body: bytes
    envelope: dict[str, Any] | None = None
    latency: float = 0.0
    note: str | None = None
    url: str = ""
    problem: str | None = None  # why the answer is not a usable OCPI envelope (None when it is one)

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

    @property
    def succeeded(self) -> bool:
        """An OCPI answer with a 1xxx code and a 2xx HTTP status."""
        code = self.ocpi_status
        return self.status < 300 and code is not None and 1000 <= code < 2000

    def describe(self) -> str:
        """Short text for logs and error messages (never the whole body, never more than ~300 characters)."""
        if self.envelope is not None:
            message = self.envelope.get("status_message")
            text = message[:200] if isinstance(message, str) else ""
            return f"HTTP {self.status}, OCPI {self.ocpi_status} {text}".strip()
        snippet = self.body[:80].decode("utf-8", "replace").replace("\n", " ")
        return f"HTTP {self.status}, {self.problem or 'not an OCPI answer'}: {snippet!r}"


@dataclass(frozen=True)
class Exchange:
    """One finished HTTP exchange as observers see it: no token, no body (traffic log, metrics, status).

    A followed redirect is one exchange per hop.
    """

    method: str
    url: str
    headers: Mapping[str, str]  # what was sent, minus Authorization
    status: int | None  # None when no HTTP answer came (timeout, connection problem)
    ocpi_status: int | None
    is_ocpi: bool
    latency: float  # seconds
    error: str | None = None  # "timeout", "connection" or "redirect" when the call did not end in an answer
    context: Mapping[str, Any] = field(default_factory=dict)  # module, platform_id, attempt (if the caller said)
    note: str | None = None  # e.g. "redirected to ...", "one-element list read as an object"


Observer = Callable[[Exchange], None]


def parse_envelope(body: bytes) -> dict[str, Any] | None:
    """Parse bytes as an OCPI envelope; None if it is anything else (routing/peers/foreign.py: never raises)."""
    return read_envelope(body)[0]
