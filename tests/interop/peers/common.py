"""Shared parts of the interop peers: a real extrawest-ocpi (py_ocpi) app plus test-only debug routes.

Runs under the interop venv's python (pydantic 1, FastAPI 0.101), never in the hub's venv.
Configuration comes from the environment, read by py_ocpi's own settings at import time:
OCPI_HOST (127.0.0.1:port), PROTOCOL=http, COUNTRY_CODE, PARTY_ID; plus PEER_* for this file.

What is the library's own behaviour and what is ours:
- Library: every OCPI route, the versions/details documents, the credentials server side (used by
  hub-initiated registration), its envelopes (``data`` a one-element list for single objects and
  CommandResponses), 307 redirects for URLs without the trailing slash (FastAPI/Starlette), CiString
  lowercasing, the HTTP push facility (``POST /push/2.2.1``: fetches the receiver's version details,
  PUTs/POSTs the object, no routing headers) and the CPO's CommandResult POST to ``response_url``.
- Ours (the library has no client for them): party-initiated registration (``/debug/register``)
  and the generic ``/debug/send`` used for eMSP commands, directed pushes and GET-all pulls,
  serialized and parsed with the library's own pydantic models; the in-memory CRUD and
  authenticator the library asks its user to provide; a recorder of every inbound request and every
  outbound httpx exchange, served at ``/debug/state``. None of it changes what the library sends.
- One version per process (``PEER_VERSION``, default 2.2.1; cpo211.py runs 2.1.1): the library's
  app, our credentials object, token encoding (raw in 2.1.1), models and headers follow it.
- Test switch ``/debug/accept-base64``: the authenticator also takes the Base64 form of our
  tokens (to get a 2.1.1 peer past a hub that sends them encoded; tests/interop/README.md).
- Two library bugs are worked around: the CPO does not publish its commands endpoint
  (``_publish_cpo_commands``), and its CDR Location / pagination Link URLs are malformed
  (``FixCallbackUrls``).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any

import client
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from middleware import FixCallbackUrls, Recorder
from py_ocpi import get_application
from py_ocpi.core.authentication.authenticator import Authenticator
from py_ocpi.core.crud import Crud
from py_ocpi.core.endpoints import ENDPOINTS
from py_ocpi.core.endpoints.v_2_2_1.utils import cpo_generator
from py_ocpi.core.enums import Action, ModuleID, RoleEnum
from py_ocpi.core.utils import encode_string_base64
from py_ocpi.modules.versions.enums import VersionNumber
from py_ocpi.modules.versions.v_2_2_1.schemas import InterfaceRole
from pydantic import ValidationError
from state import ROLE, VERSION, State, jsonable, key, object_id, our_credentials


class MemoryCrud(Crud):
    """The CRUD the library calls; keeps everything in State."""

    @classmethod
    async def get(cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any) -> Any:
        """Return an object, our credentials for a known token C, or a charge point's command result."""
        if module == ModuleID.credentials_and_registration:
            return our_credentials(id) if id in State.tokens_c else None
        if module == ModuleID.commands:
            # The "charge point" answers at once: the library then POSTs the CommandResult.
            return {"result": "ACCEPTED"}
        return State.objects.get(module.value, {}).get(key(id))

    @classmethod
    async def list(cls, module: ModuleID, role: RoleEnum, filters: dict, *args: Any, **kwargs: Any) -> Any:
        """Every object of the module, one page."""
        items = list(State.objects.get(module.value, {}).values())
        return items, len(items), True

    @classmethod
    async def create(cls, module: ModuleID, role: RoleEnum, data: dict, *args: Any, **kwargs: Any) -> Any:
        """Store an object; for credentials, finish the server side of a registration."""
        if module == ModuleID.credentials_and_registration:
            return cls._register(data, kwargs.get("auth_token"))
        return cls._store(module.value, "create", data, None, kwargs)

    @classmethod
    async def update(cls, module: ModuleID, role: RoleEnum, data: dict, id: Any, *args: Any, **kwargs: Any) -> Any:
        """Replace an object; for commands (eMSP), record the CommandResult."""
        if module == ModuleID.commands:
            State.command_results[str(id)] = jsonable(data)
            State.writes.append({"module": "commands", "op": "update", "id": str(id), "data": jsonable(data)})
            return data
        if module == ModuleID.credentials_and_registration:
            return cls._register(data, kwargs.get("auth_token"))
        return cls._store(module.value, "update", data, str(id), kwargs)

    @classmethod
    async def delete(cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any) -> None:
        """Forget an object (or the hub's token, for credentials)."""
        if module == ModuleID.credentials_and_registration:
            State.tokens_c.discard(str(id))
            State.hub_token = None
        else:
            State.objects.get(module.value, {}).pop(key(id), None)
        State.writes.append({"module": module.value, "op": "delete", "id": str(id)})

    @classmethod
    async def do(
        cls,
        module: ModuleID,
        role: RoleEnum | None,
        action: Action,
        *args: Any,
        data: dict | None = None,
        **kwargs: Any,
    ) -> Any:
        """Accept commands, allow known tokens, tell the library which token to call the hub with."""
        if action == Action.get_client_token:
            return State.hub_token
        if action == Action.send_command:
            State.commands.append({"command": str(kwargs.get("command")), "data": jsonable(args[0] if args else data)})
            return {"result": "ACCEPTED", "timeout": 30}
        if action == Action.authorize_token and data is not None:
            token = State.objects.get("tokens", {}).get(key(data["token_uid"]))
            return {"allowed": "ALLOWED", "token": token, "authorization_reference": "interop-auth-1"}
        return None

    @staticmethod
    def _store(module: str, op: str, data: dict, id: str | None, kwargs: dict[str, Any]) -> Any:
        store_key = key(id or object_id(module, data))
        State.objects.setdefault(module, {})[store_key] = data
        where = {k: str(kwargs[k]) for k in ("country_code", "party_id") if kwargs.get(k) is not None}
        State.writes.append({"module": module, "op": op, "id": store_key, "where": where, "data": jsonable(data)})
        return data

    @staticmethod
    def _register(data: dict, token_used: str | None) -> dict[str, Any]:
        hub = data["credentials"]
        State.hub_token = str(hub["token"])
        State.hub_endpoints = list(data["endpoints"]["endpoints"])
        if token_used:  # token A is single use (credentials.asciidoc), in either form
            State.tokens_a -= {t for t in State.tokens_a if token_used in (t, encode_string_base64(t))}
        token_c = secrets.token_urlsafe(24)
        State.tokens_c.add(token_c)
        return our_credentials(token_c)


class MemoryAuthenticator(Authenticator):
    """Tokens A and C from State (and their Base64 forms while the test asks for it)."""

    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        """Tokens the hub may call us with."""
        return _with_base64(State.tokens_c)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        """Token A for a hub-initiated registration."""
        return _with_base64(State.tokens_a)


def _with_base64(tokens: set[str]) -> list[str]:
    """The tokens as the library compares them: as is, plus Base64-encoded under ``accept_base64``."""
    extra = [encode_string_base64(t) for t in tokens] if State.accept_base64 else []
    return [*tokens, *extra]


def exit_with_parent() -> None:
    """Exit when the test run that started us is gone, even if it was killed before its teardown."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def build_app(modules: list[ModuleID]) -> FastAPI:
    """The library's app for this role, wrapped in the recorder, plus the debug routes."""
    role = RoleEnum.cpo if ROLE == "CPO" else RoleEnum.emsp
    if role == RoleEnum.cpo and VERSION == "2.2.1":
        _publish_cpo_commands()
    app = get_application(
        version_numbers=[VersionNumber(VERSION)],  # one version per peer: cpo211.py runs the 2.1.1 one
        roles=[role],
        crud=MemoryCrud,
        modules=modules,
        authenticator=MemoryAuthenticator,
        http_push=True,
    )
    app.add_middleware(FixCallbackUrls)
    app.add_middleware(Recorder)  # outermost: records exactly what goes over the wire

    @app.get("/debug/state")
    async def state() -> Any:
        return jsonable(
            {
                "role": ROLE,
                "requests": State.requests,
                "outbound": State.outbound,
                "writes": State.writes,
                "objects": State.objects,
                "hub_token": State.hub_token,
                "hub_endpoints": State.hub_endpoints,
                "command_results": State.command_results,
                "commands": State.commands,
            }
        )

    @app.post("/debug/accept-base64")
    async def accept_base64(request: Request) -> Any:
        """Test switch: also accept Base64-encoded tokens (see State.accept_base64)."""
        State.accept_base64 = bool((await request.json())["on"])
        return {"ok": True}

    @app.post("/debug/reset")
    async def reset() -> Any:
        State.reset()
        return {"ok": True}

    @app.put("/debug/objects/{module}/{object_id}")
    async def seed(module: str, object_id: str, request: Request) -> Any:
        """Put an object into our own store (the CPO's backend), validated by the library's model."""
        body = await request.json()
        model = client.model_for(module)
        try:
            State.objects.setdefault(module, {})[key(object_id)] = model(**body).dict()
        except ValidationError as exc:  # the library's middleware would answer 200 + 3000: say why
            return JSONResponse({"errors": jsonable(exc.errors())}, status_code=422)
        return {"ok": True}

    @app.post("/debug/register")
    async def register(request: Request) -> Any:
        """Party-initiated registration with token A (the library has no client for it)."""
        body = await request.json()
        return jsonable(await client.register_with_hub(str(body["versions_url"]), str(body["token_a"])))

    @app.post("/debug/send")
    async def send(request: Request) -> Any:
        """One OCPI call to the hub, body serialized and answer parsed with the library's models."""
        return jsonable(await client.send(await request.json()))

    return app


def _publish_cpo_commands() -> None:
    """Library bug worked around: its CPO serves POST /commands/{command} but omits the endpoint.

    py_ocpi.core.endpoints.v_2_2_1.cpo.ENDPOINTS_LIST has no ``commands`` entry, so the version
    details never list the CPO's commands RECEIVER and no eMSP or hub can find it. We add the entry
    the library's own generator would make (same URL shape, trailing slash included).
    """
    endpoints = ENDPOINTS[VersionNumber.v_2_2_1][RoleEnum.cpo]
    endpoints.setdefault(ModuleID.commands, cpo_generator.generate_endpoint(ModuleID.commands, InterfaceRole.receiver))
