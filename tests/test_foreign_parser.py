"""The one parser for partner answers (routing/peers/foreign.py).

Whatever the bytes: an envelope, None, or the hub's error.

Property tests with hypothesis feed it arbitrary bytes, JSON-like texts built from hostile
pieces (NaN, 1e999999, 5,000-digit integers, lone surrogates, invalid UTF-8, duplicate keys,
nesting thousands deep) and mutations of a real OCPI envelope. The contract checked on each:
``loads`` returns or raises ``UnusableAnswer`` (an OcpiError) and nothing else;
``read_envelope`` never raises, and an envelope it returns can be rendered as strict JSON and
UTF-8 again (what the hub relays onward), with an OCPI status code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.peers.exchange import parse_envelope
from routing.peers.foreign import MAX_DEPTH, loads, read_envelope
from routing.protocol.errors import OcpiError, UnusableAnswer

CHECKS = settings(max_examples=400, deadline=None, database=None, derandomize=True)

ATOMS = st.sampled_from(
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e999999",
        b"-1e400",
        b"-0",
        b"9" * 5000,
        b"1000",
        b"1.5",
        b"true",
        b"null",
        b'"x"',
        b'"\\ud800"',
        b'"\\udc00\\ud800"',
        b'"\\ud83d\\ude00"',
        b'"\xff\xfe"',
        b'"\xed\xa0\x80"',  # a UTF-8-encoded surrogate: not UTF-8
        b'"1000"',
        b'"\xc2\xb2"',  # superscript two: isdigit() but not a number
    ]
)
KEYS = st.sampled_from([b'"status_code"', b'"data"', b'"status_message"', b'"timestamp"', b'"a"'])


def _array(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _object(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(k + b":" + v for k, v in pairs) + b"}"


JSONISH = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array), st.lists(st.tuples(KEYS, inner), max_size=4).map(_object)
    ),
    max_leaves=30,
)
DEEP = st.tuples(st.integers(0, 60_000), st.sampled_from([b"[", b'{"a":', b'{"status_code":1000,"data":['])).map(
    lambda t: t[1] * t[0]
)
ENVELOPE = json.dumps(
    {"status_code": 1000, "status_message": "ok", "data": [{"id": "LOC1"}], "timestamp": "t"}
).encode()
MUTATED = st.tuples(st.integers(0, len(ENVELOPE)), st.binary(max_size=8), st.integers(0, 4)).map(
    lambda t: ENVELOPE[: t[0]] + t[1] + ENVELOPE[t[0] + t[2] :]
)
ANY_BYTES = st.one_of(st.binary(max_size=200), JSONISH, DEEP, MUTATED)


def _holds(body: bytes) -> None:
    try:
        value = loads(body)
    except UnusableAnswer as exc:
        assert isinstance(exc, OcpiError) and exc.status_code == 4000 and exc.message
    else:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")  # strict JSON, UTF-8 again
    envelope, why = read_envelope(body)
    assert (envelope is None) != (why is None)
    if envelope is not None:
        code = envelope["status_code"]
        assert isinstance(code, int) and not isinstance(code, bool) and 1000 <= code <= 4999
        json.dumps(envelope, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert parse_envelope(body) == envelope


@CHECKS
@given(ANY_BYTES)
def test_any_bytes_give_an_envelope_none_or_the_hubs_own_error(body: bytes) -> None:
    _holds(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 50_000, "nested deeper"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested deeper"),
        (b'{"status_code":1000,"x":1e999999}', "out of range"),
        (b'{"status_code":1000,"x":NaN}', "NaN"),
        (b'{"status_code":1000,"x":' + b"1" * 10_000 + b"}", "digits"),
        (b'{"status_code":1000,"status_code":2001}', "duplicate key"),
        (b'{"status_code":1000,"x":"\\ud800"}', "surrogate"),
        (b'{"status_code":1000,"x":"\xff"}', "UTF-8"),
        (b'{"status_code":-0}', "not an OCPI status code"),
        (b'{"status_code":100000000000000000000}', "not an OCPI status code"),
        (b'{"status_code":true}', "no integer status_code"),
        (b'[{"status_code":1000}]', "not an OCPI envelope"),
        (b"", "empty"),
        (b"<html></html>", "not valid JSON"),
    ],
)
def test_each_hostile_answer_says_why_it_is_not_used(body: bytes, why: str) -> None:
    envelope, reason = read_envelope(body)
    assert envelope is None and reason is not None and why in reason, reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"status_code":1000,"timestamp":"t"}', {"status_code": 1000, "timestamp": "t"}),
        (b'\xef\xbb\xbf{"status_code":"2001"}', {"status_code": 2001}),  # a BOM, the code as digits
        (b'{"status_code":1000,"data":"\\ud83d\\ude00"}', {"status_code": 1000, "data": "\U0001f600"}),
        (
            b'{"status_code":1000,"data":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}",
            None,
        ),
    ],
)
def test_real_answers_still_parse(body: bytes, expected: Any) -> None:
    envelope, why = read_envelope(body)
    assert why is None and envelope is not None
    if expected is not None:
        assert envelope == expected
