"""OCPI 2.1.1 <-> 2.2.1 for the object modules: locations, tariffs, tokens (and the enum maps).

Split from translate.py (sessions, CDRs, commands and the dispatch), which uses these.
2.1.1 objects carry no owner: ``country_code``/``party_id`` come from the Context (the
sending platform's one party) on the way in and travel in the receiver URL on the way out.
"""

from __future__ import annotations

from routing.versions.common import copy, each, one, rename
from routing.versions.loss import Context, JsonObj, Losses, join
from routing.versions.shape import EnumMap
from routing.versions.timezones import zone_of

TO_CORE_ENUMS: EnumMap = {
    ("CommandResponseType", "TIMEOUT"): "REJECTED",  # 2.2.1 moved TIMEOUT to CommandResult
    ("CommandResultType", "UNKNOWN_SESSION"): "FAILED",
    ("CdrDimensionType", "FLAT"): None,  # removed in 2.2 (changelog: "of no use on a CDR")
}
FROM_CORE_ENUMS: EnumMap = {
    ("TokenType", "APP_USER"): "OTHER",
    ("TokenType", "AD_HOC_USER"): "OTHER",
    ("AuthMethod", "COMMAND"): "AUTH_REQUEST",  # started by the eMSP's request either way
    ("SessionStatus", "RESERVATION"): "PENDING",
    ("PowerType", "AC_2_PHASE"): "AC_1_PHASE",
    ("PowerType", "AC_2_PHASE_SPLIT"): "AC_1_PHASE",
    ("ConnectorType", "GBT_DC"): "CHADEMO",
    ("ConnectorType", "CHAOJI"): "CHADEMO",  # ChaoJi is CHAdeMO 3.0
    ("ConnectorType", "GBT_AC"): "IEC_62196_T2",
    ("ConnectorType", "DOMESTIC_M"): "DOMESTIC_G",
    ("ConnectorType", "DOMESTIC_N"): "DOMESTIC_J",
    ("ConnectorType", "DOMESTIC_O"): "DOMESTIC_L",
    ("ConnectorType", "NEMA_5_20"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_6_30"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_6_50"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_10_30"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_10_50"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_14_30"): "DOMESTIC_B",
    ("ConnectorType", "NEMA_14_50"): "DOMESTIC_B",
    ("ConnectorType", "PANTOGRAPH_BOTTOM_UP"): "IEC_62196_T2_COMBO",
    ("ConnectorType", "PANTOGRAPH_TOP_DOWN"): "IEC_62196_T2_COMBO",
    ("CommandResponseType", "EVSE_OCCUPIED"): "REJECTED",
    ("CommandResponseType", "EVSE_INOPERATIVE"): "REJECTED",
    ("CommandResponseType", "FAILED"): "REJECTED",
    ("CommandResponseType", "CANCELED_RESERVATION"): "REJECTED",
    ("CommandResponseType", "UNKNOWN_RESERVATION"): "REJECTED",
}

PARKING_TO_TYPE = {
    "ON_STREET": "ON_STREET",
    "PARKING_GARAGE": "PARKING_GARAGE",
    "UNDERGROUND_GARAGE": "UNDERGROUND_GARAGE",
    "PARKING_LOT": "PARKING_LOT",
}


# ---- locations ---------------------------------------------------------------------------


def energy_mix(mix: JsonObj, inbound: bool) -> JsonObj:
    """EnergyMix: EnvironmentalImpact ``source`` (2.1.1) <-> ``category`` (2.2.1)."""
    mix = copy(mix)
    old, new = ("source", "category") if inbound else ("category", "source")
    each(mix, "environ_impact", lambda e: _renamed(e, old, new))
    return mix


def _renamed(data: JsonObj, old: str, new: str) -> JsonObj:
    data = copy(data)
    rename(data, old, new)
    return data


def connector_in(c: JsonObj) -> JsonObj:
    """A 2.1.1 Connector as 2.2.1: voltage/amperage/tariff_id renamed."""
    c = copy(c)
    rename(c, "voltage", "max_voltage")
    rename(c, "amperage", "max_amperage")
    if "tariff_id" in c:
        tid = c.pop("tariff_id")
        c["tariff_ids"] = [tid] if tid else []
    return c


def connector_out(c: JsonObj, losses: Losses, path: str) -> JsonObj:
    """A 2.2.1 Connector as 2.1.1: one tariff_id (extra ones dropped with a Loss)."""
    c = copy(c)
    rename(c, "max_voltage", "voltage")
    rename(c, "max_amperage", "amperage")
    if "tariff_ids" in c:
        ids = c.pop("tariff_ids") or []
        if ids:
            c["tariff_id"] = ids[0]
        if len(ids) > 1:
            where = join(path, "tariff_ids")
            losses.drop(where, f"2.1.1 holds one tariff_id; {ids[1:]} dropped")
    return c


def evse_in(e: JsonObj) -> JsonObj:
    """A 2.1.1 EVSE as 2.2.1."""
    e = copy(e)
    each(e, "connectors", connector_in)
    return e


def evse_out(e: JsonObj, losses: Losses, path: str) -> JsonObj:
    """A 2.2.1 EVSE as 2.1.1."""
    e = copy(e)
    each(e, "connectors", lambda c: connector_out(c, losses, join(path, "connectors[]")))
    return e


def hours_in(h: JsonObj) -> JsonObj:
    """2.1.1 Hours (regular_hours or twentyfourseven) as 2.2.1 (twentyfourseven always)."""
    h = copy(h)
    # 2.1.1: "Choice: one of two" (regular_hours or twentyfourseven); 2.2.1 always has the flag.
    h.setdefault("twentyfourseven", "regular_hours" not in h)
    return h


def hours_out(h: JsonObj, losses: Losses) -> JsonObj:
    """2.2.1 Hours as 2.1.1's choice of one of two."""
    h = copy(h)
    if h.get("twentyfourseven") is False:
        del h["twentyfourseven"]
        h.setdefault("regular_hours", [])
    elif h.get("twentyfourseven") is True and h.pop("regular_hours", None):
        losses.drop("opening_times.regular_hours", "2.1.1: 24/7 or regular hours, not both")
    return h


def location_in(loc: JsonObj, ctx: Context, losses: Losses, partial: bool) -> JsonObj:
    """A 2.1.1 Location (or PATCH body) as 2.2.1, owned by the sending party."""
    loc = copy(loc)
    if not partial:
        loc.setdefault("country_code", ctx.country_code)
        loc.setdefault("party_id", ctx.party_id)
        loc.setdefault("publish", True)  # 2.1.1 has no unpublished locations
        if not loc.get("time_zone"):
            found = zone_of(loc.get("coordinates"), loc.get("country"))
            if found is not None:
                loc["time_zone"] = found[0]
                losses.approx("time_zone", f"2.1.1 Location without time_zone (required in 2.2.1): {found[1]}")
            else:
                losses.drop("time_zone", "2.1.1 Location without time_zone, none derivable (required in 2.2.1)")
    if "type" in loc:
        ltype = loc.pop("type")
        if ltype in PARKING_TO_TYPE:
            loc["parking_type"] = PARKING_TO_TYPE[ltype]
        elif ltype not in (None, "UNKNOWN"):  # OTHER: 2.2.1 ParkingType has no such value
            losses.drop("type", f"LocationType {ltype} has no 2.2.1 ParkingType")
    each(loc, "evses", evse_in)
    one(loc, "opening_times", hours_in)
    one(loc, "energy_mix", lambda m: energy_mix(m, True))
    return loc


def location_out(loc: JsonObj, losses: Losses, partial: bool) -> JsonObj:
    """A 2.2.1 Location (or PATCH body) as 2.1.1."""
    loc = copy(loc)
    # Owner: the 2.1.1 receiver URL carries country_code/party_id (mod_locations 2.2.x).
    loc.pop("country_code", None)
    loc.pop("party_id", None)
    if loc.pop("publish", True) is False:
        losses.approx("publish", "2.1.1 has no unpublished Locations")
    if "parking_type" in loc or not partial:
        ptype = loc.pop("parking_type", None)
        loc["type"] = ptype if ptype in PARKING_TO_TYPE else ("OTHER" if ptype else "UNKNOWN")
        if ptype and ptype not in PARKING_TO_TYPE:
            losses.approx("parking_type", f"ParkingType {ptype} sent as LocationType OTHER")
    if not partial and "postal_code" not in loc:
        loc["postal_code"] = ""
        losses.approx("postal_code", "required in 2.1.1: sent empty")
    each(loc, "evses", lambda e: evse_out(e, losses, "evses[]"))
    one(loc, "opening_times", lambda h: hours_out(h, losses))
    one(loc, "energy_mix", lambda m: energy_mix(m, False))
    return loc


# ---- tariffs and tokens ------------------------------------------------------------------


def tariff_in(t: JsonObj, ctx: Context, partial: bool) -> JsonObj:
    """A 2.1.1 Tariff as 2.2.1, owned by the sending party."""
    t = copy(t)
    if not partial:
        t.setdefault("country_code", ctx.country_code)
        t.setdefault("party_id", ctx.party_id)
    one(t, "energy_mix", lambda m: energy_mix(m, True))
    return t


def tariff_out(t: JsonObj) -> JsonObj:
    """A 2.2.1 Tariff as 2.1.1 (owner in the receiver URL)."""
    t = copy(t)
    t.pop("country_code", None)  # in the 2.1.1 receiver URL
    t.pop("party_id", None)
    one(t, "energy_mix", lambda m: energy_mix(m, False))
    return t


def token_in(t: JsonObj, ctx: Context, partial: bool) -> JsonObj:
    """A 2.1.1 Token as 2.2.1: auth_id is contract_id, owned by the sending party."""
    t = copy(t)
    rename(t, "auth_id", "contract_id")  # changelog 2.2: Token.auth_id renamed contract_id
    if not partial:
        t.setdefault("country_code", ctx.country_code)
        t.setdefault("party_id", ctx.party_id)
    return t


def token_out(t: JsonObj) -> JsonObj:
    """A 2.2.1 Token as 2.1.1: contract_id is auth_id."""
    t = copy(t)
    rename(t, "contract_id", "auth_id")
    t.pop("country_code", None)  # in the 2.1.1 receiver URL
    t.pop("party_id", None)
    return t
