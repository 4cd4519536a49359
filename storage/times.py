"""Timestamp columns: ``datetime`` above storage, text in the row.

Rows hold the OCPI DateTime text the hub has always written (RFC 3339, UTC, 'Z', milliseconds),
so databases written before this module stay readable and a value read and written back is
byte-identical. routing/clock.py's ``iso`` renders the same format for OCPI JSON; storage keeps
its own copy so it imports nothing from routing (tests/test_vocab.py checks they agree).
"""

from __future__ import annotations

from datetime import UTC, datetime


def encode(value: datetime) -> str:
    """The column text of a timezone-aware datetime (converted to UTC, milliseconds)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def decode(text: str) -> datetime:
    """A column's text as an aware UTC datetime ('Z' optional; naive text means UTC)."""
    stripped = text.strip()
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1]
    value = datetime.fromisoformat(stripped)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def decode_optional(text: str | None) -> datetime | None:
    """``decode`` for a nullable column."""
    return None if text is None else decode(text)
