"""Traffic-log search criteria: one parser of query parameters for the admin API and the console."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.params import positive_int
from routing.clock import iso, parse_iso
from routing.errors import InvalidParameters


def _int_param(query: Mapping[str, str], name: str, default: int | None, *, high: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    number = positive_int(raw)
    if number is None or not 1 <= number <= high:
        raise InvalidParameters(f"'{name}' must be an integer from 1 to {high}")
    return number


def _time_param(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return iso(parse_iso(raw[:64]))  # one stored format, so text comparison is time comparison
    except ValueError:
        raise InvalidParameters(f"'{name}' must be a date-time like 2026-11-25T10:00:00Z") from None


@dataclass(frozen=True)
class TrafficSearch:
    """A traffic-log search, as the admin API and the console take it (query parameters)."""

    correlation_id: str | None = None
    request_id: str | None = None
    platform_id: int | None = None
    module: str | None = None
    http_status: int | None = None
    ocpi_status: int | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TrafficSearch:
        """Parse query parameters; InvalidParameters names the first bad one."""
        return cls(
            correlation_id=query.get("correlation_id") or None,
            request_id=query.get("request_id") or None,
            platform_id=_int_param(query, "platform_id", None, high=2**62),
            module=query.get("module") or None,
            http_status=_int_param(query, "http_status", None, high=999),
            ocpi_status=_int_param(query, "ocpi_status", None, high=9999),
            since=_time_param(query, "since"),
            until=_time_param(query, "until"),
            limit=_int_param(query, "limit", 100, high=10_000) or 100,
        )
