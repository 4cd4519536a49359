"""``ocpi-hub serve --workers N``: N hub processes on one port, sharing one PostgreSQL database.

The parent runs no hub itself. It migrates the database once (so the children do not race for
it), then starts N fresh ``ocpi-hub serve`` processes: new interpreters, never forks of a running
event loop. Each child is a whole hub (its own loop, store, delivery worker) and binds the same
HUB_HOST:HUB_PORT with SO_REUSEPORT, so the kernel spreads incoming connections over them. A child
says it is listening by writing ``ready`` on a pipe the parent gave it.

The parent prints the banner once every child listens, forwards SIGTERM/SIGINT and waits for
the children's graceful stop (bounded, then SIGKILL), and restarts a child that dies unexpectedly
with a growing pause; when children keep dying (``GIVE_UP_AFTER`` exits within ``GIVE_UP_WINDOW``
seconds) it stops the rest and exits non-zero, so a service manager sees the failure.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import errno
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from config import Settings
from hub.cli.common import EXIT_ERROR, CliError

LOGGER = logging.getLogger("hub.cli.supervisor")

POLL = 0.1  # seconds between looks at the children (also how fast a signal is acted on)
READY_TIMEOUT = 60.0  # a child that is not listening by then is stopped (a start failure)
STOP_TIMEOUT = 30.0  # graceful stop: in-flight deliveries finish (aiohttp's shutdown takes <= 10 s)
FIRST_BACKOFF = 0.5  # pause before restarting a child that died, doubled per recent death
MAX_BACKOFF = 8.0
GIVE_UP_AFTER = 5  # this many unexpected exits ...
GIVE_UP_WINDOW = 60.0  # ... within this many seconds: stop the hub instead of restarting again

# A command that starts one child: given the write end of its ready pipe, the argv to run.
ChildCommand = Callable[[int], list[str]]


def child_command(ready_fd: int) -> list[str]:
    """The argv of one child: this same ``ocpi-hub serve``, told where to say it is ready."""
    return [sys.executable, "-m", "hub", "serve", "--child-of", str(os.getpid()), "--ready-fd", str(ready_fd)]


def check_port(host: str, port: int) -> None:
    """Fail in one line when HUB_HOST:HUB_PORT is taken, before any child starts.

    Bound without SO_REUSEPORT on purpose: that also refuses a port held by another
    ``--workers`` hub (whose SO_REUSEPORT sockets would otherwise quietly share it with ours).
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does: TIME_WAIT is no obstacle
            try:
                sock.bind(address)
            except OSError as exc:
                raise listen_error(host, port, exc) from exc


def listen_error(host: str, port: int, exc: OSError) -> CliError:
    """The one line for a port that cannot be bound (taken, not allowed, no such address)."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    hint = " (another hub or program has it; choose another HUB_PORT)" if exc.errno == errno.EADDRINUSE else ""
    return CliError(f"cannot listen on {host}:{port}: {reason}{hint}")


def follow_parent(parent_pid: int) -> None:
    """In a child: get SIGTERM when the supervisor dies (Linux), so no orphan keeps the port."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def say_ready(ready_fd: int) -> None:
    """In a child: tell the supervisor this process listens (and close the pipe)."""
    try:
        os.write(ready_fd, b"ready\n")
    finally:
        os.close(ready_fd)


@dataclass
class Child:
    """One running child process and its ready pipe (read end; None once read or closed)."""

    slot: int
    proc: subprocess.Popen[bytes]
    ready_fd: int | None
    started: float
    ready: bool = False

    @property
    def os_pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def close_pipe(self) -> None:
        """Close the read end of the ready pipe."""
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


@dataclass
class Supervisor:
    """Starts, watches, restarts and stops ``count`` children; ``run`` returns the exit code."""

    count: int
    command: ChildCommand = child_command
    ready_timeout: float = READY_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT
    first_backoff: float = FIRST_BACKOFF
    give_up_after: int = GIVE_UP_AFTER
    give_up_window: float = GIVE_UP_WINDOW
    env: dict[str, str] | None = None
    children: dict[int, Child] = field(default_factory=dict)
    _stop_signal: int | None = None
    _deaths: collections.deque[float] = field(default_factory=collections.deque)
    _restart_at: dict[int, float] = field(default_factory=dict)

    # -- signals ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def install_signals(self) -> None:
        """SIGTERM and SIGINT ask for a graceful stop of every child."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    @property
    def stopping(self) -> bool:
        """True once SIGTERM or SIGINT arrived."""
        return self._stop_signal is not None

    # -- children -----------------------------------------------------------------------------

    def spawn(self, slot: int) -> Child:
        """Start the child for ``slot``: a fresh interpreter, with the write end of its ready pipe."""
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(self.command(write_fd), pass_fds=(write_fd,), env=self.env)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        child = Child(slot, proc, read_fd, time.monotonic())
        self.children[slot] = child
        LOGGER.info("worker %d started (pid %d)", slot, child.os_pid)
        return child

    def _read_ready(self, timeout: float) -> None:
        """Wait up to ``timeout`` for ready lines (this is also the loop's sleep)."""
        waiting = {c.ready_fd: c for c in self.children.values() if c.ready_fd is not None}
        if not waiting:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(waiting), [], [], timeout)
        for fd in readable:
            child = waiting[fd]
            data = os.read(fd, 64)
            if data.startswith(b"ready"):
                child.ready = True
                LOGGER.info("worker %d listening (pid %d)", child.slot, child.os_pid)
            child.close_pipe()  # "ready", or EOF: the child is exiting (its exit is seen below)

    def start_all(self) -> None:
        """Start every child and wait until all listen; CliError when one cannot start."""
        for slot in range(1, self.count + 1):
            self.spawn(slot)
        deadline = time.monotonic() + self.ready_timeout
        while not all(c.ready for c in self.children.values()):
            if self.stopping:
                return
            self._read_ready(POLL)
            exited = [c for c in self.children.values() if not c.ready and c.proc.poll() is not None]
            if exited:
                self._read_ready(0)  # a "ready" written just before exiting still counts as started
            for child in exited:
                if not child.ready:
                    self.stop_all()
                    raise CliError(
                        f"worker {child.slot} (pid {child.os_pid}) exited with code {child.proc.returncode} before"
                        " it was listening (its error is above); every worker is stopped"
                    )
            if time.monotonic() > deadline:
                self.stop_all()
                raise CliError(f"the workers were not all listening within {self.ready_timeout:g} s; stopped them")

    def watch(self) -> int:
        """Until a stop signal: restart children that die; the exit code (non-zero when giving up)."""
        while not self.stopping:
            self._read_ready(POLL)
            now = time.monotonic()
            for slot, child in list(self.children.items()):
                code = child.proc.poll()
                if code is None and not child.ready and now - child.started > self.ready_timeout:
                    LOGGER.error(
                        "worker %d (pid %d) not listening after %g s: killing it",
                        slot,
                        child.os_pid,
                        now - child.started,
                    )
                    child.proc.kill()
                    code = child.proc.wait()
                if code is None:
                    continue
                child.close_pipe()
                del self.children[slot]
                if self.stopping:
                    break
                if not self._schedule_restart(slot, child, code, now):
                    self.stop_all()
                    return EXIT_ERROR
            for slot, at in list(self._restart_at.items()):
                if now >= at and not self.stopping:
                    del self._restart_at[slot]
                    self.spawn(slot)
        self.stop_all()
        return 0

    def _schedule_restart(self, slot: int, child: Child, code: int, now: float) -> bool:
        """Note an unexpected exit; False when children keep dying and the supervisor gives up."""
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > self.give_up_window:
            self._deaths.popleft()
        recent = len(self._deaths)
        if recent >= self.give_up_after:
            LOGGER.error(
                "worker %d (pid %d) %s; %d unexpected exits within %g s: giving up, stopping the hub",
                slot,
                child.os_pid,
                how,
                recent,
                self.give_up_window,
            )
            return False
        pause = min(self.first_backoff * 2 ** (recent - 1), MAX_BACKOFF)
        LOGGER.warning("worker %d (pid %d) %s unexpectedly; restarting it in %g s", slot, child.os_pid, how, pause)
        self._restart_at[slot] = now + pause
        return True

    def stop_all(self) -> None:
        """SIGTERM every child, wait up to ``stop_timeout`` for their graceful stop, then SIGKILL."""
        self._restart_at.clear()
        alive = [c for c in self.children.values() if c.proc.poll() is None]
        for child in alive:
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(c.proc.poll() is None for c in alive) and time.monotonic() < deadline:
            time.sleep(POLL)
        for child in alive:
            if child.proc.poll() is None:
                waited = self.stop_timeout
                LOGGER.warning(
                    "worker %d (pid %d) still running %g s after SIGTERM: SIGKILL", child.slot, child.os_pid, waited
                )
                child.proc.kill()
                child.proc.wait()
        for child in self.children.values():
            child.close_pipe()
        self.children.clear()

    def os_pids(self) -> list[int]:
        """The running children's process ids, by slot."""
        return [self.children[slot].os_pid for slot in sorted(self.children)]


def run(settings: Settings, count: int, banner: Callable[[list[int]], None]) -> int:
    """Migrate once, start ``count`` children, print the banner, supervise until told to stop."""
    from storage import migrate_postgres

    check_port(settings.host, settings.port)
    done = migrate_postgres.apply_migrations(settings.database)
    if done:
        LOGGER.info("applied migrations: %s", ", ".join(done))
    supervisor = Supervisor(count)
    supervisor.install_signals()  # before the children start: a SIGTERM during start-up stops them too
    supervisor.start_all()
    if supervisor.stopping:
        supervisor.stop_all()
        return 0
    banner(supervisor.os_pids())
    code = supervisor.watch()
    LOGGER.info("every worker stopped" if code == 0 else "the hub stopped: its workers kept dying")
    return code
