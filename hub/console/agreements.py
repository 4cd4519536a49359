"""Console pages for roaming agreements: the list, the party matrix, the create form, confirmed changes, CSV import.

Handlers stay thin: every input goes through the admin API's rules (routing/agreements/input.py)
and every change through the same book (routing/agreements/changes.py, hub/admin/agreements.py), so a
change made here reloads the routing cache and tells other processes exactly like the API's.
Each change is written to the audit log as ``agreement.<verb>`` under the session's operator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.admin.agreements import MAX_CSV_BYTES, agreement_json
from hub.admin.params import positive_int
from hub.console.core import LOGGER, PREFIX, ROOT, SESSION, audit, render
from hub.keys import AGREEMENTS, DIRECTORY
from routing.agreements import input as agreement_input
from routing.agreements.book import Agreement, values_of
from routing.decide import MODULES
from routing.protocol.errors import AgreementConflict, InvalidParameters, NotFound
from routing.registry.identity import live_parties
from storage.agreements import ALL_MODULES
from storage.models import Platform

ACTIONS: dict[str, tuple[str, str]] = {
    # action: (verb on the button, what it does)
    "suspend": ("Suspend", "No new traffic under this agreement until it is resumed (queued messages are delivered)."),
    "resume": ("Resume", "The agreement is active again (its validity window still applies)."),
    "delete": ("Delete", "The agreement is removed for good; queued messages are still delivered."),
}


def valid_actions(ag: Agreement) -> list[str]:
    """What the console offers for an agreement in its state."""
    return ["resume" if ag.row.state == "suspended" else "suspend", "delete"]


def _party_key(side: dict[str, Any]) -> str:
    return f"{side['country_code']}*{side['party_id']}"


def _registered(root: web.Application) -> list[dict[str, Any]]:
    """Every active registered party with its role and platform: the create form's choices."""
    out = []
    for platform in sorted(root[DIRECTORY].platforms(), key=lambda p: p.id):
        for party in live_parties(platform):
            value = f"{party.country_code}*{party.party_id}*{party.role}"
            out.append({"value": value, "label": f"{value.replace('*', ' ', 2)} · {platform.name}"})
    return out


def _filters(request: web.Request) -> tuple[dict[str, str], Platform | None]:
    """The list's filters (platform_id, party, state) as the form shows them, and the platform they name."""
    values = {f: request.query.get(f, "").strip()[:40] for f in ("platform_id", "party", "state")}
    platform = None
    if values["platform_id"]:
        number = positive_int(values["platform_id"])
        platform = request.app[ROOT][DIRECTORY].platform(number) if number is not None else None
        if platform is None:
            raise NotFound(f"platform {values['platform_id']!r} does not exist")
    if values["state"] and values["state"] not in agreement_input.STATES:
        raise InvalidParameters(f"state must be one of {', '.join(agreement_input.STATES)}")
    return values, platform


def _selected(request: web.Request) -> tuple[dict[str, str], list[dict[str, Any]]]:
    root = request.app[ROOT]
    values, platform = _filters(request)
    book = root[AGREEMENTS]
    found = book.select(platform=platform, party=values["party"] or None, state=values["state"] or None)
    return values, [agreement_json(ag, root[DIRECTORY], book) for ag in found]


def platform_agreements(root: web.Application, platform_id: int) -> list[dict[str, Any]]:
    """The agreements of one platform's parties (the platform page's section); none when it has no parties."""
    platform = root[DIRECTORY].platform(platform_id)
    if platform is None:
        return []
    book = root[AGREEMENTS]
    return [agreement_json(ag, root[DIRECTORY], book) for ag in book.select(platform=platform)]


async def _page(request: web.Request, *, form: dict[str, Any] | None = None, errors: Any = None) -> dict[str, Any]:
    values, agreements = _selected(request)
    root = request.app[ROOT]
    return {
        "values": values,
        "agreements": agreements,
        "platforms": sorted((p.id, p.name) for p in root[DIRECTORY].platforms()),
        "choices": _registered(root),
        "modules": MODULES,
        "roles": agreement_input.ROLES,
        "states": agreement_input.STATES,
        "form": form or {},
        "errors": errors,
        "actions": {a: ACTIONS[a] for a in ACTIONS},
        "valid": {ag["id"]: valid_actions(root[AGREEMENTS].get(ag["id"])) for ag in agreements},
        "query": urlencode({k: v for k, v in values.items() if v}),
        "row_errors": [],
    }


async def agreements_page(request: web.Request) -> web.Response:
    """GET /console/agreements[?platform_id=&party=&state=]: the list, the create form and the CSV import."""
    return render(request, "agreements.html", await _page(request))


async def matrix(request: web.Request) -> web.Response:
    """GET /console/agreements/matrix[?platform_id=&party=&state=]: parties by parties, each cell their agreement."""
    values, agreements = _selected(request)
    root = request.app[ROOT]
    _, platform = _filters(request)
    keys: set[str] = {_party_key(s) for ag in agreements for s in ag["parties"]}
    rows = sorted(keys)
    if platform is not None:  # the platform's own parties down the side, their partners across
        own = {f"{p.country_code}*{p.party_id}" for p in live_parties(platform)}
        rows = sorted(own)
        keys |= own
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ag in agreements:
        a, b = (_party_key(s) for s in ag["parties"])
        cells.setdefault((a, b), []).append(ag)
        if a != b:
            cells.setdefault((b, a), []).append(ag)
    context = {
        "values": values,
        "rows": rows,
        "columns": sorted(keys),
        "cells": cells,
        "platforms": sorted((p.id, p.name) for p in root[DIRECTORY].platforms()),
        "states": agreement_input.STATES,
        "query": urlencode({k: v for k, v in values.items() if v}),
    }
    return render(request, "agreements_matrix.html", context)


def _when(value: Any) -> str | None:
    """A datetime-local value (no zone, read as UTC) or an RFC 3339 one, as the admin API takes it."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if "T" in text and text[-1] not in "Zz" and "+" not in text[10:] and "-" not in text[10:]:
        text += ":00Z" if len(text) == 16 else "Z"
    return text


def _form_body(form: Any) -> dict[str, Any]:
    """The create form as the admin API's JSON body (the same checks then apply)."""
    parties = []
    for side in ("a", "b"):
        chosen = form.get(f"party_{side}")
        country_code, party_id, role = (
            (chosen.split("*") + ["", "", ""])[:3] if isinstance(chosen, str) else ("", "", "")
        )
        override = form.get(f"role_{side}")
        if isinstance(override, str) and override:
            role = override
        parties.append({"country_code": country_code, "party_id": party_id, "role": role})
    modules = [m for m in form.getall("modules", []) if isinstance(m, str)]
    return {
        "parties": parties,
        "modules": modules or ALL_MODULES,
        "state": form.get("state") or "active",
        "valid_from": _when(form.get("valid_from")),
        "valid_to": _when(form.get("valid_to")),
        "reference": _text(form.get("reference")),
    }


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


async def create(request: web.Request) -> web.StreamResponse:
    """POST /console/agreements: the create form, through the admin API's rules and book."""
    form = await request.post()
    kept: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
    kept["modules"] = [m for m in form.getall("modules", []) if isinstance(m, str)]
    try:
        values = agreement_input.from_json(_form_body(form))
        created = await request.app[ROOT][AGREEMENTS].create(values)
    except AgreementConflict as exc:  # that pair has an agreement already: shown on the form
        await audit(request, "agreement.create", _describe(values), outcome=f"failed: {exc.message}"[:200])
        return render(request, "agreements.html", await _page(request, form=kept, errors=exc.message), status=409)
    except (InvalidParameters, NotFound) as exc:
        return render(request, "agreements.html", await _page(request, form=kept, errors=exc.message), status=400)
    await audit(request, "agreement.create", f"agreement {created.id} ({_describe(values)})")
    LOGGER.info("console: agreement %s created", created.id)
    request[SESSION].flash("ok", f"Agreement {created.id} created.")
    raise web.HTTPSeeOther(f"{PREFIX}/agreements#agreement-{created.id}")


def _describe(values: Any) -> str:
    return f"{values.a[0]}*{values.a[1]} {values.a[2]} <-> {values.b[0]}*{values.b[1]} {values.b[2]}"


async def _checked(request: web.Request) -> tuple[str, Agreement]:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise NotFound(f"no action {action[:40]!r}")
    number = positive_int(request.match_info["id"])
    if number is None:
        raise NotFound(f"agreement {request.match_info['id'][:40]!r} does not exist")
    found = await request.app[ROOT][AGREEMENTS].fresh(number)
    if action not in valid_actions(found):
        raise web.HTTPConflict(text=f"{ACTIONS[action][0]} is not possible for a {found.row.state} agreement.")
    return action, found


async def confirm(request: web.Request) -> web.Response:
    """GET /console/agreements/{id}/{action}: the confirm step of suspend, resume or delete."""
    if not request[SESSION].actor.can_act:
        raise web.HTTPForbidden(text="A read-only operator may look, not change anything.")
    action, found = await _checked(request)
    root = request.app[ROOT]
    verb, effect = ACTIONS[action]
    context = {"agreement": agreement_json(found, root[DIRECTORY], root[AGREEMENTS]), "action": action}
    return render(request, "agreement_confirm.html", {**context, "verb": verb, "effect": effect})


async def act(request: web.Request) -> web.StreamResponse:
    """POST /console/agreements/{id}/{action}: the admin API's suspend, resume or delete."""
    action, found = await _checked(request)
    book = request.app[ROOT][AGREEMENTS]
    if action == "delete":
        await book.delete(found.id)
    else:
        state = "suspended" if action == "suspend" else "active"
        await book.update(found.id, agreement_input.with_state(values_of(found), state))
    await audit(request, f"agreement.{action}", f"agreement {found.id}")
    LOGGER.info("console: agreement %s: %s", found.id, action)
    request[SESSION].flash("ok", f"Agreement {found.id}: {ACTIONS[action][0].lower()} done.")
    raise web.HTTPSeeOther(f"{PREFIX}/agreements")


async def import_csv(request: web.Request) -> web.Response:
    """POST /console/agreements/import (a file upload): every row or none; each bad row is listed."""
    form = await request.post()
    upload = form.get("file")
    raw = upload.file.read(MAX_CSV_BYTES + 1) if isinstance(upload, web.FileField) else b""
    try:
        if not raw:
            raise InvalidParameters("choose a CSV file to import")
        if len(raw) > MAX_CSV_BYTES:
            raise InvalidParameters(f"the CSV file is larger than {MAX_CSV_BYTES} bytes; split it")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidParameters("the CSV file must be UTF-8") from None
        created = await request.app[ROOT][AGREEMENTS].create_many(agreement_input.from_csv(text))
    except AgreementConflict as exc:  # a pair of the file has an agreement already: nothing imported
        await audit(request, "agreement.import", None, outcome=f"failed: {exc.message}"[:200])
        return render(request, "agreements.html", await _page(request, errors=exc.message), status=409)
    except InvalidParameters as exc:
        rows = exc.data.get("errors") if isinstance(exc.data, dict) else None
        await audit(request, "agreement.import", None, outcome=f"failed: {exc.message}"[:200])
        context = await _page(request, errors=exc.message)
        return render(request, "agreements.html", {**context, "row_errors": rows or []}, status=400)
    await audit(request, "agreement.import", f"{len(created)} agreement(s)", outcome=f"ok: {len(created)} imported")
    request[SESSION].flash("ok", f"{len(created)} agreement(s) imported.")
    raise web.HTTPSeeOther(f"{PREFIX}/agreements")
