"""What every CLI command shares: exit codes, one-line errors, the admin token and the admin API call.

Exit codes (README, CLI): 0 done; 1 ``status --check`` found the hub not ok or unreachable;
2 an error (usage, settings, the hub refused, unreachable, database locked or missing);
3 nothing found (an empty list, an unknown id); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from config import Settings

EXIT_OK = 0
EXIT_NOT_OK = 1
EXIT_ERROR = 2
EXIT_NOTHING = 3


class CliError(Exception):
    """A problem to report in one line with a non-zero exit."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class NothingFound(CliError):
    """The command found nothing to show or act on: exit 3."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_NOTHING)


def print_rows(
    rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str], footer: str | None, empty: str
) -> None:
    """Rows as JSON, or one ``line`` each then ``footer`` (if any rows); none at all: NothingFound(``empty``)."""
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(line(row))
        if rows and footer:
            print(footer)
    if not rows:
        raise NothingFound(empty)


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


def admin_url(settings: Settings, args: argparse.Namespace) -> str:
    """The hub to talk to: --url, else HUB_URL, else http://HUB_HOST:HUB_PORT."""
    url = getattr(args, "url", None) or os.environ.get("HUB_URL")
    if url:
        return str(url).rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def admin_token(settings: Settings, args: argparse.Namespace) -> str:
    """--admin-token-file, else HUB_ADMIN_TOKEN, else the file `serve` wrote next to the database."""
    explicit = getattr(args, "admin_token_file", None)
    if explicit is None and settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = Path(explicit) if explicit is not None else settings.admin_token_file
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise CliError(
            f"no admin token: {path.resolve()} does not exist (pass --admin-token-file PATH or set"
            " HUB_ADMIN_TOKEN; `serve` writes the file next to the database)"
        ) from None
    if not token:
        raise CliError(f"no admin token: {path.resolve()} is empty")
    return token


async def admin_call(
    settings: Settings,
    args: argparse.Namespace,
    method: str,
    path: str,
    body: Any = None,
    *,
    csv_text: str | None = None,
) -> Any:
    """Call the admin API; an error answer or no answer becomes a one-line CliError (404: exit 3).

    ``csv_text``: send this as a text/csv body instead of JSON. An error answer whose data lists
    ``errors`` (a CSV import's bad rows) gets one line per row after the message.
    """
    url = admin_url(settings, args) + path
    headers = {"Authorization": f"Bearer {admin_token(settings, args)}"}
    sending: dict[str, Any] = {"json": body}
    if csv_text is not None:
        headers["Content-Type"] = "text/csv; charset=utf-8"
        sending = {"data": csv_text.encode()}
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout + 5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.request(method, url, headers=headers, **sending) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = (await resp.text())[:200]
                if resp.status >= 300:
                    message = data.get("status_message") if isinstance(data, dict) else data
                    details = data.get("data") if isinstance(data, dict) else None
                    if isinstance(details, dict) and isinstance(details.get("errors"), list):
                        message = "\n".join(
                            [str(message), *(f"  row {e.get('row')}: {e.get('error')}" for e in details["errors"])]
                        )
                    if resp.status == 404:
                        raise NothingFound(str(message))
                    raise CliError(f"hub answered HTTP {resp.status}: {message}")
                return data
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CliError(f"cannot reach the hub at {url}: {exc or type(exc).__name__}") from exc
