"""CLI commands for roaming agreements: list, add, change, suspend, resume, delete, import a CSV file.

Each is one admin API call (README, Roaming agreements), so scripts can use either. A party is
written ``CC*PID:ROLE``, e.g. ``BE*BEC:CPO``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from config import Settings
from hub.cli.common import CliError, admin_call, print_rows


def _party(text: str) -> dict[str, str]:
    """``CC*PID:ROLE`` as the admin API takes a party."""
    pair, _, role = text.partition(":")
    country_code, _, party_id = pair.partition("*")
    if not (country_code and party_id and role):
        raise CliError(f"a party is written CC*PID:ROLE, e.g. BE*BEC:CPO (got {text!r})")
    return {"country_code": country_code, "party_id": party_id, "role": role}


def _line(a: dict[str, Any]) -> str:
    sides = " <-> ".join(f"{p['country_code']}*{p['party_id']} {p['role']}" for p in a["parties"])
    modules = a["modules"] if a["modules"] == "*" else ",".join(a["modules"])
    window = f"  {a['valid_from'] or '...'} to {a['valid_to'] or '...'}" if a["valid_from"] or a["valid_to"] else ""
    force = "in force" if a["in_force"] else "not in force"
    ref = f"  ({a['reference']})" if a["reference"] else ""
    return f"{a['id']}  {sides}  modules {modules}  {a['state']}, {force}{window}{ref}"


def _show(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
    elif isinstance(data, list):
        for a in data:
            print(_line(a))
    else:
        print(_line(data))


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The optional fields given on the command line ('' clears a date or the reference)."""
    out: dict[str, Any] = {}
    if args.modules is not None:
        out["modules"] = "*" if args.modules == "*" else [m for m in args.modules.split(",") if m]
    for name, value in (("valid_from", args.valid_from), ("valid_to", args.valid_to), ("reference", args.reference)):
        if value is not None:
            out[name] = value or None
    return out


def cmd_agreements(settings: Settings, args: argparse.Namespace) -> int:
    """List agreements (all, or a platform's, a party's, those in one state)."""
    query = {k: v for k, v in (("platform_id", args.platform), ("party", args.party), ("state", args.state)) if v}
    path = "/admin/agreements" + (f"?{urlencode(query)}" if query else "")
    rows = asyncio.run(admin_call(settings, args, "GET", path))
    print_rows(rows, args.json, _line, None, "no agreements")
    return 0


def cmd_agree(settings: Settings, args: argparse.Namespace) -> int:
    """Add an agreement between two parties."""
    body = {"parties": [_party(args.party_a), _party(args.party_b)], **_fields(args)}
    if args.suspended:
        body["state"] = "suspended"
    _show(asyncio.run(admin_call(settings, args, "POST", "/admin/agreements", body)), args.json)
    return 0


def cmd_agreement_update(settings: Settings, args: argparse.Namespace) -> int:
    """Change an agreement's modules, validity window or reference."""
    body = _fields(args)
    if not body:
        raise CliError("nothing to change: give --modules, --from, --to or --reference")
    _show(asyncio.run(admin_call(settings, args, "PATCH", f"/admin/agreements/{args.id}", body)), args.json)
    return 0


def _action(method: str, suffix: str, doc: str) -> Callable[[Settings, argparse.Namespace], int]:
    def command(settings: Settings, args: argparse.Namespace) -> int:
        data = asyncio.run(admin_call(settings, args, method, f"/admin/agreements/{args.id}{suffix}"))
        if "deleted" in data:
            print(json.dumps(data) if args.json else f"agreement {data['deleted']} deleted")
        else:
            _show(data, args.json)
        return 0

    command.__doc__ = doc
    return command


cmd_agreement_suspend = _action("POST", "/suspend", "Suspend an agreement (what is queued is still delivered).")
cmd_agreement_resume = _action("POST", "/resume", "Resume a suspended agreement.")
cmd_agreement_delete = _action("DELETE", "", "Delete an agreement.")


def cmd_agreements_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import agreements from a CSV file: every row or none."""
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CliError(f"{args.file}: not UTF-8 text") from None
    data = asyncio.run(admin_call(settings, args, "POST", "/admin/agreements/import", csv_text=text))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"imported {data['imported']} agreement(s)")
        for a in data["agreements"]:
            print(_line(a))
    return 0


def _field_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--modules", help="comma-separated modules (locations,tariffs,...), or '*' for all (default)")
    p.add_argument("--from", dest="valid_from", help="in force from this RFC 3339 date-time ('' for always)")
    p.add_argument("--to", dest="valid_to", help="in force until this date-time, exclusive ('' for no end)")
    p.add_argument("--reference", help="the contract's reference (free text)")


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register the agreement commands."""
    p = add("agreements", cmd_agreements, "list roaming agreements")
    p.add_argument("--platform", type=int, help="only those of this platform's parties")
    p.add_argument("--party", help="only those of this party, CC*PID")
    p.add_argument("--state", choices=("active", "suspended"), help="only those in this state")
    p = add("agree", cmd_agree, "add a roaming agreement between two parties (CC*PID:ROLE each)")
    p.add_argument("party_a", help="one party, e.g. BE*BEC:CPO")
    p.add_argument("party_b", help="the other, e.g. NL*TNM:EMSP")
    p.add_argument("--suspended", action="store_true", help="store it suspended")
    _field_options(p)
    p = add("agreement-update", cmd_agreement_update, "change an agreement's modules, validity window or reference")
    p.add_argument("id", help="agreement id (see `ocpi-hub agreements`)")
    _field_options(p)
    for name, func, text in (
        ("agreement-suspend", cmd_agreement_suspend, "suspend an agreement (no new traffic; the queue is delivered)"),
        ("agreement-resume", cmd_agreement_resume, "resume a suspended agreement"),
        ("agreement-delete", cmd_agreement_delete, "delete an agreement"),
    ):
        add(name, func, text).add_argument("id", help="agreement id (see `ocpi-hub agreements`)")
    p = add("agreements-import", cmd_agreements_import, "import agreements from a CSV file (all rows or none)")
    p.add_argument("file", help="UTF-8 CSV with a header row (README, Roaming agreements)")
