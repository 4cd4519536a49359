"""The ``ocpi-hub`` command (also ``python -m hub``): thin over the library and the admin API.

``serve``, ``migrate``, ``backup`` and ``restore`` work on the local database (hub/cli/local.py),
``copy-to-postgres`` copies it into PostgreSQL (hub/cli/copy.py);
the other commands talk to a running hub's admin API (``--url``/HUB_URL) with the admin token
(``--admin-token-file``, HUB_ADMIN_TOKEN, or the file ``serve`` wrote next to the database).
Global options go before or after the sub-command. Exit codes: hub/cli/common.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

from config import Settings, SettingsError, load_settings
from hub import build
from hub.cli import agreements as cli_agreements
from hub.cli import copy as cli_copy
from hub.cli import deadletters as cli_deadletters
from hub.cli import demo
from hub.cli import local as cli_local
from hub.cli import operators as cli_operators
from hub.cli import platforms as cli_platforms
from hub.cli.common import EXIT_ERROR, EXIT_NOT_OK, CliError, NothingFound, admin_call, ensure_admin_token, print_rows
from hub.observe.traffic.query import KIND_CHOICES
from storage.errors import StorageError
from storage.migrate_sqlite import SchemaTooNew

__all__ = ["CliError", "build_parser", "ensure_admin_token", "main"]


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    if isinstance(data, list):
        from rich.console import Console
        from rich.table import Table

        table = Table("id", "name", "status", "version", "roles")
        for p in data:
            roles = ", ".join(f"{r['country_code']}*{r['party_id']} {r['role']}" for r in p.get("roles", []))
            table.add_row(str(p["id"]), p["name"], p["status"], str(p.get("version") or "-"), roles or "-")
        Console().print(table)
        return
    for key, value in data.items():
        if not isinstance(value, list | dict):
            print(f"{key}: {value}")


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    """Create an invitation (token A) through the admin API."""
    body: dict[str, Any] = {"name": args.name}
    if args.role:
        body["role"] = args.role
    data = asyncio.run(admin_call(settings, args, "POST", "/admin/invitations", body))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"versions URL: {data['versions_url']}")
        print(f"token A     : {data['token_a']}")
        print("Give both to the partner; it POSTs its credentials to the hub with this token A.")
    return 0


def cmd_connect(settings: Settings, args: argparse.Namespace) -> int:
    """Register with a party through the admin API (hub-initiated handshake)."""
    body: dict[str, Any] = {"versions_url": args.versions_url, "token_a": args.token_a}
    if args.name:
        body["name"] = args.name
    if args.role:
        body["role"] = args.role
    _print(asyncio.run(admin_call(settings, args, "POST", "/admin/connections", body)), args.json)
    return 0


def cmd_platforms(settings: Settings, args: argparse.Namespace) -> int:
    """List the registered platforms."""
    platforms = asyncio.run(cli_platforms.every_platform(settings, args))
    if not platforms:
        if args.json:
            print("[]")
        raise NothingFound("no platforms: invite one with `ocpi-hub invite NAME`")
    _print(platforms, args.json)
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Show /status: overall state and reasons, then one table row per platform."""
    try:
        data = asyncio.run(admin_call(settings, args, "GET", "/status"))
    except CliError as exc:
        if args.check:  # unreachable or refused is "not ok" for a monitoring script
            exc.code = EXIT_NOT_OK
        raise
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"status: {data['status']}  version: {data['version']}  uptime: {data['uptime_seconds']}s")
        _print_storage(data)
        for reason in data.get("reasons", []):
            print(f"  ! {reason}")
        for notice in data.get("notices", []):
            print(f"  - {notice}")
        _print_status_table(data.get("platforms", []))
    if args.check and data.get("status") != "ok":
        return EXIT_NOT_OK  # for cron jobs and health checks: anything but "ok" is a non-zero exit
    return 0


def _dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _console() -> Any:
    from rich.console import Console

    # Piped output (scripts, docs) gets a fixed width so the wide tables are not squeezed.
    return Console(width=None if sys.stdout.isatty() else 200)


def _print_status_table(platforms: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("id", "name", "status", "version", "parties", "last in", "last out", "queue", "oldest s")
    for column in ("dead", "delivered", "failed", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for p in platforms:
        parties = ", ".join(f"{r['country_code']}*{r['party_id']} {r['role']}" for r in p.get("roles", []))
        table.add_row(
            str(p["id"]),
            p["name"],
            p["status"],
            _dash(p.get("version")),
            parties or "-",
            _dash(p.get("last_seen_in")),
            _dash(p.get("last_seen_out")),
            _dash(p.get("queue_depth")),
            _dash(p.get("oldest_queued_age_seconds")),
            _dash(p.get("dead_letters")),
            _dash(p.get("delivered")),
            _dash(p.get("failed")),
            _dash(p.get("latency_p50_ms")),
            _dash(p.get("latency_p99_ms")),
        )
    _console().print(table)


def traffic_query(args: argparse.Namespace) -> dict[str, str]:
    """The admin API query for `traffic`'s options (the console's filters: partner traffic by default)."""
    # Partner traffic unless told otherwise; one message's id finds it whatever its kind.
    kind = args.kind or ("all" if args.correlation_id or args.request_id else "partner")
    query = {"limit": str(args.limit), "kind": kind}
    for name in ("correlation_id", "request_id", "module", "direction", "since", "until"):
        value = getattr(args, name)
        if value:
            query[name] = value
    for name, value in (("platform_id", args.platform), ("http_status", args.http_status), ("before", args.before)):
        if value is not None:
            query[name] = str(value)
    if args.failed:
        query["failed"] = "true"
    return query


def cmd_traffic(settings: Settings, args: argparse.Namespace) -> int:
    """Show the traffic log (newest rows, oldest first), e.g. every leg of one message."""
    rows = asyncio.run(admin_call(settings, args, "GET", "/admin/traffic?" + urlencode(traffic_query(args))))
    if not rows:
        if args.json:
            print("[]")
        raise NothingFound("no traffic records match")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    table = Table("ts", "dir", "platform", "module", "method", "path", "from -> to", "http", "ocpi", "try", "ms")
    for r in rows:
        table.add_row(
            r["ts"],
            r["direction"],
            _dash(r["platform_id"]),
            _dash(r["module"]),
            r["method"],
            r["path"],
            f"{_dash(r['from_party'])} -> {_dash(r['to_party'])}",
            _dash(r["http_status"] if r["http_status"] is not None else r["error"]),
            _dash(r["ocpi_status"]),
            _dash(r["attempt"]),
            f"{r['latency_ms']:.1f}",
        )
    _console().print(table)
    older = f"; older ones: --before {rows[0]['id']}" if len(rows) >= args.limit else ""
    print(f"{len(rows)} record(s){older}")
    return 0


def cmd_redrive(settings: Settings, args: argparse.Namespace) -> int:
    """List dead letters, or re-drive them (all, one platform's, or by id) through the admin API."""
    if args.list:
        query = f"?platform_id={args.platform}" if args.platform is not None else ""
        letters = asyncio.run(admin_call(settings, args, "GET", "/admin/deadletters" + query))
        print_rows(
            letters,
            args.json,
            lambda m: f"{m['id']}  platform {m['platform_id']}  {m['method']} {m['url']}  ({m['last_error']})",
            f"{len(letters)} dead letter(s)",
            "no dead letters",
        )
        return 0
    body: dict[str, Any] = {}
    if args.platform is not None:
        body["platform_id"] = args.platform
    if args.ids:
        body["ids"] = args.ids
    data = asyncio.run(admin_call(settings, args, "POST", "/admin/deadletters/redrive", body))
    print(json.dumps(data) if args.json else f"re-driven: {data['redriven']} message(s)")
    if not data["redriven"]:
        which = f"ids {', '.join(map(str, args.ids))}" if args.ids else "the selection"
        raise NothingFound(f"no dead letters matched {which}")
    return 0


def _global_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # On sub-commands the defaults are SUPPRESS, so an option given before the sub-command is
    # not overwritten by the sub-parser's default (argparse sets defaults per parser).
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if sub else value

    parser.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    parser.add_argument(
        "--url", default=default(None), help="the hub's base URL (default: HUB_URL, else http://HUB_HOST:HUB_PORT)"
    )
    parser.add_argument(
        "--admin-token-file",
        type=Path,
        default=default(None),
        help="file holding the admin token (default: HUB_ADMIN_TOKEN, else <database>.admin-token)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="ocpi-hub",
        description="OCPI 2.2.1 roaming hub",
        epilog="exit codes: 0 done, 1 status --check not ok, 2 error, 3 nothing found, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"ocpi-hub {build.describe()}")
    _global_options(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_text: str, aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        _global_options(p, sub=True)
        p.set_defaults(func=func)
        return p

    cli_local.add_parsers(add)
    cli_copy.add_parsers(add)
    p = add("invite", cmd_invite, "create an invitation (token A) for a partner")
    p.add_argument("name")
    p.add_argument("--role", help="the partner's role if it registers in OCPI 2.1.1 (CPO, EMSP...)")
    p = add("connect", cmd_connect, "register with a partner that gave us its versions URL and token A")
    p.add_argument("versions_url")
    p.add_argument("token_a")
    p.add_argument("--name")
    p.add_argument("--role", help="the partner's role if it speaks OCPI 2.1.1 (CPO, EMSP...)")
    add("platforms", cmd_platforms, "list registered platforms")
    cli_platforms.add_parsers(add)
    cli_operators.add_parsers(add)
    cli_agreements.add_parsers(add)
    add("status", cmd_status, "show the hub's status").add_argument(
        "--check", action="store_true", help="exit 1 unless the hub reports 'ok' (also when it cannot be reached)"
    )
    p = add("traffic", cmd_traffic, "show the traffic log (requests in, calls out), e.g. one message's legs")
    p.add_argument("--correlation-id", help="only this X-Correlation-ID")
    p.add_argument("--request-id", help="only this X-Request-ID")
    p.add_argument("--platform", type=int, help="only this platform's traffic")
    p.add_argument(
        "--kind",
        choices=KIND_CHOICES,
        help="partner traffic (the default; all with --correlation-id/--request-id), admin API calls,"
        " other (unknown callers, probes) or all",
    )
    p.add_argument("--direction", choices=("in", "out"), help="only requests to the hub (in) or calls out")
    p.add_argument("--failed", action="store_true", help="only failures (no answer, or HTTP 400 and above)")
    p.add_argument("--module", help="only this OCPI module (sessions, cdrs...)")
    p.add_argument("--http-status", type=int, help="only this HTTP status")
    p.add_argument("--since", help="from this UTC time, e.g. 2026-11-25T10:00:00Z")
    p.add_argument("--until", help="up to this UTC time")
    p.add_argument("--before", type=int, help="only records older than this record id (the next page)")
    p.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")
    p = add("redrive", cmd_redrive, "re-drive dead letters into the delivery queue (all unless narrowed)")
    p.add_argument("--platform", type=int, help="only this platform's dead letters")
    p.add_argument("--list", action="store_true", help="list dead letters instead of re-driving them")
    p.add_argument("ids", nargs="*", type=int, help="only these message ids")
    cli_deadletters.add_parsers(add)
    demo.add_parser(add, cmd_demo_partner)
    return parser


def _print_storage(data: dict[str, Any]) -> None:
    database = data.get("database")
    if database:
        mb = database["size_bytes"] / 1_000_000
        line = f"database: {database['path']}  {mb:.1f} MB on disk ({database['free_bytes']} bytes reusable inside)"
        if database.get("disk_free_bytes") is not None:
            line += f", {database['disk_free_bytes'] / 1_000_000_000:.1f} GB free on its file system"
        print(line)
    for m in data.get("stored_objects", []):
        print(f"  stored {m['module']}: {m['count']} (oldest last_updated {m['oldest_last_updated']})")
    for f in data.get("finished_messages", []):
        if f["count"]:
            print(f"  finished messages {f['state']}: {f['count']} (oldest finished_at {f['oldest_finished_at']})")


def cmd_demo_partner(settings: Settings, args: argparse.Namespace) -> int:
    """Run a demo partner that registers with the hub and logs what it receives."""
    try:
        asyncio.run(demo.run(args))
    except demo.DemoError as exc:
        raise CliError(f"demo partner: {exc}") from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, build settings, run one command; every error is one line (codes: cli_common)."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        code: int = args.func(settings, args)
        return code
    except CliError as exc:
        print(f"ocpi-hub: {exc}", file=sys.stderr)
        return exc.code
    except (SettingsError, StorageError, SchemaTooNew) as exc:
        print(f"ocpi-hub: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, sqlite3.Error, psycopg.Error) as exc:  # an unwritable path, no server: one line, no traceback
        where = f" ({Path(exc.filename).resolve()})" if isinstance(exc, OSError) and exc.filename else ""
        text = " ".join(str(getattr(exc, "strerror", None) or exc).split())  # libpq's messages span lines
        print(f"ocpi-hub: {type(exc).__name__}: {text}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
