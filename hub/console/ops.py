"""Console pages for the daily questions "where did it go" and "what is stuck": traffic and dead letters.

Traffic search takes the admin API's criteria (hub.observe.traffic.query.TrafficSearch): partner traffic
by default (the admin API's calls and unknown callers are a filter away), one table, newest
first, paged by row id (stable while new rows arrive). A correlation id links to every leg of
its message (in, out, retries). Rows hold no bodies and their paths are redacted when recorded
(hub/observe/traffic/recorder.py), so nothing here can show a token or a payload. Re-drive and discard use the
admin API's functions (hub.admin.deadletters.redrive_letters, discard_letters with its reason check).
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from hub.admin.deadletters import discard_letters, discard_reason, message_json, redrive_letters
from hub.admin.params import positive_int
from hub.console.core import LOGGER, PREFIX, SESSION, audit, render
from hub.console.pages import _root
from hub.keys import STORE
from hub.observe.traffic.query import KIND_CHOICES, TrafficSearch
from hub.observe.traffic.recorder import redact_path, search
from routing.protocol.errors import InvalidParameters
from storage import deadletters as deadletters_sql
from storage import platforms as platform_sql
from storage.models import PlatformBrief
from storage.outbox import Message
from storage.traffic import COLUMNS

PAGE = 50  # rows a traffic page shows unless ?limit= says otherwise
CSV_ROWS = 10_000
FIELDS = (
    "correlation_id",
    "request_id",
    "platform_id",
    "module",
    "http_status",
    "ocpi_status",
    "since",
    "until",
    "kind",
    "direction",
    "failed",
    "before",
    "after",
    "limit",
)
PAGING = ("before", "after")


def _criteria(values: dict[str, str], *, limit: int | None = None) -> TrafficSearch:
    """The search the form asks for: partner traffic unless another kind is chosen."""
    default = "all" if values.get("correlation_id") or values.get("request_id") else "partner"
    criteria = TrafficSearch.from_query({k: v for k, v in values.items() if v}, default_kind=default)
    if limit is not None:
        return replace(criteria, limit=limit)
    return criteria if values.get("limit") else replace(criteria, limit=PAGE)


async def _page(request: web.Request) -> dict[str, Any]:
    """The form's values, one page of matching rows (newest first), paging links and an error text."""
    values = {f: request.query.get(f, "")[:200] for f in FIELDS}
    if not values["kind"]:
        # Looking for one message by its id: whatever kind it is. Otherwise partner traffic.
        values["kind"] = "all" if values["correlation_id"] or values["request_id"] else "partner"
    page: dict[str, Any] = {
        "values": values,
        "rows": [],
        "error": None,
        "older": None,
        "newer": None,
        "newest": "",
        "paged": False,
    }
    try:
        criteria = _criteria(values)
    except InvalidParameters as exc:
        return {**page, "error": exc.message}
    size = criteria.limit
    rows = await search(_root(request), replace(criteria, limit=size + 1))  # one more: is there another page?
    backwards = criteria.after is not None and criteria.before is None  # oldest first from "after" on
    more = len(rows) > size
    rows = rows[:size] if backwards else rows[-size:]
    base = {k: v for k, v in values.items() if v and k not in PAGING}
    if rows:
        ids = [int(str(r["id"])) for r in rows]
        if more or backwards:
            page["older"] = urlencode({**base, "before": str(min(ids))})
        if (more and backwards) or criteria.before is not None:
            page["newer"] = urlencode({**base, "after": str(max(ids))})
    elif criteria.before is not None or criteria.after is not None:
        page["newer"] = urlencode(base)  # paged past the end: back to the newest
    page["rows"] = rows[::-1]  # newest first
    page["paged"] = criteria.before is not None or criteria.after is not None
    page["newest"] = urlencode(base)
    return page


async def _traffic_context(request: web.Request) -> dict[str, Any]:
    page = await _page(request)
    values = page["values"]
    every = await platform_sql.briefs(_root(request)[STORE])
    return {
        **page,
        "query": urlencode({k: v for k, v in values.items() if v}),
        "platforms": choices(every),
        "names": {p.id: p.name for p in every},
        "kinds": KIND_CHOICES,
    }


# Past this many platforms a filter asks for the platform's id instead of listing every one in
# a <select>: 10,000 options were ~0.5 MB of HTML on every traffic and dead-letter page.
SELECT_MAX = 500


def choices(platforms: list[PlatformBrief]) -> list[tuple[int, str]] | None:
    """(id, name) of every platform for a filter's <select>; None past SELECT_MAX (an id field then)."""
    return [(p.id, p.name) for p in platforms] if len(platforms) <= SELECT_MAX else None


async def traffic(request: web.Request) -> web.Response:
    """GET /console/traffic?...: filters and one page of matching rows (partner traffic by default)."""
    context = await _traffic_context(request)
    return render(request, "traffic.html", context, status=400 if context["error"] else 200)


async def traffic_live(request: web.Request) -> web.Response:
    """GET /console/traffic/live?...: the results alone, for polling."""
    context = await _traffic_context(request)
    return render(request, "_traffic.html", context, status=400 if context["error"] else 200)


async def traffic_csv(request: web.Request) -> web.Response:
    """GET /console/traffic.csv?...: the matching rows (up to 10,000, newest), every column, as CSV."""
    values = {f: request.query.get(f, "")[:200] for f in FIELDS}
    criteria = _criteria(values, limit=CSV_ROWS)  # InvalidParameters: a 400 page
    rows = await search(_root(request), criteria)
    out = io.StringIO()
    writer = csv.writer(out)
    header = ("id", *COLUMNS)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in header])
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
    letters = [letter_view(m) for m in await deadletters_sql.dead_letters(root[STORE], platform_id=chosen, limit=500)]
    # The admin API's GET ?state=discarded: what was given up, with the operator's reason.
    closed = [letter_view(m) for m in await deadletters_sql.discarded(root[STORE], platform_id=chosen, limit=100)]
    every = await platform_sql.briefs(root[STORE])
    names = {p.id: p.name for p in every}
    return render(
        request,
        "deadletters.html",
        {
            "letters": letters,
            "discarded": closed,
            "names": names,
            "platform_id": chosen,
            "platforms": choices(every),
        },
    )


def letter_view(message: Message) -> dict[str, Any]:
    """The admin API's view of a dead letter, its URL redacted as in the traffic log (no token uids)."""
    parts = urlsplit(message.url)
    path = redact_path(parts.path, module=message.module)
    return {**message_json(message), "url": f"{parts.scheme}://{parts.netloc}{path}"}


def _chosen(form: Any) -> tuple[int | None, list[int], int | None]:
    """The letters a dead-letter form picks: one ("one"), the ticked ones ("ids"), or a platform's."""
    one = positive_int(form.get("one"))
    ids = [n for n in (positive_int(v) for v in form.getall("ids", [])) if n is not None]
    platform = positive_int(form.get("platform_id")) if form.get("scope") == "platform" else None
    return one, ids if form.get("scope") == "selected" else [], platform


def _back(form: Any) -> str:
    # Back where the form was: a platform's page, or the dead letters (filtered as they were).
    page = positive_int(form.get("back_platform"))
    return f"{PREFIX}/platforms/{page}" if page is not None else f"{PREFIX}/deadletters"


async def discard(request: web.Request) -> web.StreamResponse:
    """POST /console/deadletters/discard: close dead letters out with a required reason (the admin API's discard)."""
    form = await request.post()
    session = request[SESSION]
    one, ids, platform = _chosen(form)
    try:
        reason = discard_reason(form.get("reason"))
    except InvalidParameters as exc:
        session.flash("error", f"Nothing discarded: {exc.message}.")
        raise web.HTTPSeeOther(_back(form)) from None
    if one is not None:
        count = await discard_letters(_root(request), reason=reason, platform_id=None, ids=[one])
    elif ids:
        count = await discard_letters(_root(request), reason=reason, platform_id=None, ids=ids)
    elif platform is not None:
        count = await discard_letters(_root(request), reason=reason, platform_id=platform, ids=None)
    else:
        session.flash("error", "Nothing chosen: tick dead letters or pick a platform.")
        raise web.HTTPSeeOther(_back(form))
    what = f"message {one}" if one is not None else f"platform {platform}" if platform is not None else f"ids {ids}"
    await audit(request, "deadletters.discard", what[:200], outcome=f"ok: {count} discarded: {reason}"[:300])
    LOGGER.info("console: discarded %d dead letter(s)", count)
    session.flash("ok", f"{count} dead letter(s) discarded.")
    raise web.HTTPSeeOther(_back(form))


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
    what = f"message {one}" if one is not None else f"platform {platform}" if platform is not None else f"ids {ids}"
    await audit(request, "deadletters.redrive", what[:200], outcome=f"ok: {count} re-driven")
    LOGGER.info("console: re-drove %d dead letter(s)", count)
    session.flash("ok", f"{count} dead letter(s) back in the queue.")
    raise web.HTTPSeeOther(f"{PREFIX}/deadletters")
