"""The one parser for every answer a partner gives the hub (docs/SECURITY.md, Attacks tried: partner answers).

Push answers, GET answers, probes, still-alive checks and the handshake's versions, version
details and credentials all reach the hub through ``PeerClient.send`` (routing/peers/client.py),
which reads the body with ``read_envelope`` here. Whatever the bytes, this module returns or
raises ``UnusableAnswer`` (a HubError, 4000), never anything else: no RecursionError from
JSON nested 50,000 deep, no ValueError from a 10,000-digit integer, no UnicodeError later on
from a lone surrogate.

What it refuses, and why each is refused rather than repaired:

- bytes that are not UTF-8 (RFC 8259 8.1: JSON between systems is UTF-8; a BOM is tolerated);
- JSON nested deeper than ``MAX_DEPTH``: OCPI objects nest about ten levels, and anything the
  hub later walks, re-renders or validates could otherwise hit Python's recursion limit;
- ``NaN``/``Infinity`` literals and numbers that overflow a float (``1e999999``): not JSON in
  RFC 8259, and the hub could not send them on as JSON again;
- integers longer than ``MAX_INT_DIGITS`` (Python's own default limit, held here whatever the
  interpreter is configured with: parsing longer ones takes quadratic time);
- duplicate keys in an object: the hub and the caller it relays to could read different values
  (one parser keeps the first, another the last);
- strings holding a lone surrogate (a ``ud800`` escape without its pair): they cannot be
  encoded as UTF-8 again.

An envelope is a JSON object whose ``status_code`` is an OCPI code (1000-4999; the digits as a
string are tolerated). Anything else is "not an OCPI answer", which the caller maps.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from routing.protocol.envelope import per_thread_decoder, unique_keys
from routing.protocol.errors import UnusableAnswer

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "loads", "read_envelope"]

MAX_DEPTH = 64
MAX_INT_DIGITS = 4300  # sys.int_info.default_max_str_digits
_LOWEST_CODE, _HIGHEST_CODE = 1000, 4999  # status_codes.asciidoc: 1xxx-4xxx
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \ud800-\udfff: paired ones are fine, lone ones not


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer longer than {MAX_INT_DIGITS} digits")
    return int(text)


# The interpreter's own limit raises ValueError past 4,300 digits, in C; only when it has been
# lifted (PYTHONINTMAXSTRDIGITS=0 or higher) does every integer go through the check above.
_INT_HOOK = None if 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS else _int


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads with hooks builds a JSONDecoder (and its C scanner) per call: one per thread instead.
_decoder = per_thread_decoder(
    parse_float=_float, parse_int=_INT_HOOK, parse_constant=_constant, object_pairs_hook=unique_keys
)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit``: level by level, no recursion on hostile input."""
    level: list[Any] = [value]
    depth = 1
    while level:
        if depth > limit:
            return True
        deeper: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:  # exact types: json makes no others
                    deeper.append(child)
        level = deeper
        depth += 1
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"JSON nested deeper than {MAX_DEPTH} levels"
    if isinstance(exc, UnicodeEncodeError):
        return "a string with a lone surrogate (not Unicode text)"
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"not valid JSON ({text[:120]})"


def loads(body: bytes) -> Any:
    """Parse a partner's bytes as JSON; UnusableAnswer (and nothing else) when they cannot be used."""
    try:
        text = body.decode("utf-8-sig")
        if text.startswith("\ufeff"):  # a second BOM: what json.loads says of it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        value = _decoder().decode(text)
        # Counting brackets is cheap: only an answer with more of them than MAX_DEPTH is walked.
        deep_enough = isinstance(value, dict | list) and text.count("[") + text.count("{") > MAX_DEPTH
        if deep_enough and _too_deep(value, MAX_DEPTH):
            raise RecursionError
        if _SURROGATE_ESCAPE.search(text):
            json.dumps(value, ensure_ascii=False).encode("utf-8")  # a lone surrogate raises here
    except (ValueError, RecursionError, OverflowError) as exc:
        # The boundary's contract: whatever the bytes, only the hub's own error leaves this function.
        raise UnusableAnswer(_describe(exc)) from None
    return value


def read_envelope(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The OCPI envelope in a partner's answer, or None and why the answer is not one."""
    if not body:
        return None, "empty body"
    try:
        parsed = loads(body)
    except UnusableAnswer as exc:
        return None, exc.message
    if not isinstance(parsed, dict):
        return None, f"a JSON {type(parsed).__name__}, not an OCPI envelope object"
    code = parsed.get("status_code")
    # Some peers send the code as a string ("1000"); accept ASCII digits ("²".isdigit() is True).
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) <= 4:
        code = parsed["status_code"] = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        return None, "no integer status_code"
    if not _LOWEST_CODE <= code <= _HIGHEST_CODE:
        return None, f"status_code {str(code)[:12]} is not an OCPI status code"
    return parsed, None
