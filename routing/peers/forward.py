"""Building outbound legs and turning a partner's answer into the reply the caller gets.

Non-OCPI answers (HTML, ``{"detail": ...}``, empty bodies, hostile JSON, HTTP statuses the hub
does not relay such as 300, 599 or 600) are mapped to an OCPI error here, in ``relay``, and
nowhere else (docs/DESIGN-NOTES.md, What real peers do); the client says which they are
(``PeerResponse.is_ocpi``, routing/peers/client.py).
"""

from __future__ import annotations

from multidict import CIMultiDict

from routing.messages import Leg, Reply
from routing.peers.client import PeerClient, new_id
from routing.peers.exchange import PeerResponse
from routing.protocol.errors import HubError, OcpiError
from routing.versions import answers as versions_answers
from routing.versions import wire as versions_wire

# Answer headers a caller may see from the receiver (routing headers are rebuilt by the hub).
_RELAYED = ("link", "x-total-count", "x-limit", "location", "retry-after")

new_request_id = new_id  # the hub makes a fresh X-Request-ID per hop (transport_and_format 4.1.1)


async def send_leg(client: PeerClient, leg: Leg, *, timeout: float | None = None, attempt: int = 1) -> PeerResponse:
    """Send one leg with the receiver's token (raises 4001/4002/4003 from the client boundary).

    The leg goes out in its receiver's OCPI version, and the answer's data comes back as 2.2.1
    (routing/versions/wire.py).
    """
    leg = await versions_wire.outbound(leg)
    response = await client.send(
        leg.method,
        leg.url,
        token=leg.platform.token_out,
        send_base64=leg.platform.send_base64,
        headers=leg.headers(),
        body=leg.body,
        timeout=timeout,
        expect=leg.expect,
        log_context={"module": leg.module, "platform_id": leg.platform.id, "attempt": attempt},
    )
    return await versions_answers.answer_in(leg, response)


def foreign_answer_error(response: PeerResponse) -> OcpiError:
    """The OCPI error that stands for a receiver's answer that is not a usable OCPI answer.

    4000: the hub met the trouble while routing (status_codes.asciidoc, 4xxx hub errors), not
    the caller's request (2xxx) nor the hub's own processing of it (3xxx).
    """
    return HubError(f"receiver gave no usable OCPI answer ({response.describe()})")


def relay(response: PeerResponse) -> Reply:
    """The receiver's OCPI answer as-is (2xxx/3xxx relayed unchanged), or a mapped 4000."""
    if not response.is_ocpi:
        raise foreign_answer_error(response)
    headers = CIMultiDict((k, v) for k, v in response.headers.items() if k.lower() in _RELAYED)
    return Reply(response.status, response.body, headers)
