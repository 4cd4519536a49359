"""The one tolerant reader for what partners send the hub (docs/DESIGN-NOTES.md, What real peers do).

Be liberal in what you accept: real partners wrap one object in a list where the spec says
object (``"data": [{"result": "ACCEPTED"}]`` for a CommandResponse), or send one object where
a list belongs. ``normalize`` reads such data in the shape the spec names and says what it
changed, so the traffic record can show it; everything the hub relays onward is then
spec-shaped (an object where 2.2.1 says object).
"""

from __future__ import annotations

from typing import Any, Literal

Shape = Literal["object", "list"]

LIST_AS_OBJECT = "one-element list read as an object"
OBJECT_AS_LIST = "object read as a one-element list"


def normalize(data: Any, shape: Shape | None) -> tuple[Any, str | None]:
    """``data`` in the expected shape, and a note when it had to be changed (None when it did not)."""
    if shape == "object" and isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        return data[0], LIST_AS_OBJECT
    if shape == "list" and isinstance(data, dict):
        return [data], OBJECT_AS_LIST
    return data, None


def as_object(data: Any) -> Any:
    """``data`` read as an object (a one-element list unwrapped); anything else unchanged."""
    return normalize(data, "object")[0]
