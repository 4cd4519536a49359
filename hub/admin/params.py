"""Parsing of integer ids and query parameters for the admin API, one rule for all of them.

Also ``fields``: the field lists of the admin API's JSON views.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 2**63 - 1  # SQLite INTEGER range: larger values would overflow inside the driver


def fields(row: object, *names: str) -> dict[str, Any]:
    """The named attributes of ``row``, in that order: a view shows what it names and nothing else."""
    return {name: getattr(row, name) for name in names}


def positive_int(value: Any) -> int | None:
    """The value as a non-negative integer within SQLite's range, or None if it is not one.

    ``str.isdigit`` alone accepts characters like '²' that ``int`` refuses, so only ASCII
    digits count.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str) and value and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number <= MAX_ID else None
    return None
