"""Our client side toward the hub, for what the library has no client for.

Party-initiated registration and single OCPI calls (eMSP commands, directed pushes, GET-all
pulls): bodies serialized and answers parsed with the library's own pydantic models; every
request carries X-Request-ID, X-Correlation-ID and the routing headers.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
from py_ocpi.core.utils import encode_string_base64, get_module_model
from py_ocpi.modules.credentials.v_2_1_1.schemas import Credentials as Credentials211
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials
from py_ocpi.modules.versions.enums import VersionNumber
from state import COUNTRY, PARTY, VERSION, State, jsonable, our_credentials, parse

# VersionNumber member for this peer's version (get_module_model wants "v_2_1_1" / "v_2_2_1").
OUR_VERSION = VersionNumber(VERSION)


def hub_endpoint(module: str, interface: str) -> str:
    """The hub's URL for a module and interface, from the version details we fetched."""
    for endpoint in State.hub_endpoints:
        # 2.1.1 version details have one URL per module and no interface role.
        if endpoint["identifier"] == module and endpoint.get("role", interface) == interface:
            return str(endpoint["url"])
    raise LookupError(f"the hub published no {module} {interface}")


def hub_auth() -> str:
    """Authorization header value for calls to the hub (2.2.1: base64 of the token; 2.1.1: as is)."""
    assert State.hub_token is not None, "not registered"
    return token_header(State.hub_token)


def token_header(token: str) -> str:
    """``Token ...`` in this peer's version: base64 in 2.2.1 (transport_and_format 4.1.3), raw in 2.1.1."""
    return f"Token {token}" if VERSION == "2.1.1" else f"Token {encode_string_base64(token)}"


def model_for(module: str) -> Any:
    """The library's pydantic model for a module's objects."""
    names = {"locations": "Location", "tariffs": "Tariff", "sessions": "Session", "cdrs": "Cdr", "tokens": "Token"}
    return get_module_model(names[module], module, OUR_VERSION.name)


async def register_with_hub(versions_url: str, token_a: str) -> dict[str, Any]:
    """credentials.asciidoc 1.2.2 as the registering party: versions, details, POST credentials."""
    auth = {"Authorization": token_header(token_a)}
    async with httpx.AsyncClient(timeout=10) as client:
        versions = (await client.get(versions_url, headers=auth)).json()["data"]
        url = next(v["url"] for v in versions if v["version"] == VERSION)
        details = (await client.get(url, headers=auth)).json()["data"]
        State.hub_endpoints = list(details["endpoints"])
        token_c = secrets.token_urlsafe(24)
        State.tokens_c.add(token_c)
        answer = await client.post(hub_endpoint("credentials", "SENDER"), headers=auth, json=our_credentials(token_c))
    body = answer.json()
    if answer.status_code == 200 and body.get("status_code") == 1000:
        model = Credentials211 if VERSION == "2.1.1" else Credentials
        hub = model(**body["data"])  # validated with the library's model
        State.hub_token = str(hub.token)
    return {"status": answer.status_code, "body": body}


async def send(spec: dict[str, Any]) -> dict[str, Any]:
    """spec: module, interface, method, path (after the endpoint URL) or url, to [cc, pid], body, model, query."""
    # "url": a URL the hub handed out (a pagination Link); else the hub's endpoint + "path".
    url = spec.get("url") or hub_endpoint(spec["module"], spec.get("interface", "RECEIVER")) + spec.get("path", "")
    headers = {"Authorization": hub_auth()}
    if VERSION != "2.1.1":  # 2.1.1 has no request ids and no routing headers (transport_and_format.md)
        headers |= {
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
    parsed = parse(answer.content)
    result: dict[str, Any] = {
        "url": url,
        "request_headers": headers,
        "sent": body,
        "status": answer.status_code,
        "headers": {k.lower(): v for k, v in answer.headers.items()},
        "body": parsed,
    }
    if spec.get("parse_list") and isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
        model = model_for(spec["module"])
        result["parsed"] = [model(**item).dict() for item in parsed["data"]]
    return result


def _validated(spec: dict[str, Any], body: dict[str, Any]) -> Any:
    model_name, module = spec["model"], spec["model_module"]
    return jsonable(get_module_model(model_name, module, OUR_VERSION.name)(**body).dict())
