"""CLI command ``copy-to-postgres``: move a SQLite hub's data into PostgreSQL (storage/copy.py).

The SQLite file is the one HUB_DATABASE names, as for every command; the target URL is the
argument. The hub must be stopped: the copy holds the database's lock, so no hub writes to the
file (or starts on it) while it runs. Errors are one line (hub/cli/main.py, ``main``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from config import Settings
from hub.cli.common import CliError
from storage.copy import copy_to_postgres

HELP = "copy this hub's SQLite database (HUB_DATABASE) into an empty PostgreSQL database"
DESCRIPTION = (
    HELP + ". Stop the hub first: the copy holds the SQLite file's lock, so no hub writes to it (or starts on it)"
    " meanwhile. The target is migrated to this version's schema and must hold no data; everything is"
    " copied in one transaction (all or nothing), keys included. The SQLite file is not changed."
)


def cmd_copy_to_postgres(settings: Settings, args: argparse.Namespace) -> int:
    """Copy every table of the SQLite database into the PostgreSQL database at URL; print rows per table."""
    if settings.is_postgres:
        raise CliError(
            "copy-to-postgres reads the SQLite database HUB_DATABASE names, but HUB_DATABASE is a PostgreSQL URL;"
            " set it to the SQLite file to copy"
        )
    target: str = args.target
    if not target.startswith(("postgresql://", "postgres://")):
        raise CliError(f"{target!r} is not a PostgreSQL URL (postgresql://user@host:5432/database)")
    report = copy_to_postgres(settings.database_path, target)
    if args.json:
        data = {
            "source": report.source,
            "target": report.target,
            "seconds": round(report.seconds, 3),
            "tables": {t.name: t.rows for t in report.tables},
            "skipped": report.skipped,
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"copied {report.source}")
    print(f"  into {report.target}")
    print(f"  {report.rows} rows in {report.seconds:.2f} s, one transaction")
    width = max(len(name) for name in [t.name for t in report.tables] + list(report.skipped))
    for t in report.tables:
        print(f"  {t.name:<{width}}  {t.rows:>9} rows  {t.seconds:6.2f} s")
    for name, why in report.skipped.items():
        print(f"  {name:<{width}}  not copied ({why})")
    print(f"next: HUB_DATABASE={report.target} ocpi-hub serve  (the SQLite file is unchanged)")
    _admin_token_hint(settings, target)
    return 0


def _admin_token_hint(settings: Settings, target: str) -> None:
    """The generated admin token lives next to the SQLite file; `serve` on PostgreSQL looks elsewhere."""
    if settings.admin_token is not None or not settings.admin_token_file.exists():
        return
    elsewhere = settings.model_copy(update={"database": target}).admin_token_file
    print(
        f"admin token: {settings.admin_token_file.resolve()} stays with the SQLite file; copy it to"
        f" {elsewhere} (where serve on PostgreSQL looks) or set HUB_ADMIN_TOKEN, or serve makes a new one"
    )


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Register copy-to-postgres (``add`` is the CLI's sub-parser factory)."""
    p = add("copy-to-postgres", cmd_copy_to_postgres, HELP)
    p.description = DESCRIPTION
    p.add_argument(
        "target", metavar="POSTGRESQL_URL", help="the PostgreSQL database, e.g. postgresql://hub@db:5432/hub"
    )
