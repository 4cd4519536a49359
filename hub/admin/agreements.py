"""Admin API for roaming agreements (docs/DESIGN-NOTES.md, Roaming agreements): list, create, change, import.

Thin handlers: the input rules live in routing/agreements/input.py, the book in
routing/agreements/book.py, its changes and their effects (cache, other processes, HubClientInfo)
in routing/agreements/changes.py.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.admin.params import positive_int
from hub.keys import AGREEMENTS, DIRECTORY
from hub.ocpi.envelope import json_response, read_json
from routing.agreements import input as agreement_input
from routing.agreements.book import Agreement, values_of
from routing.agreements.changes import Agreements
from routing.protocol.errors import InvalidParameters, NotFound
from routing.registry.directory import Directory

MAX_CSV_BYTES = 2 * 1024 * 1024


def agreement_json(ag: Agreement, directory: Directory, book: Agreements) -> dict[str, Any]:
    """An agreement with, for each side, the platform serving that party now (null when none)."""
    out = ag.as_json(book.clock.now())
    for side in out["parties"]:
        served = directory.parties((side["country_code"], side["party_id"]), [side["role"]])
        side["platform_id"] = served[0].platform_id if served else None
    return out


def _agreement_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    number = positive_int(raw)
    if number is None:
        raise NotFound(f"agreement {raw[:40]!r} does not exist")
    return number


def _render(request: web.Request, ag: Agreement, *, status: int = 200) -> web.Response:
    return json_response(agreement_json(ag, request.app[DIRECTORY], request.app[AGREEMENTS]), status=status)


async def list_agreements(request: web.Request) -> web.Response:
    """GET /admin/agreements[?platform_id=N][&party=CC*PID][&state=S]: every agreement, or a selection."""
    book, directory = request.app[AGREEMENTS], request.app[DIRECTORY]
    platform = None
    raw_platform = request.query.get("platform_id")
    if raw_platform is not None:
        platform_id = positive_int(raw_platform)
        platform = directory.platform(platform_id) if platform_id is not None else None
        if platform is None:
            raise NotFound(f"platform {raw_platform[:40]!r} does not exist")
    state = request.query.get("state")
    if state is not None and state not in agreement_input.STATES:
        raise InvalidParameters(f"state must be one of {', '.join(agreement_input.STATES)}")
    found = book.select(platform=platform, party=request.query.get("party"), state=state)
    return json_response([agreement_json(ag, directory, book) for ag in found])


async def create_agreement(request: web.Request) -> web.Response:
    """POST /admin/agreements {"parties": [a, b], "modules"?, "state"?, "valid_from"?, "valid_to"?, "reference"?}."""
    values = agreement_input.from_json(await read_json(request))
    return _render(request, await request.app[AGREEMENTS].create(values), status=201)


async def get_agreement(request: web.Request) -> web.Response:
    """GET /admin/agreements/{id}."""
    return _render(request, await request.app[AGREEMENTS].fresh(_agreement_id(request)))


async def update_agreement(request: web.Request) -> web.Response:
    """PATCH /admin/agreements/{id}: the fields given change, the others stay."""
    book = request.app[AGREEMENTS]
    agreement_id = _agreement_id(request)
    current = await book.fresh(agreement_id)
    values = agreement_input.from_json(await read_json(request), values_of(current))
    return _render(request, await book.update(agreement_id, values))


async def _set_state(request: web.Request, state: str) -> web.Response:
    book = request.app[AGREEMENTS]
    agreement_id = _agreement_id(request)
    current = values_of(await book.fresh(agreement_id))
    return _render(request, await book.update(agreement_id, agreement_input.with_state(current, state)))


async def suspend_agreement(request: web.Request) -> web.Response:
    """POST /admin/agreements/{id}/suspend: no new traffic under it (queued messages are still delivered)."""
    return await _set_state(request, "suspended")


async def resume_agreement(request: web.Request) -> web.Response:
    """POST /admin/agreements/{id}/resume: active again (its validity window still applies)."""
    return await _set_state(request, "active")


async def delete_agreement(request: web.Request) -> web.Response:
    """DELETE /admin/agreements/{id}: {"deleted": id}."""
    agreement_id = _agreement_id(request)
    await request.app[AGREEMENTS].delete(agreement_id)
    return json_response({"deleted": agreement_id})


async def import_agreements(request: web.Request) -> web.Response:
    """POST /admin/agreements/import (text/csv): every row or none; 400 lists each bad row."""
    raw = await request.read()
    if len(raw) > MAX_CSV_BYTES:
        raise InvalidParameters(f"the CSV file is larger than {MAX_CSV_BYTES} bytes; split it")
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except UnicodeDecodeError:
        raise InvalidParameters("the CSV file must be UTF-8") from None
    created = await request.app[AGREEMENTS].create_many(agreement_input.from_csv(text))
    directory, book = request.app[DIRECTORY], request.app[AGREEMENTS]
    return json_response(
        {"imported": len(created), "agreements": [agreement_json(ag, directory, book) for ag in created]}, status=201
    )


def setup(app: web.Application) -> None:
    """Register the agreement routes."""
    r = app.router
    r.add_get("/admin/agreements", list_agreements)
    r.add_post("/admin/agreements", create_agreement)
    r.add_post("/admin/agreements/import", import_agreements)
    r.add_get("/admin/agreements/{id:\\d+}", get_agreement)
    r.add_patch("/admin/agreements/{id:\\d+}", update_agreement)
    r.add_delete("/admin/agreements/{id:\\d+}", delete_agreement)
    r.add_post("/admin/agreements/{id:\\d+}/suspend", suspend_agreement)
    r.add_post("/admin/agreements/{id:\\d+}/resume", resume_agreement)
