"""What an operator may write as an agreement: one JSON object, or one CSV row of a bulk import.

Both end as ``AgreementValues`` (storage/agreements.py) or as one clear 2001 naming the field;
a CSV import collects every row's problem (row numbers as a spreadsheet shows them, the header
being row 1) before refusing the whole file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from routing.clock import iso, parse_iso
from routing.decide import MODULES
from routing.protocol.errors import InvalidParameters
from routing.protocol.vocab import PARTY_ROLES
from storage.agreements import ALL_MODULES, AgreementValues, Side

ROLES = PARTY_ROLES
STATES = ("active", "suspended")
MAX_IMPORT_ROWS = 10_000
CSV_COLUMNS = (
    "country_code_a",
    "party_id_a",
    "role_a",
    "country_code_b",
    "party_id_b",
    "role_b",
    "modules",
    "state",
    "valid_from",
    "valid_to",
    "reference",
)
_REQUIRED_COLUMNS = CSV_COLUMNS[:6]


def _side(value: Any, where: str, column: str | None = None) -> Side:
    """One party; errors name ``where.field`` (JSON) or ``field_<column>`` (a CSV column)."""

    def name(field: str) -> str:
        return f"{field}_{column}" if column else f"{where}.{field}"

    if not isinstance(value, dict):
        raise InvalidParameters(f"{where} must be an object {{country_code, party_id, role}}")
    country_code, party_id, role = value.get("country_code"), value.get("party_id"), value.get("role")
    if not (
        isinstance(country_code, str) and len(country_code) == 2 and country_code.isascii() and country_code.isalpha()
    ):
        raise InvalidParameters(f"{name('country_code')} must be two letters (CiString(2))")
    if not (isinstance(party_id, str) and len(party_id) == 3 and party_id.isascii() and party_id.isalnum()):
        raise InvalidParameters(f"{name('party_id')} must be three letters or digits (CiString(3))")
    if not (isinstance(role, str) and role.upper() in ROLES):
        raise InvalidParameters(f"{name('role')} must be one of {', '.join(ROLES)}")
    return (country_code.upper(), party_id.upper(), role.upper())


def modules_text(value: Any) -> str:
    """'*' for every module (null, missing, '*' or ["*"]), else the sorted known module names joined by commas."""
    if value is None or value == ALL_MODULES:
        return ALL_MODULES
    if isinstance(value, str):
        value = [m for m in value.replace(";", " ").replace(",", " ").split() if m]
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise InvalidParameters(f"modules must be a non-empty list of module names, or '*' for all ({_known()})")
    names = {m.lower() for m in value}
    if ALL_MODULES in names:
        return ALL_MODULES
    unknown = sorted(names - set(MODULES))
    if unknown:
        raise InvalidParameters(f"unknown module(s) {', '.join(unknown)}: use {_known()}, or '*' for all")
    return ",".join(sorted(names))


def _known() -> str:
    return ", ".join(MODULES)


def _time(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidParameters(f"{name} must be an RFC 3339 date-time or null")
    try:
        return iso(parse_iso(value))
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved out of range by an offset
        raise InvalidParameters(f"{name} must be an RFC 3339 date-time, like 2027-01-01T00:00:00Z") from None


def _state(value: Any, *, exact: bool = False) -> str:
    """A state; None is the default (active).

    A CSV cell may be blank or in any case; JSON (``exact``) must say one of STATES as the admin
    API's schema lists them: an empty string was taken as 'active' (found by schemathesis).
    """
    if value is None or (value == "" and not exact):
        return "active"
    if not isinstance(value, str) or (value if exact else value.lower()) not in STATES:
        raise InvalidParameters(f"state must be one of {', '.join(STATES)}, or null")
    return value.lower()


def _reference(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise InvalidParameters("reference must be a string of at most 200 characters")
    return value


def _checked(values: AgreementValues) -> AgreementValues:
    if values.a[:2] == values.b[:2]:
        raise InvalidParameters("an agreement relates two different parties")
    if values.valid_from and values.valid_to and values.valid_to <= values.valid_from:
        raise InvalidParameters("valid_to must be later than valid_from")
    return values.ordered()


_FIELDS = {"parties", "modules", "state", "valid_from", "valid_to", "reference"}


def from_json(body: Any, current: AgreementValues | None = None) -> AgreementValues:
    """An agreement from a JSON object; with ``current`` (PATCH), fields left out keep their value."""
    if not isinstance(body, dict):
        raise InvalidParameters("body must be a JSON object")
    extra = sorted(set(body) - _FIELDS)
    if extra:
        raise InvalidParameters(f"unknown field(s) {', '.join(extra)}; allowed: {', '.join(sorted(_FIELDS))}")
    if current is None or "parties" in body:
        parties = body.get("parties")
        if not isinstance(parties, list) or len(parties) != 2:
            raise InvalidParameters("parties must be a list of two {country_code, party_id, role} objects")
        a, b = _side(parties[0], "parties[0]"), _side(parties[1], "parties[1]")
    else:
        a, b = current.a, current.b

    def pick(name: str, default: Any) -> Any:
        return body.get(name, default)

    return _checked(
        AgreementValues(
            a,
            b,
            modules=modules_text(pick("modules", current.modules if current else None)),
            state=_state(pick("state", current.state if current else None), exact=True),
            valid_from=_time(pick("valid_from", current.valid_from if current else None), "valid_from"),
            valid_to=_time(pick("valid_to", current.valid_to if current else None), "valid_to"),
            reference=_reference(pick("reference", current.reference if current else None)),
        )
    )


def with_state(values: AgreementValues, state: str) -> AgreementValues:
    """The same agreement in another state (suspend, resume)."""
    return AgreementValues(
        values.a, values.b, values.modules, _state(state), values.valid_from, values.valid_to, values.reference
    )


def _from_row(row: Mapping[str, str | None]) -> AgreementValues:
    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    a, b = (_side({f: cell(f"{f}_{c}") for f in ("country_code", "party_id", "role")}, c, column=c) for c in ("a", "b"))
    return _checked(
        AgreementValues(
            a,
            b,
            modules=modules_text(cell("modules") or None),
            state=_state(cell("state")),
            valid_from=_time(cell("valid_from"), "valid_from"),
            valid_to=_time(cell("valid_to"), "valid_to"),
            reference=_reference(cell("reference")),
        )
    )


def from_csv(text: str) -> list[AgreementValues]:
    """Every row of a CSV import, or one 2001 whose data lists each bad row: {"row", "error"}."""
    reader = csv.DictReader(io.StringIO(text))
    try:  # the header line is read here: a broken one is the caller's 2001, not a 500
        header = [h.strip() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise InvalidParameters(f"the file is not valid CSV: {exc}") from None
    missing = [c for c in _REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InvalidParameters(
            f"the CSV header lacks {', '.join(missing)}; columns: {', '.join(CSV_COLUMNS)} (the last five optional)"
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise InvalidParameters(f"unknown CSV column(s) {', '.join(unknown)}; columns: {', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    out: list[AgreementValues] = []
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[Side, Side], int] = {}
    try:
        for number, row in enumerate(reader, start=2):
            if number - 1 > MAX_IMPORT_ROWS:
                raise InvalidParameters(f"at most {MAX_IMPORT_ROWS} rows per import")
            if None in row:  # more cells than columns
                errors.append({"row": number, "error": "more cells than the header has columns"})
                continue
            if not any((v or "").strip() for v in row.values()):
                continue  # a blank line
            try:
                values = _from_row(row)
            except InvalidParameters as exc:
                errors.append({"row": number, "error": exc.message})
                continue
            first = seen.setdefault((values.a, values.b), number)
            if first != number:
                errors.append({"row": number, "error": f"the same two parties as row {first}"})
                continue
            out.append(values)
    except csv.Error as exc:
        raise InvalidParameters(f"the file is not valid CSV: {exc}") from None
    if errors:
        raise InvalidParameters(f"{len(errors)} bad row(s); nothing was imported", data={"errors": errors})
    if not out:
        raise InvalidParameters("the CSV file has no agreement rows")
    return out
