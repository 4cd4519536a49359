"""The official 2.2.1 examples (tests/fixtures), re-owned by the interop peers' parties."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "ocpi-examples-2.2.1"
CPO = ("NL", "XCP")
EMSP = ("NL", "XMS")


def example(name: str) -> dict[str, Any]:
    """One official example as a dict."""
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def owned(data: dict[str, Any], owner: tuple[str, str]) -> dict[str, Any]:
    """A copy whose country_code/party_id name the owner (the examples name BE*BEC, NL*STK...)."""
    out = copy.deepcopy(data)
    out["country_code"], out["party_id"] = owner
    return out


def location(location_id: str = "LOC1") -> dict[str, Any]:
    """location_example.json, owned by the CPO."""
    data = owned(example("location_example.json"), CPO)
    data["id"] = location_id
    return data


def tariff() -> dict[str, Any]:
    """tariff_1_simple_2hour.json, owned by the CPO."""
    return owned(example("tariff_1_simple_2hour.json"), CPO)


def token() -> dict[str, Any]:
    """token_example_2_full_rfid.json, owned by the eMSP."""
    return owned(example("token_example_2_full_rfid.json"), EMSP)


def cdr_token(data: dict[str, Any]) -> dict[str, Any]:
    """The example's cdr_token completed with the eMSP as its owner (2.2.1 CdrToken requires them)."""
    out = dict(data)
    out["country_code"], out["party_id"] = EMSP
    return out


def session() -> dict[str, Any]:
    """session_example_1_simple_start.json, CPO-owned, its token the eMSP's."""
    data = owned(example("session_example_1_simple_start.json"), CPO)
    data["cdr_token"] = cdr_token(data["cdr_token"])
    return data


def cdr() -> dict[str, Any]:
    """cdr_example.json, CPO-owned, its token the eMSP's, its tariffs the CPO's."""
    data = owned(example("cdr_example.json"), CPO)
    data["cdr_token"] = cdr_token(data["cdr_token"])
    data["tariffs"] = [owned(t, CPO) for t in data.get("tariffs", [])]
    return data


EXAMPLES_211 = EXAMPLES.parent / "ocpi-examples-2.1.1"


def example_211(name: str) -> dict[str, Any]:
    """One official 2.1.1 example block (mod_*.md) as a dict: its "PUT To URL:" line dropped."""
    lines = [ln for ln in (EXAMPLES_211 / f"{name}.jsonblock").read_text().splitlines() if "To URL:" not in ln]
    data: dict[str, Any] = json.loads("\n".join(lines))
    return data
