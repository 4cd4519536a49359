"""Logging set-up: one JSON object per line (operators grep and ship them), or plain text.

``LogAllowance`` keeps what partners and anonymous clients can trigger from flooding the log: a
few lines per minute per platform or address, and a count of the ones left out (issue 20).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record and its ``extra`` fields as one JSON line (with ``pid`` when asked)."""

    def __init__(self, *, os_pid: int | None = None) -> None:
        super().__init__()
        self.os_pid = os_pid

    def format(self, record: logging.LogRecord) -> str:
        """Format one record."""
        out: dict[str, Any] = {
            # isoformat is C code and prints the same as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), faster.
            "ts": datetime.fromtimestamp(record.created, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
            + "Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.os_pid is not None:
            out["pid"] = self.os_pid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # orjson: the traffic log writes a line per exchange, and json.dumps was a third of a
        # line's cost (issue 22). What orjson refuses (an int past 64 bits, a non-string key in
        # an extra's dict) goes through json, as every line did before: a line is never lost.
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(out, default=str)


_HELD = threading.local()  # lines_together(): this thread's formatted lines, per handler


@contextlib.contextmanager
def lines_together() -> Iterator[None]:
    """Write the calling thread's stderr lines of the block in one write when the block ends.

    The traffic log writes one line per exchange from a worker thread: a write and a flush per
    line was ~5 % of the hub's CPU in a fan-out (issue 22). Lines of other threads, and of other
    handlers, are not held; nothing is held longer than the block.
    """
    held: dict[StderrHandler, list[str]] = {}
    _HELD.lines = held
    try:
        yield
    finally:
        _HELD.lines = None
        for handler, lines in held.items():
            handler.write_lines(lines)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler bound to whatever ``sys.stderr`` is when a record is written.

    ``logging.StreamHandler(sys.stderr)`` keeps the stream of the moment it was built: once
    stderr is replaced (a daemon reopening it, pytest's capture between tests) every later
    record, including those from worker threads, fails with "I/O operation on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's line, or hold it until the thread's ``lines_together`` block ends."""
        held: dict[StderrHandler, list[str]] | None = getattr(_HELD, "lines", None)
        if held is None:
            super().emit(record)
            return
        try:
            held.setdefault(self, []).append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write_lines(self, lines: list[str]) -> None:
        """Write formatted lines in one write (under the handler's lock: never torn by another thread)."""
        # A closed or broken stderr must not stop the caller (logging's own emit swallows it too).
        with self.lock, contextlib.suppress(OSError, ValueError):  # type: ignore[union-attr]
            self.stream.write("".join(lines))
            self.flush()

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
    os_pid = os.getpid() if with_pid else None
    if as_json:
        handler.setFormatter(JsonFormatter(os_pid=os_pid))
    else:
        where = f" [{os_pid}]" if os_pid is not None else ""
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


@dataclass
class _Window:
    ends: datetime
    written: int = 0
    left_out: int = 0


class LogAllowance:
    """At most ``burst`` log lines per ``window`` seconds per key (a platform, an address).

    ``take`` says whether a line may be written, and how many its key's previous window left
    out (the first line of a window reports them). The keys kept are bounded: past ``max_keys``
    the finished windows are dropped, then all of them.
    """

    def __init__(self, *, burst: int, window: float, max_keys: int = 10_000) -> None:
        self.burst = burst
        self.window = timedelta(seconds=window)
        self.max_keys = max_keys
        self._windows: dict[str, _Window] = {}

    def take(self, key: str, now: datetime) -> int | None:
        """None when ``key`` used its allowance (count the line as left out), else the lines left out before."""
        current = self._windows.get(key)
        left_before = 0
        if current is None or now >= current.ends:
            if current is None and len(self._windows) >= self.max_keys:
                self._prune(now)
            left_before = current.left_out if current is not None else 0
            current = self._windows[key] = _Window(ends=now + self.window)
        if current.written >= self.burst:
            current.left_out += 1
            return None
        current.written += 1
        return left_before

    def suffix(self, left_before: int) -> str:
        """The note a window's first line carries about the previous window."""
        if not left_before:
            return ""
        return f" ({left_before} similar lines left out in the {self.window.total_seconds():g} s before)"

    def _prune(self, now: datetime) -> None:
        self._windows = {k: w for k, w in self._windows.items() if now < w.ends}
        if len(self._windows) >= self.max_keys:
            self._windows.clear()


# What aiohttp logs, with a traceback at ERROR, for every request its HTTP parser refuses.
_PARSER_ERROR = "Error handling request from %s"


class MalformedRequests(logging.Filter):
    """On aiohttp's server logger: a request its parser refused is one WARNING line, rate limited per address.

    Anyone who can reach the port can send such bytes (a TLS handshake, a header without a
    colon), and aiohttp logs each at ERROR with a traceback: a flood of those is a flood of the
    log. Only the exception's name is kept, never its text (it can quote the request). Errors of
    another kind on that logger pass unchanged.
    """

    def __init__(self, allowance: LogAllowance, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.allowance = allowance
        self.now = now

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite (or drop) a parser refusal; let anything else through."""
        refused = record.exc_info[1] if record.exc_info else None
        if record.msg != _PARSER_ERROR or not isinstance(refused, HttpProcessingError):
            return True
        address = str(record.args[0]) if isinstance(record.args, tuple) and record.args else "unknown"
        left_before = self.allowance.take(f"address {address}", self.now())
        if left_before is None:
            return False
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "malformed request from %s refused by the HTTP parser (%s); answered 400%s"
        record.args = (address, type(refused).__name__, self.allowance.suffix(left_before))
        record.exc_info = record.exc_text = None
        return True
