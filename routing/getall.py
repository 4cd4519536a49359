"""GET via the hub answered from its own store (docs/DESIGN-NOTES.md, Routing): lists, and single Locations.

Pagination is the hub's own (transport_and_format, Pagination): ``offset``/``limit``,
``date_from`` inclusive, ``date_to`` exclusive, ``Link`` repeating the filters, ``X-Total-Count``
and ``X-Limit`` (the server's maximum page size). Order is the creation sequence, which updates
do not change, so a crawl never skips an object. The ``Link`` the hub hands out carries a keyset
``cursor`` (last seq served and the crawl's total): the next page is an index range, not an
OFFSET, and the total is counted once per crawl. A partner that computes its own ``offset``
still gets the right page. A reader on another version gets pages cut from what it can be
given (``_bridged_page``): some stored objects are withheld from it (routing/versions/answers.py).
A page carries at most ``page_max_bytes`` of stored JSON (at least one object): 1,000 Locations of
50 KB each were a 54 MB answer that took the hub from 90 to 351 MB, and 818 MB with four readers.

A party sees what was broadcast and what was sent to it, never another party's directed copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from config import Settings
from routing.clock import Clock, iso
from routing.decide import ModuleSpec
from routing.messages import PartyRef, Reply, RoutingHeaders
from routing.objects import canonical_time, find_child
from routing.protocol.envelope import around_json, dumps
from routing.protocol.errors import InvalidParameters, NotFound, UnknownLocation
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.versions import CORE, module_url
from routing.versions import answers as versions_answers
from routing.versions import wire as versions_wire
from routing.versions.flow import Flow
from storage import objects as object_sql
from storage.db import Store

MAX_LIMIT = 1000
# Rows one bridged page request reads and judges at most (a run of withheld objects): five
# full pages' worth, so no request costs more than a few pages however much is withheld.
SCAN_ROWS = 5 * MAX_LIMIT
BATCH_ROWS = 50


@dataclass(frozen=True)
class PageRequest:
    """What a partner asked for: filters, page size and where to start."""

    limit: int
    offset: int = 0
    cursor: int | None = None
    total: int | None = None  # the crawl's total, carried in our cursor
    date_from: str | None = None
    date_to: str | None = None


def _int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise InvalidParameters(f"{name} must be a non-negative integer")
    return int(raw)


def page_request(query: dict[str, str], max_limit: int = MAX_LIMIT) -> PageRequest:
    """Filters, limit, offset and our keyset cursor from a query; 2001 for anything unusable."""
    offset = _int(query, "offset", 0)
    limit = min(_int(query, "limit", max_limit), max_limit)
    cursor = total = None
    if query.get("cursor"):
        seq, _, count = query["cursor"].partition(".")
        # Both parts came from the database (64-bit integers): 18 digits at most, or it is not ours.
        if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in (seq, count)):
            raise InvalidParameters("cursor is not one the hub handed out")
        cursor, total = int(seq), int(count)
    date_from = canonical_time(query["date_from"], field="date_from") if query.get("date_from") else None
    date_to = canonical_time(query["date_to"], field="date_to") if query.get("date_to") else None
    return PageRequest(limit, offset, cursor, total, date_from, date_to)


def next_link(base_url: str, query: dict[str, str], offset: int, limit: int, cursor: str | None = None) -> str:
    """``<url>; rel="next"`` repeating the original filters (transport_and_format, Pagination)."""
    params = {k: v for k, v in query.items() if k not in ("offset", "limit", "cursor")}
    params["offset"] = str(offset)
    params["limit"] = str(limit)
    if cursor is not None:
        params["cursor"] = cursor
    return f'<{base_url}?{urlencode(params)}>; rel="next"'


def viewer_keys(parties: list[PartyRef]) -> list[str]:
    """The recipient keys whose directed copies these parties may read."""
    return [p.recipient for p in parties]


class StoreReader:
    """Serves GET-all pages and single Locations from the hub's stored copies."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.hub = PartyRef(settings.country_code, settings.party_id)

    async def page(
        self,
        spec: ModuleSpec,
        query: dict[str, str],
        requester: PartyRef,
        viewers: list[PartyRef],
        owners: set[str] | None = None,
        version: str = "2.2.1",
        *,
        flow: Flow,
    ) -> Reply:
        """One page of the module's objects the viewers may see, FROM the hub (GET All via Hub).

        ``owners``: only objects of these owners ('CC/PID/' key prefixes: the parties the viewers
        have a roaming agreement with); None: every owner. The next page's ``Link`` is on the
        URL of the caller's own version (``version``).
        """
        want = page_request(query)
        keys = viewer_keys(viewers)
        owner_keys = None if owners is None else sorted(owners)
        if flow.version != CORE and flow.answer_kind is not None:
            return await self._bridged_page(spec, query, want, requester, keys, owner_keys, version, flow)
        found = await object_sql.page(
            self.store,
            spec.name,
            viewers=keys,
            owners=owner_keys,
            limit=want.limit,
            cursor=want.cursor,
            offset=want.offset,
            date_from=want.date_from,
            date_to=want.date_to,
            # Fewer objects than asked when they are large: "to prevent [...] overloading the
            # system" (transport_and_format, Pagination, limit); the Link goes on from the last one.
            max_bytes=self.settings.page_max_bytes,
        )
        total = want.total
        if total is None:  # first page of a crawl (or a partner's own offset): count once
            total = await object_sql.count(
                self.store, spec.name, viewers=keys, owners=owner_keys, date_from=want.date_from, date_to=want.date_to
            )
        headers = {"X-Total-Count": str(total), "X-Limit": str(MAX_LIMIT)}
        if found.more and found.bodies:
            base = module_url(self.settings.public_url, version, spec.name, InterfaceRole.SENDER)
            served = want.offset + len(found.bodies)
            headers["Link"] = next_link(base, query, served, want.limit, f"{found.cursor}.{total}")
        headers.update(RoutingHeaders(from_party=self.hub, to_party=requester).as_headers())
        data = "[" + ",".join(found.bodies) + "]"
        # A reader on a sender's own version gets that sender's body (routing/versions/answers.py).
        versions_wire.keep_originals(
            flow,
            [(json.loads(b), v, json.loads(o)) for b, (v, o) in zip(found.bodies, found.origins, strict=True) if o],
        )
        return Reply(200, around_json(data, timestamp=iso(self.clock.now())), headers)

    async def _bridged_page(
        self,
        spec: ModuleSpec,
        query: dict[str, str],
        want: PageRequest,
        requester: PartyRef,
        keys: list[str],
        owner_keys: list[str] | None,
        version: str,
        flow: Flow,
    ) -> Reply:
        """A page for a reader on another version, cut from what it gets (transport_and_format, Pagination).

        Some stored 2.2.1 objects cannot reach it (an unpublished Location toward 2.1.1, an
        object invalid in its version: routing/versions/answers.py). Judging only a page's
        worth of rows would give it short pages while more follow and a total that counts
        what it never gets. So rows are read in keyset batches and judged until ``limit``
        items are kept, and on until the next kept one (its existence is what the Link
        promises); the cursor is the last row consumed, so no item is served twice or
        skipped. At most SCAN_ROWS rows are judged per request: past that the page is served
        as it is, with its Link (the server "might decide to return fewer objects").

        X-Total-Count: items served before this page + on it + still ahead. What is ahead is
        known only once judged, and judging every stored object for the first page would be
        a full scan per crawl; so the first page carries the count of stored objects the
        reader sees, less what this request withheld, and each page subtracts what it
        withheld on the way (the figure travels in the cursor). It never rises, is exact
        whenever nothing ahead is withheld, and on the last page is exactly what the crawl
        collected. ``offset`` in the Link counts items served, the reader's own view.
        """
        total = want.total
        if total is None:  # first page of a crawl (or a partner's own offset): count once
            total = await object_sql.count(
                self.store, spec.name, viewers=keys, owners=owner_keys, date_from=want.date_from, date_to=want.date_to
            )
        served: list[Any] = []
        cursor, skip, scanned, withheld = want.cursor, want.offset if want.cursor is None else 0, 0, 0
        ahead = more = False  # a kept item follows the page / rows follow the last one consumed
        spent = 0  # bytes of the stored bodies served (the page's byte budget)
        while scanned < SCAN_ROWS:
            # What the page still needs and one more (all kept: no row judged in vain), in
            # batches of at least BATCH_ROWS (a run of withheld rows is no query per row).
            batch = min(max(want.limit - len(served) + 1, BATCH_ROWS), SCAN_ROWS - scanned)
            found = await object_sql.page(
                self.store,
                spec.name,
                viewers=keys,
                owners=owner_keys,
                limit=batch,
                cursor=cursor,
                offset=skip,
                date_from=want.date_from,
                date_to=want.date_to,
                max_bytes=max(self.settings.page_max_bytes - spent, 0),
                first_always=not served,
            )
            skip = 0
            cores = [json.loads(b) for b in found.bodies]
            versions_wire.keep_originals(
                flow, [(c, v, json.loads(o)) for c, (v, o) in zip(cores, found.origins, strict=True) if o]
            )
            judged = await versions_answers.for_reader(flow, cores)
            for seq, size, (item, losses) in zip(found.seqs, found.sizes, judged, strict=True):
                if item is not versions_answers.WITHHELD and len(served) == want.limit:
                    ahead = True  # not consumed: the next page starts with it
                    break
                scanned, cursor = scanned + 1, seq
                flow.losses += losses  # only what is consumed: served, or withheld for good
                if item is versions_answers.WITHHELD:
                    withheld += 1
                else:
                    served.append(item)
                    spent += size
            more = ahead or found.more
            # Cut with nothing kept: the page's bytes are spent, the rest follows by the Link. (Rows
            # withheld from this reader counted in the batch's budget: what is left goes to the next.)
            if not more or ahead or (found.cut and not found.bodies):
                break
        # Every row up to the cursor is judged: what it withheld leaves the total for good.
        # The crawl's end: exactly what it collected.
        total = max(total - withheld, want.offset + len(served) + int(ahead)) if more else want.offset + len(served)
        # X-Limit: 2.1.1 "Number of objects that are returned" (an upper limit: the page size);
        # 2.2.1 on, the server's maximum whatever was asked (transport_and_format, Pagination).
        x_limit = want.limit if version == "2.1.1" else MAX_LIMIT
        headers = {"X-Total-Count": str(total), "X-Limit": str(x_limit)}
        if more and scanned and cursor is not None:  # nothing consumed (limit=0): no Link to the same page
            base = module_url(self.settings.public_url, version, spec.name, InterfaceRole.SENDER)
            headers["Link"] = next_link(base, query, want.offset + len(served), want.limit, f"{cursor}.{total}")
        headers.update(RoutingHeaders(from_party=self.hub, to_party=requester).as_headers())
        flow.answer_ready = True  # in the reader's version and judged: answer_for_caller passes it
        return Reply(200, around_json(dumps(served), timestamp=iso(self.clock.now())), headers)

    async def location(
        self,
        segments: list[str],
        requester: PartyRef,
        viewers: list[PartyRef],
        owners: set[str] | None = None,
        *,
        flow: Flow,
    ) -> Reply:
        """GET /locations/{id}[/{evse_uid}[/{connector_id}]] with TO = the hub, from its copy (of ``owners`` only)."""
        copies = await object_sql.find(
            self.store,
            ModuleID.LOCATIONS,
            segments[0],
            viewers=viewer_keys(viewers),
            owners=None if owners is None else sorted(owners),
        )
        if not copies:
            raise UnknownLocation(f"no location {segments[0]} is known to the hub")
        if len(copies) > 1:
            raise InvalidParameters(f"location {segments[0]} exists at several CPOs; send OCPI-to headers")
        body = copies[0].body
        core = json.loads(body)
        sent = json.loads(copies[0].origin_body) if copies[0].origin_body else None
        if len(segments) > 1:
            core = find_child(core, segments[1:])
            if core is None:
                raise NotFound(f"no {'/'.join(segments[1:])} in location {segments[0]}")
            sent = find_child(sent, segments[1:]) if isinstance(sent, dict) else None
            body = dumps(core)
        versions_wire.keep_originals(flow, [(core, copies[0].origin_version, sent)])
        headers = RoutingHeaders(from_party=self.hub, to_party=requester).as_headers()
        return Reply(200, around_json(body, timestamp=iso(self.clock.now())), headers)
