"""GET-all via the hub (docs/DESIGN-NOTES.md, Routing): list requests answered from the hub's store.

Pagination is the hub's own (transport_and_format, Pagination): ``offset``/``limit``,
``date_from`` inclusive, ``date_to`` exclusive, ``Link`` repeating the filters, ``X-Total-Count``
and ``X-Limit`` (the server's maximum page size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from routing.decide import ModuleSpec
from routing.errors import InvalidParameters
from routing.forward import Reply
from routing.headers import PartyRef, RoutingHeaders
from routing.objects import canonical_time
from storage import objects as object_sql

if TYPE_CHECKING:
    from routing.service import Inbound, RoutingService

MAX_LIMIT = 1000


def page_params(query: dict[str, str], max_limit: int = MAX_LIMIT) -> tuple[int, int, str | None, str | None]:
    """offset, limit, date_from, date_to from a query; 2001 for anything unusable."""
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", str(max_limit)))
    except ValueError as exc:
        raise InvalidParameters("offset and limit must be integers") from exc
    if offset < 0 or limit < 0:
        raise InvalidParameters("offset and limit must not be negative")
    date_from = canonical_time(query["date_from"], field="date_from") if query.get("date_from") else None
    date_to = canonical_time(query["date_to"], field="date_to") if query.get("date_to") else None
    return offset, min(limit, max_limit), date_from, date_to


def next_link(base_url: str, query: dict[str, str], offset: int, limit: int, returned: int, total: int) -> str | None:
    """``<url>; rel="next"`` with the original filters, or None on the last page."""
    if offset + returned >= total or returned == 0:
        return None
    params = {k: v for k, v in query.items() if k not in ("offset", "limit")}
    params["offset"] = str(offset + returned)
    params["limit"] = str(limit)
    return f'<{base_url}?{urlencode(params)}>; rel="next"'


def page_reply(bodies: list[str], timestamp: str) -> bytes:
    """An envelope around stored JSON texts, without parsing them."""
    return (
        b'{"data":['
        + ",".join(bodies).encode("utf-8")
        + b'],"status_code":1000,"timestamp":"'
        + timestamp.encode()
        + b'"}'
    )


async def get_all(service: RoutingService, spec: ModuleSpec, req: Inbound, sender: PartyRef) -> Reply:
    """Answer a GET list from the store, with the hub as FROM (docs/DESIGN-NOTES.md, Routing: GET-all via the hub)."""
    offset, limit, date_from, date_to = page_params(req.query)
    visible_to = None
    if not spec.broadcast:  # sessions and CDRs: only what was routed to the caller's parties
        visible_to = [f"{p.country_code.upper()}*{p.party_id.upper()}" for p in req.caller.parties]
    bodies, total = await object_sql.page_objects(
        service.store,
        spec.name,
        offset=offset,
        limit=limit,
        date_from=date_from,
        date_to=date_to,
        visible_to=visible_to,
    )
    base = f"{service.settings.public_url}/ocpi/2.2.1/{spec.name}/sender/"
    headers = {"X-Total-Count": str(total), "X-Limit": str(MAX_LIMIT)}
    link = next_link(base, req.query, offset, limit, len(bodies), total)
    if link:
        headers["Link"] = link
    headers.update(RoutingHeaders(from_party=service.hub, to_party=sender).as_headers())
    return Reply(200, page_reply(bodies, service.now()), headers)
