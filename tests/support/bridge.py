"""Helpers for the version-bridging wire tests: partners per version, hub URLs, sample objects.

Sample objects in 2.1.1 and 2.3.0 are made from the official 2.2.1 examples by the hub's own
translators (test data only); what the tests assert is what a partner receives on the wire,
validated against its version's pydantic models.
"""

from __future__ import annotations

import itertools
import json
from types import ModuleType
from typing import Any

from aiohttp import web

from routing.versions import Context, from_core
from routing.versions.v211 import models as m211
from routing.versions.v221 import models as m221
from routing.versions.v230 import models as m230
from tests.support.fakes import FakePlatform, envelope
from tests.support.routing import example

VERSIONS = ("2.1.1", "2.2.1", "2.3.0")
PAIRS = [(a, b) for a, b in itertools.permutations(VERSIONS, 2)]
MODELS: dict[str, ModuleType] = {"2.1.1": m211, "2.2.1": m221, "2.3.0": m230}
CPO = ("BE", "BEC", "CPO")
EMSP = ("DE", "E22", "EMSP")


async def join(hub: Any, make_peer: Any, party: tuple[str, str, str], version: str, **kw: Any) -> FakePlatform:
    """A fake partner on ``version``, registered through the real handshake."""
    peer = await make_peer(party, name=party[1], version=version, **kw)
    role = party[2] if version == "2.1.1" else None
    await peer.register_with(hub.versions_url, await hub.invite(party[1], role=role))
    return peer


def hub_path(version: str, module: str, interface: str, tail: str = "") -> str:
    """A hub URL path of a module interface in a version (2.1.1: one URL per module)."""
    tail = "/" + tail.strip("/") if tail else ""
    if version == "2.1.1":
        return f"/ocpi/2.1.1/{module}{tail}"
    return f"/ocpi/{version}/{module}/{interface.lower()}{tail}"


def to_parties(frm: tuple[str, ...], to: tuple[str, ...]) -> dict[str, str]:
    """OCPI-from/OCPI-to headers."""
    return {
        "OCPI-from-country-code": frm[0],
        "OCPI-from-party-id": frm[1],
        "OCPI-to-country-code": to[0],
        "OCPI-to-party-id": to[1],
    }


def in_version(version: str, kind: str, core: Any, embedded: Any = None, partial: bool = False) -> Any:
    """A 2.2.1 object as ``version`` shapes it (sample data for a fake partner).

    ``embedded``: the 2.2.1 Location a 2.1.1 Session or CDR embeds.
    """
    ctx = Context(location_lookup=lambda cc, pid, lid: embedded) if embedded is not None else None
    return from_core(version, kind, core, ctx, partial).data


def location(version: str, location_id: str = "LOC1") -> dict[str, Any]:
    """The 2.2.1 example Location of CPO (BE*BEC) in ``version``."""
    core = example("location_example.json")
    core["id"] = location_id
    return dict(in_version(version, "Location", core))


def validate(version: str, kind: str, data: Any) -> None:
    """Fail unless ``data`` is a valid ``kind`` of ``version`` (2.1.1's CommandResult is CommandResponse)."""
    getattr(MODELS[version], kind).model_validate(data)


def answer_with(data: Any, headers: dict[str, str] | None = None) -> web.Response:
    """An OCPI 1000 answer carrying ``data``."""
    return web.json_response(envelope(data), headers=headers)


async def recorded_losses(hub: Any) -> list[dict[str, Any]]:
    """Every Loss record in the hub's traffic records."""
    _, traffic = await hub.admin("GET", "/admin/traffic")
    out: list[dict[str, Any]] = []
    for record in traffic:
        losses = record.get("losses")
        out += json.loads(losses) if isinstance(losses, str) else losses or []
    return out
