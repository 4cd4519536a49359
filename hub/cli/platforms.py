"""CLI commands for the platform life cycle: suspend, resume, rotate, unregister, interop, invitations, revoke.

Each is one admin API call (README, Admin API), so scripts can use either.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from config import Settings
from hub.admin.platforms import PAGE  # platforms asked for per call: the admin API's most
from hub.cli.common import admin_call, print_rows


async def every_platform(settings: Settings, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every platform, a page of GET /admin/platforms at a time (in id order)."""
    found: list[dict[str, Any]] = []
    after = ""
    for _ in range(100_000):  # bounded: each page holds PAGE platforms, or ends the listing
        page = await admin_call(settings, args, "GET", f"/admin/platforms?limit={PAGE}{after}")
        found += page
        if len(page) < PAGE:
            break
        after = f"&after={page[-1]['id']}"
    return found


def _show(data: dict[str, Any], as_json: bool, line: str) -> None:
    print(json.dumps(data, indent=2) if as_json else line)


def _platform_action(verb: str, method: str, suffix: str) -> Callable[[Settings, argparse.Namespace], int]:
    def command(settings: Settings, args: argparse.Namespace) -> int:
        path = f"/admin/platforms/{args.id}{suffix}"
        data = asyncio.run(admin_call(settings, args, method, path))
        line = f"platform {data['id']} ({data['name']}): {verb}, status {data['status']}"
        if "peer_answer" in data:
            line += f" (the partner answered: {data['peer_answer']})"
        _show(data, args.json, line)
        return 0

    command.__doc__ = f"{verb.capitalize()} one platform through the admin API."
    return command


cmd_suspend = _platform_action("suspended", "POST", "/suspend")
cmd_resume = _platform_action("resumed", "POST", "/resume")
cmd_rotate = _platform_action("credentials rotated", "PUT", "/credentials")
cmd_unregister = _platform_action("unregistered", "DELETE", "")


def cmd_invitations(settings: Settings, args: argparse.Namespace) -> int:
    """List invitations whose token A has not been used yet."""
    rows = asyncio.run(admin_call(settings, args, "GET", "/admin/invitations"))

    def line(r: dict[str, Any]) -> str:
        state = "EXPIRED" if r["expired"] else "open"
        return f"{r['platform_id']}  {r['name']}  created {r['created_at']}  expires {r['expires_at']}  {state}"

    print_rows(rows, args.json, line, None, "no open invitations")
    return 0


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    """Revoke an invitation: its token A stops working at once."""
    data = asyncio.run(admin_call(settings, args, "DELETE", f"/admin/invitations/{args.id}"))
    _show(data, args.json, f"invitation {data['revoked']} revoked; its token A no longer works")
    return 0


def cmd_interop(settings: Settings, args: argparse.Namespace) -> int:
    """Show or change one platform's interop settings (README, "Per-platform interop settings")."""
    path = f"/admin/platforms/{args.id}"
    change: dict[str, Any] = {}
    if args.send_base64 is not None:
        change["send_base64"] = args.send_base64 == "true"
    if args.pull_interval is not None:
        change["pull_interval"] = None if args.pull_interval == "off" else float(args.pull_interval)
    if change:
        data = asyncio.run(admin_call(settings, args, "PATCH", path, {"interop": change}))
    else:
        data = asyncio.run(admin_call(settings, args, "GET", path))
    lines = "\n".join(f"{key}: {json.dumps(value)}" for key, value in data["interop"].items())
    _show(data["interop"], args.json, lines)
    return 0


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register the life-cycle commands."""
    # One word for ending a platform's registration everywhere (console, CLI, docs, its status):
    # unregister. "delete" stays accepted as an alias so existing scripts keep working.
    for name, func, text, aliases in (
        ("suspend", cmd_suspend, "suspend a platform (nothing is delivered to or accepted from it)", ()),
        ("resume", cmd_resume, "resume a suspended or OFFLINE platform", ()),
        ("rotate", cmd_rotate, "rotate credentials with a platform (hub-initiated credentials PUT)", ()),
        (
            "unregister",
            cmd_unregister,
            "unregister a platform (credentials DELETE to it; its undelivered messages are closed out)",
            ("delete",),
        ),
    ):
        add(name, func, text, aliases).add_argument("id", help="platform id (see `ocpi-hub platforms`)")
    p = add("interop", cmd_interop, "show or change a platform's interop settings")
    p.add_argument("id", help="platform id (see `ocpi-hub platforms`)")
    p.add_argument(
        "--send-base64", choices=("true", "false"), help="send our token Base64-encoded (2.2.1) or raw (2.1.1 style)"
    )
    p.add_argument("--pull-interval", help="pull a pull-only CPO every SECONDS (60-604800), or 'off'")
    add("invitations", cmd_invitations, "list invitations whose token A is not used yet")
    add("revoke", cmd_revoke, "revoke an invitation (its token A stops working)").add_argument(
        "id", help="the invitation's platform id (see `ocpi-hub invitations`)"
    )
