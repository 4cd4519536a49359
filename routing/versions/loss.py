"""Loss records and the translation context shared by every version's translate.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

LossKind = Literal["dropped", "approximated"]
JsonObj = dict[str, Any]


@dataclass(frozen=True)
class Loss:
    """One field the target version could not carry as sent."""

    module: str
    path: str  # dotted, list items as "[]": "evses[].connectors[].max_electric_power"
    kind: LossKind
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape stored in the traffic record."""
        return {"module": self.module, "path": self.path, "kind": self.kind, "detail": self.detail}


@dataclass
class Context:
    """What the caller knows that an older version's message lacks.

    ``country_code``/``party_id`` are the sending platform's one party (2.1.1 objects carry no
    owner); the lookups let the translator rebuild 2.1.1's embedded Location and token data.
    """

    country_code: str = ""
    party_id: str = ""
    location_lookup: Callable[[str, str, str], JsonObj | None] | None = None
    token_lookup: Callable[[str], JsonObj | None] | None = None
    origin: str = ""  # OCPI version the object was first sent in ("" when the hub cannot tell)


@dataclass
class Losses:
    """Collects the Loss records of one translation."""

    module: str
    items: list[Loss] = field(default_factory=list)

    def drop(self, path: str, detail: str) -> None:
        """Record a field the target cannot hold."""
        self.items.append(Loss(self.module, path, "dropped", detail))

    def approx(self, path: str, detail: str) -> None:
        """Record a value the target holds only approximately."""
        self.items.append(Loss(self.module, path, "approximated", detail))


def join(path: str, name: str) -> str:
    """Dotted path of a child field."""
    return f"{path}.{name}" if path else name
