"""Fit a JSON object to a version's pydantic model, field by field, recording every loss.

This is the generic half of each translation: after the module-specific restructuring
(renames, moved data), whatever the target model has no field for is dropped, enum values it
cannot express are mapped to their closest meaning or dropped, and strings longer than the
target's maximum are cut. Only the model's metadata is used (no validation, no re-encoding of
values), so numbers and timestamps pass exactly as sent.
"""

from __future__ import annotations

import types
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import MaxLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from routing.versions.loss import JsonObj, Losses, join

# (enum class name, value) -> closest value in the target, or None to drop it.
EnumMap = dict[tuple[str, str], str | None]


class _Slot:
    """What the shape pass needs to know about one model field."""

    __slots__ = ("base", "is_list", "max_length", "required")

    def __init__(self, base: Any, is_list: bool, max_length: int | None, required: bool) -> None:
        self.base = base
        self.is_list = is_list
        self.max_length = max_length
        self.required = required


def _max_len(meta: list[Any]) -> int | None:
    for m in meta:
        if isinstance(m, MaxLen):
            return int(m.max_length)
        if isinstance(m, FieldInfo):
            found = _max_len(list(m.metadata))
            if found is not None:
                return found
    return None


def _unwrap(tp: Any, meta: list[Any]) -> tuple[Any, bool, int | None]:
    is_list = False
    max_length = _max_len(meta)
    for _ in range(6):  # bounded: Optional[list[Annotated[X, ...]]] is at most this deep
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            tp = next(a for a in get_args(tp) if a is not type(None))
        elif origin is list:
            is_list = True
            tp = get_args(tp)[0]
        elif origin is Annotated:
            args = get_args(tp)
            tp = args[0]
            max_length = _max_len(list(args[1:])) or max_length
        else:
            break
    return tp, is_list, max_length


@cache
def slots(model: type[BaseModel]) -> dict[str, _Slot]:
    """Field name -> slot, for one model class."""
    out: dict[str, _Slot] = {}
    for name, info in model.model_fields.items():
        base, is_list, max_length = _unwrap(info.annotation, list(info.metadata))
        out[name] = _Slot(base, is_list, max_length, info.is_required())
    return out


class Fitter:
    """Fits objects to one version's models; knows that version's closest-meaning enum map."""

    def __init__(self, version: str, losses: Losses, enum_map: EnumMap) -> None:
        self.version = version
        self.losses = losses
        self.enum_map = enum_map

    def fit(self, model: type[BaseModel], data: JsonObj, path: str = "") -> JsonObj:
        """A copy of ``data`` holding only what ``model`` can carry (a PATCH body works too)."""
        table = slots(model)
        out: JsonObj = {}
        for key, value in data.items():
            where = join(path, key)
            slot = table.get(key)
            if slot is None:
                if not _empty(value):  # an empty field loses nothing
                    self.losses.drop(where, f"no {model.__name__}.{key} in OCPI {self.version}")
                continue
            if value is None:
                out[key] = None
                continue
            if slot.is_list and isinstance(value, list):
                items = [self._one(slot, v, where + "[]") for v in value]
                out[key] = [v for v in items if v is not _DROP]
            else:
                one = self._one(slot, value, where)
                if one is not _DROP:
                    out[key] = one
        return out

    def _one(self, slot: _Slot, value: Any, where: str) -> Any:
        base = slot.base
        if isinstance(base, type) and issubclass(base, BaseModel) and isinstance(value, dict):
            return self.fit(base, value, where)
        if isinstance(base, type) and issubclass(base, StrEnum) and isinstance(value, str):
            return self._enum(base, value, where)
        if isinstance(value, str) and slot.max_length is not None and len(value) > slot.max_length:
            self.losses.approx(where, f"cut from {len(value)} to {slot.max_length} characters")
            return value[: slot.max_length]
        return value

    def _enum(self, enum: type[StrEnum], value: str, where: str) -> Any:
        if value in enum._value2member_map_:
            return value
        key = (enum.__name__, value)
        if key in self.enum_map and self.enum_map[key] is not None:
            closest = self.enum_map[key]
            self.losses.approx(where, f"{enum.__name__} {value} sent as {closest}")
            return closest
        self.losses.drop(where, f"{enum.__name__} {value} does not exist in OCPI {self.version}")
        return _DROP


_DROP: Any = object()


def _empty(value: Any) -> bool:
    """True for None and for lists/objects with nothing in them (at any depth)."""
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value is None
