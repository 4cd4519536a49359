"""CLI commands on the local database file: serve, migrate, backup, restore.

``serve`` refuses a database that does not exist unless told to create it (``--init``), so a
typo in HUB_DATABASE cannot start an empty hub with a fresh admin token. A taken port is found
before the database or the admin token file is created, so a failed start leaves nothing behind.
The banner is printed only once the port is bound, and a taken port or a database held by
another hub is one line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from config import Settings
from hub import build
from hub.cli import supervisor
from hub.cli.common import CliError, ensure_admin_token
from hub.observe.logs import setup_logging
from storage import files
from storage import migrate_postgres as pg_migrations
from storage.migrate_sqlite import MIGRATIONS, apply_migrations, check_schema, dry_run, list_migrations
from storage.postgres_dialect import redact

LOGGER = logging.getLogger(__name__)
OPEN_FILES_CEILING = 1_048_576  # Linux's default nr_open: the most a soft limit may be raised to


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run the hub until SIGINT/SIGTERM (migrating first); --init creates a missing database."""
    workers: int = args.workers
    if workers < 1:
        raise CliError("--workers must be at least 1")
    if workers > 1 and not settings.is_postgres:
        raise CliError(
            f"--workers {workers} needs PostgreSQL: a SQLite file serves one hub process;"
            " set HUB_DATABASE to a postgresql:// URL"
        )
    if not args.init and not settings.is_postgres:
        files.require_database(settings.database_path)
    child = args.ready_fd is not None  # started by `serve --workers N` (hub/cli/supervisor.py)
    setup_logging(settings.log_level, as_json=settings.log_json, with_pid=child or workers > 1)
    raised = raise_open_files()  # before `--workers` children are started: they inherit it
    if raised is not None:
        LOGGER.info("open files: soft limit raised from %d to %d (each partner connection is one)", *raised)
    if child:
        supervisor.follow_parent(args.child_of)
    else:  # a taken port fails before anything is created (database, admin token file)
        supervisor.check_port(settings.host, settings.port)
    settings, token_path = ensure_admin_token(settings)
    if workers > 1:
        return supervisor.run(settings, workers, lambda os_pids: _banner(settings, token_path, os_pids))
    run_loop(_serve(settings, token_path, ready_fd=args.ready_fd), settings.event_loop)
    return 0


def run_loop(main: Coroutine[Any, Any, None], choice: str) -> None:
    """Run ``main`` on the configured event loop (HUB_EVENT_LOOP); 'auto' takes uvloop when it imports."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise CliError("HUB_EVENT_LOOP=uvloop, but uvloop is not installed (pip install uvloop)") from None
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def raise_open_files() -> tuple[int, int] | None:
    """Raise the soft open-files limit to the hard one; (old, new), or None if nothing changed.

    Every partner's connection to the hub and every idle keep-alive connection out is an open
    file; a service manager's usual soft limit (1,024) is reached with a few hundred partners,
    and then accepts and connects fail for all of them. The hard limit is the operator's ceiling.
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CEILING if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_CEILING)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # refused (a container's own ceiling): the limit stays as it was
        return None
    return soft, target


GC_THRESHOLDS = (700, 10, 1000)  # the default young ones; a full collection 100x less often


async def _serve(settings: Settings, token_path: Path | None, *, ready_fd: int | None = None) -> None:
    from hub.app import create_app

    runner = web.AppRunner(create_app(settings), handle_signals=False, access_log=None, shutdown_timeout=10)
    stop = asyncio.Event()
    try:
        await runner.setup()  # opens the store: takes the database lock, creates/migrates it
        # What is alive now (modules, the OCPI models of three versions, the directory) lives as long
        # as the process: out of the cyclic GC's sight. Else each full collection walked it all
        # again: ~100 ms of event loop stalled every half second under a broadcast fan-out, every
        # answer waiting behind it (issue 22). Fewer full collections of what is left: with the
        # default thresholds (700, 10, 10) one still ran (20-45 ms) every second or so; a larger
        # young generation is no cure (20,000: 25-40 ms per young collection).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # graceful stop: in-flight deliveries finish
            loop.add_signal_handler(sig, stop.set)
        # A supervised child shares the port with its siblings; the kernel spreads connections.
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=ready_fd is not None or None)
        try:
            await site.start()
        except OSError as exc:
            raise supervisor.listen_error(settings.host, settings.port, exc) from exc
        if ready_fd is None:
            _banner(settings, token_path)
        else:
            supervisor.say_ready(ready_fd)  # the supervisor prints one banner for all its workers
        await stop.wait()
    finally:
        await runner.cleanup()


def _banner(settings: Settings, token_path: Path | None, os_pids: list[int] | None = None) -> None:
    print(f"OCPI hub {build.describe()} on http://{settings.host}:{settings.port}", flush=True)
    print(f"  versions URL : {settings.versions_url}", flush=True)
    where = redact(settings.database) if settings.is_postgres else settings.database_path.resolve()
    print(f"  database     : {where}", flush=True)
    if os_pids is not None:
        listed = ", ".join(str(os_pid) for os_pid in os_pids)
        print(f"  workers      : {len(os_pids)} processes on one port (pids {listed})", flush=True)
    if token_path is not None:
        print(f"  admin token  : in {token_path.resolve()} (mode 0600)", flush=True)
    else:
        print("  admin token  : from HUB_ADMIN_TOKEN", flush=True)
    print("  invite a partner: ocpi-hub invite 'Partner name'  (prints its token A and versions URL)", flush=True)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply pending migrations (creating the database), list them, or show what would change."""
    if args.list:
        return _print_list(_migration_list(settings), args.json)
    if args.dry_run:
        if settings.is_postgres:
            where, plan = redact(settings.database), pg_migrations.dry_run(settings.database)
        else:
            database = settings.database_path
            where = f"{database.resolve()}" + ("" if database.exists() else " (would be created)")
            plan = dry_run(database)
        return _print_plan(where, plan, args.json)
    setup_logging(settings.log_level, as_json=settings.log_json)
    if settings.is_postgres:  # an advisory lock makes concurrent starts migrate once
        done = pg_migrations.apply_migrations(settings.database)
    else:
        database = settings.database_path
        lock = files.acquire_lock(database, purpose="ocpi-hub migrate")
        try:
            files.create_database(database)
            done = apply_migrations(database)
        finally:
            lock.release()
    print(json.dumps({"applied": done}) if args.json else f"applied: {', '.join(done) or 'nothing'}")
    return 0


def _migration_list(settings: Settings) -> list[tuple[str, str | None]]:
    if settings.is_postgres:
        return pg_migrations.list_migrations(settings.database)
    # Listing must not create the database (or fail because its directory does not exist yet).
    database = settings.database_path
    return list_migrations(database) if database.exists() else [(m.name, None) for m in MIGRATIONS._migrations]


def _print_list(rows: list[tuple[str, str | None]], as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"name": n, "applied_at": a} for n, a in rows], indent=2))
    else:
        for name, applied in rows:
            print(f"{name}  {'applied ' + applied if applied else 'pending'}")
    return 0


def _print_plan(where: str, plan: list[tuple[str, list[str]]], as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"name": n, "changes": c} for n, c in plan], indent=2))
        return 0
    print(f"database {where}: {len(plan)} pending migration(s), nothing changed")
    for name, changes in plan:
        print(name)
        for change in changes:
            print(f"  {change}")
    return 0


def sqlite_file(settings: Settings, command: str) -> Path:
    """The SQLite file a file-level command works on; PostgreSQL has its own tools."""
    if settings.is_postgres:
        raise CliError(f"{command} works on a SQLite database; for PostgreSQL use pg_dump / pg_restore")
    return settings.database_path


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Copy the database, live or not, to PATH (0600) with SQLite's online backup API."""
    target = Path(args.path)
    size = files.backup(sqlite_file(settings, "backup"), target)
    if args.json:
        print(json.dumps({"backup": str(target.resolve()), "bytes": size}))
    else:
        print(f"backup of {settings.database_path.resolve()} written to {target.resolve()} ({size} bytes, mode 0600)")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Replace the database with a backup; refused while a hub runs on it (stop it first)."""
    source = Path(args.path)
    files.check_backup(source)
    from sqlite_utils import Database

    db = Database(str(source))
    try:
        check_schema(db, source)
    finally:
        db.close()
    database = sqlite_file(settings, "restore")
    lock = files.acquire_lock(database, purpose="ocpi-hub restore")
    try:
        kept = None
        if database.exists() and not args.no_keep:
            kept = database.with_name(f"{database.name}.before-restore")
            kept.unlink(missing_ok=True)
            files.backup(database, kept)
        files.restore(source, database)
    finally:
        lock.release()
    if args.json:
        print(
            json.dumps(
                {
                    "restored": str(database.resolve()),
                    "from": str(source.resolve()),
                    "previous": str(kept.resolve()) if kept else None,
                }
            )
        )
    else:
        print(f"restored {database.resolve()} from {source.resolve()}")
        if kept is not None:
            print(f"the database it replaced is kept in {kept.resolve()}")
        print("start the hub again (ocpi-hub serve); it applies any migrations the backup lacks")
    return 0


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register serve, migrate, backup and restore (``add`` is the CLI's sub-parser factory)."""
    p = add("serve", cmd_serve, "run the hub (migrates the database first)")
    p.add_argument("--init", action="store_true", help="create the database if it does not exist (logged as a WARNING)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N hub processes on one port (PostgreSQL only; the kernel spreads connections over them)",
    )
    # Internal: how `serve --workers N` starts each of its hub processes (hub/cli/supervisor.py).
    p.add_argument("--child-of", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    p = add("migrate", cmd_migrate, "create the database and apply pending migrations")
    p.add_argument("--list", action="store_true", help="list migrations and whether they are applied")
    p.add_argument("--dry-run", action="store_true", help="show what pending migrations would change; change nothing")
    p = add("backup", cmd_backup, "copy the database (also while the hub runs) to a new file, mode 0600")
    p.add_argument("path", help="the backup file to write (must not exist)")
    p = add("restore", cmd_restore, "replace the database with a backup (the hub must be stopped)")
    p.add_argument("path", help="a file written by `ocpi-hub backup`")
    p.add_argument(
        "--no-keep", action="store_true", help="do not keep the replaced database as <database>.before-restore"
    )
