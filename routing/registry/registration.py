"""The credentials module's domain logic, in both directions (credentials.asciidoc).

Party-initiated: a party holding our token A POSTs its credentials; we read its API with its
token B, store endpoints and roles, and answer with a fresh token C. PUT rotates, DELETE
unregisters. Hub-initiated: the operator hands us a party's versions URL and token A; we read
its API, POST our credentials with a fresh token B, and keep the token C it returns.

Network calls never run inside a store transaction; every state change is one transaction.
The Credentials objects themselves (ours per version, theirs validated): routing/registry/credentials.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from config import Settings
from routing.clock import Clock, iso, parse_iso
from routing.jobs.cluster import CACHE_CHANNEL
from routing.messages import PartyRef
from routing.peers.client import PeerClient
from routing.peers.handshake import PeerApi, discover, unwrap_data
from routing.protocol.errors import (
    AuthError,
    InvalidParameters,
    MethodNotAllowed,
    NotFound,
    OcpiError,
    UnableToUseClientApi,
)
from routing.protocol.models import Credentials
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.registry.credentials import (
    credentials_for,
    new_token,
    parse_credentials,
    parties_of,
    role_hint,
    roles_text,
)
from routing.registry.identity import check_claims, conflict_error
from routing.versions import registration
from storage import clientinfo_due as clientinfo_sql
from storage import lifecycle as lifecycle_sql
from storage import platforms as platform_sql
from storage import tokens as token_sql
from storage.clientinfo_due import NewDue
from storage.db import Store, Transaction
from storage.errors import Conflict, RecordNotFound
from storage.models import Platform, TokenRecord

LOGGER = logging.getLogger(__name__)

# Called after every committed change of a platform (registration, rotation, status) with the
# platform, its status and whether it has just registered: the routing directory reloads,
# HubClientInfo pushes go out.
StatusListener = Callable[[Platform, str, bool], Awaitable[None]]

# RFC 9110: a 405 names the methods that are allowed (credentials.asciidoc: POST once, then PUT/DELETE).
_ALLOW_REGISTERED = {"Allow": "GET, PUT, DELETE"}
_ALLOW_UNREGISTERED = {"Allow": "GET, POST"}

# A platform whose registration ended (credentials DELETE either way). Not an OCPI
# ConnectionStatus: HubClientInfo announces its parties as SUSPENDED (routing/registry/clientinfo.py).
UNREGISTERED = "UNREGISTERED"


class Registry:
    """Registers, rotates and unregisters platforms; tells listeners about status changes."""

    def __init__(self, store: Store, client: PeerClient, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.clock = clock
        self.listeners: list[StatusListener] = []
        # Live tokens (kind C) by whole Authorization header value: every request after the first
        # is authenticated without a query, a base64 decode or a hash. Any registry transaction
        # may add or revoke tokens, so each one empties the cache.
        self._caller_cache: dict[str, tuple[TokenRecord, str]] = {}

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        try:
            async with self.store.transaction() as tx:
                yield tx
        finally:
            self._caller_cache.clear()
        # Other hub processes on the database drop their token caches and re-read the platforms.
        await self.store.notify(CACHE_CHANNEL, "registry")

    def forget_callers(self) -> None:
        """Another process changed tokens or platforms: authenticate from the store again."""
        self._caller_cache.clear()

    def cached_caller(self, header: str) -> tuple[TokenRecord, str] | None:
        """The live token record and token for an Authorization header seen before, if still valid."""
        return self._caller_cache.get(header)

    def remember_caller(self, header: str, record: TokenRecord, token: str) -> None:
        """Remember a header that authenticated a live kind-C token (bounded by the live tokens)."""
        if record.kind == "C" and record.expires_at is None and len(self._caller_cache) < 10_000:
            self._caller_cache[header] = (record, token)

    def _now(self) -> str:
        return iso(self.clock.now())

    async def credentials_for(self, token: str, version: str, platform_id: int) -> dict[str, Any]:
        """The hub's Credentials for one platform, in its version (routing/registry/credentials.py)."""
        return await credentials_for(self.store, self.settings, token, version, platform_id)

    async def _notify(self, platform_id: int, status: str, *, registered: bool = False) -> None:
        if not self.listeners:
            return
        platform = await platform_sql.get_platform(self.store, platform_id)
        for listener in self.listeners:
            await listener(platform, status, registered)

    async def _owe_clientinfo(
        self, tx: Transaction, platform_id: int, status: str, *, registered: bool = False
    ) -> None:
        """Commit the HubClientInfo fan-out this change owes with the change (routing/registry/clientinfo.py).

        In the change's own transaction: a crash after the answer cannot lose it (the pusher
        resumes it at start). Every ``_notify`` follows a transaction that called this.
        """
        lease = iso(self.clock.now() + timedelta(seconds=self.settings.cluster.lease_seconds))
        due = NewDue(platform_id=platform_id, status=status, registered=registered, created_at=self._now())
        await clientinfo_sql.add(tx, due, owner=self.store.owner, lease_until=lease)

    # ---- authentication ---------------------------------------------------------------------

    async def authenticate(self, candidates: list[str]) -> TokenRecord:
        """Find the token among raw/decoded candidates; refuse unknown or expired ones (401)."""
        record = await token_sql.find_token(self.store, [token_sql.token_hash(c) for c in candidates])
        if record is None:
            raise AuthError("unknown credentials token")
        if record.expires_at is not None and parse_iso(record.expires_at) <= self.clock.now():
            raise AuthError("credentials token A has expired")
        return record

    # ---- invitations (token A) ----------------------------------------------------------------

    async def invite(self, name: str, role: str | None = None) -> tuple[Platform, str]:
        """Create a PLANNED platform and a single-use, expiring token A for it.

        ``role``: what the partner serves, needed if it registers in OCPI 2.1.1 (no roles there).
        """
        token_a = new_token()
        now = self.clock.now()
        expires = iso(now + timedelta(seconds=self.settings.token_a_ttl))
        async with self._transaction() as tx:
            platform_id = await platform_sql.create_platform(
                tx, name=name, status="PLANNED", initiated_by="party", now=iso(now)
            )
            await token_sql.add_token(tx, platform_id, token_a, kind="A", now=iso(now), expires_at=expires)
            await platform_sql.set_role_hint(tx, platform_id, role)
        LOGGER.info("invitation created for platform %s (%s), token A expires %s", platform_id, name, expires)
        return await platform_sql.get_platform(self.store, platform_id), token_a

    # ---- party-initiated ---------------------------------------------------------------------

    async def register(self, caller: TokenRecord, body: Any, *, version: str = "2.2.1") -> dict[str, Any]:
        """Credentials POST in ``version``: only with token A, only once (405 when registered)."""
        platform = await platform_sql.get_platform(self.store, caller.platform_id)
        if caller.kind != "A" or platform.registered:
            raise MethodNotAllowed(
                "already registered: use PUT to update or DELETE to unregister", headers=dict(_ALLOW_REGISTERED)
            )
        creds = parse_credentials(registration.core_body(version, body, platform.role_hint))
        await self._check_claims(platform.id, creds)  # before the partner's API is read
        api = await discover(self.client, creds.url, creds.token, want=version)
        token_c = new_token()
        # Token A is single use: consumed in the same transaction that stores the registration,
        # so two concurrent POSTs with one token A cannot both register.
        await self._store_registration(
            platform.id, api, creds, token_c, replace_kind=None, consume=caller.token_hash, registered=True
        )
        LOGGER.info("platform %s (%s) registered with roles %s", platform.id, platform.name, roles_text(creds))
        await self._notify(platform.id, "CONNECTED", registered=True)
        return await self.credentials_for(token_c, version, platform.id)

    async def update(self, caller: TokenRecord, body: Any, *, version: str = "2.2.1") -> dict[str, Any]:
        """Credentials PUT: re-read the partner's API, issue a new token C (405 when not registered)."""
        platform = await platform_sql.get_platform(self.store, caller.platform_id)
        if caller.kind != "C" or not platform.registered:
            raise MethodNotAllowed("not registered: use POST to register", headers=dict(_ALLOW_UNREGISTERED))
        creds = parse_credentials(registration.core_body(version, body, role_hint(platform)))
        await self._check_claims(platform.id, creds)
        api = await discover(self.client, creds.url, creds.token, send_base64=platform.send_base64, want=version)
        token_c = new_token()
        # An operator's suspension outlives a token rotation; anything else is alive again.
        status = "SUSPENDED" if platform.status == "SUSPENDED" else "CONNECTED"
        await self._store_registration(platform.id, api, creds, token_c, replace_kind="C", status=status)
        LOGGER.info("platform %s (%s) updated its credentials", platform.id, platform.name)
        await self._notify(platform.id, status)
        return await self.credentials_for(token_c, version, platform.id)

    async def unregister(self, caller: TokenRecord) -> None:
        """Credentials DELETE: forget the partner's token and endpoints (405 when not registered)."""
        platform = await platform_sql.get_platform(self.store, caller.platform_id)
        if caller.kind != "C" or not platform.registered:
            raise MethodNotAllowed("not registered: use POST to register", headers=dict(_ALLOW_UNREGISTERED))
        await self._forget(platform.id, reason="receiver unregistered itself (credentials DELETE)")
        LOGGER.info("platform %s (%s) unregistered itself", platform.id, platform.name)
        await self._notify(platform.id, UNREGISTERED)

    async def _check_claims(self, platform_id: int, creds: Credentials) -> None:
        """PartyConflict (2001) for role HUB, the hub's own pair, or a pair another platform holds."""
        claims = [(r.country_code, r.party_id, r.role) for r in creds.roles]
        await check_claims(
            self.store, PartyRef(self.settings.country_code, self.settings.party_id), platform_id, claims
        )

    async def _store_registration(
        self,
        platform_id: int,
        api: PeerApi,
        creds: Credentials,
        token_c: str,
        *,
        replace_kind: str | None,
        consume: str | None = None,
        status: str = "CONNECTED",
        registered: bool = False,
    ) -> None:
        now = self._now()
        try:
            async with self._transaction() as tx:
                if consume is not None and not await token_sql.consume_token(tx, consume):
                    raise AuthError("credentials token A has already been used")
                await _save(tx, platform_id, creds, api, status, now)
                if replace_kind is not None:
                    await token_sql.revoke_tokens(tx, platform_id, kind=replace_kind)
                await token_sql.add_token(tx, platform_id, token_c, kind="C", now=now)
                await self._owe_clientinfo(tx, platform_id, status, registered=registered)
        except Conflict as exc:
            raise conflict_error(exc) from exc

    # ---- hub-initiated -----------------------------------------------------------------------

    async def connect(
        self, versions_url: str, token_a: str, *, name: str | None = None, role: str | None = None
    ) -> Platform:
        """Register with a party that gave us its versions URL and token A (``role``: for 2.1.1)."""
        api = await discover(self.client, versions_url, token_a)
        token_b = new_token()
        now = self._now()
        # Token B must be live before we POST: the party calls our versions with it first.
        async with self._transaction() as tx:
            platform_id = await platform_sql.create_platform(
                tx, name=name or versions_url, status="PLANNED", initiated_by="hub", now=now, versions_url=versions_url
            )
            await token_sql.add_token(tx, platform_id, token_b, kind="C", now=now)
            await platform_sql.set_role_hint(tx, platform_id, role)
        try:
            creds = await self._post_credentials(
                "POST", api, token_a, token_b, api.send_base64, role=role, platform_id=platform_id
            )
            if name is None and creds.roles:
                name = creds.roles[0].business_details.name
            await self._check_claims(platform_id, creds)
            await self._store_registration(platform_id, api, creds, token_b, replace_kind="C", registered=True)
            if name:
                async with self._transaction() as tx:
                    await platform_sql.rename_platform(tx, platform_id, name)
        except BaseException:
            async with self._transaction() as tx:
                await platform_sql.delete_platform(tx, platform_id)
            raise
        LOGGER.info("connected to platform %s at %s", platform_id, versions_url)
        await self._notify(platform_id, "CONNECTED", registered=True)
        return await platform_sql.get_platform(self.store, platform_id)

    async def rotate(self, platform_id: int) -> Platform:
        """Hub-initiated update: PUT our credentials with a new token B, keep the new token C."""
        platform = await self.get(platform_id)
        if not platform.registered or platform.token_out is None or platform.versions_url is None:
            raise MethodNotAllowed("platform is not registered")
        api = PeerApi(platform.versions_url, platform.version or "2.2.1", platform.endpoints)
        token_b = new_token()
        async with self._transaction() as tx:
            await token_sql.add_token(tx, platform_id, token_b, kind="C", now=self._now())
        try:
            creds = await self._post_credentials(
                "PUT",
                api,
                platform.token_out,
                token_b,
                platform.send_base64,
                role=role_hint(platform),
                platform_id=platform_id,
            )
            await self._check_claims(platform_id, creds)
            fresh = await discover(
                self.client, creds.url, creds.token, send_base64=platform.send_base64, want=api.version
            )
        except BaseException:
            async with self._transaction() as tx:
                await token_sql.revoke_token(tx, token_sql.token_hash(token_b))
            raise
        now = self._now()
        try:
            async with self._transaction() as tx:
                await token_sql.revoke_tokens(tx, platform_id, kind="C", keep_hash=token_sql.token_hash(token_b))
                await _save(tx, platform_id, creds, fresh, platform.status, now)
                await self._owe_clientinfo(tx, platform_id, platform.status)
        except Conflict as exc:
            raise conflict_error(exc) from exc
        LOGGER.info("rotated credentials with platform %s", platform_id)
        await self._notify(platform_id, platform.status)
        return await self.get(platform_id)

    async def disconnect(self, platform_id: int) -> tuple[Platform, str]:
        """Hub-initiated unregister: credentials DELETE to the peer, then revoke everything locally."""
        platform = await self.get(platform_id)
        peer_answer = "not registered"
        url = platform.endpoint(ModuleID.CREDENTIALS, InterfaceRole.SENDER) or platform.endpoint(
            ModuleID.CREDENTIALS, InterfaceRole.RECEIVER
        )
        if platform.registered and url and platform.token_out:
            try:
                response = await self.client.send(
                    "DELETE", url, token=platform.token_out, send_base64=platform.send_base64
                )
                peer_answer = response.describe()
            except OcpiError as exc:
                # The operator asked for it: the peer being unreachable must not keep it registered.
                peer_answer = exc.message
        # Routine offboarding: the operator chose this, so what was still queued for the platform
        # is closed out (kept as 'discarded' with the reason) and /status returns to ok.
        await self._forget(platform_id, reason="closed out: receiver unregistered by the hub operator", close_out=True)
        LOGGER.info("unregistered platform %s (peer said: %s)", platform_id, peer_answer)
        await self._notify(platform_id, UNREGISTERED)
        return await self.get(platform_id), peer_answer

    async def _forget(self, platform_id: int, *, reason: str, close_out: bool = False) -> None:
        """UNREGISTERED: token and endpoints gone; what was queued for it is closed out or buried.

        ``close_out`` (the operator's own unregister): pending messages and dead letters become
        'discarded' with ``reason``. Otherwise (the partner left by itself) pending messages become
        dead letters: an operator should decide (re-drive once it is back, or discard).
        """
        now = self._now()
        async with self._transaction() as tx:
            await platform_sql.forget_registration(tx, platform_id, status=UNREGISTERED, now=now)
            settle = lifecycle_sql.close_out_queue if close_out else lifecycle_sql.bury_queue
            count = await settle(tx, platform_id, reason=reason, now=now)
            await self._owe_clientinfo(tx, platform_id, UNREGISTERED)
        if count:
            became = "were closed out" if close_out else "became dead letters"
            LOGGER.warning("%d undelivered message(s) for platform %s %s: %s", count, platform_id, became, reason)

    async def _post_credentials(
        self,
        method: str,
        api: PeerApi,
        their_token: str,
        our_token: str,
        send_base64: bool = True,
        *,
        role: str | None = None,
        platform_id: int,
    ) -> Credentials:
        url = api.url(ModuleID.CREDENTIALS)
        assert url is not None  # discover() guarantees it
        try:
            response = await self.client.send(
                method,
                url,
                token=their_token,
                send_base64=send_base64,
                json_body=await self.credentials_for(our_token, api.version, platform_id),
                expect="object",
            )
        except OcpiError as exc:
            raise UnableToUseClientApi(f"{method} {url}: {exc.message}") from exc
        data = unwrap_data(response, f"{method} {url}")
        try:
            return parse_credentials(registration.core_body(api.version, data, role))
        except InvalidParameters as exc:
            raise UnableToUseClientApi(f"{method} {url}: {exc.message}") from exc

    # ---- admin ---------------------------------------------------------------------------------

    async def get(self, platform_id: int) -> Platform:
        """One platform (404 when unknown)."""
        try:
            return await platform_sql.get_platform(self.store, platform_id)
        except RecordNotFound as exc:
            raise NotFound(f"platform {platform_id} does not exist") from exc

    async def set_interop(self, platform_id: int, *, send_base64: bool, pull_interval: float | None) -> Platform:
        """Change how the hub talks to one platform (token encoding, pull interval)."""
        platform = await self.get(platform_id)
        async with self._transaction() as tx:
            await platform_sql.set_interop(
                tx, platform_id, send_base64=send_base64, pull_interval=pull_interval, now=self._now()
            )
            await self._owe_clientinfo(tx, platform_id, platform.status)
        LOGGER.info("platform %s: interop send_base64=%s pull_interval=%s", platform_id, send_base64, pull_interval)
        await self._notify(platform_id, platform.status)
        return await self.get(platform_id)

    async def set_status(self, platform_id: int, status: str) -> Platform:
        """Suspend or resume a platform; listeners push HubClientInfo."""
        platform = await self.get(platform_id)
        if platform.status == UNREGISTERED:
            raise MethodNotAllowed("platform is unregistered: invite its partner again (ocpi-hub invite)")
        if status == "CONNECTED" and not platform.registered:
            raise MethodNotAllowed("platform has no completed registration to resume")
        if platform.status != status:
            async with self._transaction() as tx:
                await platform_sql.set_status(tx, platform_id, status, now=self._now())
                await self._owe_clientinfo(tx, platform_id, status)
            LOGGER.info("platform %s status %s -> %s", platform_id, platform.status, status)
            await self._notify(platform_id, status)
        return await self.get(platform_id)


async def _save(tx: Transaction, platform_id: int, creds: Credentials, api: PeerApi, status: str, now: str) -> None:
    """Store what a credentials exchange learned: the peer's URL, token, version, endpoints and parties."""
    await platform_sql.save_registration(
        tx,
        platform_id,
        versions_url=creds.url,
        version=api.version,
        token_out=creds.token,
        endpoints=api.endpoints,
        parties=parties_of(platform_id, creds, now),
        status=status,
        now=now,
        send_base64=api.send_base64,
    )
