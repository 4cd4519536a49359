"""Retry policy of the outbox worker: what is retryable, and how long to wait (docs/DESIGN-NOTES.md, Delivery).

Retryable: connect errors, timeouts, HTTP 408/429/5xx without a final OCPI answer, and non-OCPI
answers. A receiver's OCPI answer (1xxx, 2xxx, 3xxx) is final: it is recorded, never retried.
Delays are tenacity's exponential backoff with jitter; ``Retry-After`` is honoured as a floor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from config import DeliverySettings
from routing.peers.exchange import PeerResponse

# 502/503/504 mean "not now" even when the body is an envelope; 401/403 mean our credentials were
# refused, which an operator fixes (rotation) while the queue waits.
_ALWAYS_RETRY = frozenset({401, 403, 408, 429, 502, 503, 504})


def is_retryable(response: PeerResponse) -> bool:
    """Whether an HTTP answer calls for another attempt."""
    if response.status in _ALWAYS_RETRY:
        return True
    if not response.is_ocpi:
        return True
    return response.status >= 500 and response.ocpi_status is not None and response.ocpi_status < 2000


def retry_after(response: PeerResponse | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), if any."""
    if response is None:
        return None
    value = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # '²'.isdigit() is True but float('²') fails
        return min(float(value), 7 * 86400.0)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class RetryPolicy:
    """Backoff with jitter, capped; a Retry-After floor; capped again by max_backoff.

    The attempts are counted in the outbox (a retry may run in another process, after a restart),
    not in a tenacity loop: each delay is asked of tenacity's wait strategy with a retry state at
    the stored attempt number.
    """

    def __init__(self, settings: DeliverySettings) -> None:
        self._retrying = Retrying(
            wait=wait_exponential_jitter(initial=settings.initial_backoff, max=settings.max_backoff)
        )
        self._max = settings.max_backoff

    def delay(self, attempts: int, floor: float | None = None) -> float:
        """Seconds to wait after the given number of failed attempts."""
        state = RetryCallState(retry_object=self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = attempts
        base = float(self._retrying.wait(state))
        if floor is not None:
            base = max(base, floor)
        return min(base, max(self._max, floor or 0.0))
