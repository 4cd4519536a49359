"""After every translation, is the object valid for the receiver's OCPI version.

The shape pass (routing/versions/shape.py) drops what the target cannot carry but cannot invent
what it requires. Each translated object is validated against the receiver version's pydantic
model; the translators fill what can be derived, and what is still missing is refused
(routing/errors.py Unrepresentable) with a Loss record per field, so no object leaves the hub
invalid for its receiver. An object the sender sent invalid in its own version is relayed as
before: the hub does not make it worse, and it is not the hub's place to police it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

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


def valid(version: str, kind: str, data: Any) -> bool:
    """Whether ``data`` (an object or a list of them) is valid in ``version``."""
    items = data if isinstance(data, list) else [data]
    return all(not problems(version, kind, item) for item in items)


def _path(loc: tuple[int | str, ...]) -> str:
    """("evses", 0, "connectors", 1, "max_voltage") -> "evses[].connectors[].max_voltage"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += "[]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "(object)"
