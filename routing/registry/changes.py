"""What every committed change of a platform entails, whichever side of the handshake made it.

One transaction per change (``_transaction``), which empties the token cache and tells the other
hub processes; the HubClientInfo fan-out the change owes, committed in that same transaction; the
status listeners, told after it. Here too: token lookup, the writes the credentials exchanges of
both directions share (store a registration, forget one), and the operator's own changes
(status, interop).

Separate from routing/registry/registration.py, the handshake itself (the calls to the partner
and the order of the steps, in both directions), so that each reads on its own: nothing here
calls a partner, and the handshake opens its transactions only through ``_transaction``.
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
from routing.peers.handshake import PeerApi
from routing.protocol.errors import AuthError, MethodNotAllowed, NotFound
from routing.protocol.models import Credentials
from routing.registry.credentials import credentials_for, parties_of
from routing.registry.directory import change_note
from routing.registry.identity import check_claims, conflict_error
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

# A platform whose registration ended (credentials DELETE either way). Not an OCPI
# ConnectionStatus: HubClientInfo announces its parties as SUSPENDED (routing/registry/clientinfo.py).
UNREGISTERED = "UNREGISTERED"


class PlatformChanges:
    """Commits platform changes with the HubClientInfo they owe and tells listeners; the operator's changes."""

    def __init__(self, store: Store, settings: Settings, clock: Clock) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.listeners: list[StatusListener] = []
        # Live tokens (kind C) by whole Authorization header value: every request after the first
        # is authenticated without a query, a base64 decode or a hash. Any registry transaction
        # may add or revoke tokens, so each one empties the cache.
        self._caller_cache: dict[str, tuple[TokenRecord, str]] = {}

    @asynccontextmanager
    async def _transaction(self, platform_id: int | None) -> AsyncIterator[Transaction]:
        """One registry change of ``platform_id``, told to the other processes after its commit.

        None: a change that creates the platform's row; its caller tells them (``_tell``) once
        the id is known.
        """
        try:
            async with self.store.transaction() as tx:
                yield tx
        finally:
            self._caller_cache.clear()
        if platform_id is not None:
            await self._tell(platform_id)

    async def _tell(self, platform_id: int) -> None:
        # Other hub processes on the database drop their token caches and re-read this platform
        # alone (Directory.refresh; all 10,000 would be ~1.3 s of CPU in each of them).
        await self.store.notify(CACHE_CHANNEL, change_note(platform_id))

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

    # ---- what the credentials exchanges of both directions write ------------------------------

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
            async with self._transaction(platform_id) as tx:
                if consume is not None and not await token_sql.consume_token(tx, consume):
                    raise AuthError("credentials token A has already been used")
                await save_exchange(tx, platform_id, creds, api, status, now)
                if replace_kind is not None:
                    await token_sql.revoke_tokens(tx, platform_id, kind=replace_kind)
                await token_sql.add_token(tx, platform_id, token_c, kind="C", now=now)
                await self._owe_clientinfo(tx, platform_id, status, registered=registered)
        except Conflict as exc:
            raise conflict_error(exc) from exc

    async def _forget(self, platform_id: int, *, reason: str, close_out: bool = False) -> None:
        """UNREGISTERED: token and endpoints gone; what was queued for it is closed out or buried.

        ``close_out`` (the operator's own unregister): pending messages and dead letters become
        'discarded' with ``reason``. Otherwise (the partner left by itself) pending messages become
        dead letters: an operator should decide (re-drive once it is back, or discard).
        """
        now = self._now()
        async with self._transaction(platform_id) as tx:
            await platform_sql.forget_registration(tx, platform_id, status=UNREGISTERED, now=now)
            settle = lifecycle_sql.close_out_queue if close_out else lifecycle_sql.bury_queue
            count = await settle(tx, platform_id, reason=reason, now=now)
            await self._owe_clientinfo(tx, platform_id, UNREGISTERED)
        if count:
            became = "were closed out" if close_out else "became dead letters"
            LOGGER.warning("%d undelivered message(s) for platform %s %s: %s", count, platform_id, became, reason)

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
        async with self._transaction(platform_id) as tx:
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
            async with self._transaction(platform_id) as tx:
                await platform_sql.set_status(tx, platform_id, status, now=self._now())
                await self._owe_clientinfo(tx, platform_id, status)
            LOGGER.info("platform %s status %s -> %s", platform_id, platform.status, status)
            await self._notify(platform_id, status)
        return await self.get(platform_id)


async def save_exchange(
    tx: Transaction, platform_id: int, creds: Credentials, api: PeerApi, status: str, now: str
) -> None:
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
