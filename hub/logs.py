"""Logging set-up: one JSON object per line (operators grep and ship them), or plain text."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record and its ``extra`` fields as one JSON line (with ``pid`` when asked)."""

    def __init__(self, *, pid: int | None = None) -> None:
        super().__init__()
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        """Format one record."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.pid is not None:
            out["pid"] = self.pid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler bound to whatever ``sys.stderr`` is when a record is written.

    ``logging.StreamHandler(sys.stderr)`` keeps the stream of the moment it was built: once
    stderr is replaced (a daemon reopening it, pytest's capture between tests) every later
    record, including those from worker threads, fails with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def setup_logging(level: str, *, as_json: bool, with_pid: bool = False) -> None:
    """Configure the root logger once for the process; ``with_pid`` names the process on every line."""
    handler = StderrHandler()
    # Several hub processes (`serve --workers N`) write to one stream: each line says whose it is.
    # The pid is read once here (the process is a fresh one, never a fork of a configured one).
    pid = os.getpid() if with_pid else None
    if as_json:
        handler.setFormatter(JsonFormatter(pid=pid))
    else:
        where = f" [{pid}]" if pid is not None else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s"))
    # Per-record work no formatter here uses (logging docs, "Optimization"): no stack walk for
    # the caller, no thread/process lookups. Two traffic lines per push make it count.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # raw paths may hold token uids
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # at DEBUG it logs SQL parameters: stored tokens
