"""Hub URLs standing in for partners' own: response_url callbacks, Link pages, CDR Locations.

docs/DESIGN-NOTES.md, Callbacks and stand-in URLs.

The CPO cannot reach the eMSP's ``response_url``, nor the eMSP the CPO's next ``Link`` page:
the hub hands out ``{base}/ocpi/2.2.1/callbacks/{id}`` and ``{base}/ocpi/2.2.1/proxy/{id}``
instead, each an unguessable id mapped to the original URL, to who may call it and until when.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from config import Settings
from routing.clock import Clock, iso, parse_iso
from routing.delivery.intake import Delivery
from routing.messages import Inbound, Leg, PartyRef, Reply, RoutingHeaders, Target
from routing.objects import ObjectRef
from routing.peers.client import PeerClient
from routing.peers.forward import new_request_id, relay, send_leg
from routing.peers.ssrf import UrlRefused
from routing.protocol.envelope import around_json
from routing.protocol.errors import ConnectionProblem, InvalidParameters, NotFound
from routing.protocol.vocab import ModuleID
from routing.registry.directory import Directory
from routing.versions import version_prefix
from routing.versions import wire as versions_wire
from routing.versions.flow import Flow
from storage import objects as object_sql
from storage import proxies as proxy_sql
from storage.db import Store
from storage.models import Platform
from storage.proxies import Proxy

LOGGER = logging.getLogger(__name__)

CALLBACK_MARGIN = 60.0  # seconds beyond the CommandResponse timeout a late result is still taken
RESERVATION_MAX = 7 * 86400.0  # a ReserveNow URL outlives its CommandResponse, but not forever
PAGE_TTL = 3600.0
CDR_TTL = 400 * 86400.0
STORE_PREFIX = "store:"
_LINK = re.compile(r"<([^>]*)>\s*;\s*rel=\"?next\"?", re.IGNORECASE)


@dataclass(kw_only=True, eq=False)
class Proxies:
    """Creates and serves the hub's stand-in URLs."""

    store: Store
    client: PeerClient
    directory: Directory
    delivery: Delivery
    settings: Settings
    clock: Clock
    hub: PartyRef = field(init=False)

    def __post_init__(self) -> None:
        self.hub = PartyRef(self.settings.country_code, self.settings.party_id)

    def _url(self, kind: str, proxy_id: str, version: str = "2.2.1") -> str:
        """A stand-in URL under the prefix of the version its user speaks (2.1.1 callers too)."""
        return f"{self.settings.public_url}{version_prefix(version)}/{kind}/{proxy_id}"

    async def _create(self, **fields: Any) -> str:
        proxy_id = secrets.token_urlsafe(24)
        now = self.clock.now()
        ttl = fields.pop("ttl")
        proxy = Proxy(id=proxy_id, created_at=iso(now), expires_at=iso(now + timedelta(seconds=ttl)), **fields)
        await self.store.write(lambda tx: proxy_sql.create_proxy(tx, proxy))
        return proxy_id

    def _refused(self, url: str) -> bool:
        """Whether the SSRF guard (routing/peers/ssrf.py) forbids the hub to call this partner URL."""
        try:
            self.client.check_url(url)
        except UrlRefused:
            return True
        return False

    # ---- response_url (commands, chargingprofiles) -------------------------------------------

    async def swap_response_url(
        self, req: Inbound, target: Target, sender: PartyRef, routing: RoutingHeaders
    ) -> tuple[bytes | None, str, str | None]:
        """Replace the requester's response_url (body, or query for GET/DELETE profiles) with a hub URL."""
        in_query = req.module == ModuleID.CHARGING_PROFILES and req.method in ("GET", "DELETE")
        body: Any = None
        if in_query:
            original = req.query.get("response_url")
        elif req.module == ModuleID.COMMANDS or req.method == "PUT":
            body = req.body[0] if isinstance(req.body, list) and len(req.body) == 1 else req.body
            if not isinstance(body, dict):
                raise InvalidParameters("the request body must be a JSON object")
            original = body.get("response_url")
        else:
            return req.raw_body, req.query_string, None
        if not isinstance(original, str) or not re.match(r"^https?://[^/?#\s]+", original):
            raise InvalidParameters("response_url is required and must be an http(s) URL")
        try:  # SSRF guard (routing/peers/ssrf.py): the hub will POST the result there
            self.client.check_url(original)
        except UrlRefused as exc:
            raise InvalidParameters(f"response_url refused: {exc.message}") from exc
        ttl = self.settings.command_timeout + CALLBACK_MARGIN
        reservation_ends = self._reservation_end(req, body)
        if reservation_ends is not None:
            until_end = (reservation_ends - self.clock.now()).total_seconds() + CALLBACK_MARGIN
            ttl = max(ttl, min(until_end, RESERVATION_MAX))
        proxy_id = await self._create(
            kind="callback",
            module=req.module,
            target_url=original,
            target_platform_id=req.caller.id,
            allowed_platform_id=target.platform.id,
            from_country_code=sender.country_code,
            from_party_id=sender.party_id,
            to_country_code=target.party.country_code,
            to_party_id=target.party.party_id,
            correlation_id=req.correlation_id,
            ttl=ttl,
        )
        hub_url = self._url("callbacks", proxy_id, versions_wire.version_of(target.platform))
        if in_query:
            query = dict(parse_qsl(req.query_string, keep_blank_values=True))
            query["response_url"] = hub_url
            return req.raw_body, urlencode(query), proxy_id
        new_body = {**body, "response_url": hub_url}
        return json.dumps(new_body, separators=(",", ":"), ensure_ascii=False).encode(), req.query_string, proxy_id

    @staticmethod
    def _reservation_end(req: Inbound, body: Any) -> datetime | None:
        """A ReserveNow's ``expiry_date``: until then the CPO may still POST CANCELED_RESERVATION."""
        if req.module != ModuleID.COMMANDS or not req.segments or req.segments[0].upper() != "RESERVE_NOW":
            return None
        value = body.get("expiry_date") if isinstance(body, dict) else None
        if not isinstance(value, str):
            return None
        try:
            return parse_iso(value)
        except ValueError:
            return None

    async def expire_after_answer(self, proxy_id: str, data: Any) -> None:
        """Set the callback's expiry from the CommandResponse/ChargingProfileResponse ``timeout``.

        Not ACCEPTED (or no OCPI data): no result will come (mod_commands, CommandResponse), the
        URL expires at once. ACCEPTED: the ``timeout`` plus a margin, but never earlier than set
        at creation (a ReserveNow's URL lives until the reservation's expiry_date). ``data`` is
        the receiver's answer data as the client read it.
        """
        now = self.clock.now()
        expires = now
        if isinstance(data, dict) and data.get("result") == "ACCEPTED":
            timeout = data.get("timeout")
            seconds = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else 0.0
            expires = now + timedelta(seconds=max(seconds, self.settings.command_timeout) + CALLBACK_MARGIN)
            proxy = await proxy_sql.get_proxy(self.store, proxy_id)
            if proxy is not None:
                expires = max(expires, parse_iso(proxy.expires_at))
        stamp = iso(expires)
        await self.store.write(lambda tx: proxy_sql.set_expiry(tx, proxy_id, stamp))

    async def discard_callback(self, proxy_id: str) -> None:
        """Expire a callback at once: the forward failed (4002/4003/no OCPI answer), no result may follow."""
        stamp = iso(self.clock.now())
        await self.store.write(lambda tx: proxy_sql.set_expiry(tx, proxy_id, stamp))

    async def _usable(self, proxy_id: str, caller: Platform, kind: str) -> Proxy:
        proxy = await proxy_sql.get_proxy(self.store, proxy_id)
        # Forged, foreign and expired ids all get the same answer: nothing to learn by probing.
        if proxy is None or proxy.kind not in kind.split("|") or proxy.allowed_platform_id != caller.id:
            raise NotFound("unknown or expired URL")
        if parse_iso(proxy.expires_at) <= self.clock.now():
            raise NotFound("unknown or expired URL")
        return proxy

    def _platform(self, platform_id: int) -> Platform:
        platform = self.directory.platform(platform_id)
        if platform is None or not platform.registered:
            raise ConnectionProblem("the platform behind this URL is no longer connected")
        return platform

    async def handle_callback(
        self, proxy_id: str, caller: Platform, raw_body: bytes, correlation_id: str | None, flow: Flow
    ) -> Reply:
        """A CPO posts a CommandResult/*ProfileResult: check it, deliver it to the original response_url.

        The result is a request of its own: it keeps the X-Correlation-ID it arrived with
        (transport_and_format 4.1.1: the hub forwards the correlation id it received); a CPO that
        sent none gets the original command's, so the whole exchange stays findable under one id.
        ``flow``: the result's translation Flow (routing/versions/flow.py), carried on the leg.
        """
        proxy = await self._usable(proxy_id, caller, "callback")
        raw_body = versions_wire.inbound_callback(flow, proxy.module, raw_body)
        to_party = PartyRef(proxy.from_country_code or "", proxy.from_party_id or "")
        from_party = PartyRef(proxy.to_country_code or "", proxy.to_party_id or "")
        routing = RoutingHeaders(from_party=from_party, to_party=to_party)
        leg = Leg(
            method="POST",
            url=proxy.target_url,
            platform=self._platform(proxy.target_platform_id),
            routing=routing,
            correlation_id=correlation_id or proxy.correlation_id or new_request_id(),
            body=raw_body,
            module=proxy.module,
            object_key=f"callback/{proxy.id}",
            flow=flow,
        )
        answer = await self.delivery.relay_push(leg)
        answer.headers.update(routing.swapped().as_headers())
        answer.headers["X-Correlation-ID"] = leg.correlation_id  # the id this exchange goes by
        return answer

    # ---- Link pages and CDR Locations ---------------------------------------------------------

    async def rewrite_link(self, answer: Reply, leg: Leg, caller: Platform) -> None:
        """Point a relayed ``Link: <...>; rel="next"`` at a hub URL that proxies the next page."""
        key = next((k for k in answer.headers if k.lower() == "link"), None)
        if key is None:
            return
        match = _LINK.search(answer.headers[key])
        if match is None or self._refused(match.group(1)):
            # No usable next page (or one the SSRF guard refuses): the caller sees the last page.
            if match is not None:
                LOGGER.warning("dropping a Link the SSRF guard refuses from platform %s", leg.platform.id)
            del answer.headers[key]
            return
        routing = leg.routing or RoutingHeaders(None, None)
        proxy_id = await self._create(
            kind="page",
            module=leg.module,
            target_url=match.group(1),
            target_platform_id=leg.platform.id,
            allowed_platform_id=caller.id,
            from_country_code=routing.from_party.country_code if routing.from_party else None,
            from_party_id=routing.from_party.party_id if routing.from_party else None,
            to_country_code=routing.to_party.country_code if routing.to_party else None,
            to_party_id=routing.to_party.party_id if routing.to_party else None,
            correlation_id=leg.correlation_id,
            ttl=PAGE_TTL,
        )
        answer.headers[key] = f'<{self._url("proxy", proxy_id, versions_wire.version_of(caller))}>; rel="next"'

    async def rewrite_cdr_location(
        self, answer: Reply, ref: ObjectRef, target: Target, caller: Platform, sender: PartyRef
    ) -> None:
        """The CDR POST ``Location`` header becomes a hub URL proxying the GET (mod_cdrs, POST).

        The stand-in keeps the routing parties: the CPO's later GET goes FROM it TO the eMSP.
        """
        key = next((k for k in answer.headers if k.lower() == "location"), None)
        original = answer.headers.pop(key) if key else None
        if original is not None and self._refused(original):
            LOGGER.warning("ignoring a CDR Location the SSRF guard refuses; serving the hub's copy")
            original = None
        proxy_id = await self._create(
            kind="cdr",
            module=ModuleID.CDRS,
            target_url=original or f"{STORE_PREFIX}{ref.key}",
            target_platform_id=target.platform.id,
            allowed_platform_id=caller.id,
            from_country_code=sender.country_code,
            from_party_id=sender.party_id,
            to_country_code=target.party.country_code,
            to_party_id=target.party.party_id,
            correlation_id=None,
            ttl=CDR_TTL,
        )
        answer.headers["Location"] = self._url("proxy", proxy_id, versions_wire.version_of(caller))

    async def handle_proxy_get(
        self, proxy_id: str, caller: Platform, correlation_id: str, timestamp: str, flow: Flow
    ) -> Reply:
        """GET a proxied page or CDR from the partner (or the hub's copy), rewriting the next Link again."""
        proxy = await self._usable(proxy_id, caller, "page|cdr")
        # The answer data in the caller's version, like the first page's (routing/versions/wire.py).
        versions_wire.open_answer(flow, proxy.module, "CDR" if proxy.kind == "cdr" else None)
        routing = RoutingHeaders(
            from_party=PartyRef(proxy.from_country_code, proxy.from_party_id)
            if proxy.from_country_code and proxy.from_party_id
            else None,
            to_party=PartyRef(proxy.to_country_code, proxy.to_party_id)
            if proxy.to_country_code and proxy.to_party_id
            else None,
        )
        if proxy.target_url.startswith(STORE_PREFIX):
            stored = await object_sql.get_any(self.store, ModuleID.CDRS, proxy.target_url[len(STORE_PREFIX) :])
            if stored is None:
                raise NotFound("the CDR is not stored at the hub")
            if stored.origin_body:  # the CPO's own CDR for a reader on its version
                sent = json.loads(stored.origin_body)
                versions_wire.keep_originals(flow, [(json.loads(stored.body), stored.origin_version, sent)])
            answer = Reply(200, around_json(stored.body, timestamp=timestamp), from_hub=True)
            if routing.from_party is not None:
                answer.headers.update(RoutingHeaders(self.hub, routing.from_party).as_headers())
            return answer
        leg = Leg(
            method="GET",
            url=proxy.target_url,
            platform=self._platform(proxy.target_platform_id),
            routing=routing if routing.from_party and routing.to_party else None,
            correlation_id=correlation_id,
            module=proxy.module,
            expect="list" if proxy.kind == "page" else "object",
            flow=flow,
        )
        answer = relay(await send_leg(self.client, leg))
        await self.rewrite_link(answer, leg, caller)
        if routing.to_party is not None:
            answer.headers.update(routing.swapped().as_headers())
        return answer
