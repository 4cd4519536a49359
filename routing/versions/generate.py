"""Generate a version's models.py from its spec field tables.

Run: python -m routing.versions.generate tests/fixtures/ocpi-spec-2.2.1 2.2.1 > routing/versions/v221/models.py
The output is committed (and formatted with ruff); tests/test_versions_models.py re-reads the
spec tables and checks every model field against them, so a hand edit that drifts fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from routing.versions.spectables import SpecField, SpecObject, parse_spec

_SCALARS = {"number": "float", "int": "int", "boolean": "bool", "DateTime": "DateTime"}


def member_name(value: str) -> str:
    """A Python identifier for an enum value ("N/A" -> "N_A", "2.1.1" -> "V2_1_1")."""
    name = re.sub(r"[^A-Za-z0-9]", "_", value)
    return "V" + name if name[0].isdigit() else name


def canonical(objs: dict[str, SpecObject]) -> dict[str, str]:
    """Map a lower-cased type name to the class name used in the models."""
    names = {name.lower(): name for name in objs}
    # A table may spell the type differently from its heading ("ChargingprofilePeriod").
    for obj in objs.values():
        for f in obj.fields:
            if f.type.lower() in names:
                names[f.type.lower()] = f.type
    return names


def py_type(f: SpecField, names: dict[str, str], objs: dict[str, SpecObject]) -> str:
    """The annotation for one field (without optionality)."""
    t = f.type
    if t in ("string", "CiString", "URL"):
        n = f.max_length or (255 if t == "URL" else None)
        return f"Annotated[str, Field(max_length={n})]" if n else "str"
    if t == "int" and f.max_length:
        return f"Annotated[int, Field(ge=0, lt={10**f.max_length})]"
    if t in _SCALARS:
        return _SCALARS[t]
    cls = names.get(t.lower())
    if cls is None or cls not in {names[o.lower()] for o in objs}:
        return "str"  # a type the spec describes outside a table (ModuleID, VersionNumber)
    return cls


def render(objs: dict[str, SpecObject], version: str) -> str:
    """Python source of models.py for one version."""
    names = canonical(objs)
    out = [
        f'"""Pydantic v2 models of every OCPI {version} object, class and enum.',
        "",
        f"Generated from the field tables of the OCPI {version} specification by",
        "routing/versions/generate.py and checked against them by tests/test_versions_models.py.",
        "Used at the translation boundary only: same-version traffic is relayed as received.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import StrEnum",
        "from typing import Annotated",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        "# DateTime: RFC 3339 in UTC; kept as the sender's string so relayed values do not change.",
        'DateTime = Annotated[str, Field(max_length=35, pattern=r"^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}")]',
        "",
        "",
        "class OcpiModel(BaseModel):",
        f'    """Base of every OCPI {version} object: unknown fields are an error."""',
        "",
        '    model_config = ConfigDict(extra="forbid")',
        "",
        "",
    ]
    enums = [o for o in objs.values() if o.is_enum]
    classes = [o for o in objs.values() if not o.is_enum and o.fields]
    for e in enums:
        cname = names[e.name.lower()]
        out.append(f"class {cname}(StrEnum):")
        out.append(f'    """{cname} enum ({e.source})."""')
        out.append("")
        for v in dict.fromkeys(e.values):
            out.append(f'    {member_name(v)} = "{v}"')
        out += ["", ""]
    for c in classes:
        cname = names[c.name.lower()]
        out.append(f"class {cname}(OcpiModel):")
        out.append(f'    """{cname} ({c.source})."""')
        out.append("")
        for f in c.fields:
            t = py_type(f, names, objs)
            if f.card == "1":
                out.append(f"    {f.name}: {t}")
            elif f.card == "+":
                out.append(f"    {f.name}: list[{t}] = Field(min_length=1)")
            elif f.card == "*":
                out.append(f"    {f.name}: list[{t}] | None = None")
            else:
                out.append(f"    {f.name}: {t} | None = None")
        out += ["", ""]
    out.append("for _model in list(globals().values()):")
    out.append("    if isinstance(_model, type) and issubclass(_model, OcpiModel):")
    out.append("        _model.model_rebuild()")
    return "\n".join(out) + "\n"


def main() -> None:
    """Print models.py for the spec folder and version given on the command line."""
    folder, version = Path(sys.argv[1]), sys.argv[2]
    sys.stdout.write(render(parse_spec(folder), version))


if __name__ == "__main__":
    main()
