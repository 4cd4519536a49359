"""OCPI 2.1.1 <-> 2.2.1, module by module (checklist: the 2.1.1 -> 2.2 table of the changelog).

2.1.1 objects carry no owner (``country_code``/``party_id`` come from the Context: the sending
platform's one party), Sessions and CDRs embed a Location and name the token by ``auth_id``
(2.2.1: ``cdr_token``, ``location_id``/``cdr_location``), costs are plain numbers excl. VAT
(2.2.1: Price), Connectors have ``voltage``/``amperage``/``tariff_id``, Locations a ``type``
(2.2.1: optional ``parking_type``), EnvironmentalImpact a ``source`` (2.2.1: ``category``), and
one CommandResponse serves as both the answer and the async result (2.2.1: CommandResponse +
CommandResult). There are no charging profiles and no CANCEL_RESERVATION.
"""

from __future__ import annotations

import re
from typing import Any

from routing.versions.common import Untranslatable, copy, each, one, rename
from routing.versions.loss import Context, JsonObj, Losses
from routing.versions.shape import Fitter
from routing.versions.v211 import models as mine
from routing.versions.v211.objects import (
    FROM_CORE_ENUMS,
    TO_CORE_ENUMS,
    connector_in,
    connector_out,
    evse_in,
    evse_out,
    location_in,
    location_out,
    tariff_in,
    tariff_out,
    token_in,
    token_out,
)
from routing.versions.v221 import models as core

VERSION = "2.1.1"

# Seconds a 2.1.1 CPO is given for a command result: 2.1.1 has no CommandResponse.timeout
# (2.2.1 mod_commands CommandResponse: "timeout ... required").
DEFAULT_COMMAND_TIMEOUT = 30

# eMA-ID (ISO 15118 / eMI3): country code and provider id lead the contract id.
_EMAID = re.compile(r"^([A-Za-z]{2})[-*]?([A-Za-z0-9]{3})")


# ---- sessions and CDRs -------------------------------------------------------------------


def _cdr_token_in(auth_id: str, ctx: Context, losses: Losses) -> JsonObj:
    known = ctx.token_lookup(auth_id) if ctx.token_lookup else None
    if known:
        return {
            "country_code": known.get("country_code", ""),
            "party_id": known.get("party_id", ""),
            "uid": known.get("uid", auth_id),
            "type": known.get("type", "RFID"),
            "contract_id": auth_id,
        }
    m = _EMAID.match(auth_id)
    losses.approx("cdr_token", "2.1.1 names the token by auth_id only: uid, type and owner guessed")
    return {
        "country_code": m.group(1).upper() if m else ctx.country_code,
        "party_id": m.group(2).upper() if m else ctx.party_id,
        "uid": auth_id,
        "type": "OTHER",
        "contract_id": auth_id,
    }


def _cdr_token_out(tok: JsonObj, data: JsonObj, losses: Losses) -> None:
    data["auth_id"] = tok.get("contract_id", tok.get("uid"))
    for key in ("uid", "type", "country_code", "party_id"):
        if key in tok:
            losses.drop(f"cdr_token.{key}", "2.1.1 names the token by auth_id (contract_id) only")


def _where_in(loc: JsonObj) -> tuple[JsonObj, JsonObj, JsonObj]:
    evses = [e for e in loc.get("evses") or [] if isinstance(e, dict)]
    evse = evses[0] if evses else {}
    conns = [c for c in evse.get("connectors") or [] if isinstance(c, dict)]
    return loc, evse, conns[0] if conns else {}


def _price_in(value: Any) -> Any:
    return {"excl_vat": value} if isinstance(value, int | float) else value


def _price_out(data: JsonObj, key: str, losses: Losses) -> None:
    price = data.get(key)
    if isinstance(price, dict):
        data[key] = price.get("excl_vat")
        if price.get("incl_vat") is not None:
            losses.drop(f"{key}.incl_vat", "2.1.1 costs are excl. VAT only")


def _session_in(s: JsonObj, ctx: Context, losses: Losses, partial: bool) -> JsonObj:
    s = copy(s)
    rename(s, "start_datetime", "start_date_time")
    rename(s, "end_datetime", "end_date_time")
    if not partial:
        s.setdefault("country_code", ctx.country_code)
        s.setdefault("party_id", ctx.party_id)
    if "auth_id" in s:
        s["cdr_token"] = _cdr_token_in(s.pop("auth_id"), ctx, losses)
    if isinstance(s.get("location"), dict):
        losses.approx("location", "2.2.1 Sessions name the Location by id; the copy is not sent")
        loc, evse, conn = _where_in(s.pop("location"))
        s["location_id"] = loc.get("id")
        s["evse_uid"] = evse.get("uid")
        s["connector_id"] = conn.get("id")
    if "total_cost" in s:
        s["total_cost"] = _price_in(s["total_cost"])
    return s


def _stub_location(s: JsonObj, ctx: Context, losses: Losses) -> JsonObj:
    """2.1.1 embeds the whole Location: take it from the hub's store, else a stub."""
    found = None
    if ctx.location_lookup and s.get("location_id"):
        found = ctx.location_lookup(s.get("country_code", ""), s.get("party_id", ""), s["location_id"])
    if found:
        loc = copy(found)
        loc["evses"] = [
            {**e, "connectors": [c for c in e.get("connectors", []) if c.get("id") == s.get("connector_id")]}
            for e in found.get("evses", [])
            if isinstance(e, dict) and e.get("uid") == s.get("evse_uid")
        ]
        return loc
    losses.approx("location_id", "Location unknown to the hub: 2.1.1 gets a stub Location")
    return {
        "id": s.get("location_id"),
        "evses": [
            {
                "uid": s.get("evse_uid"),
                "status": "UNKNOWN",
                "connectors": [{"id": s.get("connector_id")}],
            }
        ],
    }


def _session_out(s: JsonObj, ctx: Context, losses: Losses, partial: bool) -> JsonObj:
    s = copy(s)
    rename(s, "start_date_time", "start_datetime")
    rename(s, "end_date_time", "end_datetime")
    if isinstance(s.get("cdr_token"), dict):
        _cdr_token_out(s.pop("cdr_token"), s, losses)
    if "location_id" in s or not partial:
        core_loc = _stub_location(s, ctx, losses)
        s["location"] = location_out(core_loc, Losses(losses.module), partial=False)
        for key in ("location_id", "evse_uid", "connector_id"):
            s.pop(key, None)
    s.pop("country_code", None)  # in the 2.1.1 receiver URL
    s.pop("party_id", None)
    _price_out(s, "total_cost", losses)
    return s


_ADDRESS = ("id", "name", "address", "city", "postal_code", "country", "coordinates")


def _cdr_location_in(loc: JsonObj) -> JsonObj:
    _, evse, conn = _where_in(loc)
    out = {k: loc[k] for k in _ADDRESS if k in loc}
    out["evse_uid"] = evse.get("uid")
    out["evse_id"] = evse.get("evse_id") or evse.get("uid")
    out["connector_id"] = conn.get("id")
    out["connector_standard"] = conn.get("standard")
    out["connector_format"] = conn.get("format")
    out["connector_power_type"] = conn.get("power_type")
    return out


def _known_connector(cl: JsonObj, found: JsonObj | None) -> tuple[JsonObj, JsonObj]:
    """The EVSE and Connector of a CdrLocation in the hub's stored Location ({} when unknown)."""
    evses = [e for e in (found or {}).get("evses") or [] if isinstance(e, dict)]
    evse = next((e for e in evses if e.get("uid") == cl.get("evse_uid")), {})
    conns = [c for c in evse.get("connectors") or [] if isinstance(c, dict)]
    return evse, next((c for c in conns if c.get("id") == cl.get("connector_id")), {})


def _cdr_location_out(cl: JsonObj, cdr: JsonObj, ctx: Context, losses: Losses) -> JsonObj:
    """2.2.1 CdrLocation as 2.1.1's embedded Location, completed from the hub's stored Location.

    2.1.1 requires the Location's, EVSE's and Connector's ``last_updated`` and the Connector's
    ``voltage``/``amperage`` (2.2.1 Connector ``max_voltage``/``max_amperage``, the same ratings);
    a CdrLocation has none of them. Without a stored Location they stay missing and the CDR is
    refused for 2.1.1 (routing/versions/validate.py).
    """
    owner = (cdr.get("country_code", ""), cdr.get("party_id", ""))
    found = ctx.location_lookup(*owner, cl.get("id", "")) if ctx.location_lookup else None
    evse_found, conn_found = _known_connector(cl, found)
    loc = {k: cl[k] for k in _ADDRESS if k in cl}
    loc["type"] = "UNKNOWN"
    stamp = (found or {}).get("last_updated")
    if stamp is None and cdr.get("last_updated"):
        stamp = cdr["last_updated"]
        losses.approx("cdr_location.last_updated", "2.1.1 requires it: the CDR's last_updated")
    if stamp is not None:
        loc["last_updated"] = stamp
    if "postal_code" not in loc:
        loc["postal_code"] = ""
        losses.approx("cdr_location.postal_code", "required in 2.1.1: sent empty")
    cl = dict(cl)
    for key, enum in (("connector_standard", mine.ConnectorType), ("connector_power_type", mine.PowerType)):
        value = cl.get(key)
        if isinstance(value, str) and value not in enum._value2member_map_:
            closest = FROM_CORE_ENUMS.get((enum.__name__, value))
            losses.approx(f"cdr_location.{key}", f"{enum.__name__} {value} sent as {closest}")
            cl[key] = closest
    conn: JsonObj = {
        "id": cl.get("connector_id"),
        "standard": cl.get("connector_standard"),
        "format": cl.get("connector_format"),
        "power_type": cl.get("connector_power_type"),
    }
    if conn_found.get("max_voltage") is not None and conn_found.get("max_amperage") is not None:
        conn["voltage"], conn["amperage"] = conn_found["max_voltage"], conn_found["max_amperage"]
        losses.approx("cdr_location.connector_id", "voltage/amperage from the hub's stored Location")
    evse = {"uid": cl.get("evse_uid"), "evse_id": cl.get("evse_id"), "status": "UNKNOWN"}
    for part, known in ((conn, conn_found), (evse, evse_found)):
        if known.get("last_updated") or stamp:
            part["last_updated"] = known.get("last_updated") or stamp
    loc["evses"] = [evse | {"connectors": [conn]}]
    if "state" in cl:
        losses.drop("cdr_location.state", "no Location.state in 2.1.1")
    return loc


def _cdr_in(c: JsonObj, ctx: Context, losses: Losses) -> JsonObj:
    c = copy(c)
    c.setdefault("country_code", ctx.country_code)
    c.setdefault("party_id", ctx.party_id)
    rename(c, "stop_date_time", "end_date_time")
    if "auth_id" in c:
        c["cdr_token"] = _cdr_token_in(c.pop("auth_id"), ctx, losses)
    if isinstance(c.get("location"), dict):
        losses.approx("location", "reduced to a 2.2.1 CdrLocation (address, EVSE and connector)")
        c["cdr_location"] = _cdr_location_in(c.pop("location"))
    c["total_cost"] = _price_in(c.get("total_cost"))
    each(c, "tariffs", lambda t: tariff_in(t, ctx, False))
    return c


def _cdr_out(c: JsonObj, ctx: Context, losses: Losses) -> JsonObj:
    c = copy(c)
    for key in ("country_code", "party_id"):
        if key in c:  # a 2.1.1 CDR POST URL has no owner segment
            losses.drop(key, "2.1.1 CDRs carry no owner")
            del c[key]
    rename(c, "end_date_time", "stop_date_time")
    if isinstance(c.get("cdr_token"), dict):
        _cdr_token_out(c.pop("cdr_token"), c, losses)
    if isinstance(c.get("cdr_location"), dict):
        c["location"] = _cdr_location_out(c.pop("cdr_location"), c, ctx, losses)
    _price_out(c, "total_cost", losses)
    for t in c.get("tariffs") or []:
        for key in ("country_code", "party_id"):
            if isinstance(t, dict) and key in t:
                losses.drop(f"tariffs[].{key}", "a 2.1.1 Tariff in a CDR carries no owner")
    each(c, "tariffs", tariff_out)
    return c


# ---- commands ----------------------------------------------------------------------------


def _command_in(kind: str, d: JsonObj, ctx: Context, losses: Losses) -> JsonObj:
    d = copy(d)
    one(d, "token", lambda t: token_in(t, ctx, False))
    if kind == "ReserveNow" and isinstance(d.get("reservation_id"), int):
        d["reservation_id"] = str(d["reservation_id"])  # 2.2: int -> CiString(36)
    if kind == "CommandResponse":
        d.setdefault("timeout", DEFAULT_COMMAND_TIMEOUT)
        losses.approx("timeout", f"2.1.1 gives none: the hub's {DEFAULT_COMMAND_TIMEOUT} s")
    return d


def _command_out(kind: str, d: JsonObj, losses: Losses) -> JsonObj:
    d = copy(d)
    if isinstance(d.get("token"), dict):
        for key in ("country_code", "party_id"):
            if key in d["token"]:
                losses.drop(f"token.{key}", "a 2.1.1 Token in a command carries no owner")
    one(d, "token", token_out)
    if kind == "ReserveNow" and "reservation_id" in d:
        rid = str(d["reservation_id"])
        if not rid.isdigit():
            raise Untranslatable(f"reservation_id {rid!r} is not an integer (2.1.1 ReserveNow)")
        d["reservation_id"] = int(rid)
    return d


# ---- dispatch ----------------------------------------------------------------------------

_NONE_IN_211 = {
    "CancelReservation": "2.1.1 has no CANCEL_RESERVATION command",
    "SetChargingProfile": "2.1.1 has no charging profiles module",
    "ChargingProfileResponse": "2.1.1 has no charging profiles module",
    "ActiveChargingProfileResult": "2.1.1 has no charging profiles module",
    "ChargingProfileResult": "2.1.1 has no charging profiles module",
    "ClearProfileResult": "2.1.1 has no charging profiles module",
    "ActiveChargingProfile": "2.1.1 has no charging profiles module",
    "ClientInfo": "2.1.1 has no hubclientinfo module",
    "ChargingPreferences": "2.1.1 has no charging preferences",
}
# 2.2.1 CommandResult (the async answer) is 2.1.1's CommandResponse posted to response_url.
_MODEL_211 = {"CommandResult": "CommandResponse", "AuthorizationInfo": "AuthorizationInfo"}


def to_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """A 2.1.1 object of (2.2.1) ``kind`` (a PATCH body if ``partial``) as 2.2.1."""
    shaped = _restructure_in(kind, data, ctx, losses, partial)
    return Fitter("2.2.1", losses, TO_CORE_ENUMS).fit(getattr(core, kind), shaped)


def from_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """A 2.2.1 object of ``kind`` (a PATCH body if ``partial``) as 2.1.1."""
    if kind in _NONE_IN_211:
        raise Untranslatable(_NONE_IN_211[kind])
    shaped = _restructure_out(kind, data, ctx, losses, partial)
    model = getattr(mine, _MODEL_211.get(kind, kind))
    return Fitter(VERSION, losses, FROM_CORE_ENUMS).fit(model, shaped)


def _restructure_in(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool) -> JsonObj:
    if kind == "Location":
        return location_in(data, ctx, losses, partial)
    if kind == "EVSE":
        return evse_in(data)
    if kind == "Connector":
        return connector_in(data)
    if kind == "Tariff":
        return tariff_in(data, ctx, partial)
    if kind == "Token":
        return token_in(data, ctx, partial)
    if kind == "Session":
        return _session_in(data, ctx, losses, partial)
    if kind == "CDR":
        return _cdr_in(data, ctx, losses)
    if kind == "LocationReferences":
        return copy(data)
    return _command_in(kind, data, ctx, losses)


def _restructure_out(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool) -> JsonObj:
    if kind == "Location":
        return location_out(data, losses, partial)
    if kind == "EVSE":
        return evse_out(data, losses, "")
    if kind == "Connector":
        return connector_out(data, losses, "")
    if kind == "Tariff":
        return tariff_out(data)
    if kind == "Token":
        return token_out(data)
    if kind == "Session":
        return _session_out(data, ctx, losses, partial)
    if kind == "CDR":
        return _cdr_out(data, ctx, losses)
    return _command_out(kind, data, losses)
