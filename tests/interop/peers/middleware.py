"""Observation of the wire, and the library's malformed URLs fixed on their way out.

``Recorder`` records every inbound request and its answer; the patched ``httpx.AsyncClient.send``
records every outbound exchange (the library's and ours) without changing it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from py_ocpi.core.enums import ModuleID
from py_ocpi.modules.versions.enums import VersionNumber
from state import HOST, State, parse


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
            "body": parse(raw),
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
                    entry["response"] = parse(b"".join(response_chunks))
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


_original_send = httpx.AsyncClient.send


async def _recording_send(self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
    """Observe every outbound exchange (the library's and ours) without changing it."""
    entry: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": parse(request.content),
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
    entry["response"] = parse(response.content)
    return response


httpx.AsyncClient.send = _recording_send  # type: ignore[method-assign]
