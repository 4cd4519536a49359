"""Failed admin logins: logged at WARNING with the client's address, and rate limited per address.

After ``admin_auth_max_failures`` failures from one address within ``admin_auth_block_seconds``,
every admin request from that address answers HTTP 429 with ``Retry-After`` until the window
has passed, so the admin token cannot be guessed at network speed. The address is the TCP
peer's, or the last ``X-Forwarded-For`` entry when ``trust_proxy`` says a reverse proxy
sets it (the last entry is the one our proxy appended; earlier ones are whatever the client
sent).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque

from aiohttp import web

from hub.keys import CLOCK, SETTINGS
from routing.protocol.errors import RateLimited

LOGGER = logging.getLogger(__name__)

_MAX_ADDRESSES = 10_000  # remembered addresses; the oldest are forgotten first


class AdminGuard:
    """Failure times per client address (bounded), on the app's clock."""

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds until the address may try again, or None when it is not blocked."""
        times = self._recent(address, now)
        if len(times) < self.max_failures:
            return None
        return max(1, int(times[-self.max_failures] + self.window - now + 0.999))

    def failed(self, address: str, now: float) -> None:
        """Record one failure."""
        times = self._failures.setdefault(address, deque(maxlen=self.max_failures))
        self._failures.move_to_end(address)
        times.append(now)
        while len(self._failures) > _MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        """A correct token clears the address's record."""
        self._failures.pop(address, None)


ADMIN_GUARD = web.AppKey("admin_guard", AdminGuard)


def setup(app: web.Application) -> None:
    """Create the guard from the settings."""
    settings = app[SETTINGS]
    app[ADMIN_GUARD] = AdminGuard(settings.admin_auth_max_failures, settings.admin_auth_block_seconds)


def client_address(request: web.Request) -> str:
    """The caller's address: the TCP peer, or the proxy's X-Forwarded-For entry when trusted."""
    if request.config_dict[SETTINGS].trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return request.remote or "unknown"


def before_check(request: web.Request) -> str:
    """Refuse a blocked address (429 + Retry-After); return the address for the outcome."""
    address = client_address(request)
    wait = request.config_dict[ADMIN_GUARD].retry_after(address, request.config_dict[CLOCK].now().timestamp())
    if wait is not None:
        LOGGER.warning("admin request from %s refused: too many failed logins (retry in %d s)", address, wait)
        raise RateLimited("too many failed admin logins from this address", headers={"Retry-After": str(wait)})
    return address


def record(request: web.Request, address: str, *, ok: bool, reason: str = "") -> None:
    """Note the outcome; a failure is logged at WARNING with the address, method and path."""
    guard = request.config_dict[ADMIN_GUARD]
    if ok:
        guard.succeeded(address)
        return
    guard.failed(address, request.config_dict[CLOCK].now().timestamp())
    LOGGER.warning("admin authentication failed from %s: %s %s (%s)", address, request.method, request.path, reason)
