"""Helpers shared by the per-version translators: money arithmetic and nested dispatch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from routing.versions.loss import JsonObj


class Untranslatable(Exception):
    """The target version has no way to express this message (e.g. charging profiles in 2.1.1)."""


def dec(value: Any) -> Decimal:
    """A JSON number as an exact Decimal (via its shortest repr, so 12.1 stays 12.1)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def num(value: Decimal) -> int | float:
    """A Decimal back to the JSON number it spells."""
    return int(value) if value == value.to_integral_value() else float(value)


def copy(data: JsonObj) -> JsonObj:
    """A shallow copy to restructure without touching the caller's object."""
    return dict(data)


def each(data: JsonObj, key: str, fn: Any) -> None:
    """Apply ``fn`` to every dict in the list at ``data[key]`` (if any), in place."""
    items = data.get(key)
    if isinstance(items, list):
        data[key] = [fn(x) if isinstance(x, dict) else x for x in items]


def one(data: JsonObj, key: str, fn: Any) -> None:
    """Apply ``fn`` to the dict at ``data[key]`` (if any), in place."""
    if isinstance(data.get(key), dict):
        data[key] = fn(data[key])


def rename(data: JsonObj, old: str, new: str) -> None:
    """Move ``data[old]`` to ``data[new]`` if present."""
    if old in data:
        data[new] = data.pop(old)
