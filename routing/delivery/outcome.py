"""What a push can come to, as small frozen values instead of errors passed around as values.

``Answered``: the receiver's own answer, to relay. ``Queued``: committed, not (yet) answered; it
will be delivered later. ``Failed``: ``on_receiver_down = "fail"`` and the receiver is down or
slow; the sender gets the error and nothing is kept. An attempt itself yields a ``Sent``: the
receiver's HTTP answer, or the OCPI error (4002/4003) that stands for no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.peers.exchange import PeerResponse
from routing.protocol.errors import OcpiError

Sent = PeerResponse | OcpiError


@dataclass(frozen=True, slots=True)
class Answered:
    """The receiver answered the first attempt; the sender gets that answer."""

    response: PeerResponse


@dataclass(frozen=True, slots=True)
class Queued:
    """Committed, but no final answer yet: the scheduler delivers it later."""

    message_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """Fail mode: the sender gets this error; the message was not kept."""

    error: OcpiError


Outcome = Answered | Queued | Failed
