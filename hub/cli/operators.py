"""CLI commands for operator accounts and the audit log: `operators list|add|disable|enable|password`, `audit`.

Each is one admin API call (hub/admin/accounts.py), made with the admin token like every CLI
command, so the audit log names 'admin-token' as the actor of what the CLI changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from config import Settings
from hub.admin.accounts import MAX_PASSWORD, MIN_PASSWORD, ROLES
from hub.cli.common import CliError, admin_call, print_rows


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The new operator's password from --password-file, or a generated one (shown once): (password, generated)."""
    if args.password_file is None:
        return secrets.token_urlsafe(18), True
    try:
        password = Path(args.password_file).read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read the password file: {exc.strerror or exc}") from exc
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise CliError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password, False


def _operator_line(r: dict[str, Any]) -> str:
    state = f"disabled {r['disabled_at']}" if r["disabled_at"] else "enabled"
    return f"{r['name']}  {r['role']}  {state}  (added {r['created_at']} by {r['created_by']})"


def _audit_line(r: dict[str, Any]) -> str:
    target = f" {r['target']}" if r["target"] else ""
    who = f"{r['actor']} ({r['role']}) via {r['via']}"
    return f"{r['id']}  {r['ts']}  {who}: {r['action']}{target} -> {r['outcome']}"


def _show_with_password(data: dict[str, Any], as_json: bool, line: str, password: str, generated: bool) -> None:
    """The operator as the hub answered; a password the CLI generated is shown this once."""
    if as_json:
        print(json.dumps({**data, **({"password": password} if generated else {})}, indent=2))
    else:
        print(line)
        if generated:
            print(f"password (shown only now): {password}")


def cmd_operators(settings: Settings, args: argparse.Namespace) -> int:
    """List, add, disable, enable operator accounts or give one a new password."""
    if args.action == "list":
        rows = asyncio.run(admin_call(settings, args, "GET", "/admin/operators"))
        empty = "no operators yet: the admin token is the only login (ocpi-hub operators add NAME)"
        print_rows(rows, args.json, _operator_line, None, empty)
        return 0
    if not args.name:
        raise CliError(f"`operators {args.action}` needs an operator NAME")
    if args.action == "add":
        password, generated = _password(args)
        body = {"name": args.name, "role": args.role, "password": password}
        data = asyncio.run(admin_call(settings, args, "POST", "/admin/operators", body))
        _show_with_password(data, args.json, f"operator {data['name']} added, role {data['role']}", password, generated)
        return 0
    path = f"/admin/operators/{quote(args.name, safe='')}"
    if args.action == "password":
        password, generated = _password(args)
        data = asyncio.run(admin_call(settings, args, "POST", path + "/password", {"password": password}))
        line = f"operator {data['name']}: new password set; its console sessions ended"
        _show_with_password(data, args.json, line, password, generated)
        return 0
    data = asyncio.run(admin_call(settings, args, "POST", f"{path}/{args.action}"))
    line = f"operator {data['name']} " + (
        f"disabled at {data['disabled_at']}" if args.action == "disable" else "enabled again"
    )
    print(json.dumps(data, indent=2) if args.json else line)
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Show the audit log, newest first: who changed what, when, through the console or the admin API."""
    query: dict[str, str] = {"limit": str(args.limit)}
    if args.actor:
        query["actor"] = args.actor
    if args.before is not None:
        query["before"] = str(args.before)
    rows: list[dict[str, Any]] = asyncio.run(admin_call(settings, args, "GET", "/admin/audit?" + urlencode(query)))
    older = f"older entries: --before {rows[-1]['id']}" if rows and len(rows) >= args.limit else None
    print_rows(rows, args.json, _audit_line, older, "no audit entries match")
    return 0


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register `operators` and `audit`."""
    p = add("operators", cmd_operators, "list, add, disable or enable operator accounts, or set a new password")
    p.add_argument("action", choices=("list", "add", "disable", "enable", "password"))
    p.add_argument("name", nargs="?", help="the operator's name (all but list)")
    p.add_argument("--role", choices=ROLES, default="read-only", help="add: admin or read-only (the default)")
    p.add_argument(
        "--password-file",
        type=Path,
        help="add, password: file holding the password (default: a generated one, shown once)",
    )
    p = add("audit", cmd_audit, "show the audit log: who changed what, when (newest first)")
    p.add_argument("--actor", help="only this operator (or admin-token)")
    p.add_argument("--before", type=int, help="only entries older than this id (the next page)")
    p.add_argument("--limit", type=int, default=50, help="newest N entries (default 50)")
