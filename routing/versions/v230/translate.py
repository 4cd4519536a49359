"""OCPI 2.3.0 <-> 2.2.1, module by module.

2.3.0 (edition 2) differs from 2.2.1 in: Price (``before_taxes`` + itemised ``taxes`` instead of
``excl_vat``/``incl_vat``), Tariff ``tax_included`` and PriceLimit min/max prices, Parking
objects and EVSE parking/accepted_service_providers, Location help_phone and longer
address/state, Connector capabilities, new enum values (ConnectorType MCS/SAE_J3400,
ParkingRestriction EMPLOYEES/TAXIS/TENANTS, TokenType EMAID) and no HUB role. Everything the
other side has no field for is dropped by the shape pass with a Loss record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from routing.versions.common import copy, dec, each, num
from routing.versions.loss import Context, JsonObj, Losses
from routing.versions.shape import EnumMap, Fitter
from routing.versions.v221 import models as core
from routing.versions.v230 import models as mine

VERSION = "2.3.0"

# 2.3.0 values 2.2.1 cannot express, and their closest 2.2.1 meaning (None: drop).
TO_CORE_ENUMS: EnumMap = {
    ("ConnectorType", "SAE_J3400"): "TESLA_S",  # J3400 is the standardised Tesla/NACS plug
    ("ConnectorType", "MCS"): "IEC_62196_T2_COMBO",  # megawatt DC; CCS2 is the nearest DC plug
    ("TokenType", "EMAID"): "OTHER",
    ("ParkingRestriction", "EMPLOYEES"): None,
    ("ParkingRestriction", "TAXIS"): None,
    ("ParkingRestriction", "TENANTS"): None,
}
FROM_CORE_ENUMS: EnumMap = {}

_PRICE_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


def _price_in(price: JsonObj, path: str, losses: Losses) -> JsonObj:
    out: JsonObj = {"excl_vat": price.get("before_taxes")}
    taxes = price.get("taxes")
    if isinstance(taxes, list) and taxes and price.get("before_taxes") is not None:
        total = dec(price["before_taxes"]) + sum(
            (dec(t.get("amount", 0)) for t in taxes if isinstance(t, dict)), Decimal(0)
        )
        out["incl_vat"] = num(total)
        names = [t.get("name") for t in taxes if isinstance(t, dict)]
        if names != ["VAT"] or any(set(t) - {"name", "amount"} for t in taxes if isinstance(t, dict)):
            losses.approx(path + ".taxes", f"tax lines {names} summed into incl_vat")
    return out


def _price_out(price: JsonObj, path: str, losses: Losses) -> JsonObj:
    out: JsonObj = {"before_taxes": price.get("excl_vat")}
    if price.get("incl_vat") is not None and price.get("excl_vat") is not None:
        amount = dec(price["incl_vat"]) - dec(price["excl_vat"])
        # 2.2.1 has one VAT total; 2.3.0 itemises taxes: one line named VAT carries it exactly.
        out["taxes"] = [{"name": "VAT", "amount": num(amount)}]
    return out


def _prices(data: JsonObj, losses: Losses, fn: Any) -> None:
    for key in _PRICE_FIELDS:
        if isinstance(data.get(key), dict):
            data[key] = fn(data[key], key, losses)


def _tariff_in(t: JsonObj, losses: Losses) -> JsonObj:
    t = copy(t)
    tax = t.pop("tax_included", None)
    if tax == "YES":
        losses.approx("tax_included", "2.3.0 prices include taxes; 2.2.1 reads them as excl. VAT")
    elif tax == "NO" and not _names_vat(t):
        # 2.2.1 PriceComponent.vat omitted means "no VAT applicable": the unnamed rate is lost.
        losses.approx("tax_included", "taxes are added at rates the tariff does not give; 2.2.1 reads no VAT")
    for key in ("min_price", "max_price"):
        if isinstance(t.get(key), dict):
            p = t[key]
            t[key] = {"excl_vat": p.get("before_taxes")} | (
                {"incl_vat": p["after_taxes"]} if "after_taxes" in p else {}
            )
    return t


def _names_vat(t: JsonObj) -> bool:
    """Whether any price component of the tariff has a ``vat``."""
    for element in t.get("elements") or []:
        for pc in element.get("price_components") or [] if isinstance(element, dict) else []:
            if isinstance(pc, dict) and pc.get("vat") is not None:
                return True
    return False


def _tariff_out(t: JsonObj, losses: Losses, partial: bool = False, origin: str = "") -> JsonObj:
    t = copy(t)
    if not partial:
        # 2.2.1 prices are excl. VAT by definition (PriceComponent.price): "NO" (taxes added on
        # top) when a price component names a VAT; none naming one means "no VAT is applicable"
        # (2.2.1 PriceComponent.vat: "if omitted, no VAT is applicable"), 2.3.0's "N/A".
        # A 2.1.1 tariff is excl. VAT with the VAT unknown (2.1.1 PriceComponent.price): "NO".
        t.setdefault("tax_included", "NO" if origin == "2.1.1" or _names_vat(t) else "N/A")
    for key in ("min_price", "max_price"):
        if isinstance(t.get(key), dict):
            p = t[key]
            t[key] = {"before_taxes": p.get("excl_vat")} | ({"after_taxes": p["incl_vat"]} if "incl_vat" in p else {})
    return t


def _restructure(kind: str, data: JsonObj, losses: Losses, inbound: bool, partial: bool, origin: str = "") -> JsonObj:
    data = copy(data)
    if kind in ("Session", "CDR"):
        _prices(data, losses, _price_in if inbound else _price_out)
    if kind == "CDR":
        each(data, "tariffs", lambda t: _tariff_in(t, losses) if inbound else _tariff_out(t, losses, False, origin))
    if kind == "Tariff":
        data = _tariff_in(data, losses) if inbound else _tariff_out(data, losses, partial, origin)
    return data


def _model(models: Any, kind: str) -> Any:
    return getattr(models, kind)


def to_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """A 2.3.0 object of ``kind`` (a PATCH body if ``partial``) as 2.2.1."""
    del ctx  # 2.3.0 objects carry their owner like 2.2.1
    shaped = _restructure(kind, data, losses, True, partial)
    return Fitter("2.2.1", losses, TO_CORE_ENUMS).fit(_model(core, kind), shaped)


def from_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """A 2.2.1 object of ``kind`` (a PATCH body if ``partial``) as 2.3.0."""
    shaped = _restructure(kind, data, losses, False, partial, ctx.origin)
    return Fitter(VERSION, losses, FROM_CORE_ENUMS).fit(_model(mine, kind), shaped)
