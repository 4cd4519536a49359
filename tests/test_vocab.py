"""The StrEnums of routing/protocol/vocab.py match the OCPI 2.2.1 tables the repo carries.

The tables are read from tests/fixtures/ocpi-spec-2.2.1 (ModuleID and InterfaceRole in
version_information_endpoint.asciidoc, Role in types.asciidoc), so a typo or a missing member
fails here rather than on the wire. Also: storage/times.py's column text is routing/clock.py's
OCPI DateTime, so timestamps read as datetimes and formatted again are byte-identical.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from routing.clock import iso, iso_or_none, parse_iso
from routing.decide import MODULES
from routing.protocol.vocab import PARTY_ROLES, InterfaceRole, ModuleID, Role, other_interface
from storage import times

SPEC = Path(__file__).parent / "fixtures" / "ocpi-spec-2.2.1"


def _table(file: str, heading: str, column: int) -> set[str]:
    """The values in one column of the asciidoc table under ``==== <heading> _enum_``."""
    text = (SPEC / file).read_text(encoding="utf-8")
    section = text.split(f"==== {heading} _enum_", 1)[1]
    body = section.split("|===", 2)[1]
    rows = [line for line in body.splitlines() if line.startswith("|")][1:]  # after the header row
    return {line.split("|")[column + 1].strip() for line in rows}


def test_module_ids_are_the_spec_table() -> None:
    assert {m.value for m in ModuleID} == _table("version_information_endpoint.asciidoc", "ModuleID", 1)


def test_interface_roles_are_the_spec_table() -> None:
    assert {r.value for r in InterfaceRole} == _table("version_information_endpoint.asciidoc", "InterfaceRole", 0)


def test_roles_are_the_spec_table() -> None:
    text = (SPEC / "types.asciidoc").read_text(encoding="utf-8")
    section = text.split("=== Role _enum_", 1)[1].split("|===", 2)[1]
    values = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("|")}
    assert {r.value for r in Role} == values - {"Value"}


def test_members_are_their_wire_strings() -> None:
    # Stored rows and JSON stay the plain strings: equality, hashing, formatting and json.
    assert ModuleID.CHARGING_PROFILES == "chargingprofiles"
    assert {"hubclientinfo": 1}[ModuleID.HUB_CLIENT_INFO] == 1
    assert f"{ModuleID.LOCATIONS}/{InterfaceRole.SENDER.lower()}" == "locations/sender"
    assert json.dumps({Role.EMSP: [InterfaceRole.RECEIVER]}) == '{"EMSP": ["RECEIVER"]}'


def test_party_roles_exclude_the_hub() -> None:
    assert PARTY_ROLES == (Role.CPO, Role.EMSP, Role.NAP, Role.NSP, Role.OTHER, Role.SCSP)


def test_other_interface() -> None:
    assert other_interface("SENDER") is InterfaceRole.RECEIVER
    assert other_interface(InterfaceRole.RECEIVER) is InterfaceRole.SENDER


def test_routed_modules_are_module_ids() -> None:
    assert all(isinstance(spec.name, ModuleID) for spec in MODULES.values())


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_column_text_is_the_ocpi_datetime(moment: datetime) -> None:
    text = times.encode(moment)
    assert text == iso(moment)
    assert times.decode(text) == parse_iso(text)
    assert iso(times.decode(text)) == text  # read, then rendered for JSON: the same bytes
    assert times.decode_optional(None) is None and iso_or_none(None) is None
