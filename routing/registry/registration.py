"""The credentials module's domain logic, in both directions (credentials.asciidoc).

Party-initiated: a party holding our token A POSTs its credentials; we read its API with its
token B, store endpoints and roles, and answer with a fresh token C. PUT rotates, DELETE
unregisters. Hub-initiated: the operator hands us a party's versions URL and token A; we read
its API, POST our credentials with a fresh token B, and keep the token C it returns.

Network calls never run inside a store transaction; every state change is one transaction.
This module holds the handshake, the calls to the partner and the order of the steps; what each
committed change entails (the transaction, the HubClientInfo it owes, the listeners), the writes
both directions share and the operator's status changes: routing/registry/changes.py.
The Credentials objects themselves (ours per version, theirs validated): routing/registry/credentials.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from config import Settings
from routing.clock import Clock, iso
from routing.peers.client import PeerClient
from routing.peers.handshake import PeerApi, discover, unwrap_data
from routing.protocol.errors import InvalidParameters, MethodNotAllowed, OcpiError, UnableToUseClientApi
from routing.protocol.models import Credentials
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.registry.changes import UNREGISTERED, PlatformChanges, save_exchange
from routing.registry.credentials import new_token, parse_credentials, role_hint, roles_text
from routing.registry.identity import conflict_error
from routing.versions import registration
from storage import lifecycle as lifecycle_sql
from storage import platforms as platform_sql
from storage import tokens as token_sql
from storage.db import Store
from storage.errors import Conflict
from storage.models import Platform, TokenRecord

LOGGER = logging.getLogger(__name__)

# RFC 9110: a 405 names the methods that are allowed (credentials.asciidoc: POST once, then PUT/DELETE).
_ALLOW_REGISTERED = {"Allow": "GET, PUT, DELETE"}
_ALLOW_UNREGISTERED = {"Allow": "GET, POST"}


class Registry(PlatformChanges):
    """Registers, rotates and unregisters platforms, either side starting; commits through PlatformChanges."""

    def __init__(self, store: Store, client: PeerClient, settings: Settings, clock: Clock) -> None:
        super().__init__(store, settings, clock)
        self.client = client

    # ---- invitations (token A) ----------------------------------------------------------------

    async def invite(self, name: str, role: str | None = None) -> tuple[Platform, str]:
        """Create a PLANNED platform and a single-use, expiring token A for it.

        ``role``: what the partner serves, needed if it registers in OCPI 2.1.1 (no roles there).
        """
        token_a = new_token()
        now = self.clock.now()
        expires = iso(now + timedelta(seconds=self.settings.token_a_ttl))
        async with self._transaction(None) as tx:
            platform_id = await platform_sql.create_platform(
                tx, name=name, status="PLANNED", initiated_by="party", now=iso(now)
            )
            await token_sql.add_token(tx, platform_id, token_a, kind="A", now=iso(now), expires_at=expires)
            await platform_sql.set_role_hint(tx, platform_id, role)
        await self._tell(platform_id)
        LOGGER.info("invitation created for platform %s (%s), token A expires %s", platform_id, name, expires)
        return await platform_sql.get_platform(self.store, platform_id), token_a

    async def revoke_invitation(self, platform_id: int) -> bool:
        """Delete an unused invitation (its PLANNED platform and token A); False when there is none."""
        async with self._transaction(platform_id) as tx:  # the other processes drop the platform too
            return await lifecycle_sql.revoke_invitation(tx, platform_id)

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

    # ---- hub-initiated -----------------------------------------------------------------------

    async def connect(
        self, versions_url: str, token_a: str, *, name: str | None = None, role: str | None = None
    ) -> Platform:
        """Register with a party that gave us its versions URL and token A (``role``: for 2.1.1)."""
        api = await discover(self.client, versions_url, token_a)
        token_b = new_token()
        now = self._now()
        # Token B must be live before we POST: the party calls our versions with it first.
        async with self._transaction(None) as tx:
            platform_id = await platform_sql.create_platform(
                tx, name=name or versions_url, status="PLANNED", initiated_by="hub", now=now, versions_url=versions_url
            )
            await token_sql.add_token(tx, platform_id, token_b, kind="C", now=now)
            await platform_sql.set_role_hint(tx, platform_id, role)
        await self._tell(platform_id)
        try:
            creds = await self._post_credentials(
                "POST", api, token_a, token_b, api.send_base64, role=role, platform_id=platform_id
            )
            if name is None and creds.roles:
                name = creds.roles[0].business_details.name
            await self._check_claims(platform_id, creds)
            await self._store_registration(platform_id, api, creds, token_b, replace_kind="C", registered=True)
            if name:
                async with self._transaction(platform_id) as tx:
                    await platform_sql.rename_platform(tx, platform_id, name)
        except BaseException:
            async with self._transaction(platform_id) as tx:
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
        async with self._transaction(platform_id) as tx:
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
            async with self._transaction(platform_id) as tx:
                await token_sql.revoke_token(tx, token_sql.token_hash(token_b))
            raise
        now = self._now()
        try:
            async with self._transaction(platform_id) as tx:
                await token_sql.revoke_tokens(tx, platform_id, kind="C", keep_hash=token_sql.token_hash(token_b))
                await save_exchange(tx, platform_id, creds, fresh, platform.status, now)
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
