"""The hub side of the version translation: 2.1.1 module URLs and the loss report of each request.

2.1.1 publishes one URL per module (no SENDER/RECEIVER): the caller's role and the method pick
the interface, as for the draft aliases. A handler opens the request's Flow once (``begin``) and
passes it down on the message values; after routing, the answer's data goes back in the caller's
version (``answer``). The pipeline (hub/ocpi/pipeline.py) closes the Flow once, with the status
actually answered (``finish``): the request's Loss records reach its traffic record, the
``ocpi_hub_translation_losses`` metric and ``/status`` (routing/versions/wire.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.keys import LOSSES, TRANSLATION
from hub.observe.metrics import LOSS_STATS, METRICS
from routing.protocol.vocab import InterfaceRole, ModuleID, Role
from routing.versions import answers, wire
from routing.versions.flow import Flow
from storage.models import Platform

Handler = Callable[[web.Request], Awaitable[web.Response]]


# The role that owns (and pushes) each 2.1.1 module's objects: its GET on
# ``{url}/{country_code}/{party_id}/{id}`` reads back its own copy at the receiver.
_OWNER_211: dict[str, Role] = {
    ModuleID.LOCATIONS: Role.CPO,
    ModuleID.TARIFFS: Role.CPO,
    ModuleID.SESSIONS: Role.CPO,
    ModuleID.TOKENS: Role.EMSP,
}


def interface_211(module: str, method: str, segments: list[str], is_cpo: bool) -> str:
    """The hub interface a 2.1.1 call on ``/ocpi/2.1.1/{module}`` stands for."""
    if module == ModuleID.COMMANDS:
        return InterfaceRole.SENDER if is_cpo else InterfaceRole.RECEIVER
    if module == ModuleID.TOKENS and segments and segments[-1].lower() == "authorize":
        return InterfaceRole.SENDER  # a CPO asking the eMSP (mod_tokens, real-time authorization)
    if method == "GET":
        # 2.1.1 has one URL for both sides: the owner's GET with its own ids is the Receiver
        # interface (mod_locations 8.2.2.1 "GET ... /{country_code}/{party_id}/{location_id}").
        owner = _OWNER_211.get(module)
        owns = owner is not None and (owner == Role.CPO) == is_cpo
        return InterfaceRole.RECEIVER if owns and len(segments) >= 3 else InterfaceRole.SENDER
    return InterfaceRole.RECEIVER


def begin(request: web.Request, caller: Platform) -> Flow:
    """The request's Flow, opened once where it enters; the pipeline closes it (``finish``)."""
    flow = wire.open_flow(caller)
    request[TRANSLATION] = flow
    return flow


async def answer(flow: Flow, status: int, body: bytes) -> bytes:
    """The answer body for the caller: visible to it, in its version, valid for it (may raise)."""
    return await answers.answer_for_caller(flow, status, body)


def finish(request: web.Request, status: int, ocpi_status: int | None) -> None:
    """The request's Flow closed with the answer it got, its losses recorded everywhere (no Flow: nothing)."""
    flow = request.get(TRANSLATION)
    if flow is None:
        return
    losses = flow.close(status, ocpi_status)
    sender_id = flow.caller.id if flow.caller is not None else None
    if losses:
        request[LOSSES] = [loss.as_dict() | {"to_platform_id": to} for to, loss in losses]
        counter = request.app[METRICS].translation_losses
        stats = request.app[LOSS_STATS]
        for to, loss in losses:
            counter.labels(loss.module, loss.path, loss.kind).inc()
            stats.add(sender_id, to, loss.module, loss.path, loss.kind)
