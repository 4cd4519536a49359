"""Building outbound legs and turning a partner's answer into the reply the caller gets.

Non-OCPI answers (HTML, ``{"detail": ...}``, empty bodies, odd HTTP codes) are mapped to an OCPI
error here, in ``relay``, and nowhere else (DESIGN.md section 14).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from routing.client import PeerClient, PeerResponse
from routing.errors import HubError, OcpiError
from routing.headers import RoutingHeaders
from routing.ids import new_id
from storage.models import Platform

# Answer headers a caller may see from the receiver (routing headers are rebuilt by the hub).
_RELAYED = ("link", "x-total-count", "x-limit", "location", "retry-after")


def new_request_id() -> str:
    """A fresh X-Request-ID: the hub SHALL make a new one per hop (transport_and_format 4.1.1)."""
    return new_id()


@dataclass(frozen=True)
class Leg:
    """One outbound request to one receiver."""

    method: str
    url: str
    platform: Platform
    routing: RoutingHeaders | None  # None for configuration modules (never routing headers)
    correlation_id: str
    body: bytes | None = None
    module: str = ""
    object_key: str = ""
    request_id: str = field(default_factory=new_request_id)

    def headers(self) -> dict[str, str]:
        """X-Request-ID, X-Correlation-ID and the routing headers of this leg."""
        out = {"X-Request-ID": self.request_id, "X-Correlation-ID": self.correlation_id}
        if self.routing is not None:
            out.update(self.routing.as_headers())
        return out


@dataclass
class Reply:
    """What the hub answers its caller: HTTP status, JSON body bytes, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def envelope(
        cls, data: Any = None, *, status_code: int = 1000, message: str | None = None, timestamp: str, status: int = 200
    ) -> Reply:
        """A reply made by the hub itself."""
        body: dict[str, Any] = {}
        if data is not None:
            body["data"] = data
        body["status_code"] = status_code
        if message:
            body["status_message"] = message
        body["timestamp"] = timestamp
        return cls(status, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


async def send_leg(client: PeerClient, leg: Leg, *, timeout: float | None = None) -> PeerResponse:
    """Send one leg with the receiver's token (raises 4002/4003 from the client boundary)."""
    return await client.send(
        leg.method,
        leg.url,
        token=leg.platform.token_out,
        send_base64=leg.platform.send_base64,
        headers=leg.headers(),
        body=leg.body,
        timeout=timeout,
        log_context={"module": leg.module, "platform_id": leg.platform.id, "attempt": 1},
    )


def foreign_answer_error(response: PeerResponse) -> OcpiError:
    """The OCPI error that stands for a non-OCPI answer from a receiver."""
    return HubError(f"receiver gave no OCPI answer ({response.describe()})")


def relay(response: PeerResponse) -> Reply:
    """The receiver's OCPI answer as-is (2xxx/3xxx relayed unchanged), or a mapped 4000."""
    if not response.is_ocpi:
        raise foreign_answer_error(response)
    headers = {k: v for k, v in response.headers.items() if k.lower() in _RELAYED}
    return Reply(response.status, response.body, headers)
