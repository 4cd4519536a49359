"""Fixtures loaders, path diffs and model-driven hypothesis strategies for the version tests."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from routing.versions.shape import slots

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Example file name prefix -> (object kind, is a PATCH body).
_KINDS = [
    ("cdr_example", "CDR", False),
    ("location_example", "Location", False),
    ("location_put_example_add_evse", "EVSE", False),
    ("location_patch_example_location", "Location", True),
    ("location_patch_example_remove_evse", "EVSE", True),
    ("location_patch_example_status", "EVSE", True),
    ("location_patch_example_tariff", "Connector", True),
    ("session_example", "Session", False),
    ("session_patch", "Session", True),
    ("tariff_put_example", "Tariff", False),
    ("tariffrestriction_example", "Tariff", False),
    ("tariff_", "Tariff", False),
    ("token_example", "Token", False),
    ("token_put_example", "Token", False),
    ("token_patch_example", "Token", True),
]
_KINDS_211 = {
    "cdrs_0": ("CDR", False),
    "locations_0": ("EVSE", True),
    "locations_1": ("Location", True),
    "locations_2": ("Connector", True),
    "locations_3": ("EVSE", False),
    "locations_4": ("EVSE", True),
    "locations_5": ("Location", False),
    "sessions_0": ("Session", True),
    "sessions_1": ("Session", False),
    "sessions_2": ("Session", False),
    "tariffs_0": ("Tariff", True),
    "tariffs_1": ("Tariff", True),
    "tariffs_2": ("Tariff", False),
    "tariffs_3": ("Tariff", False),
    "tariffs_4": ("Tariff", False),
    "tariffs_5": ("Tariff", False),
    "tariffs_6": ("Tariff", False),
    "tokens_0": ("Token", False),
    "tokens_1": ("Token", True),
    "tokens_2": ("Token", False),
}


def examples(version: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
    """(file, kind, partial, object) for every official example of ``version`` that is an object."""
    out = []
    folder = FIXTURES / f"ocpi-examples-{version}"
    if version == "2.1.1":
        for name, (kind, partial) in sorted(_KINDS_211.items()):
            out.append((name, kind, partial, load_block(folder / f"{name}.jsonblock")))
        return out
    for path in sorted(folder.glob("*.json")):
        found = next(((k, p) for pre, k, p in _KINDS if path.name.startswith(pre)), None)
        if found:
            out.append((path.name, found[0], found[1], json.loads(path.read_text())))
    return out


def load_block(path: Path) -> dict[str, Any]:
    """A 2.1.1 spec example block: drop a leading "PUT To URL:" line."""
    lines = [ln for ln in path.read_text().splitlines() if not re.match(r"\s*\w+ To URL:", ln)]
    data = json.loads("\n".join(lines))
    assert isinstance(data, dict)
    return data


def leaves(data: Any, path: str = "") -> dict[str, Any]:
    """Every leaf value by its path, list items as "[i]"."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(leaves(v, f"{path}.{k}" if path else k))
    elif isinstance(data, list):
        # An empty list and an absent "*" field mean the same in OCPI: no leaf.
        for i, v in enumerate(data):
            out.update(leaves(v, f"{path}[{i}]"))
    else:
        out[path] = data
    return out


def changed_paths(before: Any, after: Any) -> set[str]:
    """Paths ("[]" for list items) whose leaf differs or is missing on either side."""
    a, b = leaves(before), leaves(after)
    return {re.sub(r"\[\d+\]", "[]", p) for p in set(a) | set(b) if a.get(p) != b.get(p)}


def covered(path: str, loss_paths: set[str]) -> bool:
    """True if a loss names this path or one of its parents."""
    return any(path == lp or path.startswith((lp + ".", lp + "[")) for lp in loss_paths)


_DT = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format,
    st.integers(2015, 2030),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
_TEXT = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1)


def objects(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that fit ``model``'s field table: required fields always, optional ones maybe."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, slot in slots(model).items():
        value = _value(slot.base, slot.max_length, name, depth)
        if value is None:
            continue
        if slot.is_list:
            value = st.lists(value, min_size=1 if slot.required else 0, max_size=2)
        (required if slot.required else optional)[name] = value
    return st.fixed_dictionaries(required, optional=optional)


def _value(base: Any, max_length: int | None, name: str, depth: int) -> Any:
    if isinstance(base, type) and issubclass(base, BaseModel):
        return objects(base, depth + 1) if depth < 3 else None
    if isinstance(base, type) and issubclass(base, StrEnum):
        return st.sampled_from([m.value for m in base])
    if base is bool:
        return st.booleans()
    if base is int and name == "weekday":
        return st.integers(1, 7)
    if base is int:
        return st.integers(0, 9999 if max_length is None else 9)
    if base is float:
        return st.decimals(0, 1000, places=2).map(float)
    if "date_time" in name or name in ("last_updated", "expiry_date", "period_begin", "period_end"):
        if name.startswith("period_") and max_length == 5:
            return st.just("08:00")
        return _DT
    return _TEXT.map(lambda s: s[: max_length or 36])
