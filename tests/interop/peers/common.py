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
- Two library bugs are worked around: the CPO does not publish its commands endpoint
  (``_publish_cpo_commands``), and its CDR Location / pagination Link URLs are malformed
  (``FixCallbackUrls``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from py_ocpi import get_application
from py_ocpi.core.authentication.authenticator import Authenticator
from py_ocpi.core.crud import Crud
from py_ocpi.core.endpoints import ENDPOINTS
from py_ocpi.core.endpoints.v_2_2_1.utils import cpo_generator
from py_ocpi.core.enums import Action, ModuleID, RoleEnum
from py_ocpi.core.utils import encode_string_base64, get_module_model
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials
from py_ocpi.modules.versions.enums import VersionNumber
from py_ocpi.modules.versions.v_2_2_1.schemas import InterfaceRole

HOST = os.environ["OCPI_HOST"]
BASE = f"http://{HOST}"
ROLE = os.environ["PEER_ROLE"]  # CPO or EMSP
COUNTRY = os.environ["COUNTRY_CODE"]
PARTY = os.environ["PARTY_ID"]
NAME = os.environ.get("PEER_NAME", f"{ROLE} {PARTY}")
VERSIONS_URL = f"{BASE}/ocpi/versions"


class State:
    """Everything the peer saw and holds; dumped as JSON by /debug/state, emptied by /debug/reset."""

    requests: list[dict[str, Any]]  # inbound, in arrival order
    outbound: list[dict[str, Any]]  # every httpx exchange the process made (library or ours)
    writes: list[dict[str, Any]]  # CRUD writes the library made, in order
    objects: dict[str, dict[str, Any]]  # module -> id -> object (own data and received data)
    tokens_a: set[str]  # token A we accept for a hub-initiated registration
    tokens_c: set[str]  # tokens the hub (or the test, for /push) may call us with
    hub_token: str | None  # token we call the hub with
    hub_endpoints: list[dict[str, Any]]
    command_results: dict[str, Any]  # eMSP: CommandResults received, by uid
    commands: list[dict[str, Any]]  # CPO: commands the library handed to the "charge point"

    @classmethod
    def reset(cls) -> None:
        """A fresh peer: one process serves many tests, each with its own hub."""
        cls.requests, cls.outbound, cls.writes, cls.commands = [], [], [], []
        cls.objects, cls.command_results, cls.hub_endpoints = {}, {}, []
        cls.hub_token = None
        cls.tokens_a = {os.environ["PEER_TOKEN_A"]} if os.environ.get("PEER_TOKEN_A") else set()
        # The operator token that authorizes the library's own /push/2.2.1 (HttpPushVerifier).
        cls.tokens_c = {os.environ["PEER_PUSH_TOKEN"]}


State.reset()


def _jsonable(value: Any) -> Any:
    return jsonable_encoder(value)


def our_credentials(token: str) -> dict[str, Any]:
    """The credentials object this peer hands to the hub, built with the library's model."""
    role = {
        "role": ROLE,
        "party_id": PARTY,
        "country_code": COUNTRY,
        "business_details": {"name": NAME},
    }
    return Credentials(token=token, url=VERSIONS_URL, roles=[role]).dict()


def _key(object_id: Any) -> str:
    """Store key: ids are CiString (types.asciidoc), and the library lowercases them when it parses."""
    return str(object_id).lower()


def _object_id(module: str, data: dict[str, Any]) -> str:
    return str(data.get("uid") if module == ModuleID.tokens else data.get("id"))


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
        return State.objects.get(module.value, {}).get(_key(id))

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
            State.command_results[str(id)] = _jsonable(data)
            State.writes.append({"module": "commands", "op": "update", "id": str(id), "data": _jsonable(data)})
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
            State.objects.get(module.value, {}).pop(_key(id), None)
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
            State.commands.append({"command": str(kwargs.get("command")), "data": _jsonable(args[0] if args else data)})
            return {"result": "ACCEPTED", "timeout": 30}
        if action == Action.authorize_token and data is not None:
            token = State.objects.get("tokens", {}).get(_key(data["token_uid"]))
            return {"allowed": "ALLOWED", "token": token, "authorization_reference": "interop-auth-1"}
        return None

    @staticmethod
    def _store(module: str, op: str, data: dict, id: str | None, kwargs: dict[str, Any]) -> Any:
        key = _key(id or _object_id(module, data))
        State.objects.setdefault(module, {})[key] = data
        where = {k: str(kwargs[k]) for k in ("country_code", "party_id") if kwargs.get(k) is not None}
        State.writes.append({"module": module, "op": op, "id": key, "where": where, "data": _jsonable(data)})
        return data

    @staticmethod
    def _register(data: dict, token_used: str | None) -> dict[str, Any]:
        hub = data["credentials"]
        State.hub_token = str(hub["token"])
        State.hub_endpoints = list(data["endpoints"]["endpoints"])
        if token_used:
            State.tokens_a.discard(token_used)  # token A is single use (credentials.asciidoc)
        token_c = secrets.token_urlsafe(24)
        State.tokens_c.add(token_c)
        return our_credentials(token_c)


class MemoryAuthenticator(Authenticator):
    """Tokens A and C from State."""

    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        """Tokens the hub may call us with."""
        return list(State.tokens_c)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        """Token A for a hub-initiated registration."""
        return list(State.tokens_a)


class Recorder:
    """ASGI middleware: records each inbound request (and the status answered) before the library sees it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Buffer the body, record, replay the body to the app."""
        if scope["type"] != "http" or scope["path"].startswith("/debug"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            "body": _parse(raw),
        }
        State.requests.append(entry)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        response_chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                entry["response_headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    entry["response"] = _parse(b"".join(response_chunks))
            await send(message)

        await self.app(scope, replay, capture)


URL_HEADERS = (b"location", b"link")


class FixCallbackUrls:
    """Library bugs worked around: the CDR ``Location`` and pagination ``Link`` URLs it builds are wrong.

    py_ocpi builds them as f"https://{OCPI_HOST}/.../{version}/{module}/..." (modules/cdrs/v_2_2_1/
    api/emsp.py add_cdr, core/utils.py get_list): https:// whatever ``PROTOCOL`` says, and on
    Python 3.11 a str-mixin Enum formats as its name, so the path reads
    ``/VersionNumber.v_2_2_1/ModuleID.cdrs/``. Both point at nothing; rewrite them, in those two
    headers only, to the URL the library meant (the route that serves the object or page).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.wrong = f"https://{HOST}".encode()
        self.right = f"http://{HOST}".encode()

    def fix(self, value: bytes) -> bytes:
        """The URL the library meant."""
        value = value.replace(self.wrong, self.right)
        value = re.sub(rb"VersionNumber\.(\w+)", lambda m: VersionNumber[m[1].decode()].value.encode(), value)
        return re.sub(rb"ModuleID\.(\w+)", lambda m: ModuleID[m[1].decode()].value.encode(), value)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Fix the response headers on their way out."""

        async def fixed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                message["headers"] = [(k, self.fix(v) if k.lower() in URL_HEADERS else v) for k, v in headers]
            await send(message)

        await self.app(scope, receive, fixed)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


_original_send = httpx.AsyncClient.send


async def _recording_send(self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
    """Observe every outbound exchange (the library's and ours) without changing it."""
    entry: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": _parse(request.content),
    }
    State.outbound.append(entry)
    try:
        response = await _original_send(self, request, *args, **kwargs)
    except httpx.HTTPError as exc:
        entry["error"] = repr(exc)
        raise
    await response.aread()
    entry["status"] = response.status_code
    entry["response_headers"] = {k.lower(): v for k, v in response.headers.items()}
    entry["response"] = _parse(response.content)
    return response


httpx.AsyncClient.send = _recording_send  # type: ignore[method-assign]


def hub_endpoint(module: str, interface: str) -> str:
    """The hub's URL for a module and interface, from the version details we fetched."""
    for endpoint in State.hub_endpoints:
        if endpoint["identifier"] == module and endpoint["role"] == interface:
            return str(endpoint["url"])
    raise LookupError(f"the hub published no {module} {interface}")


def hub_auth() -> str:
    """Authorization header value for calls to the hub (2.2.1: base64 of the token)."""
    assert State.hub_token is not None, "not registered"
    return f"Token {encode_string_base64(State.hub_token)}"


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
    if role == RoleEnum.cpo:
        _publish_cpo_commands()
    app = get_application(
        version_numbers=[VersionNumber.v_2_2_1],
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
        return _jsonable(
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

    @app.post("/debug/reset")
    async def reset() -> Any:
        State.reset()
        return {"ok": True}

    @app.put("/debug/objects/{module}/{object_id}")
    async def seed(module: str, object_id: str, request: Request) -> Any:
        """Put an object into our own store (the CPO's backend), validated by the library's model."""
        body = await request.json()
        model = _model_for(module)
        State.objects.setdefault(module, {})[_key(object_id)] = model(**body).dict()
        return {"ok": True}

    @app.post("/debug/register")
    async def register(request: Request) -> Any:
        """Party-initiated registration with token A (the library has no client for it)."""
        body = await request.json()
        return _jsonable(await _register_with_hub(str(body["versions_url"]), str(body["token_a"])))

    @app.post("/debug/send")
    async def send(request: Request) -> Any:
        """One OCPI call to the hub, body serialized and answer parsed with the library's models."""
        return _jsonable(await _send(await request.json()))

    return app


def _publish_cpo_commands() -> None:
    """Library bug worked around: its CPO serves POST /commands/{command} but omits the endpoint.

    py_ocpi.core.endpoints.v_2_2_1.cpo.ENDPOINTS_LIST has no ``commands`` entry, so the version
    details never list the CPO's commands RECEIVER and no eMSP or hub can find it. We add the entry
    the library's own generator would make (same URL shape, trailing slash included).
    """
    endpoints = ENDPOINTS[VersionNumber.v_2_2_1][RoleEnum.cpo]
    endpoints.setdefault(ModuleID.commands, cpo_generator.generate_endpoint(ModuleID.commands, InterfaceRole.receiver))


def _model_for(module: str) -> Any:
    names = {"locations": "Location", "tariffs": "Tariff", "sessions": "Session", "cdrs": "Cdr", "tokens": "Token"}
    return get_module_model(names[module], module, VersionNumber.v_2_2_1.name)


async def _register_with_hub(versions_url: str, token_a: str) -> dict[str, Any]:
    auth = {"Authorization": f"Token {encode_string_base64(token_a)}"}
    async with httpx.AsyncClient(timeout=10) as client:
        versions = (await client.get(versions_url, headers=auth)).json()["data"]
        url = next(v["url"] for v in versions if v["version"] == "2.2.1")
        details = (await client.get(url, headers=auth)).json()["data"]
        State.hub_endpoints = list(details["endpoints"])
        token_c = secrets.token_urlsafe(24)
        State.tokens_c.add(token_c)
        answer = await client.post(hub_endpoint("credentials", "SENDER"), headers=auth, json=our_credentials(token_c))
    body = answer.json()
    if answer.status_code == 200 and body.get("status_code") == 1000:
        hub = Credentials(**body["data"])  # validated with the library's model
        State.hub_token = str(hub.token)
    return {"status": answer.status_code, "body": body}


async def _send(spec: dict[str, Any]) -> dict[str, Any]:
    """spec: module, interface, method, path (after the endpoint URL), to [cc, pid], body, model, query."""
    url = hub_endpoint(spec["module"], spec.get("interface", "RECEIVER")) + spec.get("path", "")
    headers = {
        "Authorization": hub_auth(),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": spec.get("correlation_id") or str(uuid.uuid4()),
        "OCPI-from-country-code": COUNTRY,
        "OCPI-from-party-id": PARTY,
    }
    if spec.get("to"):
        headers["OCPI-to-country-code"], headers["OCPI-to-party-id"] = spec["to"]
    body = spec.get("body")
    if body is not None and spec.get("model"):
        body = _validated(spec, body)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.request(spec["method"], url, headers=headers, json=body, params=spec.get("query"))
    parsed = _parse(answer.content)
    result: dict[str, Any] = {
        "url": url,
        "request_headers": headers,
        "sent": body,
        "status": answer.status_code,
        "headers": {k.lower(): v for k, v in answer.headers.items()},
        "body": parsed,
    }
    if spec.get("parse_list") and isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
        model = _model_for(spec["module"])
        result["parsed"] = [model(**item).dict() for item in parsed["data"]]
    return result


def _validated(spec: dict[str, Any], body: dict[str, Any]) -> Any:
    model_name, module = spec["model"], spec["model_module"]
    return _jsonable(get_module_model(model_name, module, VersionNumber.v_2_2_1.name)(**body).dict())
