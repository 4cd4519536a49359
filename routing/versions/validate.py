"""After every translation, is the object valid for the receiver's OCPI version.

The shape pass (routing/versions/shape.py) drops what the target cannot carry but cannot invent
what it requires. Each translated object is validated against the receiver version's pydantic
model; the translators fill what can be derived, and what is still missing is refused
(routing/protocol/errors.py Unrepresentable) with a Loss record per field, so no object leaves the hub
invalid for its receiver. An object the sender sent invalid in its own version is relayed as
before: the hub does not make it worse, and it is not the hub's place to police it.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from routing.versions.v211 import models as m211
from routing.versions.v221 import models as m221
from routing.versions.v230 import models as m230

_MODELS = {"2.1.1": m211, "2.2.1": m221, "2.3.0": m230}
# 2.2.1 kind -> its 2.1.1 model (the async CommandResult is 2.1.1's CommandResponse).
_NAMES_211 = {"CommandResult": "CommandResponse"}
MAX_NAMED = 8  # fields named in one error message


def model_of(version: str, kind: str) -> type[BaseModel] | None:
    """The model of ``kind`` in ``version`` (None: the version has no such object)."""
    name = _NAMES_211.get(kind, kind) if version == "2.1.1" else kind
    model = getattr(_MODELS.get(version), name, None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def problems(version: str, kind: str, data: Any) -> list[str]:
    """Dotted paths of the fields that make ``data`` no valid ``kind`` of ``version`` ([] = valid)."""
    model = model_of(version, kind)
    if model is None:
        return []
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return sorted({_path(error["loc"]) for error in exc.errors()})
    return []


def valid(version: str, kind: str, data: Any, partial: bool = False) -> bool:
    """Whether ``data`` (an object or a list of them; ``partial``: a PATCH body) is valid in ``version``."""
    check = patch_problems if partial else problems
    items = data if isinstance(data, list) else [data]
    return all(not check(version, kind, item) for item in items)


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any] | None:
    info = model.model_fields.get(name)
    if info is None:
        return None
    field_type: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(field_type)


def patch_problems(version: str, kind: str, data: Any) -> list[str]:
    """Like ``problems`` for a PATCH body: each field it carries must be valid (none is required).

    ``null`` is allowed for any field: a PATCH may clear an optional one.
    """
    model = model_of(version, kind)
    if model is None:
        return []
    if not isinstance(data, dict):
        return ["(object)"]
    bad: list[str] = []
    for name, value in data.items():
        adapter = _field_adapter(model, name)
        if adapter is None:
            bad.append(name)
            continue
        if value is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            bad += [_path((name, *error["loc"])) for error in exc.errors()]
    return sorted(set(bad))


def _path(loc: tuple[int | str, ...]) -> str:
    """("evses", 0, "connectors", 1, "max_voltage") -> "evses[].connectors[].max_voltage"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += "[]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "(object)"
