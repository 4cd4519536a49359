"""What a push does to the hub's stored copy of an object (mod_locations, mod_sessions, mod_tokens).

PUT replaces; PATCH merges the given fields; a Location's EVSE or Connector PUT/PATCH lands
inside the stored Location and bumps the parents' ``last_updated`` (mod_locations, "Receiver
Interface"); a Session PATCH *appends* ``charging_periods`` (mod_sessions, PATCH method).
The hub never changes ``last_updated`` in what it forwards: these rules apply to its copy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routing.clock import iso, parse_iso
from routing.messages import PartyRef
from routing.protocol.errors import InvalidParameters
from routing.protocol.vocab import ModuleID

if TYPE_CHECKING:
    from storage.objects import StoredObject


@dataclass(frozen=True)
class ObjectRef:
    """A client owned object addressed by a receiver URL: {country_code}/{party_id}/{id}[/sub...]."""

    owner: PartyRef
    object_id: str
    sub: tuple[str, ...] = ()
    token_type: str | None = None

    @property
    def key(self) -> str:
        """Case-folded storage key (CiStrings compare case-insensitively)."""
        parts = [self.owner.country_code, self.owner.party_id, self.object_id]
        if self.token_type:
            parts.append(self.token_type)
        return "/".join(parts).upper()


def object_ref(module: str, segments: list[str], query: dict[str, str]) -> ObjectRef:
    """Parse a receiver COO URL; 2001 when it is not of that shape."""
    if len(segments) < 3:
        raise InvalidParameters(f"{module} receiver URLs are /{{country_code}}/{{party_id}}/{{id}}")
    limit = 5 if module == ModuleID.LOCATIONS else 3
    if len(segments) > limit:
        raise InvalidParameters(f"too many path segments for {module}")
    token_type = (query.get("type") or "RFID").upper() if module == ModuleID.TOKENS else None
    return ObjectRef(PartyRef(segments[0], segments[1]), segments[2], tuple(segments[3:]), token_type)


def canonical_time(value: Any, *, field: str = "last_updated") -> str:
    """A DateTime as a sortable canonical UTC string; 2001 when it is not a DateTime."""
    if not isinstance(value, str):
        raise InvalidParameters(f"{field} must be a DateTime string")
    # types, DateTime: at most 35 characters of ASCII; a NUL or a year the offset pushes past
    # 9999 (9999-12-31T23:59:59-01:00) is not one either.
    if len(value) > 35 or not (value.isascii() and value.isprintable()):
        raise InvalidParameters(f"{field} is not a valid DateTime")
    try:
        return iso(parse_iso(value))
    except (ValueError, OverflowError) as exc:
        raise InvalidParameters(f"{field} is not a valid DateTime: {value[:40]!r}") from exc


def check_body_matches(ref: ObjectRef, body: Any, id_field: str, method: str) -> None:
    """URL ids and body ids must agree (docs/DESIGN-NOTES.md, Routing: mismatch is 2001); absent is tolerated."""
    if not isinstance(body, dict):
        raise InvalidParameters("body must be a JSON object")
    if method == "PATCH" and "last_updated" not in body:
        raise InvalidParameters("a PATCH must contain last_updated (transport_and_format, PATCH)")
    if ref.sub:  # EVSE / connector bodies carry their own ids, checked below
        expected = ref.sub[-1]
        sub_field = "uid" if len(ref.sub) == 1 else "id"
        value = body.get(sub_field)
        if method == "PUT" and value is not None and str(value).upper() != expected.upper():
            raise InvalidParameters(f"{sub_field} in the body ({value}) differs from the URL ({expected})")
        return
    for name, expected in (
        ("country_code", ref.owner.country_code),
        ("party_id", ref.owner.party_id),
        (id_field, ref.object_id),
    ):
        value = body.get(name)
        if value is not None and str(value).upper() != expected.upper():
            raise InvalidParameters(f"{name} in the body ({value}) differs from the URL ({expected})")


def _find(items: list[Any], field: str, wanted: str) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, dict) and str(item.get(field, "")).upper() == wanted.upper():
            return i
    return None


def _merge_child(
    parent: dict[str, Any], list_field: str, id_field: str, child_id: str, method: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    children = parent.get(list_field)
    if not isinstance(children, list):
        children = []
    index = _find(children, id_field, child_id)
    if method == "PUT":
        new_child = dict(body)
        new_child.setdefault(id_field, child_id)
    elif index is None:
        return None  # PATCH of a child we never saw: nothing to merge into
    else:
        new_child = {**children[index], **body}
    children = list(children)
    if index is None:
        children.append(new_child)
    else:
        children[index] = new_child
    updated = {**parent, list_field: children}
    if "last_updated" in body:
        updated["last_updated"] = body["last_updated"]
    return updated


def find_child(location: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The EVSE (``[evse_uid]``) or Connector (``[evse_uid, connector_id]``) inside a Location."""
    evses = location.get("evses") or []
    index = _find(evses, "uid", path[0]) if isinstance(evses, list) else None
    if index is None:
        return None
    evse: dict[str, Any] = evses[index]
    if len(path) == 1:
        return evse
    connectors = evse.get("connectors") or []
    found = _find(connectors, "id", path[1]) if isinstance(connectors, list) else None
    return connectors[found] if found is not None else None


def apply_push(
    module: str, method: str, ref: ObjectRef, stored: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The hub's new copy of the object after this push, or None when it cannot be built."""
    if not ref.sub:
        if method in ("PUT", "POST"):  # POST: a CDR, stored whole (mod_cdrs, immutable)
            return dict(body)
        if stored is None:
            return None
        merged = {**stored, **body}
        if module == ModuleID.SESSIONS and isinstance(body.get("charging_periods"), list):
            merged["charging_periods"] = list(stored.get("charging_periods") or []) + body["charging_periods"]
        return merged
    if module != ModuleID.LOCATIONS or stored is None:
        return None
    evse_uid = ref.sub[0]
    if len(ref.sub) == 1:
        return _merge_child(stored, "evses", "uid", evse_uid, method, body)
    evses = stored.get("evses") or []
    index = _find(evses, "uid", evse_uid)
    if index is None:
        return None
    evse = _merge_child(evses[index], "connectors", "id", ref.sub[1], method, body)
    if evse is None:
        return None
    return _merge_child(stored, "evses", "uid", evse_uid, "PUT", evse)


def alt_id(module: str, copy: dict[str, Any]) -> str | None:
    """A Token is also found by its contract_id: 2.1.1 Sessions and CDRs name it so (auth_id)."""
    contract = copy.get("contract_id") if module == ModuleID.TOKENS else None
    return str(contract).upper() if contract else None


def origin_after(
    module: str,
    method: str,
    ref: ObjectRef,
    stored: StoredObject | None,
    sent: tuple[str, Any] | None,
    replaces: bool,
) -> tuple[str, Any] | None:
    """The sender's-version body to keep beside the new 2.2.1 copy (None: the copy is what was sent).

    A whole object is kept as sent; a PATCH or child push merges into the kept body when it is
    in the same version, else nothing is kept (readers get the 2.2.1 copy translated).
    """
    if sent is None or not isinstance(sent[1], dict):
        return None
    version, body = sent
    if replaces:
        return version, body
    if stored is None or stored.origin_version != version or stored.origin_body is None:
        return None
    merged = apply_push(module, method, ref, json.loads(stored.origin_body), body)
    return (version, merged) if merged is not None else None
