"""The one OCPI envelope builder (transport_and_format, Response format).

``{data?, status_code, status_message, timestamp}``: every envelope the hub makes itself goes
through here, whether rendered by an HTTP handler, a routing reply or a GET-all page. The hub
always sends ``status_message`` (optional in 2.2.1, but some partner libraries refuse an
envelope without it); relayed receiver answers are not rebuilt here, they travel as received.
``unique_keys`` is the one duplicate-key check of the JSON the hub parses: requests and answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import orjson

# The default text per code when the hub has nothing more specific to say (status_codes.asciidoc).
_MESSAGES = {1000: "Success", 2000: "Generic client error", 3000: "Generic server error", 4000: "Generic hub error"}


def default_message(status_code: int) -> str:
    """The spec's name of a status code's class, used when no message was given."""
    return _MESSAGES.get(status_code) or _MESSAGES.get(status_code // 1000 * 1000, "")


def dumps(value: Any) -> str:
    """Compact JSON as the hub sends it (UTF-8, no ASCII escaping)."""
    # orjson: every answer, stored copy and GET-all page goes through here, much of it on the
    # threads that share the GIL with the event loop (issue 22). The same compact text as json's
    # (an exponent may read 1.5e-7 where json wrote 1.5e-07). What orjson refuses (an int past
    # 64 bits, a non-text key, nesting past 254 levels) json writes as before, or refuses alike.
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def envelope(
    *, data: Any = None, status_code: int = 1000, message: str | None = None, timestamp: str
) -> dict[str, Any]:
    """An envelope dict; ``data`` omitted when None."""
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message or default_message(status_code)
    body["timestamp"] = timestamp
    return body


def envelope_bytes(*, data: Any = None, status_code: int = 1000, message: str | None = None, timestamp: str) -> bytes:
    """An envelope as the bytes of a response body."""
    return dumps(envelope(data=data, status_code=status_code, message=message, timestamp=timestamp)).encode("utf-8")


def around_json(data_json: str, *, timestamp: str, status_code: int = 1000, message: str | None = None) -> bytes:
    """An envelope around ``data`` that is already JSON text (stored objects: never parsed again)."""
    tail = dumps({"status_code": status_code, "status_message": message or default_message(status_code)})
    return ('{"data":' + data_json + "," + tail[1:-1] + ',"timestamp":' + dumps(timestamp) + "}").encode("utf-8")


class DuplicateKey(ValueError):
    """A JSON object names one key twice (RFC 8259 4: names SHOULD be unique; the hub refuses it)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key[:40]!r}")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object_pairs_hook of json.loads: the object as a dict, or DuplicateKey when a key comes twice."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def per_thread_decoder(**hooks: Any) -> Callable[[], json.JSONDecoder]:
    """A getter of one JSONDecoder per thread built with ``hooks``.

    json.loads with hooks builds a decoder (and its C scanner) on every call; a parser on the hot
    path keeps one per thread instead (the traffic log renders on a thread of its own).
    """
    local = threading.local()

    def get() -> json.JSONDecoder:
        found: json.JSONDecoder | None = getattr(local, "decoder", None)
        if found is None:
            found = local.decoder = json.JSONDecoder(**hooks)
        return found

    return get
