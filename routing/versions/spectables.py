"""Read the object and enum tables out of the OCPI spec texts (Markdown 2.1.1, AsciiDoc 2.2.1+).

Used by the model generator (routing/versions/generate.py) and by the test that checks the
hand-kept models against the spec field tables; never at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Headings that introduce an object, class or enum: "### 3.1 _CDR_ Object" (2.1.1),
# "==== CdrToken _class_", "==== Capability _OpenEnum_" (2.2.1/2.3.0).
_HEADING = re.compile(
    r"^(?:#{2,6}|={2,6})\s+(?:[\d.]+\s+)?[_*]?(?P<name>[A-Za-z][A-Za-z0-9]*)[_*]?\s+"
    r"(?P<kind>[_*]?(?:class|enum|OpenEnum|Object|object)[_*]?)\s*$"
)
_ANY_HEADING = re.compile(r"^(?:#{1,6}|={1,6})\s")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_ADOC_LINK = re.compile(r"<<[^,>]*,\s*([^>]+?)\s*>>")
_LEN = re.compile(r"[(\[](\d+)[)\]]\s*$")


@dataclass(frozen=True)
class SpecField:
    """One row of a Property/Type/Card. table."""

    name: str
    type: str
    max_length: int | None
    card: str


@dataclass
class SpecObject:
    """An object/class table, or an enum's value list."""

    name: str
    is_enum: bool
    source: str
    fields: list[SpecField] = field(default_factory=list)
    values: list[str] = field(default_factory=list)


def _clean(cell: str) -> str:
    cell = _MD_LINK.sub(r"\1", cell)
    cell = _ADOC_LINK.sub(r"\1", cell)
    cell = re.sub(r"\[\[[^\]]*\]\]", "", cell)  # AsciiDoc anchors before a field name
    return cell.replace("`", "").replace("*", "").strip()


def _md_rows(lines: list[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in lines:
        s = line.strip()
        if not s.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            continue
        rows.append(cells)
    return rows


def _split_cells(text: str) -> list[str]:
    """Split a table body on "|", except inside parentheses (regexes in descriptions)."""
    cells: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "|" and depth == 0:
            cells.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    cells.append("".join(cur))
    # Drop a trailing cell spec such as "2+" or "a" from the end of the previous cell.
    out = [re.sub(r"(?:\s\d+\+|\s[a-z])$", "", c).strip() for c in cells]
    return out[1:]


def _adoc_rows(lines: list[str]) -> list[list[str]]:
    ncols = 0
    start = None
    for i, line in enumerate(lines):
        m = re.match(r'^\[cols="([^"]+)"', line.strip())
        if m and ncols == 0:
            ncols = len(m.group(1).split(","))
        if line.strip() == "|===":
            start = i + 1
            break
    if start is None:
        return []
    body: list[str] = []
    for line in lines[start:]:
        if line.strip() == "|===":
            break
        body.append(line)
    cells = _split_cells("\n".join(body))
    if not ncols:
        ncols = len(body[0].split("|")) - 1 if body else 1
    return [cells[i : i + ncols] for i in range(0, len(cells) - ncols + 1, ncols)]


def parse_file(path: Path) -> list[SpecObject]:
    """Every object/class/enum table in one spec file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    adoc = path.suffix == ".asciidoc"
    out: list[SpecObject] = []
    for i, line in enumerate(lines):
        m = _HEADING.match(line.strip())
        if not m:
            continue
        end = next((j for j in range(i + 1, len(lines)) if _ANY_HEADING.match(lines[j])), len(lines))
        section = lines[i + 1 : end]
        rows = _adoc_rows(section) if adoc else _md_rows(section)
        if not rows:
            continue
        header = [_clean(c).lower() for c in rows[0]]
        kind = m.group("kind").strip("_*").lower()
        obj = SpecObject(m.group("name"), "enum" in kind, path.name)
        # An enum's table is headed "Value" (2.1.1 sometimes says "Property" with two columns).
        if header[0] == "value" or (obj.is_enum and len(header) == 2):
            obj.is_enum = True
            obj.values = [_clean(r[0]).split()[0] for r in rows[1:] if _clean(r[0])]
        elif header[0] in ("property", "field name") and len(header) >= 3:
            for r in rows[1:]:
                fname = _clean(r[0])
                # 2.1.1 marks "Choice: one of two" members with "> ": each is optional.
                choice = fname.startswith(">")
                fname = fname.lstrip("> ").strip()
                if not fname or " " in fname:
                    continue
                raw = _clean(r[1])
                ml = _LEN.search(raw)
                tname = _LEN.sub("", raw).strip()
                if tname == "String":
                    tname = "string"
                card = r[2].strip()
                if choice and card == "1":
                    card = "?"
                obj.fields.append(SpecField(fname, tname, int(ml.group(1)) if ml else None, card))
        else:
            continue
        out.append(obj)
    return out


def parse_spec(folder: Path) -> dict[str, SpecObject]:
    """All tables of one version's spec folder, by object name (first definition wins)."""
    found: dict[str, SpecObject] = {}
    for path in sorted(folder.glob("*.md")) + sorted(folder.glob("*.asciidoc")):
        for obj in parse_file(path):
            found.setdefault(obj.name, obj)
    return found
