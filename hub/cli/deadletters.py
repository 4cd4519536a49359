"""CLI command for closing out dead letters: ``discard`` (with a reason) and the list of what was discarded.

One admin API call each (POST /admin/deadletters/discard, GET /admin/deadletters?state=discarded),
so scripts can use either. Re-driving stays ``ocpi-hub redrive``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any

from config import Settings
from hub.cli.common import CliError, NothingFound, admin_call, print_rows


def cmd_discard(settings: Settings, args: argparse.Namespace) -> int:
    """Discard dead letters with a reason (all with --all, one platform's, or by id), or --list the discarded."""
    if args.list:
        return _list_discarded(settings, args)
    if args.reason is None:
        raise CliError("say why: --reason TEXT (it is kept with every discarded message)")
    body: dict[str, Any] = {"reason": args.reason}
    if args.platform is not None:
        body["platform_id"] = args.platform
    if args.ids:
        body["ids"] = args.ids
    if args.all:
        body["all"] = True
    data = asyncio.run(admin_call(settings, args, "POST", "/admin/deadletters/discard", body))
    print(json.dumps(data) if args.json else f"discarded: {data['discarded']} dead letter(s)")
    if not data["discarded"]:
        raise NothingFound("no dead letters matched the selection")
    return 0


def _list_discarded(settings: Settings, args: argparse.Namespace) -> int:
    query = "?state=discarded" + (f"&platform_id={args.platform}" if args.platform is not None else "")
    rows = asyncio.run(admin_call(settings, args, "GET", "/admin/deadletters" + query))
    print_rows(
        rows,
        args.json,
        lambda m: f"{m['id']}  platform {m['platform_id']}  {m['method']} {m['url']}  discarded: {m['discard_reason']}",
        f"{len(rows)} discarded message(s)",
        "nothing was discarded",
    )
    return 0


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``discard``."""
    p = add("discard", cmd_discard, "close out dead letters with a reason (kept for the record, never sent)")
    p.add_argument("--reason", help="why they are given up (required; kept with each message)")
    p.add_argument("--platform", type=int, help="only this platform's dead letters")
    p.add_argument("--all", action="store_true", help="every dead letter (a discard cannot be undone)")
    p.add_argument("--list", action="store_true", help="list discarded messages instead")
    p.add_argument("ids", nargs="*", type=int, help="only these message ids")
