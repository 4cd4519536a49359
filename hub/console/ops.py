"""Console pages for the daily questions "where did it go" and "what is stuck": traffic and dead letters.

Traffic search takes the admin API's criteria (hub.traffic_query.TrafficSearch) and shows each
matching message with every leg that shares its correlation id (in, out, retries). Rows hold no
bodies and their paths are redacted when recorded (hub/traffic.py), so nothing here can show a
token or a payload. Re-drive uses the admin API's function (hub.deadletters.redrive_letters).
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from hub.console.core import LOGGER, PREFIX, SESSION, render
from hub.console.pages import _root
from hub.deadletters import message_json, redrive_letters
from hub.keys import STORE
from hub.params import positive_int
from hub.traffic import redact_path, search
from hub.traffic_query import TrafficSearch
from routing.errors import InvalidParameters
from storage import outbox as outbox_sql
from storage import platforms as platform_sql
from storage import traffic as traffic_sql
from storage.outbox import Message
from storage.traffic import COLUMNS

MAX_MESSAGES = 50  # messages (correlation ids) whose legs a page shows
FIELDS = ("correlation_id", "request_id", "platform_id", "module", "http_status", "ocpi_status", "since", "until")


async def _messages(request: web.Request) -> tuple[dict[str, str], list[dict[str, Any]], str | None]:
    """The form's values, the matching messages (legs grouped by correlation id) and an error text."""
    values = {f: request.query.get(f, "")[:200] for f in FIELDS}
    try:
        criteria = TrafficSearch.from_query({k: v for k, v in values.items() if v})
    except InvalidParameters as exc:
        return values, [], exc.message
    root = _root(request)
    rows = await search(root, criteria)
    order: list[str] = []
    for row in reversed(rows):  # newest message first
        cid = row.get("correlation_id")
        if isinstance(cid, str) and cid not in order:
            order.append(cid)
    order = order[:MAX_MESSAGES]
    legs = await traffic_sql.legs(root[STORE], order)
    grouped: dict[str, list[dict[str, object]]] = {cid: [] for cid in order}
    for leg in legs:
        grouped[str(leg["correlation_id"])].append(leg)
    messages: list[dict[str, Any]] = [{"correlation_id": cid, "legs": grouped[cid]} for cid in order]
    # Rows without a correlation id (none are written today) still show, one per message.
    messages += [{"correlation_id": None, "legs": [r]} for r in rows if not r.get("correlation_id")]
    return values, messages, None


async def _traffic_context(request: web.Request) -> dict[str, Any]:
    values, messages, error = await _messages(request)
    query = urlencode({k: v for k, v in values.items() if v})
    every = await platform_sql.list_platforms(_root(request)[STORE])
    return {
        "values": values,
        "messages": messages,
        "error": error,
        "query": query,
        "platforms": [(p.id, p.name) for p in every],
        "names": {p.id: p.name for p in every},
    }


async def traffic(request: web.Request) -> web.Response:
    """GET /console/traffic?...: search form and the matching messages with every leg."""
    context = await _traffic_context(request)
    return render(request, "traffic.html", context, status=400 if context["error"] else 200)


async def traffic_live(request: web.Request) -> web.Response:
    """GET /console/traffic/live?...: the results alone, for polling."""
    context = await _traffic_context(request)
    return render(request, "_traffic.html", context, status=400 if context["error"] else 200)


async def traffic_csv(request: web.Request) -> web.Response:
    """GET /console/traffic.csv?...: every leg of the matching messages as CSV."""
    _, messages, error = await _messages(request)
    if error:
        raise InvalidParameters(error)
    out = io.StringIO()
    writer = csv.writer(out)
    header = ("id", *COLUMNS)
    writer.writerow(header)
    for message in messages:
        for leg in message["legs"]:
            writer.writerow([_csv_cell(leg.get(c)) for c in header])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="traffic.csv"'},
    )


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ runs as a formula in spreadsheet programs (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def deadletters(request: web.Request) -> web.Response:
    """GET /console/deadletters[?platform_id=]: dead letters with reason and attempts."""
    raw = request.query.get("platform_id", "")
    chosen = positive_int(raw) if raw else None
    root = _root(request)
    letters = [letter_view(m) for m in await outbox_sql.dead_letters(root[STORE], platform_id=chosen, limit=500)]
    every = await platform_sql.list_platforms(root[STORE])
    names = {p.id: p.name for p in every}
    return render(
        request,
        "deadletters.html",
        {"letters": letters, "names": names, "platform_id": chosen, "platforms": sorted(names.items())},
    )


def letter_view(message: Message) -> dict[str, Any]:
    """The admin API's view of a dead letter, its URL redacted as in the traffic log (no token uids)."""
    parts = urlsplit(message.url)
    path = redact_path(parts.path, module=message.module)
    return {**message_json(message), "url": f"{parts.scheme}://{parts.netloc}{path}"}


async def redrive(request: web.Request) -> web.StreamResponse:
    """POST /console/deadletters/redrive: one ("one"), the ticked ones ("ids") or a platform's ("platform_id")."""
    form = await request.post()
    session = request[SESSION]
    one = positive_int(form.get("one"))
    ids = [n for n in (positive_int(v) for v in form.getall("ids", [])) if n is not None]
    platform = positive_int(form.get("platform_id")) if form.get("scope") == "platform" else None
    if one is not None:
        count = await redrive_letters(_root(request), platform_id=None, ids=[one])
    elif form.get("scope") == "selected" and ids:
        count = await redrive_letters(_root(request), platform_id=None, ids=ids)
    elif platform is not None:
        count = await redrive_letters(_root(request), platform_id=platform, ids=None)
    else:
        session.flash("error", "Nothing chosen: tick dead letters or pick a platform.")
        raise web.HTTPSeeOther(f"{PREFIX}/deadletters")
    LOGGER.info("console: re-drove %d dead letter(s)", count)
    session.flash("ok", f"{count} dead letter(s) back in the queue.")
    raise web.HTTPSeeOther(f"{PREFIX}/deadletters")
