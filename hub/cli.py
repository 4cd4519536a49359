"""The ``ocpi-hub`` command (also ``python -m hub``): thin over the library and the admin API.

``serve`` and ``migrate`` work on the local database; the other commands talk to the running
hub's admin API with the admin token (from HUB_ADMIN_TOKEN or the file ``serve`` wrote).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from config import Settings, SettingsError, load_settings
from hub import __version__, demo
from hub.logs import setup_logging
from storage.migrations import MIGRATIONS, apply_migrations, list_migrations


class CliError(Exception):
    """A problem to report in one line with a non-zero exit."""


def ensure_admin_token(settings: Settings) -> tuple[Settings, Path | None]:
    """Use HUB_ADMIN_TOKEN, or read/create the token file next to the database (mode 0600)."""
    if settings.admin_token is not None:
        return settings, None
    path = settings.admin_token_file
    token = path.read_text().strip() if path.exists() else ""
    if not token:  # absent, or left empty by an interrupted write: make a fresh one
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    os.chmod(path, 0o600)
    return settings.model_copy(update={"admin_token": SecretStr(token)}), path


def _admin_token(settings: Settings) -> str:
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.admin_token_file
    if not path.exists():
        raise CliError(f"no admin token: set HUB_ADMIN_TOKEN or start the hub once (it writes {path})")
    return path.read_text().strip()


async def _admin_call(settings: Settings, method: str, path: str, body: Any = None) -> Any:
    url = f"http://{settings.host}:{settings.port}{path}"
    headers = {"Authorization": f"Bearer {_admin_token(settings)}"}
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout + 5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(method, url, json=body, headers=headers) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 300:
                    message = data.get("status_message") if isinstance(data, dict) else data
                    raise CliError(f"hub answered HTTP {resp.status}: {message}")
                return data
    except aiohttp.ClientError as exc:
        raise CliError(f"cannot reach the hub at {url}: {exc}") from exc


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


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, then serve until interrupted."""
    from hub.app import create_app

    settings, token_path = ensure_admin_token(settings)
    setup_logging(settings.log_level, as_json=settings.log_json)
    apply_migrations(settings.database)
    print(f"OCPI hub {__version__} on http://{settings.host}:{settings.port}", flush=True)
    print(f"  versions URL : {settings.versions_url}", flush=True)
    print(f"  database     : {settings.database}", flush=True)
    if token_path is not None:
        print(f"  admin token  : in {token_path} (mode 0600)", flush=True)
    else:
        print("  admin token  : from HUB_ADMIN_TOKEN", flush=True)
    print("  invite a partner: ocpi-hub invite 'Partner name'  (prints its token A and versions URL)", flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, shutdown_timeout=10)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply pending migrations, or list them."""
    if args.list:
        # Listing must not create the database (or fail because its directory does not exist yet).
        if settings.database.exists():
            rows = list_migrations(settings.database)
        else:
            rows = [(m.name, None) for m in MIGRATIONS._migrations]
        if args.json:
            print(json.dumps([{"name": n, "applied_at": a} for n, a in rows], indent=2))
        else:
            for name, applied in rows:
                print(f"{name}  {'applied ' + applied if applied else 'pending'}")
        return 0
    settings.database.parent.mkdir(parents=True, exist_ok=True)
    done = apply_migrations(settings.database)
    print(json.dumps({"applied": done}) if args.json else f"applied: {', '.join(done) or 'nothing'}")
    return 0


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    """Create an invitation (token A) through the admin API."""
    data = asyncio.run(_admin_call(settings, "POST", "/admin/invitations", {"name": args.name}))
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
    _print(asyncio.run(_admin_call(settings, "POST", "/admin/connections", body)), args.json)
    return 0


def cmd_platforms(settings: Settings, args: argparse.Namespace) -> int:
    """List the registered platforms."""
    _print(asyncio.run(_admin_call(settings, "GET", "/admin/platforms")), args.json)
    return 0


def cmd_interop(settings: Settings, args: argparse.Namespace) -> int:
    """Show or change one platform's interop settings (README, "Per-platform interop settings")."""
    path = f"/admin/platforms/{args.platform_id}"
    change: dict[str, Any] = {}
    if args.send_base64 is not None:
        change["send_base64"] = args.send_base64 == "true"
    if args.pull_interval is not None:
        change["pull_interval"] = None if args.pull_interval == "off" else float(args.pull_interval)
    if change:
        data = asyncio.run(_admin_call(settings, "PATCH", path, {"interop": change}))
    else:
        data = asyncio.run(_admin_call(settings, "GET", path))
    if args.json:
        print(json.dumps(data["interop"], indent=2))
    else:
        for key, value in data["interop"].items():
            print(f"{key}: {json.dumps(value)}")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Show /status: overall state and reasons, then one table row per platform."""
    data = asyncio.run(_admin_call(settings, "GET", "/status"))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"status: {data['status']}  version: {data['version']}  uptime: {data['uptime_seconds']}s")
        for reason in data.get("reasons", []):
            print(f"  ! {reason}")
        for notice in data.get("notices", []):
            print(f"  - {notice}")
        _print_status_table(data.get("platforms", []))
    if args.check and data.get("status") != "ok":
        return 1  # for cron jobs and health checks: anything but "ok" is a non-zero exit
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


def cmd_traffic(settings: Settings, args: argparse.Namespace) -> int:
    """Show the traffic log (newest rows, oldest first), e.g. every leg of one message."""
    query = {"limit": str(args.limit)}
    if args.correlation_id:
        query["correlation_id"] = args.correlation_id
    if args.request_id:
        query["request_id"] = args.request_id
    if args.platform is not None:
        query["platform_id"] = str(args.platform)
    rows = asyncio.run(_admin_call(settings, "GET", "/admin/traffic?" + urlencode(query)))
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
    print(f"{len(rows)} record(s)")
    return 0


def cmd_redrive(settings: Settings, args: argparse.Namespace) -> int:
    """List dead letters, or re-drive them (all, one platform's, or by id) through the admin API."""
    if args.list:
        query = f"?platform_id={args.platform}" if args.platform is not None else ""
        letters = asyncio.run(_admin_call(settings, "GET", "/admin/deadletters" + query))
        if args.json:
            print(json.dumps(letters, indent=2))
        else:
            for m in letters:
                print(f"{m['id']}  platform {m['platform_id']}  {m['method']} {m['url']}  ({m['last_error']})")
            print(f"{len(letters)} dead letter(s)")
        return 0
    body: dict[str, Any] = {}
    if args.platform is not None:
        body["platform_id"] = args.platform
    if args.ids:
        body["ids"] = args.ids
    data = asyncio.run(_admin_call(settings, "POST", "/admin/deadletters/redrive", body))
    print(json.dumps(data) if args.json else f"re-driven: {data['redriven']} message(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="ocpi-hub", description="OCPI 2.2.1 roaming hub")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    add("serve", cmd_serve, "migrate and run the hub")
    add("migrate", cmd_migrate, "apply pending migrations").add_argument(
        "--list", action="store_true", help="list migrations and whether they are applied"
    )
    add("invite", cmd_invite, "create an invitation (token A) for a partner").add_argument("name")
    p = add("connect", cmd_connect, "register with a partner that gave us its versions URL and token A")
    p.add_argument("versions_url")
    p.add_argument("token_a")
    p.add_argument("--name")
    add("platforms", cmd_platforms, "list registered platforms")
    p = add("interop", cmd_interop, "show or change a platform's interop settings")
    p.add_argument("platform_id", type=int)
    p.add_argument(
        "--send-base64", choices=("true", "false"), help="send our token Base64-encoded (2.2.1) or raw (2.1.1 style)"
    )
    p.add_argument("--pull-interval", help="pull a pull-only CPO every SECONDS (60-604800), or 'off'")
    add("status", cmd_status, "show the hub's status").add_argument(
        "--check", action="store_true", help="exit 1 unless the hub reports 'ok' (for monitoring scripts)"
    )
    p = add("traffic", cmd_traffic, "show the traffic log (requests in, calls out), e.g. one message's legs")
    p.add_argument("--correlation-id", help="only this X-Correlation-ID")
    p.add_argument("--request-id", help="only this X-Request-ID")
    p.add_argument("--platform", type=int, help="only this platform's traffic")
    p.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")
    p = add("redrive", cmd_redrive, "re-drive dead letters into the delivery queue (all unless narrowed)")
    p.add_argument("--platform", type=int, help="only this platform's dead letters")
    p.add_argument("--list", action="store_true", help="list dead letters instead of re-driving them")
    p.add_argument("ids", nargs="*", type=int, help="only these message ids")
    demo.add_parser(sub, cmd_demo_partner)
    return parser


def cmd_demo_partner(settings: Settings, args: argparse.Namespace) -> int:
    """Run a demo partner that registers with the hub and logs what it receives."""
    try:
        asyncio.run(demo.run(args))
    except (aiohttp.ClientError, RuntimeError, StopIteration, KeyError) as exc:
        raise CliError(f"demo partner could not register: {exc}") from exc
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, build settings, run one command; errors become one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        code: int = args.func(settings, args)
        return code
    except (SettingsError, CliError) as exc:
        print(f"ocpi-hub: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # e.g. an unwritable database path: one line, no traceback
        print(f"ocpi-hub: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
