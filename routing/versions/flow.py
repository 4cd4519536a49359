"""One request's translation state as a value: the caller's version, what it sent, the losses.

A ``Flow`` is opened once where a partner's request enters the hub (the handler, hub/ocpi/
versioned.py ``begin``), travels on the message values (``Inbound.flow``, ``Leg.flow``,
routing/messages.py) to every translation step (routing/versions/wire.py and answers.py), and is
closed once, by the pipeline, with the status the caller was actually answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from routing.versions import CORE, Context, Loss, validate
from storage.db import Store
from storage.models import Platform


@dataclass
class Flow:
    """One request's versions and losses."""

    caller: Platform | None
    version: str  # the caller's version
    raw: bytes | None  # the body as the caller sent it
    kind: str | None  # object kind of the request body
    partial: bool
    answer_kind: str | None  # object kind of the answer's data
    ctx: Context
    store: Store | None = None
    receiver_version: str = CORE  # version of the single receiver whose answer is relayed
    answer_origin: str = ""  # version the answer's data was sent in ("": the hub's own copy)
    object_id: str | None = None  # the token uid of an authorization, the Location of an EVSE GET
    token_type: str = "RFID"
    # Stored copies whose sender spoke the caller's version: identity -> what it sent.
    originals: dict[tuple[str, ...], Any] = field(default_factory=dict)
    losses: list[tuple[int | None, Loss]] = field(default_factory=list)  # (receiver platform id, loss)
    answer_source_ok: bool = True  # the relayed answer was valid in its own version
    answer_ready: bool = False  # the answer's data is in the caller's version already (a GET-all page)
    outcome: tuple[int, int | None] | None = None  # (HTTP status, OCPI status_code) the caller got
    _source_ok: bool | None = None

    def source_valid(self) -> bool:
        """Whether the caller's body was a valid object of its own version (else relayed as before)."""
        if self._source_ok is None:
            try:
                sent = json.loads(self.raw) if self.raw is not None else None
            except ValueError:
                sent = None
            kind = self.kind  # a PATCH body is checked field by field (validate.patch_problems)
            self._source_ok = (
                sent is not None and kind is not None and validate.valid(self.version, kind, sent, self.partial)
            )
        return self._source_ok

    def close(self, status: int, ocpi_status: int | None) -> list[tuple[int | None, Loss]]:
        """Record the answer the caller got and hand over the losses; a Flow closes exactly once."""
        if self.outcome is not None:
            raise RuntimeError(f"translation flow closed twice ({self.outcome} then {(status, ocpi_status)})")
        self.outcome = (status, ocpi_status)
        return list(self.losses)
